//! BENCHMARK SUPPORT ONLY — not an API. Hidden from the docs, used by `benches/audit.rs`.
//!
//! Nothing here is reachable from the HTTP layer or the CLI. It exposes just enough of the
//! crate-private audit write path (`Kluis::audit`) to (a) build large logs quickly through the
//! real append code, (b) time one small write with and without its audit event, and (c) time
//! the stages `Kluis::verify_log` goes through, one at a time, so the bench can show where the
//! verification time goes. Do not call these functions from production code.

use std::time::{Duration, Instant};

use crate::db::rows::{AuditEventRow, AuditFilter};
use kluis_crypto::checkpoint;
use kluis_crypto::merkle::{self, Hash};
use kluis_crypto::password::PasswordPolicy;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::{Event, actor_label};
use crate::{Actor, Error, Kluis, RequestContext, Result, TenantId};

/// A request context as a browser request would have one (the audit event seals these).
/// A size or count from the environment (`1_000_000` allowed), or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

pub fn bench_context() -> RequestContext {
    RequestContext {
        ip: "203.0.113.7".into(),
        user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0".into(),
        request_id: "01JBENCH0000000000000000000".into(),
    }
}

/// The baseline password policy as stored JSON (the payload of the measured small write).
pub fn baseline_policy_json() -> Result<String> {
    serde_json::to_string(&PasswordPolicy::BASELINE)
        .map_err(|_| Error::internal("serialise policy"))
}

/// A typical event: a user's display name changed.
fn synthetic_event(i: u64) -> Event<'static> {
    Event::ok("user.update", "user", Uuid::from_u64_pair(0x0bec_4000, i)).with(json!({
        "changes": {"display_name": {"old": format!("User {i}"), "new": format!("User {i} (renamed)")}}
    }))
}

/// Appends `n` synthetic events to `tenant`'s log through the real `Kluis::audit`, `per_tx`
/// events per write transaction.
pub async fn append_events(kluis: &Kluis, tenant: TenantId, n: u64, per_tx: u64) -> Result<()> {
    let ctx = bench_context();
    let per_tx = per_tx.max(1);
    let mut done = 0;
    while done < n {
        let m = per_tx.min(n - done);
        let mut tx = kluis.store.tenant(tenant).begin().await?;
        let keys = kluis.keys(&mut tx).await?;
        for i in done..done + m {
            kluis
                .audit(&mut tx, &keys, "console", &ctx, synthetic_event(i))
                .await?;
        }
        tx.commit().await?;
        done += m;
    }
    Ok(())
}

