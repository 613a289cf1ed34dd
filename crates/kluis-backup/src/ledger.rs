//! The key ledger: tenant root keys (already wrapped by the KEK) copied into the repository as
//! MUTABLE objects `ledger/<tenant>.key`, outside every generation.
//!
//! Database backups never contain root keys (they live outside the database); a restore takes
//! them from the ledger only. Shredding a tenant deletes its ledger entry, so restoring any
//! backup, however old, cannot bring the key back and the tenant's data stays unreadable.
//!
//! Deletion is driven by tombstones: the installation marks a shredded tenant with
//! `<tenant>.shredded` next to its (destroyed) key file, and [`sync`] deletes the ledger entry
//! of every tombstoned tenant. A key file that is merely missing locally never deletes its
//! ledger copy: losing the local key directory must not destroy the backups' only copy.

use std::path::Path;

use crate::{BackupError, Repo, RepoError};

pub const LEDGER_PREFIX: &str = "ledger/";
const TOMBSTONE: &str = ".shredded";

fn is_tenant_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerSync {
    pub copied: Vec<String>,
    pub forgotten: Vec<String>,
}

/// Marks `tenant` shredded in the local key directory (called when its root key is destroyed).
pub fn tombstone(dir: &Path, tenant: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join(format!("{tenant}{TOMBSTONE}")))
        .and_then(|f| f.sync_all())
}

/// Copies new or changed root keys from `dir` into the ledger and deletes the entries of
/// tombstoned tenants.
pub async fn sync(repo: &Repo, dir: &Path) -> Result<LedgerSync, BackupError> {
    sync_cached(repo, dir, &mut std::collections::HashMap::new()).await
}

/// [`sync`] remembering what it stored (`cache`: tenant -> bytes last written), so a caller
/// that syncs often (the shipper) reads the repository only for changed keys.
pub async fn sync_cached(
    repo: &Repo,
    dir: &Path,
    cache: &mut std::collections::HashMap<String, Vec<u8>>,
) -> Result<LedgerSync, BackupError> {
    let mut out = LedgerSync::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    let mut keys = Vec::new();
    let mut shredded = Vec::new();
    for e in entries {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some(t) = name.strip_suffix(".key").filter(|t| is_tenant_id(t)) {
            keys.push(t.to_owned());
        } else if let Some(t) = name.strip_suffix(TOMBSTONE).filter(|t| is_tenant_id(t)) {
            shredded.push(t.to_owned());
        }
    }
    for t in keys {
        if shredded.contains(&t) {
            continue;
        }
        let local = std::fs::read(dir.join(format!("{t}.key")))?;
        if cache.get(&t) == Some(&local) {
            continue;
        }
        let name = format!("{LEDGER_PREFIX}{t}.key");
        let same = match repo.get(&name).await {
            Ok(b) => b == local,
            Err(RepoError::NotFound(_)) => false,
            Err(e) => return Err(e.into()),
        };
        if !same {
            repo.put_mutable(&name, local.clone()).await?;
            out.copied.push(t.clone());
        }
        cache.insert(t, local);
    }
    for t in shredded {
        cache.remove(&t);
        let seen = format!("!{t}");
        if cache.contains_key(&seen) {
            continue;
        }
        let forgot = forget(repo, &t).await?;
        cache.insert(seen, Vec::new());
        if forgot {
            out.forgotten.push(t);
        }
    }
    Ok(out)
}

/// Deletes a tenant's ledger entry and leaves a marker (no key material) saying the tenant
/// was shredded on purpose, so a restore can re-apply the shred instead of reporting a lost
/// key. False if there was no entry.
pub async fn forget(repo: &Repo, tenant: &str) -> Result<bool, BackupError> {
    let marker = format!("{LEDGER_PREFIX}{tenant}{TOMBSTONE}");
    if matches!(repo.get(&marker).await, Err(RepoError::NotFound(_))) {
        let when = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        repo.put_mutable(&marker, when.into_bytes()).await?;
    }
    match repo.delete(&format!("{LEDGER_PREFIX}{tenant}.key")).await {
        Ok(()) => Ok(true),
        Err(RepoError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Tenants the ledger records as shredded.
pub async fn shredded(repo: &Repo) -> Result<Vec<String>, BackupError> {
    Ok(repo
        .list(LEDGER_PREFIX)
        .await?
        .into_iter()
        .filter_map(|o| {
            o.name
                .strip_prefix(LEDGER_PREFIX)
                .and_then(|n| n.strip_suffix(TOMBSTONE))
                .filter(|t| is_tenant_id(t))
                .map(str::to_owned)
        })
        .collect())
}

/// Writes every ledger key into `dir` (mode 0600) that is not there yet; never writes a key
/// the ledger does not have. Returns the tenants written.
pub async fn restore_keys(repo: &Repo, dir: &Path) -> Result<Vec<String>, BackupError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let gone = shredded(repo).await?;
    let mut out = Vec::new();
    for o in repo.list(LEDGER_PREFIX).await? {
        let Some(t) = o
            .name
            .strip_prefix(LEDGER_PREFIX)
            .and_then(|n| n.strip_suffix(".key"))
            .filter(|t| is_tenant_id(t))
        else {
            continue;
        };
        if gone.iter().any(|g| g == t) || dir.join(format!("{t}{TOMBSTONE}")).exists() {
            continue;
        }
        let path = dir.join(format!("{t}.key"));
        if path.exists() {
            continue;
        }
        let bytes = repo.get(&o.name).await?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        out.push(t.to_owned());
    }
    Ok(out)
}
