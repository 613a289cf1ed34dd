//! Keeping the unsigned tail of every audit log small, and what witnesses hold.
//!
//! A checkpoint only protects the events it covers: someone who can write to the database can
//! remove events after the last signed (and witnessed) checkpoint without a trace. So this
//! process remembers which logs it appended to since their last checkpoint ([`Pending`]), and
//! the server's checkpoint loop signs them a few seconds after the head moved, at once after a
//! bulk operation or N events, and at shutdown (every CLI command too, on exit). Roots are
//! computed incrementally from the last checkpoint this process signed, so a short timer does
//! not re-read the whole log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use kluis_crypto::checkpoint::{self, CosignatureVerifier};
use kluis_crypto::merkle::{self, Hash};
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{append_checkpoint_file, origin, parse_range};
use crate::db::TenantTx;
use crate::{Actor, Error, ErrorKind, Kluis, Permission, Result, TenantId};

/// Logs this process appended to that no checkpoint covers yet.
pub struct Pending {
    state: Mutex<PendingState>,
    wake: tokio::sync::Notify,
    /// Sign as soon as a log has this many unsigned events (the per-N rule).
    every: AtomicI64,
}

#[derive(Default)]
struct PendingState {
    /// tenant -> (log size after this process's newest append, when the oldest unsigned
    /// append happened (ms), sign at once).
    logs: HashMap<TenantId, (i64, i64, bool)>,
    /// tenant -> the tree as of the last checkpoint signed here (incremental roots).
    frontiers: HashMap<TenantId, merkle::Frontier>,
    /// tenant -> size of the last checkpoint known here.
    signed: HashMap<TenantId, i64>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            state: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            every: AtomicI64::new(1000),
        }
    }
}

impl Pending {
    /// Called after events up to (not including) `end` were written (not yet committed).
    pub(crate) fn appended(&self, tenant: TenantId, end: i64, now: i64) {
        let every = self.every.load(Ordering::Relaxed);
        let Ok(mut s) = self.state.lock() else { return };
        let signed = s.signed.get(&tenant).copied().unwrap_or(0);
        let e = s.logs.entry(tenant).or_insert((end, now, false));
        e.0 = e.0.max(end);
        let due = e.0 - signed >= every && !e.2;
        e.2 |= due;
        drop(s);
        if due {
            self.wake.notify_one();
        }
    }

    /// A bulk operation finished: sign this log now.
    pub(crate) fn urgent(&self, tenant: TenantId, now: i64) {
        if let Ok(mut s) = self.state.lock() {
            let e = s.logs.entry(tenant).or_insert((0, now, true));
            e.2 = true;
        }
        self.wake.notify_one();
    }
}

/// A checkpoint signed by [`Kluis::sign_pending_checkpoints`].
#[derive(Debug, Clone)]
pub struct Signed {
    pub tenant: TenantId,
    pub size: i64,
    pub note: String,
}

/// The latest checkpoint of a tenant's log with what witnesses cosigned of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LatestCheckpoint {
    /// The log's origin line, `kluis.audit/<tenant id>`.
    pub origin: String,
    /// Events the checkpoint covers.
    pub size: i64,
    /// The signed note (C2SP signed-note): the server's signature and, after it, every
    /// witness cosignature (C2SP `cosignature/v1`) gathered for this size.
    pub checkpoint: String,
    /// The server's verifier key (C2SP vkey).
    pub verifier_key: String,
    /// Names of the witnesses whose cosignature the note carries.
    pub witnesses: Vec<String>,
}

/// The unsigned tail of a log as the database shows it.
#[derive(Debug, Clone, Serialize)]
pub struct UnsignedTail {
    pub events: i64,
    /// Age of the oldest event no checkpoint covers (ms), if any.
    pub oldest_age_ms: Option<i64>,
}

