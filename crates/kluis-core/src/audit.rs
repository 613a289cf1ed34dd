//! The audit trail: one append-only RFC 6962 Merkle log per tenant (and one for the platform,
//! under the nil tenant id), written in the same transaction as the change it records.
//!
//! Each event's leaf hash covers a canonical JSON encoding of the plaintext event (sequence
//! number included, so reordering is visible). Personal data in the event (IP, user agent,
//! changed values) is sealed in `details`. Signed checkpoints (C2SP signed notes, Ed25519) of
//! tree size and root are stored in the database and appended to a file outside it, so someone
//! with database access alone cannot rewrite history unnoticed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};

use crate::db::AuditVisitor;
use crate::db::TenantTx;
use crate::db::rows::{AuditEventRef, AuditEventRow, AuditFilter, NewAuditEvent};
use kluis_crypto::checkpoint::{self, CheckpointSigner, CheckpointVerifier};
use kluis_crypto::merkle::{self, Hash};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::keys::TenantKeys;
use crate::users::rfc3339;
use crate::{
    Actor, Error, ErrorKind, Kluis, Page, Permission, Principal, RequestContext, Result, TenantId,
    page_limit,
};

/// What happened; `details` is free-form JSON (it is sealed at rest).
pub(crate) struct Event<'a> {
    pub action: &'a str,
    pub success: bool,
    pub object_type: Option<&'a str>,
    pub object_id: Option<String>,
    pub details: Value,
}

