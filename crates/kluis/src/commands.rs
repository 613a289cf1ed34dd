//! Admin commands: everything the setup link and the platform API can do, for scripts and
//! tests. They act as the console operator, who holds the database credentials anyway.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Subcommand;
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::users::NewUserInput;
use kluis_core::{Actor, Kluis, RequestContext, Role, Scope};

#[derive(Subcommand)]
pub enum TenantCmd {
    /// Create a tenant.
    Create {
        /// Short name in URLs and sign-in, e.g. `acme` (lowercase letters, digits, hyphens).
        #[arg(long)]
        slug: String,
        /// Display name, e.g. "Acme BV".
        #[arg(long)]
        name: String,
        /// Print the result as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant (all sign-ins, sessions and keys stop working).
    Suspend {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
    },
    /// Lift a suspension.
    Resume {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
    },
    /// Crypto-shred a tenant: destroy its keys so that all its data, in the database and in
    /// every backup, becomes unreadable. Irreversible.
    Shred {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// Repeat the tenant's slug to confirm.
        #[arg(long)]
        confirm: String,
    },
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user. Without --password-stdin the user is invited (no password yet).
    Create {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The user's email address (also the sign-in name).
        #[arg(long)]
        email: String,
        /// owner, admin, manager, member or read_only.
        #[arg(long, default_value = "member")]
        role: String,
        /// Display name; default: the part of the email before the @.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (never from the command line).
        #[arg(long)]
        password_stdin: bool,
        /// Print the created user as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the users of a tenant.
    List {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: signed out everywhere, cannot sign in (re-enable in the API or pages).
    Disable {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The user's email address.
        #[arg(long)]
        email: String,
        /// Print the updated user as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ApiKeyCmd {
    /// Create an API key; prints the secret once.
    Create {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// What the key is for, e.g. "website form".
        #[arg(long)]
        name: String,
        /// Comma-separated scopes, e.g. users:read,users:write
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Print the key (with its secret) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's API keys (never their secrets).
    List {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key: it stops working at once.
    Revoke {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The key's id (from `kluis apikey list`).
        #[arg(long)]
        id: uuid::Uuid,
    },
}

#[derive(Subcommand)]
pub enum PlatformKeyCmd {
    /// Create a platform key; prints the secret once.
    Create {
        /// What the key is for, e.g. "monitoring".
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum OperatorCmd {
    /// Create a support operator; prints the generated password and TOTP secret once (both are
    /// needed at every sign-in).
    Create {
        /// The operator's email address (their sign-in name).
        #[arg(long)]
        email: String,
        /// Their name, as organisations see it in requests and grants.
        #[arg(long)]
        name: String,
        /// Print JSON (id, email, password, totp_secret, otpauth_uri).
        #[arg(long)]
        json: bool,
    },
    /// Disable an operator and end their sessions (their grants stop working at once).
    Disable {
        /// The operator's email address.
        #[arg(long)]
        email: String,
    },
}

fn console_ctx() -> RequestContext {
    RequestContext {
        ip: "console".into(),
        user_agent: "kluis-cli".into(),
        request_id: String::new(),
    }
}

async fn tenant_actor(kluis: &Kluis, slug: &str) -> anyhow::Result<Actor> {
    let t = kluis
        .tenant_by_slug(&PlatformActor::console(), slug)
        .await
        .with_context(|| format!("no tenant `{slug}`"))?;
    Ok(Actor::console(t.id))
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", human(value));
    }
    Ok(())
}

pub async fn tenant(kluis: &Kluis, cmd: TenantCmd) -> anyhow::Result<()> {
    let op = PlatformActor::console();
    match cmd {
        TenantCmd::Create { slug, name, json } => {
            let t = kluis
                .create_tenant(&op, &console_ctx(), NewTenantInput { slug, name })
                .await?;
            print(json, &t, |t| {
                format!("created tenant {} ({})", t.slug, t.id)
            })
        }
        TenantCmd::List { json } => {
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let page = kluis
                    .list_tenants(&op, cursor.as_deref(), Some(200))
                    .await?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            print(json, &all, |all| {
                all.iter()
                    .map(|t| format!("{}\t{}\t{}\t{}", t.id, t.slug, t.status, t.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        TenantCmd::Suspend { tenant } | TenantCmd::Resume { tenant } if tenant.is_empty() => {
            bail!("--tenant is empty")
        }
        TenantCmd::Suspend { tenant } => {
            let t = kluis.tenant_by_slug(&op, &tenant).await?;
            kluis
                .set_tenant_suspended(&op, &console_ctx(), t.id, true)
                .await?;
            println!("suspended tenant {tenant}");
            Ok(())
        }
        TenantCmd::Shred { tenant, confirm } => {
            if tenant != confirm {
                bail!("--confirm must repeat the tenant slug exactly");
            }
            let t = kluis.tenant_by_slug(&op, &tenant).await?;
            kluis.shred_tenant(&op, &console_ctx(), t.id).await?;
            println!("shredded tenant {tenant}: its keys are destroyed and its data is unreadable");
            Ok(())
        }
        TenantCmd::Resume { tenant } => {
            let t = kluis.tenant_by_slug(&op, &tenant).await?;
            kluis
                .set_tenant_suspended(&op, &console_ctx(), t.id, false)
                .await?;
            println!("resumed tenant {tenant}");
            Ok(())
        }
    }
}

pub async fn user(kluis: &Kluis, cmd: UserCmd) -> anyhow::Result<()> {
    match cmd {
        UserCmd::Create {
            tenant,
            email,
            role,
            name,
            password_stdin,
            json,
        } => {
            let actor = tenant_actor(kluis, &tenant).await?;
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role `{role}` (owner, admin, manager, member, read_only)")
            })?;
            let password = if password_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                Some(s.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let display_name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let u = kluis
                .create_user(
                    &actor,
                    &console_ctx(),
                    NewUserInput {
                        email,
                        display_name,
                        role,
                        password,
                    },
                )
                .await?;
            print(json, &u, |u| format!("created user {} ({})", u.email, u.id))
        }
        UserCmd::List { tenant, json } => {
            let actor = tenant_actor(kluis, &tenant).await?;
            let all = all_users(kluis, &actor).await?;
            print(json, &all, |all| {
                all.iter()
                    .map(|u| {
                        format!(
                            "{}\t{}\t{}\t{}",
                            u.id,
                            u.email,
                            u.role.as_str(),
                            u.status.as_str()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        UserCmd::Disable {
            tenant,
            email,
            json,
        } => {
            let actor = tenant_actor(kluis, &tenant).await?;
            let wanted = kluis_core::Email::parse(&email)
                .map_err(|_| anyhow::anyhow!("`{email}` is not an email address"))?;
            let user = all_users(kluis, &actor)
                .await?
                .into_iter()
                .find(|u| {
                    kluis_core::Email::parse(&u.email).is_ok_and(|e| e.as_str() == wanted.as_str())
                })
                .with_context(|| format!("no user {email} in `{tenant}`"))?;
            let u = kluis
                .update_user(
                    &actor,
                    &console_ctx(),
                    user.id,
                    kluis_core::users::UserUpdate {
                        status: Some("disabled".into()),
                        ..Default::default()
                    },
                )
                .await?;
            print(json, &u, |u| format!("disabled {} ({})", u.email, u.id))
        }
    }
}

/// Every user of the tenant, page by page.
async fn all_users(kluis: &Kluis, actor: &Actor) -> anyhow::Result<Vec<kluis_core::users::User>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = kluis
            .list_users(actor, &console_ctx(), cursor.as_deref(), Some(200))
            .await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

pub async fn apikey(kluis: &Kluis, cmd: ApiKeyCmd) -> anyhow::Result<()> {
    match cmd {
        ApiKeyCmd::Create {
            tenant,
            name,
            scopes,
            json,
        } => {
            let actor = tenant_actor(kluis, &tenant).await?;
            let scopes = scopes
                .iter()
                .map(|s| {
                    serde_json::from_value::<Scope>(serde_json::Value::String(s.trim().to_owned()))
                        .with_context(|| format!("unknown scope `{s}`"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let k = kluis
                .create_api_key(
                    &actor,
                    &console_ctx(),
                    kluis_core::apikeys::NewApiKeyInput { name, scopes },
                )
                .await?;
            print(json, &k, |k| {
                format!(
                    "{}\n(created API key {} — the secret above is shown only now)",
                    k.secret, k.key.id
                )
            })
        }
        ApiKeyCmd::List { tenant, json } => {
            let actor = tenant_actor(kluis, &tenant).await?;
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let page = kluis
                    .list_api_keys(&actor, &console_ctx(), cursor.as_deref(), Some(200))
                    .await?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            print(json, &all, |all| {
                all.iter()
                    .map(|k| {
                        let scopes: Vec<String> = k
                            .scopes
                            .iter()
                            .filter_map(|s| serde_json::to_value(s).ok())
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect();
                        let state = if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        format!("{}\t{}\t{state}\t{}", k.id, k.name, scopes.join(","))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        ApiKeyCmd::Revoke { tenant, id } => {
            let actor = tenant_actor(kluis, &tenant).await?;
            kluis
                .revoke_api_key(&actor, &console_ctx(), kluis_core::ApiKeyId(id))
                .await?;
            println!("revoked API key {id}");
            Ok(())
        }
    }
}

pub async fn platform_key(kluis: &Kluis, cmd: PlatformKeyCmd) -> anyhow::Result<()> {
    match cmd {
        PlatformKeyCmd::Create { name } => {
            let secret = kluis
                .create_platform_key(&PlatformActor::console(), &console_ctx(), &name)
                .await?;
            println!("{secret}");
            Ok(())
        }
    }
}

pub async fn operator(kluis: &Kluis, cmd: OperatorCmd) -> anyhow::Result<()> {
    match cmd {
        OperatorCmd::Create { email, name, json } => {
            let o = kluis
                .create_operator(&PlatformActor::console(), &console_ctx(), &email, &name)
                .await?;
            if json {
                println!("{}", serde_json::to_string(&o)?);
            } else {
                println!("operator {} <{}>", o.id, o.email);
                println!("password: {}", o.password);
                println!("TOTP secret: {}", o.totp_secret);
                println!("{}", o.otpauth_uri);
            }
            Ok(())
        }
        OperatorCmd::Disable { email } => {
            kluis
                .disable_operator(&PlatformActor::console(), &console_ctx(), &email)
                .await?;
            println!("disabled operator {email}");
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Replace the local key-encryption key: re-wraps every tenant key under a new KEK (no data
    /// is re-encrypted). Resumable: if interrupted, run it again.
    RotateKek,
    /// New data-key version for a tenant, then re-encrypt its data online in batches.
    RotateDek {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// Rows per write transaction.
        #[arg(long, default_value_t = REENCRYPT_BATCH)]
        batch: i64,
    },
    /// Finish (or resume after a crash) re-encrypting a tenant's data under its current data key.
    Reencrypt {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// Rows per write transaction.
        #[arg(long, default_value_t = REENCRYPT_BATCH)]
        batch: i64,
    },
    /// Seal every password hash stored in the old plain form (from before hashes were sealed)
    /// and re-seal those under an older data key; all tenants, or one. Idempotent.
    SealPasswords {
        /// One tenant's slug (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Disable data-key versions below VERSION for decrypting records (after `reencrypt` has
    /// finished); a lower VERSION re-enables them.
    MinDecryptionVersion {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The lowest data-key version that may still decrypt.
        #[arg(long)]
        version: i64,
    },
    /// Create a non-extractable AES-256 key in a PKCS#11 token, e.g. an organisation's own key
    /// for `PUT /api/v1/keys/customer-key`. Needs no database; run it where the token is.
    HsmCreateKey {
        /// PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
        #[arg(long)]
        module: std::path::PathBuf,
        /// Label of the PKCS#11 token to create the key in.
        #[arg(long)]
        token_label: String,
        /// Label for the new key (how Kluis finds it later).
        #[arg(long)]
        key_label: String,
        /// File holding the token's user PIN (never given on the command line).
        #[arg(long)]
        pin_file: std::path::PathBuf,
    },
}

/// Before a CLI process exits: records the key uses it made (audit trail), then closes the
/// database.
pub async fn finish(kluis: &Kluis) {
    if let Err(e) = kluis.flush_key_uses().await {
        eprintln!("warning: key uses could not be recorded in the platform log: {e}");
    }
    // Every command that wrote audit events leaves them under a signed checkpoint.
    kluis
        .sign_pending_checkpoints(std::time::Duration::ZERO)
        .await;
    kluis.store().close().await;
}

/// `kluis keys hsm-create-key`: creates the key and prints how the token protects it.
pub fn hsm_create_key(
    module: &std::path::Path,
    token_label: &str,
    key_label: &str,
    pin_file: &std::path::Path,
) -> anyhow::Result<()> {
    use kluis_crypto::envelope::{Kms, Pkcs11Kms};
    let pin = std::fs::read_to_string(pin_file)
        .with_context(|| format!("reading {}", pin_file.display()))?;
    let kms = Pkcs11Kms::generate_key(
        module,
        token_label,
        secrecy::SecretString::from(pin.trim().to_owned()),
        key_label,
    )?;
    let p = kms.key_protection()?;
    println!(
        "{}",
        serde_json::json!({
            "key_id": kms.key_id(),
            "sensitive": p.sensitive,
            "extractable": p.extractable,
        })
    );
    Ok(())
}

/// Default rows per re-encryption batch. Each batch is one short write transaction with an
/// fsync at commit; at 2000 rows it holds the write lock for a few tens of milliseconds, and
/// the read-and-reseal phase between batches leaves the lock free for as long. Measured with
/// `cargo bench -p kluis-core --bench reencrypt` (1,000,000 users, SQLite, 2 shared cores):
/// 30-36 s at 2000 against 34.5 s at 500, and concurrent small writes waited less (p99 about
/// 1 s against 2.6 s: SQLite's busy handler polls, so longer lock-free gaps are found sooner).
const REENCRYPT_BATCH: i64 = 2000;

pub async fn keys(kluis: &Kluis, cmd: KeysCmd) -> anyhow::Result<()> {
    let (tenant, batch, rotate) = match cmd {
        KeysCmd::MinDecryptionVersion { tenant, version } => {
            let id = log_id(kluis, &tenant).await?;
            let r = kluis.set_min_decryption_version(id, version).await?;
            println!("{}", serde_json::to_string(&r)?);
            return Ok(());
        }
        KeysCmd::SealPasswords { tenant } => {
            let ids = match tenant {
                Some(t) => vec![(t.clone(), log_id(kluis, &t).await?)],
                None => {
                    let mut all = Vec::new();
                    let mut cursor = None;
                    loop {
                        let page = kluis
                            .list_tenants(&PlatformActor::console(), cursor.as_deref(), Some(200))
                            .await?;
                        all.extend(page.items.iter().map(|t| (t.slug.clone(), t.id)));
                        match page.next_cursor {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                    all
                }
            };
            let mut total = 0;
            for (slug, id) in ids {
                let n = kluis.seal_password_hashes(id).await?;
                eprintln!("  {slug}: {n} password hashes sealed");
                total += n;
            }
            println!("sealed {total} password hashes");
            return Ok(());
        }
        KeysCmd::RotateDek { tenant, batch } => (tenant, batch, true),
        KeysCmd::Reencrypt { tenant, batch } => (tenant, batch, false),
        KeysCmd::RotateKek | KeysCmd::HsmCreateKey { .. } => {
            bail!("handled before the database is opened")
        }
    };
    if !(1..=100_000).contains(&batch) {
        bail!("--batch must be between 1 and 100000");
    }
    let id = log_id(kluis, &tenant).await?;
    if rotate {
        let v = kluis.rotate_data_key(id).await?;
        // Give every server time to notice the new version before values appear under it.
        let wait = kluis_core::keys::CACHE_REVALIDATE + std::time::Duration::from_secs(1);
        eprintln!(
            "data key version {v} is now current for {tenant}; re-encrypting in {}s",
            wait.as_secs()
        );
        tokio::time::sleep(wait).await;
    }
    let p = kluis
        .reencrypt_tenant(id, batch, |p| {
            eprintln!(
                "  {} rows checked, {} values re-encrypted",
                p.rows_seen, p.values_resealed
            )
        })
        .await?;
    println!(
        "re-encrypted {} values of {tenant} under data key version {}",
        p.values_resealed, p.current_version
    );
    Ok(())
}

pub async fn rotate_kek(kluis: &Kluis, kek_path: &std::path::Path) -> anyhow::Result<()> {
    let op = PlatformActor::console();
    let mut cursor = None;
    let (mut tenants, mut rewrapped) = (0u64, 0u64);
    // The platform log's own keys first.
    rewrapped += kluis
        .rewrap_tenant_keys(kluis_core::TenantId::PLATFORM)
        .await?;
    loop {
        let page = kluis
            .list_tenants(&op, cursor.as_deref(), Some(200))
            .await?;
        for t in &page.items {
            rewrapped += kluis.rewrap_tenant_keys(t.id).await?;
            tenants += 1;
            eprintln!(
                "  re-wrapped keys of {} ({tenants} tenants, {rewrapped} keys so far)",
                t.slug
            );
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // Every key is under the new KEK: make it the current one. The old KEK is kept (renamed) so
    // backups taken before the rotation stay restorable; delete it when they have expired.
    let next = crate::serve::next_kek_path(kek_path);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let retired = kek_path.with_extension(format!("key.retired-{stamp}"));
    // Copy first (mode 0600 is preserved), then one atomic rename: a crash at any point leaves
    // a readable state, and running the command again finishes the job.
    std::fs::copy(kek_path, &retired).with_context(|| format!("keeping {}", retired.display()))?;
    std::fs::rename(&next, kek_path).with_context(|| format!("activating {}", next.display()))?;
    println!(
        "rotated the key-encryption key: {rewrapped} keys of {tenants} tenants re-wrapped; old KEK kept as {}",
        retired.display()
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Verify every log (or one tenant's): sequence, leaf hashes, and the signed checkpoints
    /// kept outside the database. Exits non-zero and names the first broken event.
    Verify {
        /// One tenant's slug (or `platform`); default: every log.
        #[arg(long)]
        tenant: Option<String>,
        /// Also compare each log with what a witness holds: its URL (`kluis witness serve`),
        /// or a FILE with a saved checkpoint (a signed note, or the JSON of
        /// GET /api/v1/audit/checkpoint). Fails on rollback (the log is shorter) or fork
        /// (another root at that size). Repeat for several.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// The witness's verifier key (cosignature/v1): its cosignature must then be on what
        /// it holds, so a forged state file or a stand-in witness is refused.
        #[arg(long)]
        witness_key: Option<String>,
        /// Also prove that every live record, version, trash entry and user is what the
        /// latest audit event for it says, and that none exists without one.
        #[arg(long)]
        state: bool,
    },
    /// Sign a checkpoint of every log that grew (the server also does this periodically).
    Checkpoint,
    /// Inclusion proof of one event, or consistency proof between two tree sizes (JSON).
    Prove {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// Sequence number of the event to prove (inclusion proof).
        #[arg(long, conflicts_with = "from")]
        seq: Option<i64>,
        /// Older tree size (consistency proof from FROM to TO).
        #[arg(long, requires = "to")]
        from: Option<i64>,
        /// Tree size the proof is against.
        #[arg(long)]
        to: Option<i64>,
    },
    /// Print events as JSON Lines (filters as in the API).
    Events {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// Only events with this action, e.g. `auth.login`.
        #[arg(long)]
        action: Option<String>,
        /// Only events by this actor, e.g. `user:<id>` or `apikey:<id>`.
        #[arg(long)]
        actor: Option<String>,
        /// Only events from this IP address (matched through its blind index).
        #[arg(long)]
        ip: Option<String>,
        /// RFC 3339 lower bound (inclusive), e.g. 2026-11-25T00:00:00Z.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 upper bound (exclusive).
        #[arg(long)]
        to: Option<String>,
    },
    /// Print the checkpoint verifier key (C2SP vkey).
    VerifierKey,
    /// Verify downloaded checkpoints without trusting the server or touching any database: every
    /// signature against the verifier key YOU pinned, sizes that never shrink, and optionally an
    /// inclusion proof (from `kluis audit prove`) against one of those checkpoints.
    VerifyCheckpoints {
        /// The verifier key (C2SP vkey) you obtained out of band.
        #[arg(long)]
        vkey: String,
        /// JSON from GET /api/v1/audit/checkpoints.
        #[arg(long)]
        checkpoints: std::path::PathBuf,
        /// JSON from `kluis audit prove --seq N --to SIZE`.
        #[arg(long)]
        proof: Option<std::path::PathBuf>,
    },
    /// Apply retention: remove events older than the retention period (only as far as a signed
    /// checkpoint reaches) and record a signed truncation marker. The server does this daily.
    Expire {
        /// Override the configured retention, in days.
        #[arg(long)]
        days: Option<u64>,
    },
}

/// Every log the platform has: the platform log and each tenant's.
async fn all_logs(kluis: &Kluis) -> anyhow::Result<Vec<(String, kluis_core::TenantId)>> {
    let op = PlatformActor::console();
    let mut out = vec![("platform".to_owned(), kluis_core::TenantId::PLATFORM)];
    let mut cursor = None;
    loop {
        let page = kluis
            .list_tenants(&op, cursor.as_deref(), Some(200))
            .await?;
        out.extend(page.items.iter().map(|t| (t.slug.clone(), t.id)));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

async fn log_id(kluis: &Kluis, slug: &str) -> anyhow::Result<kluis_core::TenantId> {
    if slug == "platform" {
        return Ok(kluis_core::TenantId::PLATFORM);
    }
    Ok(kluis
        .tenant_by_slug(&PlatformActor::console(), slug)
        .await
        .with_context(|| format!("no tenant `{slug}`"))?
        .id)
}

pub async fn audit(kluis: &Kluis, cmd: AuditCmd, retention_days: u64) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Expire { days } => {
            let days = days.unwrap_or(retention_days);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let cutoff = i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
                - i64::try_from(days)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(86_400_000);
            for (name, id) in all_logs(kluis).await? {
                match kluis.expire_log(id, cutoff).await? {
                    Some(point) => {
                        println!("{name}: events before {point} expired (older than {days} days)")
                    }
                    None => println!("{name}: nothing to expire"),
                }
            }
            Ok(())
        }
        AuditCmd::Verify {
            tenant,
            witnesses,
            witness_key,
            state,
        } => {
            let logs = match tenant {
                Some(t) => vec![(t.clone(), log_id(kluis, &t).await?)],
                None => all_logs(kluis).await?,
            };
            let witness_key = witness_key
                .map(|k| kluis_crypto::checkpoint::CosignatureVerifier::from_vkey(k.trim()))
                .transpose()
                .map_err(|_| {
                    anyhow::anyhow!("--witness-key: not a witness key (cosignature/v1)")
                })?;
            let mut broken = false;
            for (name, id) in logs {
                let r = kluis.verify_log(id).await?;
                match &r.first_broken {
                    None => println!(
                        "ok      {name}: {} events, {} checkpoints verified",
                        r.events, r.checkpoints_checked
                    ),
                    Some((seq, why)) => {
                        broken = true;
                        println!("BROKEN  {name}: first broken event {seq}: {why}");
                    }
                }
                let origin = format!("kluis.audit/{}", id.0);
                for w in &witnesses {
                    let held = crate::witness::fetch_held(w, &origin).await?;
                    let Some(note) = held else {
                        continue; // the witness holds nothing of this log
                    };
                    if let Some(k) = &witness_key
                        && kluis_crypto::checkpoint::verify_cosignature(&note, k).is_err()
                    {
                        broken = true;
                        println!(
                            "BROKEN  {name}: what {w} holds carries no valid cosignature of the given witness key"
                        );
                        continue;
                    }
                    match kluis.check_external_checkpoint(id, &note).await? {
                        Ok(size) => println!(
                            "ok      {name}: consistent with the checkpoint at {size} held by {w}"
                        ),
                        Err(why) => {
                            broken = true;
                            println!("BROKEN  {name}: {why} (held by {w})");
                        }
                    }
                }
                if state {
                    let r = kluis.verify_state(id, None).await?;
                    for p in &r.problems {
                        broken = true;
                        println!("BROKEN  {name}: state: {p}");
                    }
                    if r.problems.is_empty() {
                        println!(
                            "ok      {name}: state of {} records, {} versions, {} users matches the log",
                            r.records, r.versions, r.users
                        );
                    }
                }
            }
            if broken {
                bail!("audit verification failed");
            }
            Ok(())
        }
        AuditCmd::Checkpoint => {
            for (name, id) in all_logs(kluis).await? {
                if let Some(note) = kluis.checkpoint_log(id).await? {
                    println!("{name}:\n{note}");
                }
            }
            Ok(())
        }
        AuditCmd::Prove {
            tenant,
            seq,
            from,
            to,
        } => {
            let id = log_id(kluis, &tenant).await?;
            let proof = match (seq, from, to) {
                (Some(seq), _, to) => kluis.prove_inclusion(id, seq, to).await?,
                (None, Some(from), Some(to)) => kluis.prove_consistency(id, from, to).await?,
                _ => bail!("give --seq N (inclusion) or --from M --to N (consistency)"),
            };
            println!("{}", serde_json::to_string_pretty(&proof)?);
            Ok(())
        }
        AuditCmd::Events {
            tenant,
            action,
            actor,
            ip,
            from,
            to,
        } => {
            let id = log_id(kluis, &tenant).await?;
            let mut q = kluis_core::audit::AuditQuery {
                action,
                actor,
                ip,
                from,
                to,
                limit: Some(200),
                ..Default::default()
            };
            loop {
                let page = kluis.audit_log_page(id, &q).await?;
                for e in &page.items {
                    println!("{}", serde_json::to_string(e)?);
                }
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => return Ok(()),
                }
            }
        }
        AuditCmd::VerifyCheckpoints { .. } => bail!("handled without a database"),
        AuditCmd::VerifierKey => {
            println!("{}", kluis.audit_verifier_key()?);
            Ok(())
        }
    }
}

/// `kluis doctor`: checks that can be made from the configuration and the database. Each line
/// says PASS, WARN or FAIL; any FAIL makes the command fail.
pub async fn doctor(kluis: &Kluis, cfg: &crate::config::Config) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut failed = 0;
    let mut line = |ok: Option<bool>, what: String| {
        let tag = match ok {
            Some(true) => "PASS",
            Some(false) => {
                failed += 1;
                "FAIL"
            }
            None => "WARN",
        };
        println!("{tag}  {what}");
    };
    // Key-encryption key.
    if cfg.kms == "pkcs11" {
        line(
            Some(true),
            "key-encryption key is held in a PKCS#11 token (non-extractable)".into(),
        );
    } else {
        let mode = std::fs::metadata(cfg.kek_path())
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o777);
        line(
            Some(mode & 0o077 == 0),
            format!(
                "local key-encryption key {} has mode {mode:o}",
                cfg.kek_path().display()
            ),
        );
        line(
            None,
            "the key-encryption key is a local file; an HSM (kms = \"pkcs11\") is stronger".into(),
        );
    }
    // TLS.
    line(
        Some(true),
        "TLS 1.2 and 1.3 only, AEAD cipher suites only (rustls)".into(),
    );
    if cfg.tls_cert.is_none() {
        line(
            None,
            "serving a self-signed certificate; configure tls_cert/tls_key for production".into(),
        );
    }
    // Data-key age, per log.
    let max = i64::try_from(cfg.key_max_age_days).unwrap_or(i64::MAX);
    for (name, id) in all_logs(kluis).await? {
        match kluis.data_key_age(id).await? {
            Some(age) => line(
                Some(age.age_days <= max),
                format!(
                    "{name}: data key v{} is {} days old (policy {max} days; rotate with `kluis keys rotate-dek --tenant {name}`), {} values sealed",
                    age.version, age.age_days, age.sealed_count
                ),
            ),
            None => line(
                Some(false),
                format!("{name}: no data key (shredded or never provisioned)"),
            ),
        }
    }
    // The audit trail: how much of each log no signed checkpoint covers yet, and whether the
    // database state is what the log says (state verification, as configured).
    let idle_ms = i64::try_from(cfg.audit_checkpoint_idle_secs * 1000).unwrap_or(i64::MAX);
    let sample = match cfg.doctor_state_check.as_str() {
        "sample" => Some(Some(cfg.doctor_state_sample)),
        "full" => Some(None),
        _ => None,
    };
    for (name, id) in all_logs(kluis).await? {
        let tail = kluis.unsigned_tail(id).await?;
        match tail.oldest_age_ms {
            None => line(
                Some(true),
                format!("{name}: every audit event is under a signed checkpoint"),
            ),
            Some(age) => line(
                // A running server signs within the idle period; far older means it is not
                // signing (or not running: the next start signs).
                if age > idle_ms * 5 + 60_000 {
                    None
                } else {
                    Some(true)
                },
                format!(
                    "{name}: unsigned audit tail of {} events, oldest {:.1} s old (signed within {} s while the server runs)",
                    tail.events,
                    age as f64 / 1000.0,
                    cfg.audit_checkpoint_idle_secs
                ),
            ),
        }
        if let Some(sample) = sample {
            let r = kluis.verify_state(id, sample).await?;
            let what = if r.sampled { "sampled" } else { "full" };
            if r.problems.is_empty() {
                line(
                    Some(true),
                    format!(
                        "{name}: state verification ({what}): {} records, {} versions, {} users match the audit log ({} legacy, {} changed meanwhile)",
                        r.records, r.versions, r.users, r.legacy, r.concurrent
                    ),
                );
            }
            for p in r.problems.iter().take(20) {
                line(
                    Some(false),
                    format!("{name}: state verification ({what}): {p}"),
                );
            }
            if r.problems.len() > 20 {
                line(
                    Some(false),
                    format!(
                        "{name}: ... and {} more (run `kluis audit verify --state`)",
                        r.problems.len() - 20
                    ),
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(())
}

/// `kluis audit verify-checkpoints`: pure verification, no server, no database.
pub fn verify_checkpoints_offline(
    vkey: &str,
    checkpoints: &std::path::Path,
    proof: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use kluis_crypto::merkle;
    let list: serde_json::Value = serde_json::from_slice(&std::fs::read(checkpoints)?)
        .context("checkpoints file is not JSON")?;
    let notes: Vec<String> = list["checkpoints"]
        .as_array()
        .context("expected {\"checkpoints\": [...]} as served by /api/v1/audit/checkpoints")?
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    let verified = kluis_core::audit::verify_checkpoint_notes(vkey, &notes)?;
    let mut prev = 0;
    for (size, _) in &verified {
        if *size < prev {
            bail!("checkpoint sizes went backwards ({prev} then {size}): the log was rewritten");
        }
        prev = *size;
    }
    println!(
        "ok: {} checkpoints, all signed by {}",
        verified.len(),
        vkey.split('+').next().unwrap_or_default()
    );
    if let Some(p) = proof {
        let proof: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p)?).context("proof file is not JSON")?;
        let hex32 = |v: &serde_json::Value| -> anyhow::Result<[u8; 32]> {
            let bytes = hex::decode(v.as_str().context("expected a hex string")?)?;
            bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("expected 32 bytes"))
        };
        let size = proof["tree_size"].as_u64().context("tree_size")?;
        let index = proof["index"].as_u64().context("index")?;
        let (_, root) = verified
            .iter()
            .find(|(s, _)| *s == size)
            .context("no verified checkpoint has the proof's tree size")?;
        let path: Vec<[u8; 32]> = proof["proof"]
            .as_array()
            .context("proof")?
            .iter()
            .map(&hex32)
            .collect::<anyhow::Result<_>>()?;
        merkle::verify_inclusion(&hex32(&proof["leaf_hash"])?, index, size, &path, root)
            .map_err(|_| anyhow::anyhow!("the event is NOT in the signed log"))?;
        println!("ok: event {index} is included in the signed checkpoint of size {size}");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The tenant's slug.
    #[arg(long)]
    tenant: String,
    /// `contact` or `company`.
    #[arg(long = "type", value_parser = ["contact", "company"])]
    object_type: String,
    /// The CSV file.
    file: std::path::PathBuf,
    /// `all_or_nothing` (default) or `continue_on_error`.
    #[arg(long, default_value = "all_or_nothing", value_parser = ["all_or_nothing", "continue_on_error"])]
    mode: String,
    /// Rows whose email (contacts) or domain (companies) exists: `error`, `skip` or `update`.
    #[arg(long, default_value = "error", value_parser = ["error", "skip", "update"])]
    on_duplicate: String,
    /// Check everything, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// `,`, `;`, `tab` or `auto`.
    #[arg(long)]
    delimiter: Option<String>,
    /// `utf-8` or `windows-1252`.
    #[arg(long, default_value = "utf-8", value_parser = ["utf-8", "windows-1252"])]
    encoding: String,
    /// JSON object: column header -> field, `""` to ignore.
    #[arg(long)]
    mapping: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `kluis import`: the same import as `POST /api/v1/imports`, audited as the console operator,
/// reading the file directly (no upload limit), with progress on stderr every two seconds.
pub async fn import(kluis: &Kluis, a: ImportArgs) -> anyhow::Result<()> {
    use kluis_core::crm::import::ImportOptions;
    let actor = tenant_actor(kluis, &a.tenant).await?;
    let opts: ImportOptions = serde_json::from_value(serde_json::json!({
        "object_type": a.object_type,
        "mode": a.mode,
        "on_duplicate": a.on_duplicate,
        "dry_run": a.dry_run,
        "delimiter": a.delimiter,
        "encoding": a.encoding,
        "mapping": a.mapping.as_deref().map(serde_json::from_str::<serde_json::Value>).transpose()
            .context("--mapping must be a JSON object")?,
    }))
    .context("import options")?;
    let file = std::fs::File::open(&a.file)
        .with_context(|| format!("cannot open {}", a.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = {
        let kluis = kluis.clone();
        let actor = actor.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                if let Ok(list) = kluis.list_imports(&actor)
                    && let Some(r) = list.iter().find(|r| r.finished_at.is_none())
                {
                    eprintln!(
                        "kluis import: {} rows read ({} created, {} updated, {} skipped, {} with errors) of a {} MB file",
                        r.rows,
                        r.created,
                        r.updated,
                        r.skipped,
                        r.failed,
                        size / 1_000_000
                    );
                }
            }
        })
    };
    let result = kluis
        .import_records(
            &actor,
            &console_ctx(),
            opts,
            Box::new(std::io::BufReader::new(file)),
        )
        .await;
    progress.abort();
    let report = result?;
    print(a.json, &report, |r| {
        let mut out = format!(
            "{:?}: {} rows, {} created, {} updated, {} skipped, {} with errors, {} written",
            r.status, r.rows, r.created, r.updated, r.skipped, r.failed, r.committed
        );
        for e in &r.errors {
            out.push_str(&format!(
                "\n  row {}{}: {} ({})",
                e.row,
                e.column
                    .as_deref()
                    .map(|c| format!(", column {c}"))
                    .unwrap_or_default(),
                e.message,
                e.code
            ));
        }
        if let Some(f) = &r.fatal {
            out.push_str(&format!(
                "\n  stopped at row {}: {} ({})",
                f.row, f.message, f.code
            ));
        }
        out
    })?;
    use kluis_core::crm::import::ImportStatus;
    match report.status {
        ImportStatus::Committed | ImportStatus::DryRun | ImportStatus::Running => Ok(()),
        ImportStatus::RolledBack => anyhow::bail!("rows have errors: nothing was imported"),
        ImportStatus::Failed => anyhow::bail!("the import stopped early"),
    }
}
