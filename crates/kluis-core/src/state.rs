//! State verification: the audit log vouches for the data, not only for itself.
//!
//! Every successful event about a CRM record or a user carries `state`: a keyed digest
//! (HMAC-SHA256 under the tenant's index key, see `kluis_crypto::blind_index::state_digest`)
//! of the state the change left behind, or `null` when the object is gone. Updates also carry
//! `version`: the digest of the version row they kept. The digests cover the personal data
//! (the *plaintext* of the sealed fields, so re-encryption under a new data key changes
//! nothing) and what decides access and visibility: a record's revision and whether it is in
//! the trash; a user's email, name, role, status and password hash. Never plaintext, and not
//! guessable without the tenant's key.
//!
//! [`Kluis::verify_state`] replays the log (the newest event per object wins) and compares it
//! with every row of `crm_records` (live and trash), `crm_versions` and `users`: a row without
//! an event (insert), with another digest (update), or an event whose row is gone (delete)
//! is reported with table and id. Events written by an older version without digests make
//! their objects "legacy" (counted, not checked); objects changed while the check ran are
//! skipped (counted).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit::Event;
use crate::db::rows::{AuditEventRef, UserRow};
use crate::db::{AuditVisitor, TenantTx};
use crate::keys::TenantKeys;
use crate::{Kluis, Result, TenantId};

/// Object types of CRM record events.
pub(crate) const RECORD_TYPES: [&str; 6] = ["contact", "company", "deal", "ticket", "note", "task"];

pub(crate) type Digest = [u8; 32];

pub(crate) fn record_digest(
    keys: &TenantKeys,
    id: Uuid,
    revision: i64,
    deleted: bool,
    plain_fields: &[u8],
) -> Digest {
    keys.state_digest(
        "crm_records",
        &[
            id.as_bytes(),
            &revision.to_be_bytes(),
            &[u8::from(deleted)],
            plain_fields,
        ],
    )
}

pub(crate) fn version_digest(keys: &TenantKeys, id: Uuid, revision: i64, plain: &[u8]) -> Digest {
    keys.state_digest(
        "crm_versions",
        &[id.as_bytes(), &revision.to_be_bytes(), plain],
    )
}

pub(crate) fn user_digest(keys: &TenantKeys, row: &UserRow) -> Result<Digest> {
    let email = keys.open("users", "email", row.id.0, &row.email)?;
    let name = keys.open("users", "display_name", row.id.0, &row.display_name)?;
    Ok(keys.state_digest(
        "users",
        &[
            row.id.0.as_bytes(),
            &email,
            &name,
            row.role.as_str().as_bytes(),
            row.status.as_str().as_bytes(),
            // The hash inside, not its sealed form: re-sealing under a new data key changes
            // nothing here (plain hashes from before sealing digest the same).
            Kluis::password_phc(keys, row.id.0, row.password_hash.as_deref())?.as_bytes(),
        ],
    ))
}

fn record_row_digest(
    keys: &TenantKeys,
    id: Uuid,
    revision: i64,
    deleted: bool,
    sealed: &[u8],
) -> Result<Digest> {
    let plain = keys.open("crm_records", "fields", id, sealed)?;
    Ok(record_digest(keys, id, revision, deleted, &plain))
}