impl Kluis {
    /// The per-N rule: sign as soon as a log has this many unsigned events.
    pub fn set_checkpoint_every(&self, events: u64) {
        self.audit_pending.every.store(
            i64::try_from(events.max(1)).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Asks for a checkpoint of `tenant`'s log now (after a bulk operation). Without a running
    /// checkpoint loop, the next [`Kluis::sign_pending_checkpoints`] (every command's exit)
    /// signs it.
    pub(crate) fn checkpoint_soon(&self, tenant: TenantId) {
        self.audit_pending.urgent(tenant, self.now());
    }

    /// Waits until a log is due (N events or a bulk operation) or `idle` has passed.
    pub async fn wait_checkpoint_due(&self, idle: Duration) {
        let _ = tokio::time::timeout(idle, self.audit_pending.wake.notified()).await;
    }

    /// Signs a checkpoint of every log this process appended to that is due: its oldest
    /// unsigned event is at least `min_age` old, it reached the per-N rule, or a bulk
    /// operation asked. `min_age` zero: every pending log (shutdown).
    pub async fn sign_pending_checkpoints(&self, min_age: Duration) -> Vec<Signed> {
        if self.audit_signing.is_none() {
            return Vec::new();
        }
        let now = self.now();
        let min_age = i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
        let due: Vec<(TenantId, i64, i64)> = match self.audit_pending.state.lock() {
            Ok(s) => s
                .logs
                .iter()
                .filter(|(_, (_, since, urgent))| *urgent || now - since >= min_age)
                .map(|(t, (end, since, _))| (*t, *end, *since))
                .collect(),
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for (tenant, end, since) in due {
            match self.sign_checkpoint(tenant).await {
                Ok((size, note)) => {
                    if let Ok(mut s) = self.audit_pending.state.lock() {
                        // The per-N rule counts from this attempt: a long transaction (an
                        // import) that is not committed yet wakes us every N events, not on
                        // every append.
                        let tried = s.signed.get(&tenant).copied().unwrap_or(0).max(end);
                        s.signed.insert(tenant, tried);
                        // Covered, or an append whose transaction never committed (its
                        // numbers are reused): drop it. Otherwise a newer append is pending.
                        let stale = now - since > 60_000;
                        if let Some(e) = s.logs.get(&tenant).copied()
                            && (e.0 <= size || (e.0 == end && stale))
                        {
                            s.logs.remove(&tenant);
                        } else if let Some(e) = s.logs.get_mut(&tenant) {
                            e.2 = false;
                        }
                    }
                    if let Some(note) = note {
                        out.push(Signed { tenant, size, note });
                    }
                }
                Err(e) => tracing::error!(tenant = %tenant, error = %e, "audit checkpoint failed"),
            }
        }
        out
    }

    /// Signs a checkpoint of the log's current head unless one of that size exists. Returns the
    /// head and the new note.
    pub(crate) async fn sign_checkpoint(&self, tenant: TenantId) -> Result<(i64, Option<String>)> {
        let signing = self.audit_signing()?;
        let mut tx = self.store.tenant(tenant).begin().await?;
        let size = tx.audit_size().await?;
        let last = tx.last_audit_checkpoint().await?.map_or(0, |c| c.size);
        if let Ok(mut s) = self.audit_pending.state.lock() {
            s.signed.insert(tenant, last);
        }
        if size == 0 || size <= last {
            return Ok((size, None));
        }
        let root = self.incremental_root(&mut tx, tenant, size).await?;
        let note = signing.signer.sign(&origin(tenant), size as u64, &root)?;
        tx.insert_audit_checkpoint(size, &root, &note, self.now())
            .await?;
        // Outside the database first: if the append fails, the checkpoint is not recorded.
        append_checkpoint_file(&signing.dir, tenant, size, &note)?;
        tx.commit().await?;
        if let Ok(mut s) = self.audit_pending.state.lock() {
            s.signed.insert(tenant, size);
        }
        Ok((size, Some(note)))
    }

    /// Root of the first `size` events, continuing from the tree this process last computed
    /// for the log (or from its start / retention marker).
    pub(crate) async fn incremental_root(
        &self,
        tx: &mut TenantTx,
        tenant: TenantId,
        size: i64,
    ) -> Result<Hash> {
        let cached = self
            .audit_pending
            .state
            .lock()
            .ok()
            .and_then(|s| s.frontiers.get(&tenant).cloned())
            .filter(|f| f.size() as i64 <= size);
        let mut frontier = match cached {
            Some(f) => f,
            None => {
                let (truncated, range, _) = tx.audit_truncation().await?;
                match (truncated, range.as_deref()) {
                    (0, _) => merkle::Frontier::default(),
                    (_, Some(r)) => {
                        parse_range(r).ok_or_else(|| Error::internal("compact range unreadable"))?
                    }
                    (_, None) => {
                        return Err(Error::internal("truncation point without compact range"));
                    }
                }
            }
        };
        while (frontier.size() as i64) < size {
            let from = frontier.size() as i64;
            let batch = tx
                .audit_leaf_hashes(from, (size - from).min(10_000))
                .await?;
            if batch.is_empty() {
                return Err(Error::internal("audit log is shorter than its head"));
            }
            for (seq, leaf) in batch {
                if seq != frontier.size() as i64 {
                    return Err(Error::internal(format!(
                        "audit event {seq} out of sequence"
                    )));
                }
                frontier.push(
                    <Hash>::try_from(leaf.as_slice())
                        .map_err(|_| Error::internal("stored leaf hash has the wrong length"))?,
                );
            }
        }
        let root = frontier.root();
        if let Ok(mut s) = self.audit_pending.state.lock() {
            s.frontiers.insert(tenant, frontier);
        }
        Ok(root)
    }

    /// Events of the log no checkpoint covers, and the age of the oldest (for `kluis doctor`).
    pub async fn unsigned_tail(&self, tenant: TenantId) -> Result<UnsignedTail> {
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let size = tx.audit_size().await?;
        let last = tx.last_audit_checkpoint().await?.map_or(0, |c| c.size);
        let (truncated, _, _) = tx.audit_truncation().await?;
        let last = last.max(truncated);
        if size <= last {
            return Ok(UnsignedTail {
                events: 0,
                oldest_age_ms: None,
            });
        }
        let first = tx
            .audit_events(Some(last - 1), 1, &crate::db::rows::AuditFilter::default())
            .await?;
        Ok(UnsignedTail {
            events: size - last,
            oldest_age_ms: first.first().map(|e| self.now() - e.at),
        })
    }

    /// Records a witness's cosigned copy of a checkpoint (outside the database, next to the
    /// checkpoint file). Verifies the log signature and the cosignature first.
    pub fn record_cosignature(
        &self,
        tenant: TenantId,
        witness: &CosignatureVerifier,
        cosigned: &str,
    ) -> Result<()> {
        let signing = self.audit_signing()?;
        let cp = checkpoint::verify(cosigned, &signing.signer.verifier())
            .map_err(|_| Error::internal("cosigned checkpoint: log signature"))?;
        if cp.origin != origin(tenant) {
            return Err(Error::internal("cosigned checkpoint of another log"));
        }
        checkpoint::verify_cosignature(cosigned, witness)
            .map_err(|_| Error::internal("cosigned checkpoint: witness signature"))?;
        append_line(
            &cosigned_file(&signing.dir, tenant),
            &json!({"size": cp.size, "witness": witness.name(), "note": cosigned}),
        )
    }

    /// The latest checkpoint of the actor's log, with the witness cosignatures gathered for
    /// it, so a tenant's auditors can keep their own copies (`GET /api/v1/audit/checkpoint`).
    pub async fn latest_checkpoint(&self, actor: &Actor) -> Result<LatestCheckpoint> {
        actor.require(Permission::AuditRead)?;
        self.latest_checkpoint_of(actor.tenant()).await
    }

    pub async fn latest_checkpoint_of(&self, tenant: TenantId) -> Result<LatestCheckpoint> {
        let signing = self.audit_signing()?;
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let last = tx.last_audit_checkpoint().await?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "no_checkpoint",
                "no checkpoint has been signed yet",
            )
        })?;
        drop(tx);
        let mut note = last.note.clone();
        let mut witnesses = Vec::new();
        let mut lines: Vec<String> = Vec::new();
        for v in read_lines(&cosigned_file(&signing.dir, tenant))? {
            if v["size"].as_i64() != Some(last.size) {
                continue;
            }
            let (Some(w), Some(n)) = (v["witness"].as_str(), v["note"].as_str()) else {
                continue;
            };
            // Only the witness's lines of a note for exactly this checkpoint text.
            if !n.starts_with(&last.note) {
                continue;
            }
            for l in n[last.note.len()..].lines() {
                if !lines.iter().any(|x| x == l) {
                    lines.push(l.to_owned());
                }
            }
            if !witnesses.iter().any(|x| x == w) {
                witnesses.push(w.to_owned());
            }
        }
        for l in lines {
            note.push_str(&l);
            note.push('\n');
        }
        Ok(LatestCheckpoint {
            origin: origin(tenant),
            size: last.size,
            checkpoint: note,
            verifier_key: signing.signer.verifier().to_vkey(),
            witnesses,
        })
    }

