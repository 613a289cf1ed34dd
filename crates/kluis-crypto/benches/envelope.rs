//! Envelope encryption throughput, next to `openssl speed`, plus key-provider operation rates.
//!
//! `cargo bench -p kluis-crypto --bench envelope`. Single thread, about 2 s per figure: each
//! figure is the best of a few shorter rounds (OpenSSL: best of two 1-second runs), because a
//! shared machine's background load otherwise swings single runs by tens of percent.
//!
//! The target: `envelope::seal`/`envelope::open` reach at least 70 % of OpenSSL's AES-256-GCM
//! throughput at the same record size. OpenSSL is measured twice: `-evp` (what `openssl speed
//! -evp aes-256-gcm` prints: bulk `EVP_EncryptUpdate` calls on one context, no IV, AAD or tag
//! per record) and, where supported, `-aead` (a TLS-like record: new IV, 13-byte AAD, update,
//! tag; the closest thing to one seal). The ratio is computed against both.
//!
//! PKCS#11 figures need SoftHSM2. SoftHSM2 reads `SOFTHSM2_CONF` when it is loaded and this
//! crate forbids `unsafe` (so no `set_var`), so the bench creates a throwaway token and re-runs
//! itself with the variable set for that part.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kluis_crypto::envelope::{
    DataKey, Kek, Kms, LocalKms, Pkcs11Kms, SealContext, open, seal, tenant_wrap_aad,
};
use secrecy::SecretString;

/// Total time per figure.
const RUN: Duration = Duration::from_secs(2);
/// Rounds per figure; the best round counts.
const ROUNDS: u32 = 3;
/// OpenSSL runs per figure (`-seconds` takes whole seconds).
const OPENSSL_ROUNDS: u32 = 2;
const TARGET: f64 = 0.70;
const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CHILD_ENV: &str = "KLUIS_BENCH_PKCS11_CHILD";
const TOKEN: &str = "kluis-bench";
const PIN: &str = "1234";

const CTX: SealContext<'static> = SealContext {
    tenant: [0x11; 16],
    table: "contacts",
    column: "email",
    record: [0x22; 16],
};

/// Runs `f` repeatedly for about `RUN` in `ROUNDS` rounds, returning the best round's
/// operations per second.
fn rate(mut f: impl FnMut()) -> f64 {
    // Warm up caches and the branch predictor.
    for _ in 0..1000 {
        f();
    }
    let round = RUN / ROUNDS;
    let mut best: f64 = 0.0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut ops: u64 = 0;
        loop {
            for _ in 0..256 {
                f();
            }
            ops += 256;
            let elapsed = start.elapsed();
            if elapsed >= round {
                best = best.max(ops as f64 / elapsed.as_secs_f64());
                break;
            }
        }
    }
    best
}

/// Like [`rate`] for slow operations (one call may take milliseconds).
fn slow_rate(mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut ops: u64 = 0;
    loop {
        f();
        ops += 1;
        let elapsed = start.elapsed();
        if elapsed >= RUN {
            return ops as f64 / elapsed.as_secs_f64();
        }
    }
}

/// `openssl speed` for AES-256-GCM at one size, in bytes per second, best of
/// `OPENSSL_ROUNDS` one-second runs. `None` if openssl is missing or the option is unsupported.
fn openssl_speed(bytes: usize, extra: &[&str]) -> Option<f64> {
    (0..OPENSSL_ROUNDS)
        .map(|_| openssl_speed_once(bytes, extra))
        .try_fold(0.0_f64, |best, r| r.map(|r| best.max(r)))
}