impl Kluis {
    /// Adds `state` to every successful record or user event that does not carry it yet, read
    /// from the row inside the event's own transaction (after the change).
    pub(crate) async fn attach_state(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        evs: &mut [Event<'_>],
    ) -> Result<()> {
        for ev in evs.iter_mut() {
            let (Some(ty), Some(oid)) = (ev.object_type, ev.object_id.as_deref()) else {
                continue;
            };
            if !ev.success || !ev.details.is_object() || ev.details.get("state").is_some() {
                continue;
            }
            let is_record = RECORD_TYPES.contains(&ty);
            if !is_record && ty != "user" {
                continue;
            }
            let Ok(id) = Uuid::parse_str(oid) else {
                continue;
            };
            // A row that does not open (a disabled key version) gets no digest rather than
            // failing the change: verification then counts it as legacy.
            let digest = if is_record {
                match tx.any_record(kluis_types::RecordId(id)).await? {
                    Some(r) => {
                        match record_row_digest(
                            keys,
                            id,
                            r.revision,
                            r.deleted_at.is_some(),
                            &r.fields,
                        ) {
                            Ok(d) => Some(d),
                            Err(_) => continue,
                        }
                    }
                    None => None,
                }
            } else {
                match tx.user(kluis_types::UserId(id)).await? {
                    Some(u) => match user_digest(keys, &u) {
                        Ok(d) => Some(d),
                        Err(_) => continue,
                    },
                    None => None,
                }
            };
            ev.details["state"] = json!(digest.map(hex::encode));
        }
        Ok(())
    }
}

/// What the newest event says about an object.
#[derive(Clone, Copy)]
enum Seen {
    State(Digest),
    Gone,
    /// Written before events carried digests.
    Legacy,
}

#[derive(Deserialize)]
struct StateDetails {
    #[serde(default)]
    state: Option<Value>,
    #[serde(default)]
    version: Option<VersionDetails>,
    /// The change removed every earlier version (anonymisation by retention).
    #[serde(default)]
    versions_dropped: bool,
}

#[derive(Deserialize)]
struct VersionDetails {
    revision: i64,
    state: String,
}

fn parse_digest(v: &str) -> Option<Digest> {
    hex::decode(v).ok()?.try_into().ok()
}

/// Replays events into the expected state.
#[derive(Default)]
struct Expected {
    records: HashMap<Uuid, Seen>,
    users: HashMap<Uuid, Seen>,
    versions: HashMap<Uuid, Vec<(i64, Digest)>>,
    legacy_records: HashSet<Uuid>,
    events: i64,
    unreadable: Vec<(i64, String)>,
}

struct Collector {
    keys: Arc<TenantKeys>,
    exp: Expected,
    /// Relevant events not yet applied: (seq, object id, is a record, sealed details).
    pending: Vec<(i64, Uuid, bool, Vec<u8>)>,
}

/// Events decrypted per parallel batch.
const STATE_BATCH: usize = 4096;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Runs `f` over `items` on up to [`threads`] threads, results in input order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let n = threads();
    if n < 2 || items.len() < 64 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(n);
    std::thread::scope(|sc| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| sc.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

impl Collector {
    fn flush(&mut self) {
        let keys = &self.keys;
        let opened = par_map(&self.pending, |(seq, _, _, sealed)| {
            keys.open_retained(
                "audit_events",
                "details",
                Uuid::from_u64_pair(0, *seq as u64),
                sealed,
            )
            .ok()
            .and_then(|p| serde_json::from_slice::<StateDetails>(&p).ok())
        });
        let pending = std::mem::take(&mut self.pending);
        for ((seq, id, is_record, _), d) in pending.into_iter().zip(opened) {
            self.apply(seq, id, is_record, d);
        }
    }

    fn apply(&mut self, seq: i64, id: Uuid, is_record: bool, d: Option<StateDetails>) {
        let Some(d) = d else {
            self.exp
                .unreadable
                .push((seq, "audit event details do not open".into()));
            return;
        };
        let seen = match &d.state {
            None => Seen::Legacy,
            Some(Value::Null) => Seen::Gone,
            Some(Value::String(s)) => match parse_digest(s) {
                Some(x) => Seen::State(x),
                None => Seen::Legacy,
            },
            Some(_) => Seen::Legacy,
        };
        if is_record {
            if matches!(seen, Seen::Legacy) {
                self.exp.legacy_records.insert(id);
            }
            if matches!(seen, Seen::Gone) || d.versions_dropped {
                self.exp.versions.remove(&id);
            }
            if let Some(v) = d.version
                && let Some(x) = parse_digest(&v.state)
            {
                let list = self.exp.versions.entry(id).or_default();
                list.retain(|(r, _)| *r != v.revision);
                list.push((v.revision, x));
            }
            self.exp.records.insert(id, seen);
        } else {
            self.exp.users.insert(id, seen);
        }
    }
}

impl AuditVisitor for Collector {
    fn visit(&mut self, e: AuditEventRef<'_>) -> bool {
        self.exp.events += 1;
        let (Some(ty), Some(oid)) = (e.object_type, e.object_id) else {
            return true;
        };
        let is_record = RECORD_TYPES.contains(&ty);
        if e.outcome != "success" || !(is_record || ty == "user") {
            return true;
        }
        let Ok(id) = Uuid::parse_str(oid) else {
            return true;
        };
        self.pending
            .push((e.seq, id, is_record, e.details.to_vec()));
        if self.pending.len() >= STATE_BATCH {
            self.flush();
        }
        true
    }
}

/// Ids touched by events after a point (changed while the check ran).
struct Touched {
    ids: HashSet<Uuid>,
}

impl AuditVisitor for Touched {
    fn visit(&mut self, e: AuditEventRef<'_>) -> bool {
        if let Some(id) = e.object_id.and_then(|o| Uuid::parse_str(o).ok()) {
            self.ids.insert(id);
        }
        true
    }
}

/// The outcome of [`Kluis::verify_state`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StateReport {
    pub tenant: TenantId,
    pub events: i64,
    /// Rows compared (records include the trash).
    pub records: u64,
    pub versions: u64,
    pub users: u64,
    /// Objects whose events predate state digests, or whose events expired: not checked.
    pub legacy: u64,
    /// Objects changed while the check ran: not checked this time.
    pub concurrent: u64,
    /// Whether only a sample was checked (then deletions are not looked for).
    pub sampled: bool,
    /// Each problem names the table and the id.
    pub problems: Vec<String>,
}

impl Kluis {
    /// Verifies that the database state is what the audit log says (see the module docs).
    /// `sample`: check only about that many records and users, each against its newest event
    /// (found through the object index), instead of replaying the whole log; a sample cannot
    /// see deletions.
    pub async fn verify_state(&self, tenant: TenantId, sample: Option<u64>) -> Result<StateReport> {
        if let Some(n) = sample {
            return self.verify_state_sample(tenant, n).await;
        }
        let mut report = StateReport {
            tenant,
            ..Default::default()
        };
        let mut tx = self.store.tenant(tenant).begin_snapshot().await?;
        let keys = self.keys(&mut tx).await?;
        let head = tx.audit_size().await?;
        let (truncated, _, _) = tx.audit_truncation().await?;
        let c = tx
            .scan_audit_events(
                truncated,
                Collector {
                    keys: keys.clone(),
                    exp: Expected::default(),
                    pending: Vec::with_capacity(STATE_BATCH),
                },
            )
            .await?;
        drop(tx);
        let mut c = c;
        c.flush();
        let mut exp = c.exp;
        report.events = exp.events;
        for (seq, why) in exp.unreadable.drain(..) {
            report
                .problems
                .push(format!("audit_events seq {seq}: {why}"));
        }
        // Rows without events are legacy only if the log lost its start to retention.
        let expired = truncated > 0;
        let mut rows_seen: Vec<(&'static str, Uuid, Option<String>)> = Vec::new();

        // Records, live and in the trash.
        let mut after = None;
        loop {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            let batch = tx.record_state_batch(after, 2000).await?;
            drop(tx);
            let Some(last) = batch.last() else { break };
            after = Some(last.0);
            let digests = par_map(&batch, |(id, revision, deleted_at, sealed)| {
                record_row_digest(&keys, id.0, *revision, deleted_at.is_some(), sealed)
            });
            for ((id, _, deleted_at, _), actual) in batch.into_iter().zip(digests) {
                report.records += 1;
                let id = id.0;
                let table = if deleted_at.is_some() {
                    "crm_records (trash)"
                } else {
                    "crm_records"
                };
                let problem = match (exp.records.remove(&id), actual) {
                    (_, Err(_)) => Some("its fields do not decrypt (altered outside Kluis)"),
                    (Some(Seen::State(want)), Ok(got)) if want == got => None,
                    (Some(Seen::State(_)), Ok(_)) => {
                        Some("differs from its newest audit event (changed outside Kluis)")
                    }
                    (Some(Seen::Gone), Ok(_)) => Some(
                        "exists although its newest audit event removed it (inserted outside Kluis)",
                    ),
                    (Some(Seen::Legacy), Ok(_)) => {
                        report.legacy += 1;
                        None
                    }
                    (None, Ok(_)) if expired => {
                        report.legacy += 1;
                        None
                    }
                    (None, Ok(_)) => Some("has no audit event (inserted outside Kluis)"),
                };
                if let Some(p) = problem {
                    rows_seen.push((table, id, Some(p.to_owned())));
                }
            }
        }
        for (id, seen) in exp.records.drain() {
            if matches!(seen, Seen::State(_)) {
                rows_seen.push((
                    "crm_records",
                    id,
                    Some("is missing although its newest audit event left it in place (deleted outside Kluis)".into()),
                ));
            }
        }

        // Versions.
        let mut after = None;
        loop {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            let batch = tx.version_fields_batch(after, 2000).await?;
            drop(tx);
            let Some(last) = batch.last() else { break };
            after = Some((last.0, last.1));
            for (id, revision, sealed) in batch {
                report.versions += 1;
                let id = id.0;
                let want = exp.versions.get_mut(&id).and_then(|l| {
                    l.iter()
                        .position(|(r, _)| *r == revision)
                        .map(|i| l.swap_remove(i).1)
                });
                let actual = self
                    .open_version_plain(&keys, id, &sealed)
                    .map(|p| version_digest(&keys, id, revision, &p));
                let problem = match (want, actual) {
                    (_, Err(_)) => Some("does not decrypt (altered outside Kluis)"),
                    (Some(w), Ok(g)) if w == g => None,
                    (Some(_), Ok(_)) => {
                        Some("differs from the audit event that kept it (changed outside Kluis)")
                    }
                    (None, Ok(_)) if expired || exp.legacy_records.contains(&id) => {
                        report.legacy += 1;
                        None
                    }
                    (None, Ok(_)) => Some("has no audit event (inserted outside Kluis)"),
                };
                if let Some(p) = problem {
                    rows_seen.push(("crm_versions", id, Some(format!("revision {revision} {p}"))));
                }
            }
        }
        for (id, list) in exp.versions.drain() {
            for (revision, _) in list {
                rows_seen.push((
                    "crm_versions",
                    id,
                    Some(format!(
                        "revision {revision} is missing although an audit event kept it (deleted outside Kluis)"
                    )),
                ));
            }
        }

        // Users.
        let mut after = None;
        loop {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            let batch = tx.list_users(after, 500).await?;
            drop(tx);
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            for u in batch {
                report.users += 1;
                let id = u.id.0;
                let problem = match (exp.users.remove(&id), user_digest(&keys, &u)) {
                    (_, Err(_)) => Some("does not decrypt (altered outside Kluis)"),
                    (Some(Seen::State(w)), Ok(g)) if w == g => None,
                    (Some(Seen::State(_)), Ok(_)) => {
                        Some("differs from its newest audit event (changed outside Kluis)")
                    }
                    (Some(Seen::Gone), Ok(_)) => Some(
                        "exists although its newest audit event removed it (inserted outside Kluis)",
                    ),
                    (Some(Seen::Legacy), Ok(_)) => {
                        report.legacy += 1;
                        None
                    }
                    (None, Ok(_)) if expired => {
                        report.legacy += 1;
                        None
                    }
                    (None, Ok(_)) => Some("has no audit event (inserted outside Kluis)"),
                };
                if let Some(p) = problem {
                    rows_seen.push(("users", id, Some(p.to_owned())));
                }
            }
        }
        for (id, seen) in exp.users.drain() {
            if matches!(seen, Seen::State(_)) {
                rows_seen.push((
                    "users",
                    id,
                    Some("is missing although its newest audit event left it in place (deleted outside Kluis)".into()),
                ));
            }
        }

        // Whatever changed while we looked is not a finding: the events after `head` say so.
        let touched = if rows_seen.is_empty() {
            HashSet::new()
        } else {
            let mut tx = self.store.tenant(tenant).begin_snapshot().await?;
            tx.scan_audit_events(
                head,
                Touched {
                    ids: HashSet::new(),
                },
            )
            .await?
            .ids
        };
        for (table, id, p) in rows_seen {
            if touched.contains(&id) {
                report.concurrent += 1;
                continue;
            }
            if let Some(p) = p {
                report.problems.push(format!("{table} {id}: {p}"));
            }
        }
        report.problems.sort();
        Ok(report)
    }

    fn open_version_plain(&self, keys: &TenantKeys, id: Uuid, sealed: &[u8]) -> Result<Vec<u8>> {
        keys.open("crm_versions", "fields", id, sealed)
    }

    /// Up to `n` records and `n` users from a random point, each against its newest event.
    async fn verify_state_sample(&self, tenant: TenantId, n: u64) -> Result<StateReport> {
        let mut report = StateReport {
            tenant,
            sampled: true,
            ..Default::default()
        };
        let n = i64::try_from(n.max(1)).unwrap_or(i64::MAX);
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let (truncated, _, _) = tx.audit_truncation().await?;
        let start = kluis_types::RecordId(Uuid::new_v4());
        let mut rows = tx.record_state_batch(Some(start), n).await?;
        if (rows.len() as i64) < n {
            rows.extend(tx.record_state_batch(None, n - rows.len() as i64).await?);
            rows.dedup_by_key(|r| r.0);
        }
        for (id, revision, deleted_at, sealed) in rows {
            report.records += 1;
            let id = id.0;
            let actual = record_row_digest(&keys, id, revision, deleted_at.is_some(), &sealed);
            let seen = self.newest_seen(&mut tx, &keys, id).await?;
            if let Some(p) = judge(seen, actual, truncated > 0, &mut report) {
                report.problems.push(format!("crm_records {id}: {p}"));
            }
        }
        let users = tx.list_users(None, n).await?;
        for u in users {
            report.users += 1;
            let id = u.id.0;
            let seen = self.newest_seen(&mut tx, &keys, id).await?;
            if let Some(p) = judge(seen, user_digest(&keys, &u), truncated > 0, &mut report) {
                report.problems.push(format!("users {id}: {p}"));
            }
        }
        Ok(report)
    }

    async fn newest_seen(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        id: Uuid,
    ) -> Result<Option<Seen>> {
        let Some(e) = tx.latest_audit_event_for(&id.to_string()).await? else {
            return Ok(None);
        };
        let d: Option<StateDetails> = keys
            .open_retained(
                "audit_events",
                "details",
                Uuid::from_u64_pair(0, e.seq as u64),
                &e.details,
            )
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok());
        Ok(Some(match d.and_then(|d| d.state) {
            None => Seen::Legacy,
            Some(Value::Null) => Seen::Gone,
            Some(Value::String(s)) => parse_digest(&s).map_or(Seen::Legacy, Seen::State),
            Some(_) => Seen::Legacy,
        }))
    }
}

fn judge(
    seen: Option<Seen>,
    actual: Result<Digest>,
    expired: bool,
    report: &mut StateReport,
) -> Option<&'static str> {
    match (seen, actual) {
        (_, Err(_)) => Some("does not decrypt (altered outside Kluis)"),
        (Some(Seen::State(w)), Ok(g)) if w == g => None,
        (Some(Seen::State(_)), Ok(_)) => {
            Some("differs from its newest audit event (changed outside Kluis)")
        }
        (Some(Seen::Gone), Ok(_)) => {
            Some("exists although its newest audit event removed it (inserted outside Kluis)")
        }
        (Some(Seen::Legacy), Ok(_)) | (None, Ok(_)) if expired => {
            report.legacy += 1;
            None
        }
        (Some(Seen::Legacy), Ok(_)) => {
            report.legacy += 1;
            None
        }
        (None, Ok(_)) => Some("has no audit event (inserted outside Kluis)"),
    }
}