/// The measured small write without an audit event: the password-policy upsert alone, in its
/// own write transaction (`BEGIN IMMEDIATE` … `COMMIT`, fsync on SQLite).
pub async fn write_without_audit(kluis: &Kluis, tenant: TenantId, policy_json: &str) -> Result<()> {
    let mut tx = kluis.store.tenant(tenant).begin().await?;
    tx.put_password_policy(policy_json, kluis.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// The same write plus the audit event `set_password_policy` records (old and new policy,
/// request context), in the same transaction.
pub async fn write_with_audit(
    kluis: &Kluis,
    actor: &Actor,
    ctx: &RequestContext,
    policy_json: &str,
) -> Result<()> {
    let mut tx = kluis.store.tenant(actor.tenant()).begin().await?;
    tx.put_password_policy(policy_json, kluis.now()).await?;
    let keys = kluis.keys(&mut tx).await?;
    let policy: Value =
        serde_json::from_str(policy_json).map_err(|_| Error::internal("policy json"))?;
    let ev = Event {
        action: "settings.password_policy.update",
        success: true,
        object_type: Some("settings"),
        object_id: Some("password_policy".into()),
        details: json!({"old": policy, "new": policy}),
    };
    kluis
        .audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Time of each step of one audited write, in order. Without the audit event only `begin`,
/// `write` and `commit` are non-zero.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteProfile {
    /// `BEGIN IMMEDIATE` (taking the write lock).
    pub begin: Duration,
    /// The recorded write itself (policy upsert).
    pub write: Duration,
    /// `Kluis::keys` (cached) + building the details.
    pub prepare: Duration,
    /// `audit_next_seq` (PostgreSQL: upsert on `audit_heads`; SQLite: the head is known
    /// under the write lock, from the cache or one read).
    pub next_seq: Duration,
    /// Canonical leaf JSON + SHA-256, details JSON + AES-GCM seal, IP blind index (CPU only).
    pub crypto: Duration,
    /// `insert_audit_event` (SQLite: one clustered b-tree, the head advanced by its trigger,
    /// and the seal count in the same round trip).
    pub insert: Duration,
    /// `add_sealed_count` (in memory; written with the insert or at commit).
    pub sealed_count: Duration,
    /// `COMMIT` (WAL append + fsync).
    pub commit: Duration,
}

impl std::ops::AddAssign for WriteProfile {
    fn add_assign(&mut self, o: Self) {
        self.begin += o.begin;
        self.write += o.write;
        self.prepare += o.prepare;
        self.next_seq += o.next_seq;
        self.crypto += o.crypto;
        self.insert += o.insert;
        self.sealed_count += o.sealed_count;
        self.commit += o.commit;
    }
}

/// The write of [`write_with_audit`] (or, with `with_audit` false, [`write_without_audit`])
/// with each step timed. The audit steps replay `Kluis::audit` statement by statement (same
/// store calls, same sealing and hashing; minus the `tracing` line), so the figures show
/// which part of the audit event costs what.
pub async fn profile_write(
    kluis: &Kluis,
    actor: &Actor,
    ctx: &RequestContext,
    policy_json: &str,
    with_audit: bool,
) -> Result<WriteProfile> {
    let mut p = WriteProfile::default();
    let mut t = Instant::now();
    let mut lap = |d: &mut Duration| {
        *d = t.elapsed();
        t = Instant::now();
    };
    let mut tx = kluis.store.tenant(actor.tenant()).begin().await?;
    lap(&mut p.begin);
    tx.put_password_policy(policy_json, kluis.now()).await?;
    lap(&mut p.write);
    if with_audit {
        let tenant = actor.tenant();
        let keys = kluis.keys(&mut tx).await?;
        let policy: Value =
            serde_json::from_str(policy_json).map_err(|_| Error::internal("policy json"))?;
        let mut details = json!({"old": policy, "new": policy});
        if let Value::Object(m) = &mut details {
            m.insert("ip".into(), json!(ctx.ip));
            m.insert("user_agent".into(), json!(ctx.user_agent));
            m.insert("request_id".into(), json!(ctx.request_id));
        }
        let label = actor_label(actor);
        lap(&mut p.prepare);
        let seq = tx.audit_next_seq().await?;
        lap(&mut p.next_seq);
        let at = kluis.now();
        let leaf_bytes = serde_json::to_vec(&LeafV1 {
            v: 1,
            tenant: tenant.0,
            seq,
            at,
            actor: &label,
            action: "settings.password_policy.update",
            outcome: "success",
            object_type: Some("settings"),
            object_id: Some("password_policy"),
            details: &details,
        })
        .map_err(|_| Error::internal("leaf encoding"))?;
        let leaf = merkle::leaf_hash(&leaf_bytes);
        let plain = serde_json::to_vec(&details).map_err(|_| Error::internal("details"))?;
        let sealed = keys.seal(
            "audit_events",
            "details",
            Uuid::from_u64_pair(0, seq as u64),
            &plain,
        )?;
        let ip_bidx = keys.blind("audit_events.ip", &ctx.ip);
        lap(&mut p.crypto);
        // As `Kluis::audit`: counted before the insert (SQLite sends the count with it).
        kluis.count_sealed(&mut tx, &keys, 1).await?;
        lap(&mut p.sealed_count);
        tx.insert_audit_event(&crate::db::rows::NewAuditEvent {
            seq,
            at,
            actor: &label,
            action: "settings.password_policy.update",
            outcome: "success",
            object_type: Some("settings"),
            object_id: Some("password_policy"),
            ip_bidx: Some(&ip_bidx),
            details: &sealed,
            leaf_hash: &leaf,
        })
        .await?;
        lap(&mut p.insert);
    }
    tx.commit().await?;
    lap(&mut p.commit);
    Ok(p)
}

/// The incremental tree head now lives in `kluis_crypto::merkle::Frontier`.
pub type MerkleFrontier = merkle::Frontier;

fn origin(tenant: TenantId) -> String {
    format!("kluis.audit/{}", tenant.0)
}

struct CountVisitor(usize);

impl crate::db::AuditVisitor for CountVisitor {
    fn visit(&mut self, e: crate::db::rows::AuditEventRef<'_>) -> bool {
        self.0 += std::hint::black_box(e.details.len()).min(1);
        true
    }
}

struct PrefixVisitor {
    head: Vec<u8>,
    buf: Vec<u8>,
    ok: bool,
}

impl crate::db::AuditVisitor for PrefixVisitor {
    fn visit(&mut self, e: crate::db::rows::AuditEventRef<'_>) -> bool {
        if self.buf.len() > 1 << 20 {
            self.buf.clear();
        }
        self.ok &= crate::audit::leaf_prefix(&mut self.buf, &self.head, &e).is_ok();
        self.buf.extend_from_slice(e.details);
        true
    }
}

async fn all_rows(kluis: &Kluis, tenant: TenantId) -> Result<(Vec<AuditEventRow>, Vec<Duration>)> {
    let mut tx = kluis.store.tenant(tenant).begin_read().await?;
    let mut rows = Vec::new();
    let mut batch_times = Vec::new();
    let mut after = None;
    loop {
        let t = Instant::now();
        let batch = tx
            .audit_events(after, 5000, &AuditFilter::default())
            .await?;
        batch_times.push(t.elapsed());
        let Some(last) = batch.last() else { break };
        after = Some(last.seq);
        rows.extend(batch);
    }
    Ok((rows, batch_times))
}

fn hash_of(r: &AuditEventRow) -> Result<Hash> {
    <Hash>::try_from(r.leaf_hash.as_slice()).map_err(|_| Error::internal("leaf hash length"))
}

/// Signs a checkpoint after every `every` events of the log (and at its end), as the server's
/// checkpoint loop (`audit_checkpoint_every_events`) would have while the log grew: the notes
/// go to the database and to the external checkpoint file `verify_log` checks. Uses the stored
/// leaf hashes and a [`MerkleFrontier`], so it costs one pass over the log. Returns how many.
pub async fn sign_checkpoints_every(kluis: &Kluis, tenant: TenantId, every: u64) -> Result<usize> {
    let signing = kluis
        .audit_signing
        .clone()
        .ok_or_else(|| Error::internal("no audit signing configured"))?;
    let (rows, _) = all_rows(kluis, tenant).await?;
    let every = every.max(1);
    let now = kluis.now();
    let mut frontier = MerkleFrontier::default();
    let mut notes = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        frontier.push(hash_of(r)?);
        let size = i as u64 + 1;
        if size.is_multiple_of(every) || size == rows.len() as u64 {
            let root = frontier.root();
            let note = signing.signer.sign(&origin(tenant), size, &root)?;
            notes.push((size as i64, root, note));
        }
    }
    let mut tx = kluis.store.tenant(tenant).begin().await?;
    let mut file = String::new();
    for (size, root, note) in &notes {
        tx.insert_audit_checkpoint(*size, root, note, now).await?;
        let line = serde_json::to_string(&json!({"size": size, "note": note}))
            .map_err(|_| Error::internal("checkpoint encoding"))?;
        file.push_str(&line);
        file.push('\n');
    }
    {
        use std::io::Write;
        let path = signing.dir.join(format!("{}.checkpoints", tenant.0));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::internal(format!("checkpoint file: {e}")))?;
        f.write_all(file.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::internal(format!("checkpoint file: {e}")))?;
    }
    tx.commit().await?;
    Ok(notes.len())
}