fn openssl_speed_once(bytes: usize, extra: &[&str]) -> Option<f64> {
    let out = Command::new("openssl")
        .arg("speed")
        .args(extra)
        .args(["-evp", "aes-256-gcm", "-bytes", &bytes.to_string()])
        .args(["-seconds", "1"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // The table's last line: `AES-256-GCM     158594.63k` (1000s of bytes per second).
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-256-gcm"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.strip_suffix('k'))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|k| k * 1000.0)
}

fn openssl_version() -> Option<String> {
    let out = Command::new("openssl").arg("version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn print_rate(what: &str, records: f64, bytes: usize) {
    println!(
        "  {what:<34} {:>11.0} records/s {:>9.1} MB/s",
        records,
        records * bytes as f64 / 1e6
    );
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    match theirs {
        Some(t) if t > 0.0 => {
            let r = ours / t;
            let verdict = if r >= TARGET { "meets" } else { "BELOW" };
            format!("{:>5.1} % ({verdict} the 70 % target)", r * 100.0)
        }
        _ => "n/a".into(),
    }
}

fn envelope_figures() {
    let key = DataKey::generate(1).unwrap();
    let have_openssl = openssl_version();
    match &have_openssl {
        Some(v) => println!("openssl: {v}"),
        None => println!("openssl: not found; OpenSSL comparison skipped"),
    }
    for size in [64usize, 1024] {
        let plaintext = vec![0x5a; size];
        let sealed = seal(&key, &CTX, &plaintext).unwrap();
        println!(
            "\nAES-256-GCM, {size}-byte plaintexts (single thread, best of rounds, ~2 s each)"
        );
        let seal_rate = rate(|| {
            black_box(seal(&key, black_box(&CTX), black_box(&plaintext)).unwrap());
        });
        print_rate("envelope::seal", seal_rate, size);
        let open_rate = rate(|| {
            black_box(open(&key, black_box(&CTX), black_box(&sealed)).unwrap());
        });
        print_rate("envelope::open", open_rate, size);
        if have_openssl.is_none() {
            continue;
        }
        let enc = openssl_speed(size, &[]);
        let dec = openssl_speed(size, &["-decrypt"]);
        let aead_enc = openssl_speed(size, &["-aead"]);
        let aead_dec = openssl_speed(size, &["-aead", "-decrypt"]);
        for (what, v) in [
            ("openssl speed -evp (encrypt)", enc),
            ("openssl speed -evp -decrypt", dec),
            ("openssl speed -aead (encrypt)", aead_enc),
            ("openssl speed -aead -decrypt", aead_dec),
        ] {
            match v {
                Some(b) => print_rate(what, b / size as f64, size),
                None => println!("  {what:<34} unavailable"),
            }
        }
        let ours_seal = seal_rate * size as f64;
        let ours_open = open_rate * size as f64;
        println!(
            "  seal / openssl -evp encrypt        {}",
            ratio(ours_seal, enc)
        );
        println!(
            "  open / openssl -evp decrypt        {}",
            ratio(ours_open, dec)
        );
        println!(
            "  seal / openssl -aead encrypt       {}",
            ratio(ours_seal, aead_enc)
        );
        println!(
            "  open / openssl -aead decrypt       {}",
            ratio(ours_open, aead_dec)
        );
    }
}

fn local_kms_figures() {
    let kms = LocalKms::new(Kek::generate().unwrap());
    let dek = DataKey::generate(1).unwrap();
    let aad = tenant_wrap_aad(&[7; 16]);
    let wrapped = kms.wrap(&dek, &aad).unwrap();
    println!("\nKey providers (single thread)");
    let w = rate(|| {
        black_box(kms.wrap(black_box(&dek), &aad).unwrap());
    });
    println!("  {:<34} {w:>11.0} ops/s", "LocalKms::wrap");
    let u = rate(|| {
        black_box(kms.unwrap(black_box(&wrapped), &aad).unwrap());
    });
    println!("  {:<34} {u:>11.0} ops/s", "LocalKms::unwrap");
}

/// In the child process with `SOFTHSM2_CONF` set: PKCS#11 figures.
fn pkcs11_child() {
    let pin = || SecretString::from(PIN);
    let kms = Pkcs11Kms::generate_key(MODULE, TOKEN, pin(), "bench-kek").unwrap();
    let dek = DataKey::generate(1).unwrap();
    let aad = tenant_wrap_aad(&[7; 16]);
    let wrapped = kms.wrap(&dek, &aad).unwrap();
    let w = slow_rate(|| {
        black_box(kms.wrap(black_box(&dek), &aad).unwrap());
    });
    println!("  {:<34} {w:>11.0} ops/s", "Pkcs11Kms::wrap (SoftHSM2)");
    let u = slow_rate(|| {
        black_box(kms.unwrap(black_box(&wrapped), &aad).unwrap());
    });
    println!("  {:<34} {u:>11.0} ops/s", "Pkcs11Kms::unwrap (SoftHSM2)");
}

fn pkcs11_figures() {
    let util_ok = Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !Path::new(MODULE).exists() || !util_ok {
        println!("  PKCS#11: SoftHSM2 not found ({MODULE}); install the softhsm2 package");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", TOKEN])
        .args(["--pin", PIN, "--so-pin", "5678"])
        .output()
        .unwrap();
    if !init.status.success() {
        println!(
            "  PKCS#11: softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&init.stderr).trim()
        );
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        println!(
            "  PKCS#11 bench failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

fn main() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("1") {
        pkcs11_child();
        return;
    }
    envelope_figures();
    local_kms_figures();
    pkcs11_figures();
}