impl<'a> Event<'a> {
    pub(crate) fn ok(action: &'a str, object_type: &'a str, object_id: impl ToString) -> Self {
        Event {
            action,
            success: true,
            object_type: Some(object_type),
            object_id: Some(object_id.to_string()),
            details: json!({}),
        }
    }
    pub(crate) fn with(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The label an actor appears under in the log.
pub(crate) fn actor_label(actor: &Actor) -> String {
    match actor.principal() {
        Principal::User { id, .. } => format!("user:{id}"),
        Principal::ApiKey { id, .. } => format!("apikey:{id}"),
        Principal::Console => "console".to_owned(),
        Principal::Scim { token } => format!("scim:{token}"),
        Principal::Support {
            operator, grant, ..
        } => format!("support:{operator}:{grant}"),
    }
}

/// The canonical encoding a leaf hash covers (version 1). Field order is fixed by the struct
/// and `details` keys are sorted (serde_json maps are BTreeMaps), so it is deterministic.
#[derive(Serialize)]
pub(crate) struct LeafV1<'a> {
    pub v: u8,
    pub tenant: Uuid,
    pub seq: i64,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub object_type: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub details: &'a Value,
}

pub(crate) fn leaf_bytes(tenant: TenantId, r: &AuditEventRow, details: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(&LeafV1 {
        v: 1,
        tenant: tenant.0,
        seq: r.seq,
        at: r.at,
        actor: &r.actor,
        action: &r.action,
        outcome: &r.outcome,
        object_type: r.object_type.as_deref(),
        object_id: r.object_id.as_deref(),
        details,
    })
    .map_err(|_| Error::internal("audit encoding"))
}

fn json_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<()> {
    serde_json::to_writer(&mut *out, v).map_err(|_| Error::internal("audit encoding"))
}

/// `{"v":1,"tenant":"<id>","seq":`: how every leaf encoding of one log starts.
pub(crate) fn leaf_head(tenant: TenantId) -> Result<Vec<u8>> {
    let mut v = br#"{"v":1,"tenant":"#.to_vec();
    json_into(&mut v, &tenant.0)?;
    v.extend_from_slice(br#","seq":"#);
    Ok(v)
}

/// Appends the canonical leaf encoding up to and including `"details":`, byte for byte what
/// [`leaf_bytes`] writes before the details value (a test compares the two). Verification
/// splices the stored details plaintext after it instead of parsing and re-encoding it.
pub(crate) fn leaf_prefix(out: &mut Vec<u8>, head: &[u8], e: &AuditEventRef<'_>) -> Result<()> {
    out.extend_from_slice(head);
    json_into(out, &e.seq)?;
    out.extend_from_slice(br#","at":"#);
    json_into(out, &e.at)?;
    out.extend_from_slice(br#","actor":"#);
    json_into(out, e.actor)?;
    out.extend_from_slice(br#","action":"#);
    json_into(out, e.action)?;
    out.extend_from_slice(br#","outcome":"#);
    json_into(out, e.outcome)?;
    out.extend_from_slice(br#","object_type":"#);
    json_into(out, &e.object_type)?;
    out.extend_from_slice(br#","object_id":"#);
    json_into(out, &e.object_id)?;
    out.extend_from_slice(br#","details":"#);
    Ok(())
}

/// Events per hand-over between the two verification stages.
const LEAF_BATCH: usize = 2048;

/// One event in a [`LeafBatch`]: `bytes[start..mid]` is its leaf prefix, `bytes[mid..end]`
/// its sealed details.
struct LeafItem {
    seq: i64,
    start: usize,
    mid: usize,
    end: usize,
    stored: Option<Hash>,
}

#[derive(Default)]
struct LeafBatch {
    bytes: Vec<u8>,
    items: Vec<LeafItem>,
}

/// Stage 1 of verification (runs where the rows are read): checks the sequence has no gap and
/// encodes each event's leaf prefix, handing batches to the hashing stage.
struct LeafProducer {
    head: Vec<u8>,
    next: i64,
    scanned: i64,
    batch: LeafBatch,
    sender: Option<SyncSender<LeafBatch>>,
    broken: Option<(i64, String)>,
}

impl LeafProducer {
    fn new(head: Vec<u8>, first: i64, sender: SyncSender<LeafBatch>) -> Self {
        LeafProducer {
            head,
            next: first,
            scanned: 0,
            batch: LeafBatch::default(),
            sender: Some(sender),
            broken: None,
        }
    }

    fn send(&mut self) -> bool {
        let next = LeafBatch {
            bytes: Vec::with_capacity(self.batch.bytes.capacity()),
            items: Vec::with_capacity(LEAF_BATCH),
        };
        let batch = std::mem::replace(&mut self.batch, next);
        self.sender.as_ref().is_some_and(|s| s.send(batch).is_ok())
    }

    /// Sends what is left and closes the channel: (events scanned, first gap found).
    fn finish(mut self) -> (i64, Option<(i64, String)>) {
        if !self.batch.items.is_empty() {
            self.send();
        }
        self.sender = None;
        (self.scanned, self.broken)
    }
}

impl AuditVisitor for LeafProducer {
    fn visit(&mut self, e: AuditEventRef<'_>) -> bool {
        self.scanned += 1;
        if e.seq != self.next {
            self.broken = Some((
                self.next,
                format!(
                    "event {} is missing (next stored event is {})",
                    self.next, e.seq
                ),
            ));
            return false;
        }
        self.next += 1;
        let start = self.batch.bytes.len();
        if leaf_prefix(&mut self.batch.bytes, &self.head, &e).is_err() {
            self.broken = Some((e.seq, "event could not be encoded".into()));
            return false;
        }
        let mid = self.batch.bytes.len();
        self.batch.bytes.extend_from_slice(e.details);
        self.batch.items.push(LeafItem {
            seq: e.seq,
            start,
            mid,
            end: self.batch.bytes.len(),
            stored: <Hash>::try_from(e.leaf_hash).ok(),
        });
        self.batch.items.len() < LEAF_BATCH || self.send()
    }
}

/// What the hashing stage found: the recomputed leaf hashes, up to the first broken event,
/// and the events whose details an erasure replaced: (event, erasure event), still to check.
struct Hashed {
    leaves: Vec<Hash>,
    first_broken: Option<(i64, String)>,
    redacted: Vec<(i64, i64)>,
}

/// The hashing stage: opens each event's details, splices the plaintext into the leaf
/// encoding, hashes it and compares with the stored leaf hash. It runs on one thread per core
/// (batches taken in order from one queue, results put back in order), so that together with
/// the scan all cores are busy.
struct LeafHashers {
    handles: Vec<std::thread::JoinHandle<Vec<HashedBatch>>>,
}

/// (batch position in the log, its leaf hashes, the broken event in it if any, its redacted
/// events).
type HashedBatch = (usize, Vec<Hash>, Option<(i64, String)>, Vec<(i64, i64)>);

fn spawn_leaf_hashers(keys: Arc<TenantKeys>) -> Result<(SyncSender<LeafBatch>, LeafHashers)> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (tx, rx) = sync_channel::<LeafBatch>(4);
    let queue = Arc::new(Mutex::new((rx, 0usize)));
    let stop = Arc::new(AtomicBool::new(false));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut handles = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (keys, queue, stop) = (keys.clone(), queue.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name("kluis-audit-verify".into())
            .spawn(move || {
                let mut done = Vec::new();
                let mut buf = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // Take the next batch and its position in the log.
                    let next = match queue.lock() {
                        Ok(mut q) => match q.0.recv() {
                            Ok(b) => {
                                q.1 += 1;
                                Some((q.1 - 1, b))
                            }
                            Err(_) => None,
                        },
                        Err(_) => None,
                    };
                    let Some((index, batch)) = next else { break };
                    let mut leaves = Vec::with_capacity(batch.items.len());
                    let mut broken = None;
                    let mut redacted = Vec::new();
                    for it in &batch.items {
                        match check_leaf(&keys, &batch.bytes, it, &mut buf) {
                            Ok((leaf, by)) => {
                                leaves.push(leaf);
                                if let Some(by) = by {
                                    redacted.push((it.seq, by));
                                }
                            }
                            Err(why) => {
                                broken = Some((it.seq, why.to_owned()));
                                // Batches before this one are already taken and finish;
                                // later ones no longer matter.
                                stop.store(true, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                    done.push((index, leaves, broken, redacted));
                }
                done
            })
            .map_err(|e| Error::internal(format!("audit verification thread: {e}")))?;
        handles.push(handle);
    }
    Ok((tx, LeafHashers { handles }))
}

impl LeafHashers {
    /// Waits for the hashers (the producer's sender must be gone) and puts results in order.
    fn join(self) -> Result<Hashed> {
        let mut parts = Vec::new();
        for h in self.handles {
            parts.extend(
                h.join()
                    .map_err(|_| Error::internal("audit verification thread failed"))?,
            );
        }
        parts.sort_by_key(|p| p.0);
        let mut out = Hashed {
            leaves: Vec::new(),
            first_broken: None,
            redacted: Vec::new(),
        };
        for (expected, (index, leaves, broken, redacted)) in parts.into_iter().enumerate() {
            if index != expected {
                break; // a gap after a stop: everything before it is complete
            }
            out.leaves.extend(leaves);
            out.redacted.extend(redacted);
            if broken.is_some() {
                out.first_broken = broken;
                break;
            }
        }
        Ok(out)
    }
}

/// The details an erasure leaves in an event it redacts (sealed like any details): which
/// later event did it. See [`Kluis::verify_log`] for how such an event is still checked.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Redacted {
    pub redacted_by: i64,
}

/// Checks one event: its leaf hash, and whether an erasure redacted it (the erasure event's
/// sequence number; the stored leaf hash then stands, checked later against that event).
fn check_leaf(
    keys: &TenantKeys,
    bytes: &[u8],
    it: &LeafItem,
    buf: &mut Vec<u8>,
) -> std::result::Result<(Hash, Option<i64>), &'static str> {
    const ALTERED: &str = "event details were altered (they no longer decrypt)";
    const MISMATCH: &str =
        "event contents do not match its leaf hash (edited, reordered or inserted)";
    let (prefix, sealed) = match (bytes.get(it.start..it.mid), bytes.get(it.mid..it.end)) {
        (Some(p), Some(s)) => (p, s),
        _ => return Err(MISMATCH),
    };
    let plain = keys
        .open("audit_events", "details", seq_record(it.seq), sealed)
        .map_err(|_| ALTERED)?;
    buf.clear();
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(&plain);
    buf.push(b'}');
    let leaf = merkle::leaf_hash(buf);
    if it.stored == Some(leaf) {
        return Ok((leaf, None));
    }
    if let (Ok(r), Some(stored)) = (serde_json::from_slice::<Redacted>(&plain), it.stored) {
        return Ok((stored, Some(r.redacted_by)));
    }
    // The stored plaintext is the canonical encoding of the details whenever the writer was
    // this code; otherwise parse and re-encode canonically before giving up.
    let details: Value = serde_json::from_slice(&plain).map_err(|_| ALTERED)?;
    buf.truncate(prefix.len());
    serde_json::to_writer(&mut *buf, &details).map_err(|_| MISMATCH)?;
    buf.push(b'}');
    let leaf = merkle::leaf_hash(buf);
    if it.stored == Some(leaf) {
        Ok((leaf, None))
    } else {
        Err(MISMATCH)
    }
}

/// Sealing context record id of an event: its sequence number.
fn seq_record(seq: i64) -> Uuid {
    Uuid::from_u64_pair(0, seq as u64)
}

/// Signs checkpoints and keeps the external checkpoint files.
pub struct AuditSigning {
    pub signer: CheckpointSigner,
    /// Directory of `<tenant>.checkpoints` files (JSON lines), outside the database.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// IP, user agent, request id, changed fields, failure reason.
    #[schema(value_type = Object)]
    pub details: Value,
    /// RFC 6962 leaf hash (hex) of the event's canonical encoding.
    pub leaf_hash: String,
}

/// Field rules over the trail: a record event's changed values (`details.changed`, and a
/// version restore's or import's copies of them) lose hidden fields and show masked ones
/// masked, as the record itself would for this reader.
fn redact_events(access: &crate::authz::Access, events: &mut [AuditEvent]) {
    if access.rules().fields.is_empty() {
        return;
    }
    for e in events {
        let Some(t) = e
            .object_type
            .as_deref()
            .and_then(crate::crm::ObjectType::parse)
        else {
            continue;
        };
        let fv = access.fields(t);
        if fv.is_empty() {
            continue;
        }
        if let Some(Value::Object(changed)) = e.details.get_mut("changed") {
            changed.retain(|k, _| fv.rule(k) != Some(crate::authz::FieldRule::Hidden));
            for (k, v) in changed.iter_mut() {
                if fv.rule(k) == Some(crate::authz::FieldRule::Masked) {
                    mask_all(v);
                }
            }
        }
    }
}

fn mask_all(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(mask_all),
        Value::Array(a) => a.iter_mut().for_each(mask_all),
        other => *other = crate::authz::mask_value(other),
    }
}

/// Query parameters of the audit API and CLI.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// RFC 3339 lower bound (inclusive).
    pub from: Option<String>,
    /// RFC 3339 upper bound (exclusive).
    pub to: Option<String>,
    /// e.g. `user:<id>`, `apikey:<id>`.
    pub actor: Option<String>,
    /// e.g. `auth.login`, `user.update`.
    pub action: Option<String>,
    pub object_id: Option<String>,
    /// Exact IP address (matched through a blind index; IPs are sealed).
    pub ip: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckpointList {
    /// Verifier key (C2SP vkey) to check the signatures with.
    pub verifier_key: String,
    /// Signed notes, oldest first.
    pub checkpoints: Vec<String>,
}

/// An authorised, recorded export in progress (see [`Kluis::audit_export`]).
pub struct AuditExport {
    tenant: TenantId,
    query: AuditQuery,
    /// The reader's field rules, applied to every page.
    access: crate::authz::Access,
}

/// The result of verifying one log.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub tenant: TenantId,
    pub events: i64,
    pub checkpoints_checked: usize,
    /// The first event found broken (sequence number) and why.
    pub first_broken: Option<(i64, String)>,
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| {
                    Error::validation(
                        field,
                        "invalid_time",
                        "use RFC 3339, e.g. 2026-11-25T10:00:00Z",
                    )
                })
        })
        .transpose()
}

impl Kluis {
    /// Appends one event inside `tx` (same transaction as the change it records).
    pub(crate) async fn audit(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        actor: &str,
        ctx: &RequestContext,
        ev: Event<'_>,
    ) -> Result<()> {
        self.audit_many(tx, keys, actor, ctx, vec![ev]).await
    }

    /// Appends events inside `tx`, in order, with consecutive sequence numbers (a bulk import
    /// writes one event per record this way, many per statement).
    pub(crate) async fn audit_many(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        actor: &str,
        ctx: &RequestContext,
        evs: Vec<Event<'_>>,
    ) -> Result<()> {
        if evs.is_empty() {
            return Ok(());
        }
        let tenant = tx.tenant();
        let ip_bidx = (!ctx.ip.is_empty()).then(|| keys.blind("audit_events.ip", &ctx.ip));
        let n = i64::try_from(evs.len()).map_err(|_| Error::internal("too many events"))?;
        // Counted before the insert so that, on SQLite, the count travels with it.
        self.count_sealed(tx, keys, n).await?;
        // The request's context goes into every event's details.
        let mut evs = evs;
        // Record and user events carry a digest of the state they left (state verification).
        self.attach_state(tx, keys, &mut evs).await?;
        let mut plains = Vec::with_capacity(evs.len());
        for ev in &mut evs {
            if let Value::Object(m) = &mut ev.details {
                m.insert("ip".into(), json!(ctx.ip));
                m.insert("user_agent".into(), json!(ctx.user_agent));
                m.insert("request_id".into(), json!(ctx.request_id));
            }
            plains.push(
                serde_json::to_vec(&ev.details).map_err(|_| Error::internal("audit encoding"))?,
            );
        }
        // The second attempt happens only on SQLite when another process appended to this log
        // since this process last did (the store then reads the head instead of caching it).
        let mut attempt = 0;
        let first = loop {
            attempt += 1;
            let first = tx.audit_reserve(n).await?;
            let at = self.now();
            let mut parts = Vec::with_capacity(evs.len());
            for (k, (ev, plain)) in evs.iter().zip(&plains).enumerate() {
                let seq = first + k as i64;
                let outcome = if ev.success { "success" } else { "failure" };
                let row = AuditEventRow {
                    seq,
                    at,
                    actor: actor.to_owned(),
                    action: ev.action.to_owned(),
                    outcome: outcome.to_owned(),
                    object_type: ev.object_type.map(str::to_owned),
                    object_id: ev.object_id.clone(),
                    details: Vec::new(),
                    leaf_hash: Vec::new(),
                };
                let leaf = merkle::leaf_hash(&leaf_bytes(tenant, &row, &ev.details)?);
                let sealed = keys.seal("audit_events", "details", seq_record(seq), plain)?;
                parts.push((seq, outcome, sealed, leaf));
            }
            let rows: Vec<NewAuditEvent<'_>> = evs
                .iter()
                .zip(&parts)
                .map(|(ev, (seq, outcome, sealed, leaf))| NewAuditEvent {
                    seq: *seq,
                    at,
                    actor,
                    action: ev.action,
                    outcome,
                    object_type: ev.object_type,
                    object_id: ev.object_id.as_deref(),
                    ip_bidx: ip_bidx.as_ref().map(|b| b.as_slice()),
                    details: sealed,
                    leaf_hash: leaf,
                })
                .collect();
            let res = match rows.as_slice() {
                [one] => tx.insert_audit_event(one).await,
                many => tx.insert_audit_events(many).await,
            };
            match res {
                Ok(()) => {
                    self.audit_pending.appended(tenant, first + n, self.now());
                    break first;
                }
                Err(crate::db::StoreError::AuditHeadMoved) if attempt < 3 => continue,
                Err(e) => return Err(e.into()),
            }
        };
        for (k, ev) in evs.iter().enumerate() {
            // The structured log stream gets the event too, without personal data.
            let outcome = if ev.success { "success" } else { "failure" };
            tracing::info!(target: "kluis::audit", tenant = %tenant, seq = first + k as i64, action = ev.action, outcome, actor, object_type = ev.object_type, object_id = ev.object_id.as_deref(), "audit event");
            failpoint(ev.action)?;
        }
        Ok(())
    }

    /// Appends an event to the platform log, moving `tx` there (see `TenantTx::into_platform_log`).
    pub(crate) async fn audit_platform(
        &self,
        tx: TenantTx,
        actor: &str,
        ctx: &RequestContext,
        ev: Event<'_>,
    ) -> Result<TenantTx> {
        let mut tx = tx.into_platform_log().await?;
        let keys = self.keys(&mut tx).await?;
        self.audit(&mut tx, &keys, actor, ctx, ev).await?;
        Ok(tx)
    }

    /// Records an operational event in the platform log: backups (created, pruned, restored,
    /// drilled) are reported by the `kluis` binary, which knows no other way into the log.
    pub async fn record_platform_event(
        &self,
        actor: &str,
        action: &str,
        success: bool,
        object_type: &str,
        object_id: &str,
        details: Value,
    ) -> Result<()> {
        let mut tx = self.store.tenant(TenantId::PLATFORM).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event {
            action,
            success,
            object_type: Some(object_type),
            object_id: Some(object_id.to_owned()),
            details,
        };
        self.audit(&mut tx, &keys, actor, &RequestContext::default(), ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates the platform log's keys on first start.
    pub async fn ensure_platform_keys(&self) -> Result<()> {
        let mut tx = self.store.tenant(TenantId::PLATFORM).begin().await?;
        if tx.tenant_keys().await?.is_empty() {
            self.provision_keys(&mut tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Query the tenant's audit log (owners and admins; API keys with `audit:read`).
    pub async fn audit_events(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        q: &AuditQuery,
    ) -> Result<Page<AuditEvent>> {
        actor.require(Permission::AuditRead)?;
        let access = self.audit_in_scope(actor, q).await?;
        let mut page = self.query_log(actor.tenant(), q).await?;
        redact_events(&access, &mut page.items);
        // Reading the log is itself recorded, as a count.
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event {
            action: "audit.read",
            success: true,
            object_type: Some("audit_log"),
            object_id: None,
            details: json!({"count": page.items.len()}),
        };
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(page)
    }

    /// Starts an export of the tenant's log (JSON Lines or CSV, streamed page by page by the
    /// caller). The export is itself recorded, with its filters.
    pub async fn audit_export(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        q: &AuditQuery,
        format: &str,
    ) -> Result<AuditExport> {
        actor.require(Permission::AuditRead)?;
        let access = self.audit_in_scope(actor, q).await?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let filters = json!({"format": format, "from": q.from, "to": q.to, "actor": q.actor, "action": q.action, "object_id": q.object_id, "ip": q.ip});
        let ev = Event {
            action: "audit.export",
            success: true,
            object_type: Some("audit_log"),
            object_id: None,
            details: json!({"filters": filters}),
        };
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(AuditExport {
            access,
            tenant: actor.tenant(),
            query: AuditQuery {
                cursor: None,
                limit: Some(200),
                ..q.clone()
            },
        })
    }

    /// The next page of an export; None when done.
    pub async fn audit_export_next(
        &self,
        export: &mut AuditExport,
    ) -> Result<Option<Vec<AuditEvent>>> {
        if export.query.limit.is_none() {
            return Ok(None);
        }
        let mut page = self.query_log(export.tenant, &export.query).await?;
        redact_events(&export.access, &mut page.items);
        match page.next_cursor {
            Some(c) => export.query.cursor = Some(c),
            None => export.query.limit = None,
        }
        Ok(Some(page.items))
    }

    /// Record scope over the trail: an actor whose role reaches only some records may read
    /// the events of one record in reach (`object_id`), never the whole log, whose events name
    /// and describe records outside it.
    async fn audit_in_scope(&self, actor: &Actor, q: &AuditQuery) -> Result<crate::authz::Access> {
        let access = self.access(actor).await?;
        if !access.rules().narrows_scope() {
            return Ok(access);
        }
        let Some(id) = q.object_id.as_deref() else {
            access.require_every_record()?;
            return Ok(access);
        };
        let id: kluis_types::RecordId = id.parse().map_err(|_| Error::not_found())?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let row = tx.any_record(id).await?.ok_or_else(Error::not_found)?;
        let t = crate::crm::ObjectType::parse(&row.object_type).ok_or_else(Error::not_found)?;
        let vis = access.require(t, crate::authz::Right::Read)?;
        if vis.shows(row.owner_id) {
            Ok(access)
        } else {
            Err(Error::not_found())
        }
    }

    /// One page of any log, for the console (`kluis audit events`).
    pub async fn audit_log_page(
        &self,
        tenant: TenantId,
        q: &AuditQuery,
    ) -> Result<Page<AuditEvent>> {
        self.query_log(tenant, q).await
    }

    pub fn audit_verifier_key(&self) -> Result<String> {
        Ok(self.audit_signing()?.signer.verifier().to_vkey())
    }

    pub(crate) async fn query_log(
        &self,
        tenant: TenantId,
        q: &AuditQuery,
    ) -> Result<Page<AuditEvent>> {
        let after = q
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    Error::validation("cursor", "invalid_cursor", "cursor is not valid")
                })
            })
            .transpose()?;
        let limit = page_limit(q.limit)?;
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let filter = AuditFilter {
            from: parse_time("from", &q.from)?,
            to: parse_time("to", &q.to)?,
            actor: q.actor.clone(),
            action: q.action.clone(),
            object_id: q.object_id.clone(),
            ip_bidx: q
                .ip
                .as_deref()
                .map(|ip| keys.blind("audit_events.ip", ip.trim()).to_vec()),
        };
        let rows = tx.audit_events(after, limit + 1, &filter).await?;
        crate::users::page(
            rows,
            limit,
            |r| open_event(&keys, r),
            |e: &AuditEvent| e.seq.to_string(),
        )
    }

    /// Signed checkpoints of the tenant's log and the key to verify them.
    pub async fn audit_checkpoints(&self, actor: &Actor) -> Result<CheckpointList> {
        actor.require(Permission::AuditRead)?;
        let signing = self.audit_signing()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let cps = tx.audit_checkpoints().await?;
        Ok(CheckpointList {
            verifier_key: signing.signer.verifier().to_vkey(),
            checkpoints: cps.into_iter().map(|c| c.note).collect(),
        })
    }

    pub(crate) fn audit_signing(&self) -> Result<&AuditSigning> {
        self.audit_signing.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "audit_signing_unavailable",
                "no audit signing key is configured",
            )
        })
    }

    /// Signs a checkpoint of the tenant's log if it grew since the last one. Returns the note.
    pub async fn checkpoint_log(&self, tenant: TenantId) -> Result<Option<String>> {
        self.checkpoint_log_when(tenant, 1, 0).await
    }

    /// Signs a checkpoint when the log grew by at least `every_events` events, or grew at all
    /// and the last checkpoint is older than `max_age_ms`.
    pub async fn checkpoint_log_when(
        &self,
        tenant: TenantId,
        every_events: i64,
        max_age_ms: i64,
    ) -> Result<Option<String>> {
        let signing = self.audit_signing()?;
        let mut tx = self.store.tenant(tenant).begin().await?;
        let size = tx.audit_size().await?;
        let (last, last_at) = tx
            .last_audit_checkpoint()
            .await?
            .map(|c| (c.size, c.at))
            .unwrap_or((0, 0));
        let grown = size - last;
        let due = grown >= every_events.max(1) || (grown > 0 && self.now() - last_at >= max_age_ms);
        if size == 0 || !due {
            return Ok(None);
        }
        let root = self.incremental_root(&mut tx, tenant, size).await?;
        let note = signing.signer.sign(&origin(tenant), size as u64, &root)?;
        tx.insert_audit_checkpoint(size, &root, &note, self.now())
            .await?;
        // Outside the database first: if the append fails, the checkpoint is not recorded.
        append_checkpoint_file(&signing.dir, tenant, size, &note)?;
        tx.commit().await?;
        Ok(Some(note))
    }

    /// [`Kluis::verify_log`] of the actor's own tenant, for the audit log viewer (owners and
    /// admins; API keys with `audit:read`).
    pub async fn audit_verify(&self, actor: &Actor) -> Result<VerifyReport> {
        actor.require(Permission::AuditRead)?;
        self.verify_log(actor.tenant()).await
    }

    /// Verifies one log: sequence, every leaf hash against the event contents, the head
    /// counter, and every external checkpoint's signature and root.
    pub async fn verify_log(&self, tenant: TenantId) -> Result<VerifyReport> {
        // One read transaction: on SQLite the head, the truncation point and the events come
        // from one snapshot, so a concurrent append cannot look like a deleted tail.
        let mut tx = self.store.tenant(tenant).begin_snapshot().await?;
        let keys = self.keys(&mut tx).await?;
        let head = tx.audit_size().await?;
        let (truncated, range, marker) = tx.audit_truncation().await?;
        let mut report = VerifyReport {
            tenant,
            events: 0,
            checkpoints_checked: 0,
            first_broken: None,
        };
        // Expired prefix: the signed marker must cover exactly the recorded compact range.
        let mut frontier = merkle::Frontier::default();
        if truncated > 0 {
            match self.check_truncation_marker(
                tenant,
                truncated,
                range.as_deref(),
                marker.as_deref(),
            ) {
                Ok(f) => frontier = f,
                Err(why) => {
                    report.first_broken = Some((truncated, why));
                    return Ok(report);
                }
            }
        }
        // Two stages on two threads: the scan (database rows -> leaf encodings without the
        // details) and the hashing (open details, splice, SHA-256, compare).
        let (sender, hashers) = spawn_leaf_hashers(keys.clone())?;
        let producer = tx
            .scan_audit_events(
                truncated,
                LeafProducer::new(leaf_head(tenant)?, truncated, sender),
            )
            .await;
        let (scanned, gap) = match producer {
            Ok(p) => p.finish(),
            Err(e) => {
                // The hashers stop once the producer (and its sender) is dropped.
                drop(hashers);
                return Err(e.into());
            }
        };
        drop(tx);
        let hashed = tokio::task::spawn_blocking(move || hashers.join())
            .await
            .map_err(|_| Error::internal("audit verification thread failed"))??;
        report.events = scanned;
        if let Some(broken) = hashed.first_broken.or(gap) {
            report.first_broken = Some(broken);
            return Ok(report);
        }
        let leaves = hashed.leaves;
        let stored_end = truncated + leaves.len() as i64;
        if let Some(broken) = self
            .check_redactions(tenant, &keys, &hashed.redacted, stored_end)
            .await?
        {
            report.first_broken = Some(broken);
            return Ok(report);
        }
        if head != stored_end {
            report.first_broken = Some((
                stored_end,
                format!(
                    "the log counter says {head} events but {stored_end} are accounted for: events from {stored_end} were deleted"
                ),
            ));
            return Ok(report);
        }
        // External checkpoints (the file is authoritative; the database copy may be forged).
        // Roots are computed in one incremental pass over the leaves, in checkpoint order;
        // checkpoints older than the retention point cannot be recomputed and are skipped.
        if let Some(signing) = &self.audit_signing {
            let verifier = signing.signer.verifier();
            let mut cps = Vec::new();
            for (size, note) in read_checkpoint_file(&signing.dir, tenant)? {
                let cp = checkpoint::verify(&note, &verifier).map_err(|_| {
                    Error::new(
                        ErrorKind::Internal,
                        "checkpoint_invalid",
                        format!("checkpoint at size {size} has no valid signature"),
                    )
                })?;
                if cp.origin == truncation_origin(tenant) {
                    continue; // checked through the database marker above
                }
                if cp.origin != origin(tenant) {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        "checkpoint_invalid",
                        format!(
                            "checkpoint at size {size} belongs to another log ({})",
                            cp.origin
                        ),
                    ));
                }
                if (cp.size as i64) < truncated {
                    continue;
                }
                report.checkpoints_checked += 1;
                cps.push(cp);
            }
            cps.sort_by_key(|c| c.size);
            let mut leaf_iter = leaves.iter();
            let mut prev_size = truncated;
            for cp in cps {
                if cp.size as i64 > stored_end {
                    report.first_broken = Some((
                        stored_end,
                        format!(
                            "a signed checkpoint covers {} events but only {stored_end} exist: history was truncated",
                            cp.size
                        ),
                    ));
                    return Ok(report);
                }
                while frontier.size() < cp.size {
                    match leaf_iter.next() {
                        Some(l) => frontier.push(*l),
                        None => break,
                    }
                }
                if frontier.root() != cp.root {
                    report.first_broken = Some((
                        prev_size,
                        format!(
                            "history was rewritten: the events between {prev_size} and {} do not match the signed checkpoint at size {}",
                            cp.size, cp.size
                        ),
                    ));
                    return Ok(report);
                }
                prev_size = cp.size as i64;
            }
        }
        Ok(report)
    }