use crate::audit::LeafV1;

/// Where `verify_log`'s time goes: each stage run on its own over the whole log.
#[derive(Debug, Default)]
pub struct VerifyBreakdown {
    pub events: usize,
    /// Reading all rows as `verify_log` does (batches of 5000, keyset on `seq`).
    pub fetch: Duration,
    pub batches: usize,
    pub first_batch: Duration,
    pub last_full_batch: Duration,
    /// `verify_log`'s scan: one statement on the direct SQLite read connection, rows visited
    /// in place (no per-row allocation), nothing else done.
    pub scan_direct: Duration,
    /// The same scan plus the leaf prefix encoding `verify_log`'s first stage does per row.
    pub scan_prefix: Duration,
    /// AES-256-GCM open of every event's details.
    pub decrypt: Duration,
    /// `serde_json::from_slice::<Value>` of the details.
    pub parse: Duration,
    /// Canonical leaf encoding (`serde_json::to_vec` of the leaf struct).
    pub encode: Duration,
    /// Alternative encoding: the leaf struct with `details: null`, then the decrypted details
    /// bytes spliced in (they are already canonical: `audit` seals `serde_json::to_vec` of the
    /// same sorted map), so no parse and no re-encode of the details.
    pub encode_spliced: Duration,
    /// Events whose spliced encoding hashes differently from the stored leaf hash.
    pub spliced_mismatches: usize,
    /// SHA-256 leaf hashes of the encodings.
    pub leaf_hash: Duration,
    /// Total bytes hashed for the leaves.
    pub leaf_bytes: usize,
    /// One `merkle::root` over all leaf hashes.
    pub root_once: Duration,
    /// Checkpoints in the external file.
    pub checkpoints: usize,
    /// Signature checks of all checkpoint notes.
    pub signatures: Duration,
    /// `merkle::root(&leaves[..size])` for every checkpoint, as `verify_log` does. Measured
    /// on an evenly spread sample of at most 100 checkpoints and scaled by the leaves covered
    /// (the cost is linear in the size), to keep the bench short.
    pub checkpoint_roots: Duration,
    pub checkpoint_roots_sampled: usize,
    /// The same roots from one pass with a [`MerkleFrontier`].
    pub checkpoint_roots_incremental: Duration,
    /// Events whose recomputed leaf hash differs from the stored one (should be 0), plus
    /// checkpoints whose roots differ between the two methods or from the note.
    pub mismatches: usize,
}

