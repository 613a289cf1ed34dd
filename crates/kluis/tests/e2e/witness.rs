//! An audit trail that cannot be rolled back, and a database state the trail vouches for:
//! the unsigned tail after a crash or a clean stop, the witness refusing forks and rollbacks,
//! the truncation attack caught by a witness-backed verify, and direct SQL changes to
//! records, versions, trash and users caught by `kluis audit verify --state`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kluis_crypto::checkpoint::{self, CheckpointSigner, CosignatureVerifier};
use kluis_crypto::merkle;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::audit::{SQLITE_ADVANCE_HEAD_TRIGGER, sql, tenant_hex};
use crate::support::{Backend, Server, on_both, tenant_fixture};

on_both!(
    truncation_is_caught_by_the_witness,
    direct_sql_changes_are_named_by_state_verification
);

/// A running `kluis witness serve` on a free loopback port.
pub(crate) struct WitnessProc {
    child: Child,
    pub url: String,
    pub vkey: String,
    pub _dir: tempfile::TempDir,
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_witness(log_keys: &[&str]) -> WitnessProc {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let key = Command::new(env!("CARGO_BIN_EXE_kluis"))
        .args(["witness", "key", "--state-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(key.status.success(), "{key:?}");
    let vkey = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let mut args = vec![
        "witness".to_owned(),
        "serve".to_owned(),
        "--state-dir".to_owned(),
        state.display().to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    for k in log_keys {
        args.extend(["--log-key".to_owned(), (*k).to_owned()]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_kluis"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_once("listening on ")
        .map(|(_, u)| u.trim().to_owned())
        .unwrap_or_else(|| panic!("witness did not start: {first}"));
    // Keep draining so the witness never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    WitnessProc {
        child,
        url,
        vkey,
        _dir: dir,
    }
}

async fn add_checkpoint(url: &str, old: u64, proof: &[merkle::Hash], note: &str) -> (u16, String) {
    let mut body = format!("old {old}\n");
    for h in proof {
        body.push_str(&STANDARD.encode(h));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    let r = reqwest::Client::new()
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (status, format!("{ct}|{text}"))
}

/// The witness cosigns consistent extensions only: a fork (same size, another root), a
/// stale old size, a bad consistency proof, a smaller size and an unknown key are refused with
/// the C2SP tlog-witness status codes; what it cosigned verifies with its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_refuses_forks_rollbacks_and_bad_proofs() {
    let log = CheckpointSigner::generate("test-log").unwrap();
    let stranger = CheckpointSigner::generate("test-log").unwrap();
    let w = start_witness(&[&log.verifier().to_vkey()]);
    let wkey = CosignatureVerifier::from_vkey(&w.vkey).unwrap();
    let origin = "kluis.audit/test";
    let leaves: Vec<merkle::Hash> = (0..12u8).map(|i| merkle::leaf_hash(&[i])).collect();
    let mut forked = leaves.clone();
    forked[2] = merkle::leaf_hash(b"rewritten");
    let note = |l: &[merkle::Hash]| log.sign(origin, l.len() as u64, &merkle::root(l)).unwrap();

    // First checkpoint: old 0, no proof.
    let (st, body) = add_checkpoint(&w.url, 0, &[], &note(&leaves[..4])).await;
    assert_eq!(st, 200, "{body}");
    let line = body.split_once('|').unwrap().1;
    let cosigned = format!("{}{line}", note(&leaves[..4]));
    assert_eq!(
        checkpoint::verify_cosignature(&cosigned, &wkey)
            .unwrap()
            .0
            .size,
        4
    );
    // A fork: another tree of the same size.
    let (st, body) = add_checkpoint(&w.url, 4, &[], &note(&forked[..4])).await;
    assert_eq!(st, 409, "{body}");
    assert!(!body.starts_with("text/x.tlog.size"), "{body}");
    // A consistent extension with its proof.
    let proof = merkle::consistency_proof(&leaves[..8], 4).unwrap();
    let (st, body) = add_checkpoint(&w.url, 4, &proof, &note(&leaves[..8])).await;
    assert_eq!(st, 200, "{body}");
    // A stale old size: 409 with the witness's size.
    let (st, body) = add_checkpoint(&w.url, 4, &[], &note(&leaves[..10])).await;
    assert_eq!((st, body.as_str()), (409, "text/x.tlog.size|8\n"));
    // A fork of history below the cosigned size: its proof cannot verify.
    let bad = merkle::consistency_proof(&forked[..10], 8).unwrap();
    let (st, body) = add_checkpoint(&w.url, 8, &bad, &note(&forked[..10])).await;
    assert_eq!(st, 422, "{body}");
    // Rolling back: a smaller tree than the one cosigned.
    let (st, body) = add_checkpoint(&w.url, 8, &[], &note(&leaves[..6])).await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = add_checkpoint(&w.url, 0, &[], &note(&leaves[..6])).await;
    assert_eq!((st, body.as_str()), (409, "text/x.tlog.size|8\n"));
    // A key the witness was not given.
    let foreign = stranger
        .sign(origin, 10, &merkle::root(&leaves[..10]))
        .unwrap();
    let proof = merkle::consistency_proof(&leaves[..10], 8).unwrap();
    let (st, body) = add_checkpoint(&w.url, 8, &proof, &foreign).await;
    assert_eq!(st, 403, "{body}");
    // What it holds: the size-8 checkpoint, cosigned.
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(origin.as_bytes()))
    };
    let held = reqwest::get(format!("{}/{hash}/checkpoint", w.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (cp, _) = checkpoint::verify_cosignature(&held, &wkey).unwrap();
    assert_eq!((cp.size, cp.root), (8, merkle::root(&leaves[..8])));
    assert_eq!(checkpoint::verify(&held, &log.verifier()).unwrap().size, 8);
}

fn checkpoint_file_max(s: &Server, tenant_id: &str) -> i64 {
    let text = std::fs::read_to_string(
        s.dir
            .path()
            .join("audit")
            .join(format!("{tenant_id}.checkpoints")),
    )
    .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["size"].as_i64())
        .max()
        .unwrap_or(0)
}

fn event_count(s: &Server, slug: &str) -> i64 {
    s.cli(&["audit", "events", "--tenant", slug], None)
        .lines()
        .count() as i64
}

async fn add_users(s: &Server, auth: &crate::support::Auth, tag: &str, n: usize) {
    for i in 0..n {
        let (st, v) = s
            .post(
                "/api/v1/users",
                auth,
                json!({"email": format!("{tag}{i}@staart.test"), "display_name": "S", "role": "member"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
}

/// The unsigned tail: a clean stop signs everything (even with an hour-long timer), and a
/// process killed with SIGKILL leaves no more than the events of the last idle period
/// (`audit_checkpoint_idle_secs`): here, events older than that are all signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_tail_after_a_stop_and_after_sigkill() {
    let mut s = Server::start_with(
        Backend::Sqlite,
        &[
            ("KLUIS_AUDIT_CHECKPOINT_EVERY_EVENTS", "100000"),
            ("KLUIS_AUDIT_CHECKPOINT_INTERVAL_SECS", "3600"),
            ("KLUIS_AUDIT_CHECKPOINT_IDLE_SECS", "60"),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "staart").await;
    add_users(&s, &t.owner, "a", 5).await;
    // Clean stop: the timer (60 s) has not fired, the shutdown signs.
    assert!(s.stop().success());
    let head = event_count(&s, "staart");
    assert!(head >= 5, "{head}");
    assert_eq!(
        checkpoint_file_max(&s, &t.id),
        head,
        "clean stop left an unsigned tail: {}",
        s.logs()
    );

    // SIGKILL after N events: with a 1 s idle period, events written more than ~1.5 s
    // before the kill are under a signed checkpoint.
    s.set_env("KLUIS_AUDIT_CHECKPOINT_IDLE_SECS", "1");
    s.spawn().await;
    let owner = s
        .login("staart", "owner@staart.test", crate::support::PASSWORD)
        .await;
    add_users(&s, &owner, "b", 20).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before_kill = event_count(&s, "staart");
    s.kill();
    assert_eq!(event_count(&s, "staart"), before_kill);
    assert_eq!(
        checkpoint_file_max(&s, &t.id),
        before_kill,
        "events older than the idle period were left unsigned"
    );
    // And a kill right after writing leaves only those last events unsigned.
    s.spawn().await;
    let owner = s
        .login("staart", "owner@staart.test", crate::support::PASSWORD)
        .await;
    add_users(&s, &owner, "c", 3).await;
    s.kill();
    let head = event_count(&s, "staart");
    let signed = checkpoint_file_max(&s, &t.id);
    assert!(
        head - signed <= 6,
        "unsigned tail {} > the last writes",
        head - signed
    );
    // Doctor names the tail; the next start signs it.
    let (_, out, _) = s.cli_raw(&["doctor"], None);
    assert!(
        out.contains("unsigned audit tail") || head == signed,
        "{out}"
    );
    s.spawn().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(s.stop().success());
    assert_eq!(checkpoint_file_max(&s, &t.id), event_count(&s, "staart"));
}

/// Wait until the witness holds a checkpoint of the tenant's log at least `size` big.
async fn wait_witnessed(s: &Server, auth: &crate::support::Auth, size: i64) -> Value {
    for _ in 0..80 {
        let (st, v) = s.get("/api/v1/audit/checkpoint", auth).await;
        if st == StatusCode::OK
            && v["size"].as_i64().unwrap_or(0) >= size
            && !v["witnesses"].as_array().unwrap().is_empty()
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the witness never cosigned a checkpoint of size {size}");
}

/// The attack of issue 26: with write access to the database and the data directory, drop
/// the append-only trigger, delete the newest events, lower the head counter and remove the
/// checkpoints that covered them. The log alone then verifies; against the witness (or the
/// tenant's saved copy of the cosigned checkpoint) it does not.
async fn truncation_is_caught_by_the_witness(b: Backend) {
    let mut s = Server::start_with(
        b,
        &[
            ("KLUIS_AUDIT_CHECKPOINT_IDLE_SECS", "1"),
            ("KLUIS_AUDIT_CHECKPOINT_INTERVAL_SECS", "3600"),
        ],
    )
    .await;
    let log_vkey = s.cli(&["audit", "verifier-key"], None).trim().to_owned();
    let w = start_witness(&[&log_vkey]);
    assert!(s.stop().success());
    s.set_env(
        "KLUIS_AUDIT_WITNESSES",
        &format!("[\"{} {}\"]", w.url, w.vkey),
    );
    s.spawn().await;
    let t = tenant_fixture(&s, "terug").await;
    add_users(&s, &t.owner, "t", 8).await;
    let head = event_count(&s, "terug");
    let held = wait_witnessed(&s, &t.owner, head).await;
    // The tenant's auditors keep their own copy (API, AuditRead).
    let saved = s.dir.path().join("tenant-copy.json");
    std::fs::write(&saved, held.to_string()).unwrap();
    let (st, _) = s.get("/api/v1/audit/checkpoint", &t.member).await;
    assert!(
        st == StatusCode::FORBIDDEN || st == StatusCode::UNAUTHORIZED,
        "{st}"
    );
    assert!(s.stop().success());
    let ok = s.cli(
        &[
            "audit",
            "verify",
            "--tenant",
            "terug",
            "--witness",
            &w.url,
            "--witness-key",
            &w.vkey,
        ],
        None,
    );
    assert!(ok.contains("consistent with the checkpoint"), "{ok}");

    // The attack.
    let head = event_count(&s, "terug");
    let keep = head - 4;
    let tid = tenant_hex(&s, "terug");
    let is_pg = matches!(s.backend, Backend::Postgres { .. });
    let unlock = if is_pg {
        "ALTER TABLE audit_events DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
    } else {
        "DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete; DROP TRIGGER IF EXISTS audit_events_advance_head;"
    };
    let relock = if is_pg {
        "ALTER TABLE audit_events ENABLE TRIGGER USER; ALTER TABLE audit_checkpoints ENABLE TRIGGER USER;".to_owned()
    } else {
        SQLITE_ADVANCE_HEAD_TRIGGER
            .split_once("CREATE TRIGGER audit_events_advance_head")
            .map(|(_, t)| format!("CREATE TRIGGER audit_events_advance_head{t}"))
            .unwrap()
    };
    sql(
        &s,
        &format!(
            "{unlock} DELETE FROM audit_events WHERE tenant_id = {tid} AND seq >= {keep}; \
             UPDATE audit_heads SET size = {keep} WHERE tenant_id = {tid}; \
             DELETE FROM audit_checkpoints WHERE tenant_id = {tid} AND size > {keep}; {relock}"
        ),
    );
    let dir = s.dir.path().join("audit");
    let cps = dir.join(format!("{}.checkpoints", t.id));
    let kept: Vec<String> = std::fs::read_to_string(&cps)
        .unwrap()
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).unwrap()["size"]
                .as_i64()
                .unwrap()
                <= keep
        })
        .map(str::to_owned)
        .collect();
    std::fs::write(&cps, kept.join("\n") + "\n").unwrap();
    let _ = std::fs::remove_file(dir.join(format!("{}.cosigned", t.id)));

    // The log alone is fooled...
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "terug"], None);
    assert!(ok, "the truncated log should pass on its own: {out}{err}");
    // ... the witness and the tenant's copy are not.
    for source in [w.url.as_str(), saved.to_str().unwrap()] {
        let (ok, out, err) = s.cli_raw(
            &["audit", "verify", "--tenant", "terug", "--witness", source],
            None,
        );
        assert!(
            !ok && out.contains("rolled back"),
            "{source}: rollback not detected: {out}{err}"
        );
    }
}

/// Copies row `id` of `table` under `new_id` (with `extra` SET clauses), as an attacker
/// inserting a row directly would.
fn copy_row(table: &str, id_col: &str, id: &str, new_id: &str, extra: &str) -> String {
    format!(
        "CREATE TEMP TABLE cp AS SELECT * FROM {table} WHERE {id_col} = {id}; \
         UPDATE cp SET {id_col} = {new_id}{extra}; INSERT INTO {table} SELECT * FROM cp; DROP TABLE cp;"
    )
}

fn lit(s: &Server, uuid: &str) -> String {
    match s.backend {
        Backend::Sqlite => format!("x'{}'", uuid.replace('-', "")),
        Backend::Postgres { .. } => format!("'{uuid}'::uuid"),
    }
}

/// Direct SQL insert, update and delete on records, versions, the trash and users are each
/// reported by `kluis audit verify --state`, naming the table and the id; the untouched
/// database verifies clean.
async fn direct_sql_changes_are_named_by_state_verification(b: Backend) {
    let mut s = Server::start(b).await;
    let t = tenant_fixture(&s, "staat").await;
    let mut ids = Vec::new();
    for n in ["anna", "bram", "cees", "dirk"] {
        let (st, v) = s
            .post(
                "/api/v1/contacts",
                &t.key,
                json!({"fields": {"first_name": n, "last_name": "Staat", "email": format!("{n}@staat.test")}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    // A version (update) and a trash entry (delete).
    let (st, _, v) = s
        .call_with(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{}", ids[0]),
            &t.key,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"last_name": "Gewijzigd"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{}", ids[1]),
            &t.key,
            None,
        )
        .await;
    assert!(st.is_success(), "{st} {v}");
    assert!(s.stop().success());
    let verify = |s: &Server| {
        let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "staat", "--state"], None);
        (ok, format!("{out}{err}"))
    };
    let (ok, out) = verify(&s);
    assert!(
        ok && out.contains("state of 4 records, 1 versions"),
        "{out}"
    );

    let is_pg = matches!(s.backend, Backend::Postgres { .. });
    let tid = tenant_hex(&s, "staat");
    let bk = if is_pg { "attacker." } else { "" };
    if is_pg {
        sql(&s, "CREATE SCHEMA attacker;");
    }
    // FKs and triggers off for the attacker (PostgreSQL superuser; SQLite has them off here).
    let off = if is_pg {
        "SET session_replication_role = replica;"
    } else {
        ""
    };
    sql(
        &s,
        &format!(
            "CREATE TABLE {bk}r_bk AS SELECT * FROM crm_records; CREATE TABLE {bk}v_bk AS SELECT * FROM crm_versions; CREATE TABLE {bk}u_bk AS SELECT * FROM users;"
        ),
    );
    let restore = format!(
        "{off} DELETE FROM crm_records; INSERT INTO crm_records SELECT * FROM {bk}r_bk; \
         DELETE FROM crm_versions; INSERT INTO crm_versions SELECT * FROM {bk}v_bk; \
         DELETE FROM users; INSERT INTO users SELECT * FROM {bk}u_bk;"
    );
    let live = lit(&s, &ids[2]);
    let trash = lit(&s, &ids[1]);
    let versioned = lit(&s, &ids[0]);
    let member = lit(&s, &t.member_id);
    let new_id = uuid::Uuid::new_v4().to_string();
    let fresh = lit(&s, &new_id);
    let bidx = if is_pg { "'\\x00ff'::bytea" } else { "x'00ff'" };
    let cases: Vec<(&str, String, String)> = vec![
        (
            "record insert",
            copy_row("crm_records", "id", &live, &fresh, ""),
            format!("crm_records {new_id}: "),
        ),
        (
            "record update",
            format!(
                "UPDATE crm_records SET revision = revision + 1 WHERE tenant_id = {tid} AND id = {live};"
            ),
            format!("crm_records {}: differs", ids[2]),
        ),
        (
            "record delete",
            format!("DELETE FROM crm_records WHERE tenant_id = {tid} AND id = {live};"),
            format!("crm_records {}: is missing", ids[2]),
        ),
        (
            "version insert",
            format!(
                "CREATE TEMP TABLE cp AS SELECT * FROM crm_versions WHERE record_id = {versioned}; \
                 UPDATE cp SET revision = 7; INSERT INTO crm_versions SELECT * FROM cp; DROP TABLE cp;"
            ),
            format!("crm_versions {}: revision 7 has no audit event", ids[0]),
        ),
        (
            "version update",
            format!(
                "UPDATE crm_versions SET fields = (SELECT fields FROM crm_records WHERE tenant_id = {tid} AND id = {versioned}) WHERE tenant_id = {tid} AND record_id = {versioned};"
            ),
            format!("crm_versions {}: revision 1 does not decrypt", ids[0]),
        ),
        (
            "version delete",
            format!(
                "DELETE FROM crm_versions WHERE tenant_id = {tid} AND record_id = {versioned};"
            ),
            format!("crm_versions {}: revision 1 is missing", ids[0]),
        ),
        (
            "trash insert",
            copy_row("crm_records", "id", &trash, &fresh, ""),
            format!("crm_records (trash) {new_id}: "),
        ),
        (
            "trash update (restored behind Kluis's back)",
            format!(
                "UPDATE crm_records SET deleted_at = NULL, deleted_by = NULL WHERE tenant_id = {tid} AND id = {trash};"
            ),
            format!("crm_records {}: differs", ids[1]),
        ),
        (
            "trash delete (purged behind Kluis's back)",
            format!("DELETE FROM crm_records WHERE tenant_id = {tid} AND id = {trash};"),
            format!("crm_records {}: is missing", ids[1]),
        ),
        (
            "user insert",
            copy_row(
                "users",
                "id",
                &member,
                &fresh,
                &format!(", email_bidx = {bidx}"),
            ),
            format!("users {new_id}: "),
        ),
        (
            "user update (made owner)",
            format!("UPDATE users SET role = 'owner' WHERE tenant_id = {tid} AND id = {member};"),
            format!("users {}: differs", t.member_id),
        ),
        (
            "user delete",
            format!("DELETE FROM users WHERE tenant_id = {tid} AND id = {member};"),
            format!("users {}: is missing", t.member_id),
        ),
    ];
    for (name, attack, want) in cases {
        sql(&s, &format!("{off} {attack}"));
        let (ok, out) = verify(&s);
        assert!(
            !ok && out.contains(&want),
            "{name}: expected `{want}` in:\n{out}"
        );
        sql(&s, &restore);
        let (ok, out) = verify(&s);
        assert!(ok, "{name}: restore failed: {out}");
    }
    // Doctor runs the same check.
    sql(
        &s,
        &format!(
            "{off} UPDATE users SET role = 'owner' WHERE tenant_id = {tid} AND id = {member};"
        ),
    );
    let (ok, out, _) = s.cli_raw(&["doctor"], None);
    assert!(
        !ok && out.contains(&format!(
            "FAIL  staat: state verification (full): users {}",
            t.member_id
        )),
        "{out}"
    );
}