    /// A redacted event's leaf hash cannot be recomputed (its details are gone), so it stands
    /// only when a later event of the log, itself verified, is the erasure that lists it: a
    /// `privacy.erase` event whose details name this event in `redacted`. Someone with database
    /// access cannot make that event up (its leaf is in the signed tree), so marking another
    /// event redacted to hide an edit is found.
    async fn check_redactions(
        &self,
        tenant: TenantId,
        keys: &TenantKeys,
        redacted: &[(i64, i64)],
        stored_end: i64,
    ) -> Result<Option<(i64, String)>> {
        if redacted.is_empty() {
            return Ok(None);
        }
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let mut erasures: std::collections::HashMap<i64, Vec<i64>> = Default::default();
        for &(seq, by) in redacted {
            let not_listed = || {
                Some((
                    seq,
                    format!("event {seq} has no details and no erasure event lists it"),
                ))
            };
            if by <= seq || by >= stored_end {
                return Ok(not_listed());
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = erasures.entry(by) {
                let row = tx
                    .audit_events(Some(by - 1), 1, &AuditFilter::default())
                    .await?
                    .into_iter()
                    .find(|r| r.seq == by);
                let listed = match row {
                    Some(r) if r.action == crate::crm::privacy::ERASE_ACTION => {
                        let e = open_event(keys, r)?;
                        serde_json::from_value::<Vec<i64>>(e.details["redacted"].clone())
                            .unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                slot.insert(listed);
            }
            if !erasures.get(&by).is_some_and(|l| l.contains(&seq)) {
                return Ok(not_listed());
            }
        }
        Ok(None)
    }

    /// Checks a truncation marker: a note signed by the audit key whose size is the truncation
    /// point and whose root is the root of the recorded compact range.
    fn check_truncation_marker(
        &self,
        tenant: TenantId,
        truncated: i64,
        range: Option<&str>,
        marker: Option<&str>,
    ) -> std::result::Result<merkle::Frontier, String> {
        let signing = self.audit_signing().map_err(|e| e.message)?;
        let (Some(range), Some(marker)) = (range, marker) else {
            return Err(format!(
                "events before {truncated} are gone but there is no signed truncation marker"
            ));
        };
        let cp = checkpoint::verify(marker, &signing.signer.verifier())
            .map_err(|_| "the truncation marker has no valid signature".to_owned())?;
        if cp.origin != truncation_origin(tenant) || cp.size as i64 != truncated {
            return Err(format!(
                "the truncation marker is for another log or point (signed for {} events, recorded {truncated})",
                cp.size
            ));
        }
        let frontier = parse_range(range)
            .ok_or_else(|| "the recorded compact range is unreadable".to_owned())?;
        if frontier.size() as i64 != truncated || frontier.root() != cp.root {
            return Err(
                "the recorded compact range does not match the signed truncation marker".into(),
            );
        }
        Ok(frontier)
    }

    /// Retention: removes events older than `cutoff_ms` from the start of the log, but only as
    /// far as a signed checkpoint reaches, and records a signed "truncated before N" marker so
    /// verification still passes. The expiry is itself an audit event. Returns the new point.
    pub async fn expire_log(&self, tenant: TenantId, cutoff_ms: i64) -> Result<Option<i64>> {
        let signing = self.audit_signing()?;
        let mut tx = self.store.tenant(tenant).begin().await?;
        let (truncated, range, _) = tx.audit_truncation().await?;
        let last_cp = tx
            .audit_checkpoints()
            .await?
            .last()
            .map(|c| c.size)
            .unwrap_or(0);
        let mut frontier = match (truncated, range.as_deref()) {
            (0, _) => merkle::Frontier::default(),
            (_, Some(r)) => {
                parse_range(r).ok_or_else(|| Error::internal("compact range unreadable"))?
            }
            (_, None) => return Err(Error::internal("truncation point without compact range")),
        };
        let mut point = truncated;
        let mut after = None;
        'scan: loop {
            let batch = tx
                .audit_events(after, 5000, &AuditFilter::default())
                .await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.seq);
            for r in batch {
                if r.at >= cutoff_ms || r.seq >= last_cp || r.seq != point {
                    break 'scan;
                }
                frontier.push(
                    <Hash>::try_from(r.leaf_hash.as_slice())
                        .map_err(|_| Error::internal("stored leaf hash has the wrong length"))?,
                );
                point += 1;
            }
        }
        if point == truncated {
            return Ok(None);
        }
        let note =
            signing
                .signer
                .sign(&truncation_origin(tenant), point as u64, &frontier.root())?;
        let range = serde_json::to_string(
            &frontier
                .compact_range()
                .iter()
                .map(|(n, h)| (n, hex::encode(h)))
                .collect::<Vec<_>>(),
        )
        .map_err(|_| Error::internal("compact range encoding"))?;
        let removed = tx.truncate_audit_log(point, &range, &note).await?;
        let keys = self.keys(&mut tx).await?;
        let ev = Event {
            action: "audit.expire",
            success: true,
            object_type: Some("audit_log"),
            object_id: None,
            details: json!({"truncated_before": point, "removed": removed}),
        };
        self.audit(&mut tx, &keys, "retention", &RequestContext::default(), ev)
            .await?;
        append_checkpoint_file(&signing.dir, tenant, point, &note)?;
        tx.commit().await?;
        Ok(Some(point))
    }

    /// Inclusion proof of event `seq` in the tree of size `size` (default: current size).
    pub async fn prove_inclusion(
        &self,
        tenant: TenantId,
        seq: i64,
        size: Option<i64>,
    ) -> Result<Value> {
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let size = size.unwrap_or(tx.audit_size().await?);
        let leaves = leaf_hashes(&mut tx, size).await?;
        let proof = merkle::inclusion_proof(&leaves, seq as u64)?;
        Ok(json!({
            "origin": origin(tenant), "index": seq, "tree_size": size,
            "leaf_hash": hex::encode(leaves.get(seq as usize).ok_or_else(Error::not_found)?),
            "root": hex::encode(merkle::root(&leaves)),
            "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        }))
    }

    /// Consistency proof between tree sizes `from` and `to`.
    pub async fn prove_consistency(&self, tenant: TenantId, from: i64, to: i64) -> Result<Value> {
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let leaves = leaf_hashes(&mut tx, to).await?;
        let proof = merkle::consistency_proof(&leaves, from as u64)?;
        Ok(json!({
            "origin": origin(tenant), "from": from, "to": to,
            "root_from": hex::encode(merkle::root(&leaves[..from as usize])),
            "root_to": hex::encode(merkle::root(&leaves)),
            "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        }))
    }
}

/// A standalone check needing no server: verifies checkpoint signatures with `vkey` and the
/// consistency of consecutive checkpoints given a proof source. Used by `kluis audit verify-checkpoints`.
pub fn verify_checkpoint_notes(vkey: &str, notes: &[String]) -> Result<Vec<(u64, Hash)>> {
    let verifier = CheckpointVerifier::from_vkey(vkey)
        .map_err(|_| Error::validation("vkey", "invalid_vkey", "not a verifier key"))?;
    let mut out = Vec::new();
    for n in notes {
        let cp = checkpoint::verify(n, &verifier).map_err(|_| {
            Error::new(
                ErrorKind::Validation,
                "checkpoint_invalid",
                "a checkpoint's signature does not verify",
            )
        })?;
        out.push((cp.size, cp.root));
    }
    Ok(out)
}

pub(crate) fn origin(tenant: TenantId) -> String {
    format!("kluis.audit/{}", tenant.0)
}

/// Origin line of truncation markers (distinct from checkpoints of the same log).
fn truncation_origin(tenant: TenantId) -> String {
    format!("kluis.audit/{}/truncated", tenant.0)
}

pub(crate) fn parse_range(json: &str) -> Option<merkle::Frontier> {
    let pairs: Vec<(u64, String)> = serde_json::from_str(json).ok()?;
    let mut range = Vec::with_capacity(pairs.len());
    for (n, h) in pairs {
        range.push((n, <Hash>::try_from(hex::decode(h).ok()?.as_slice()).ok()?));
    }
    merkle::Frontier::from_compact_range(range).ok()
}

/// Root of the first `size` events, continuing from the retention marker's compact range.
pub(crate) async fn tree_root(tx: &mut TenantTx, size: i64) -> Result<Hash> {
    let (truncated, range, _) = tx.audit_truncation().await?;
    let mut frontier = match (truncated, range.as_deref()) {
        (0, _) => merkle::Frontier::default(),
        (_, Some(r)) => {
            parse_range(r).ok_or_else(|| Error::internal("compact range unreadable"))?
        }
        (_, None) => return Err(Error::internal("truncation point without compact range")),
    };
    for leaf in stored_leaf_hashes(tx, size - truncated).await? {
        frontier.push(leaf);
    }
    Ok(frontier.root())
}

/// All leaf hashes of the first `size` events (for proofs). Not available once retention has
/// removed the start of the log: proofs then need the events' own export.
async fn leaf_hashes(tx: &mut TenantTx, size: i64) -> Result<Vec<Hash>> {
    let (truncated, _, _) = tx.audit_truncation().await?;
    if truncated > 0 {
        return Err(Error::new(
            ErrorKind::Conflict,
            "proof_unavailable",
            format!(
                "events before {truncated} have expired; proofs over them are no longer possible"
            ),
        ));
    }
    stored_leaf_hashes(tx, size).await
}

/// The leaf hashes of the first `count` events still stored, in sequence order.
async fn stored_leaf_hashes(tx: &mut TenantTx, count: i64) -> Result<Vec<Hash>> {
    let mut leaves = Vec::new();
    let mut after = None;
    while (leaves.len() as i64) < count {
        let batch = tx
            .audit_events(after, 5000, &AuditFilter::default())
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.seq);
        for r in batch.iter().take(
            usize::try_from(count)
                .unwrap_or(0)
                .saturating_sub(leaves.len()),
        ) {
            leaves.push(
                <Hash>::try_from(r.leaf_hash.as_slice())
                    .map_err(|_| Error::internal("stored leaf hash has the wrong length"))?,
            );
        }
    }
    if (leaves.len() as i64) < count {
        return Err(Error::validation(
            "size",
            "size_out_of_range",
            "the log is smaller than that",
        ));
    }
    Ok(leaves)
}

pub(crate) fn open_event(keys: &TenantKeys, r: AuditEventRow) -> Result<AuditEvent> {
    let plain = keys.open_retained("audit_events", "details", seq_record(r.seq), &r.details)?;
    Ok(AuditEvent {
        seq: r.seq,
        at: rfc3339(r.at),
        actor: r.actor,
        action: r.action,
        outcome: r.outcome,
        object_type: r.object_type,
        object_id: r.object_id,
        details: serde_json::from_slice(&plain)
            .map_err(|_| Error::internal("audit details unreadable"))?,
        leaf_hash: hex::encode(&r.leaf_hash),
    })
}

fn checkpoint_file(dir: &std::path::Path, tenant: TenantId) -> PathBuf {
    dir.join(format!("{}.checkpoints", tenant.0))
}

pub(crate) fn append_checkpoint_file(
    dir: &std::path::Path,
    tenant: TenantId,
    size: i64,
    note: &str,
) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let line = serde_json::to_string(&json!({"size": size, "note": note}))
        .map_err(|_| Error::internal("checkpoint encoding"))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(checkpoint_file(dir, tenant))
        .map_err(|e| Error::internal(format!("checkpoint file: {e}")))?;
    writeln!(f, "{line}")
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("checkpoint file: {e}")))
}

fn read_checkpoint_file(dir: &std::path::Path, tenant: TenantId) -> Result<Vec<(i64, String)>> {
    let path = checkpoint_file(dir, tenant);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::internal(format!("checkpoint file: {e}"))),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .map_err(|_| Error::internal("checkpoint file is corrupt"))?;
            Ok((
                v["size"].as_i64().unwrap_or(-1),
                v["note"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// Test hook, compiled into debug builds only: `KLUIS_FAILPOINT=after-audit:<action>` makes
/// the request fail right after its data and audit event were written, so tests can prove
/// that neither is committed without the other.
fn failpoint(action: &str) -> Result<()> {
    if cfg!(debug_assertions)
        && std::env::var("KLUIS_FAILPOINT")
            .is_ok_and(|f| f.strip_prefix("after-audit:") == Some(action))
    {
        return Err(Error::internal("failpoint"));
    }
    Ok(())
}

/// Test hook (debug builds only): `KLUIS_FAILPOINT=reencrypt-abort` stops a re-encryption after
/// its first committed batch, as a crash would, so tests can prove it resumes.
pub(crate) fn failpoint_after_batch() -> Result<()> {
    if cfg!(debug_assertions)
        && std::env::var("KLUIS_FAILPOINT").is_ok_and(|f| f == "reencrypt-abort")
    {
        return Err(Error::internal("failpoint: re-encryption aborted"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spliced encoding verification uses is byte for byte the canonical one.
    #[test]
    fn leaf_prefix_matches_canonical_encoding() {
        let tenant = TenantId(Uuid::now_v7());
        let head = leaf_head(tenant).unwrap();
        for (object_type, object_id, actor) in [
            (None, None, "console"),
            (Some("user"), Some("0193"), "user:x \"quoted\" \\ \u{1} é ✓"),
            (Some("a\nb"), None, "\u{7f}\u{2028}"),
        ] {
            let details = json!({"z": 1, "a": {"x": "<>&'\"", "n": null}, "ip": "203.0.113.7"});
            let row = AuditEventRow {
                seq: 42,
                at: -7,
                actor: actor.into(),
                action: "user.update".into(),
                outcome: "success".into(),
                object_type: object_type.map(str::to_owned),
                object_id: object_id.map(str::to_owned),
                details: Vec::new(),
                leaf_hash: Vec::new(),
            };
            let mut spliced = Vec::new();
            leaf_prefix(&mut spliced, &head, &row.as_ref()).unwrap();
            spliced.extend_from_slice(&serde_json::to_vec(&details).unwrap());
            spliced.push(b'}');
            assert_eq!(spliced, leaf_bytes(tenant, &row, &details).unwrap());
        }
    }
}