/// Runs the stages of `verify_log` one at a time over `tenant`'s log and times each.
pub async fn verify_breakdown(kluis: &Kluis, tenant: TenantId) -> Result<VerifyBreakdown> {
    let mut b = VerifyBreakdown::default();
    let keys = {
        let mut tx = kluis.store.tenant(tenant).begin_read().await?;
        kluis.keys(&mut tx).await?
    };

    let t = Instant::now();
    let (rows, batch_times) = all_rows(kluis, tenant).await?;
    b.fetch = t.elapsed();
    b.events = rows.len();
    b.batches = batch_times.len();
    b.first_batch = batch_times.first().copied().unwrap_or_default();
    // The last call returns nothing; the one before it is the last full-ish batch.
    b.last_full_batch = batch_times
        .len()
        .checked_sub(2)
        .and_then(|i| batch_times.get(i).copied())
        .unwrap_or_default();

    let t = Instant::now();
    let mut tx = kluis.store.tenant(tenant).begin_read().await?;
    let scanned = tx.scan_audit_events(0, CountVisitor(0)).await?;
    b.scan_direct = t.elapsed();
    if scanned.0 != rows.len() {
        b.mismatches += 1;
    }
    let t = Instant::now();
    let visitor = PrefixVisitor {
        head: crate::audit::leaf_head(tenant)?,
        buf: Vec::new(),
        ok: true,
    };
    let v = tx.scan_audit_events(0, visitor).await?;
    b.scan_prefix = t.elapsed();
    if !v.ok {
        b.mismatches += 1;
    }
    drop(tx);

    let t = Instant::now();
    let plain: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            keys.open_retained(
                "audit_events",
                "details",
                Uuid::from_u64_pair(0, r.seq as u64),
                &r.details,
            )
        })
        .collect::<Result<_>>()?;
    b.decrypt = t.elapsed();

    let t = Instant::now();
    let details: Vec<Value> = plain
        .iter()
        .map(|p| serde_json::from_slice(p).map_err(|_| Error::internal("details json")))
        .collect::<Result<_>>()?;
    b.parse = t.elapsed();

    let t = Instant::now();
    let encoded: Vec<Vec<u8>> = rows
        .iter()
        .zip(&details)
        .map(|(r, d)| crate::audit::leaf_bytes(tenant, r, d))
        .collect::<Result<_>>()?;
    b.encode = t.elapsed();
    b.leaf_bytes = encoded.iter().map(Vec::len).sum();

    let t = Instant::now();
    let spliced: Vec<Vec<u8>> = rows
        .iter()
        .zip(&plain)
        .map(|(r, p)| {
            let mut out = serde_json::to_vec(&LeafV1 {
                v: 1,
                tenant: tenant.0,
                seq: r.seq,
                at: r.at,
                actor: &r.actor,
                action: &r.action,
                outcome: &r.outcome,
                object_type: r.object_type.as_deref(),
                object_id: r.object_id.as_deref(),
                details: &Value::Null,
            })
            .map_err(|_| Error::internal("leaf encoding"))?;
            out.truncate(out.len() - b"null}".len());
            out.extend_from_slice(p);
            out.push(b'}');
            Ok(out)
        })
        .collect::<Result<_>>()?;
    b.encode_spliced = t.elapsed();
    b.spliced_mismatches = rows
        .iter()
        .zip(&spliced)
        .filter(|(r, e)| r.leaf_hash.as_slice() != merkle::leaf_hash(e).as_slice())
        .count();
    drop(spliced);

    let t = Instant::now();
    let leaves: Vec<Hash> = encoded.iter().map(|e| merkle::leaf_hash(e)).collect();
    b.leaf_hash = t.elapsed();
    b.mismatches += rows
        .iter()
        .zip(&leaves)
        .filter(|(r, l)| r.leaf_hash.as_slice() != l.as_slice())
        .count();

    let t = Instant::now();
    let full_root = merkle::root(&leaves);
    b.root_once = t.elapsed();
    std::hint::black_box(full_root);

    // Checkpoints from the external file, as verify_log reads them.
    let Some(signing) = kluis.audit_signing.as_deref() else {
        return Ok(b);
    };
    let path = signing.dir.join(format!("{}.checkpoints", tenant.0));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::internal(format!("checkpoint file: {e}"))),
    };
    let notes: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["note"].as_str().map(str::to_owned))
        .collect();
    b.checkpoints = notes.len();

    let verifier = signing.signer.verifier();
    let t = Instant::now();
    let cps = notes
        .iter()
        .map(|n| checkpoint::verify(n, &verifier))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    b.signatures = t.elapsed();

    let covered = |c: &checkpoint::Checkpoint| (c.size as usize).min(leaves.len());
    let stride = cps.len().div_ceil(100).max(1);
    let t = Instant::now();
    let direct: Vec<(usize, Hash)> = cps
        .iter()
        .enumerate()
        .step_by(stride)
        .map(|(i, c)| (i, merkle::root(&leaves[..covered(c)])))
        .collect();
    let sampled = t.elapsed();
    b.checkpoint_roots_sampled = direct.len();
    let all: usize = cps.iter().map(covered).sum();
    let some: usize = direct
        .iter()
        .filter_map(|(i, _)| cps.get(*i))
        .map(covered)
        .sum();
    b.checkpoint_roots = sampled.mul_f64(all as f64 / some.max(1) as f64);

    let t = Instant::now();
    let mut frontier = MerkleFrontier::default();
    let mut incremental = Vec::with_capacity(cps.len());
    let mut next = leaves.iter();
    let mut pushed = 0u64;
    for c in &cps {
        while pushed < c.size {
            let Some(l) = next.next() else { break };
            frontier.push(*l);
            pushed += 1;
        }
        incremental.push(frontier.root());
    }
    b.checkpoint_roots_incremental = t.elapsed();

    b.mismatches += cps
        .iter()
        .zip(&incremental)
        .filter(|(c, i)| **i != c.root)
        .count();
    b.mismatches += direct
        .iter()
        .filter(|(i, d)| incremental.get(*i) != Some(d))
        .count();
    Ok(b)
}