    /// Checks the log against a checkpoint held outside (a witness's or a tenant's copy): it
    /// must be signed by this server's key, be of this log, not exceed the log (rollback) and
    /// have the root of the log's first `size` events (fork). Returns a reason on failure.
    pub async fn check_external_checkpoint(
        &self,
        tenant: TenantId,
        note: &str,
    ) -> Result<std::result::Result<u64, String>> {
        let signing = self.audit_signing()?;
        let cp = match checkpoint::verify(note, &signing.signer.verifier()) {
            Ok(cp) => cp,
            Err(_) => {
                return Ok(Err(
                    "the external checkpoint is not signed by this server's audit key".into(),
                ));
            }
        };
        if cp.origin != origin(tenant) {
            return Ok(Err(format!(
                "the external checkpoint is of another log ({})",
                cp.origin
            )));
        }
        let mut tx = self.store.tenant(tenant).begin_snapshot().await?;
        let head = tx.audit_size().await?;
        let size = i64::try_from(cp.size).unwrap_or(i64::MAX);
        if size > head {
            return Ok(Err(format!(
                "rolled back: a witnessed checkpoint covers {size} events but the log has {head}"
            )));
        }
        let (truncated, _, _) = tx.audit_truncation().await?;
        if size < truncated {
            return Ok(Ok(cp.size)); // older than retention: nothing left to compare
        }
        let root = crate::audit::tree_root(&mut tx, size).await?;
        if root != cp.root {
            return Ok(Err(format!(
                "forked: the first {size} events do not have the root the witnessed checkpoint signed"
            )));
        }
        Ok(Ok(cp.size))
    }
}

fn cosigned_file(dir: &std::path::Path, tenant: TenantId) -> std::path::PathBuf {
    dir.join(format!("{}.cosigned", tenant.0))
}

fn append_line(path: &std::path::Path, v: &Value) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let line = serde_json::to_string(v).map_err(|_| Error::internal("cosignature encoding"))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::internal(format!("cosignature file: {e}")))?;
    writeln!(f, "{line}")
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("cosignature file: {e}")))
}

fn read_lines(path: &std::path::Path) -> Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::internal(format!("cosignature file: {e}"))),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