// ---- DEK re-encryption (`benches/reencrypt.rs`) -----------------------------------------

/// Email of the `i`th bench user (what [`insert_sealed_users`] seals).
pub fn bench_user_email(i: u64) -> String {
    format!("user{i:07}@reencrypt.bench.example")
}

/// Display name of the `i`th bench user.
pub fn bench_user_name(i: u64) -> String {
    format!("Bench User {i}")
}

/// Inserts users `start..start + n` (invited: no password, role `member`) with their email and
/// display name sealed exactly as `users::insert_user` seals them: under the tenant's current
/// data key, bound to tenant/table/column/record, with the email's blind index, and counted in
/// the key's seal count. `per_tx` users per write transaction. Skips `insert_user`'s
/// validation, password hashing and read-back, which only slow the setup of a large table.
/// Returns the ids in order (`ids[k]` is user `start + k`).
pub async fn insert_sealed_users(
    kluis: &Kluis,
    tenant: TenantId,
    start: u64,
    n: u64,
    per_tx: u64,
) -> Result<Vec<crate::UserId>> {
    let per_tx = per_tx.max(1);
    let mut ids = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut done = 0;
    while done < n {
        let m = per_tx.min(n - done);
        let mut tx = kluis.store.tenant(tenant).begin().await?;
        let keys = kluis.keys(&mut tx).await?;
        let now = kluis.now();
        for i in start + done..start + done + m {
            let id = crate::UserId::new();
            let email = bench_user_email(i);
            let bidx = keys.email_index(
                &crate::Email::parse(&email).map_err(|_| crate::Error::internal("bench email"))?,
            );
            tx.insert_user(&crate::db::rows::NewUser {
                id,
                email_bidx: &bidx,
                email: &keys.seal_str("users", "email", id.0, &email)?,
                display_name: &keys.seal_str("users", "display_name", id.0, &bench_user_name(i))?,
                role: crate::Role::Member,
                password_hash: None,
                now,
            })
            .await?;
            ids.push(id);
        }
        let sealed = i64::try_from(2 * m).map_err(|_| Error::internal("count"))?;
        kluis.count_sealed(&mut tx, &keys, sealed).await?;
        tx.commit().await?;
        done += m;
    }
    Ok(ids)
}

/// Reads every user row of `tenant` (keyset pages of 10,000, one read transaction per page)
/// and counts the data-key versions in the headers of their sealed columns, without
/// decrypting. Returns (rows, values per key version).
pub async fn user_sealed_versions(
    kluis: &Kluis,
    tenant: TenantId,
) -> Result<(u64, std::collections::BTreeMap<u32, u64>)> {
    let mut versions = std::collections::BTreeMap::new();
    let (mut rows, mut after) = (0u64, None);
    loop {
        let mut tx = kluis.store.tenant(tenant).begin_read().await?;
        let page = tx.list_users(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        rows += page.len() as u64;
        for sealed in page.iter().flat_map(|r| [&r.email, &r.display_name]) {
            let v = kluis_crypto::envelope::sealed_key_version(sealed)?;
            *versions.entry(v).or_insert(0u64) += 1;
        }
    }
    Ok((rows, versions))
}

/// The email of bench contact `i`.
pub fn bench_contact_email(i: u64) -> String {
    format!("contact{i}@crm-bench.test")
}

/// Inserts `n` contacts (first and last name, email, phone, city) of `owners[i % len]`, sealed
/// and blind-indexed exactly as `Kluis::create_record` stores them, `per_tx` per write
/// transaction. Skips validation, duplicate checks and audit events: setup of a large table,
/// not the measured path.
pub async fn insert_contacts(
    kluis: &Kluis,
    tenant: TenantId,
    owners: &[crate::UserId],
    n: u64,
    per_tx: u64,
) -> Result<()> {
    use crate::crm::ObjectType;
    let per_tx = per_tx.max(1);
    let mut done = 0;
    while done < n {
        let m = per_tx.min(n - done);
        let mut tx = kluis.store.tenant(tenant).begin().await?;
        let keys = kluis.keys(&mut tx).await?;
        let schema = kluis.schema(&mut tx, ObjectType::Contact).await?;
        let now = kluis.now();
        for i in done..done + m {
            let id = kluis_types::RecordId::new();
            let mut f = serde_json::Map::new();
            f.insert("first_name".into(), json!(format!("Voornaam{i}")));
            f.insert("last_name".into(), json!(format!("Achternaam{}", i % 997)));
            f.insert("email".into(), json!(bench_contact_email(i)));
            f.insert("phone".into(), json!(format!("+3161{:07}", i % 10_000_000)));
            f.insert(
                "city".into(),
                json!(["Amsterdam", "Utrecht", "Leiden"][(i % 3) as usize]),
            );
            let plain = serde_json::to_vec(&f).map_err(|_| Error::internal("encoding"))?;
            let sealed = keys.seal("crm_records", "fields", id.0, &plain)?;
            tx.insert_record(&crate::db::rows::RecordWrite {
                id,
                object_type: "contact",
                owner_id: owners.get((i as usize) % owners.len().max(1)).copied(),
                company_id: None,
                revision: 1,
                fields: &sealed,
                at: now,
                by: "bench",
                deal: &Default::default(),
                task: &Default::default(),
                sensitive: None,
            })
            .await?;
            tx.set_lookups("contact", id, &crate::crm::lookups(&keys, &schema, &f))
                .await?;
        }
        let sealed = i64::try_from(m).map_err(|_| Error::internal("count"))?;
        kluis.count_sealed(&mut tx, &keys, sealed).await?;
        tx.commit().await?;
        done += m;
    }
    Ok(())
}

/// A signed-in person (as session authentication makes one), for benches that measure what a
/// user's role changes.
pub fn user_actor(tenant: TenantId, user: crate::UserId, role: crate::Role) -> Actor {
    Actor::new(
        tenant,
        crate::Principal::User {
            id: user,
            role,
            session: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_matches_merkle_root() {
        let leaves: Vec<Hash> = (0u32..300)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut f = MerkleFrontier::default();
        assert_eq!(f.root(), merkle::root(&[]));
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), merkle::root(&leaves[..=i]), "size {}", i + 1);
        }
    }
}
