//! A backup repository in a local directory.
//!
//! Layout under the root (mode 0700):
//! - `objects/<name>`: the object's bytes. Locked objects are mode 0444, mutable ones 0600.
//! - `retention/<name>.until`: for locked objects, the retain-until moment (unix seconds),
//!   itself 0444. Written before the object appears, so an object never exists without its
//!   retention recorded (a crash in between leaves an orphan sidecar, replaced on the next put).
//! - `tmp/`: objects being written; a name appears only once complete (hard link, which
//!   refuses to replace an existing name, so "write once" holds even between processes).
//!
//! Honest limit: a local owner (or root) can `chmod` and delete anything here. Read-only
//! files and the recorded retention stop mistakes and any process that goes through this API
//! (prune, a bug, an operator's `kluis backup prune`), not an attacker with the account. For
//! protection against that, use S3 with Object Lock in compliance mode.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::repo::{ObjectInfo, RepoError, check_name};

/// A repository in a local directory.
#[derive(Debug, Clone)]
pub struct LocalRepo {
    root: PathBuf,
    /// Files and directories written since the last [`LocalRepo::flush`], not yet synced:
    /// syncing every 4 MiB object on its own ran at a third of the disk's streaming rate.
    unsynced: std::sync::Arc<std::sync::Mutex<Vec<PathBuf>>>,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> RepoError {
    RepoError::Io(format!("{what} {}: {e}", path.display()))
}

fn mkdir(path: &Path) -> Result<(), RepoError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io("creating", path, e))
}

fn sync_dir(path: &Path) -> Result<(), RepoError> {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", path, e))
}

impl LocalRepo {
    /// Opens (creating if needed) the repository at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RepoError> {
        let root = root.into();
        for sub in ["objects", "retention", "tmp"] {
            mkdir(&root.join(sub))?;
        }
        Ok(LocalRepo {
            root,
            unsynced: Default::default(),
        })
    }

    fn defer_sync(&self, paths: impl IntoIterator<Item = PathBuf>) {
        if let Ok(mut v) = self.unsynced.lock() {
            v.extend(paths);
        }
    }

    /// Makes every object written so far durable (data, retention records, directories).
    pub async fn flush(&self) -> Result<(), RepoError> {
        let pending = match self.unsynced.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => return Err(RepoError::Io("repository state poisoned".into())),
        };
        if pending.is_empty() {
            return Ok(());
        }
        blocking(move || {
            let mut dirs = std::collections::BTreeSet::new();
            for p in &pending {
                match std::fs::File::open(p) {
                    Ok(f) => f.sync_all().map_err(|e| io("syncing", p, e))?,
                    // Deleted meanwhile (pruned): nothing to make durable.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io("syncing", p, e)),
                }
                if let Some(d) = p.parent() {
                    dirs.insert(d.to_path_buf());
                }
            }
            for d in dirs {
                sync_dir(&d)?;
            }
            Ok(())
        })
        .await
    }

    /// The repository's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn object_path(&self, name: &str) -> PathBuf {
        self.root.join("objects").join(name)
    }

    fn sidecar_path(&self, name: &str) -> PathBuf {
        self.root.join("retention").join(format!("{name}.until"))
    }

    /// Writes `bytes` to a fresh temporary file with `mode` (synced if `sync`); returns its path.
    fn write_tmp(&self, bytes: &[u8], mode: u32, sync: bool) -> Result<PathBuf, RepoError> {
        let tmp = self
            .root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("creating", &tmp, e))?;
        f.write_all(bytes)
            .and_then(|_| if sync { f.sync_all() } else { Ok(()) })
            .map_err(|e| io("writing", &tmp, e))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io("chmod", &tmp, e))?;
        Ok(tmp)
    }

    fn retention_of(&self, name: &str) -> Result<Option<OffsetDateTime>, RepoError> {
        let path = self.sidecar_path(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => {
                let secs: i64 = s
                    .trim()
                    .parse()
                    .map_err(|_| RepoError::Io(format!("corrupt retention record for {name}")))?;
                OffsetDateTime::from_unix_timestamp(secs)
                    .map(Some)
                    .map_err(|_| RepoError::Io(format!("corrupt retention record for {name}")))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &path, e)),
        }
    }

    pub async fn put_locked(
        &self,
        name: &str,
        bytes: Vec<u8>,
        retain_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        check_name(name)?;
        let this = self.clone();
        let name = name.to_owned();
        blocking(move || this.put_locked_sync(&name, &bytes, retain_until)).await
    }

    fn put_locked_sync(
        &self,
        name: &str,
        bytes: &[u8],
        retain_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let dst = self.object_path(name);
        if dst.symlink_metadata().is_ok() {
            return Err(RepoError::Exists(name.to_owned()));
        }
        if let Some(parent) = dst.parent() {
            mkdir(parent)?;
        }
        let side = self.sidecar_path(name);
        if let Some(parent) = side.parent() {
            mkdir(parent)?;
        }
        // Retention first (see the module note); an orphan sidecar from a crash is replaced.
        // Synced at once: after a crash, an object must never outlive its retention record
        // (an unreadable record refuses deletion anyway).
        let stamp = self.write_tmp(
            retain_until.unix_timestamp().to_string().as_bytes(),
            0o444,
            true,
        )?;
        std::fs::rename(&stamp, &side).map_err(|e| io("recording retention of", &side, e))?;
        let tmp = self.write_tmp(bytes, 0o444, false)?;
        let linked = std::fs::hard_link(&tmp, &dst);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RepoError::Exists(name.to_owned()));
            }
            Err(e) => return Err(io("storing", &dst, e)),
        }
        self.defer_sync([dst, side]);
        Ok(())
    }

    pub async fn put_mutable(&self, name: &str, bytes: Vec<u8>) -> Result<(), RepoError> {
        check_name(name)?;
        let this = self.clone();
        let name = name.to_owned();
        blocking(move || {
            if this.retention_of(&name)?.is_some() && this.object_path(&name).exists() {
                return Err(RepoError::Exists(name));
            }
            let dst = this.object_path(&name);
            if let Some(parent) = dst.parent() {
                mkdir(parent)?;
            }
            let tmp = this.write_tmp(&bytes, 0o600, true)?;
            std::fs::rename(&tmp, &dst).map_err(|e| io("storing", &dst, e))?;
            if let Some(parent) = dst.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        })
        .await
    }

    pub async fn get(&self, name: &str) -> Result<Vec<u8>, RepoError> {
        check_name(name)?;
        let path = self.object_path(name);
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(RepoError::NotFound(name.to_owned()))
            }
            Err(e) => Err(io("reading", &path, e)),
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, RepoError> {
        let this = self.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            let base = this.root.join("objects");
            let mut out = Vec::new();
            let mut stack = vec![(base.clone(), String::new())];
            while let Some((dir, rel)) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io("listing", &dir, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| io("listing", &dir, e))?;
                    let file_name = entry.file_name().to_string_lossy().into_owned();
                    let name = if rel.is_empty() {
                        file_name
                    } else {
                        format!("{rel}/{file_name}")
                    };
                    let meta = entry
                        .metadata()
                        .map_err(|e| io("listing", &entry.path(), e))?;
                    if meta.is_dir() {
                        // Only descend where the prefix can still match.
                        let as_dir = format!("{name}/");
                        if as_dir.starts_with(&prefix) || prefix.starts_with(&as_dir) {
                            stack.push((entry.path(), name));
                        }
                    } else if name.starts_with(&prefix) {
                        out.push(ObjectInfo {
                            retain_until: this.retention_of(&name)?,
                            name,
                            size: meta.len(),
                        });
                    }
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    pub async fn delete(&self, name: &str) -> Result<(), RepoError> {
        check_name(name)?;
        let this = self.clone();
        let name = name.to_owned();
        blocking(move || {
            let path = this.object_path(&name);
            if path.symlink_metadata().is_err() {
                return Err(RepoError::NotFound(name));
            }
            if let Some(until) = this.retention_of(&name)?
                && OffsetDateTime::now_utc() < until
            {
                return Err(RepoError::Retained { name, until });
            }
            std::fs::remove_file(&path).map_err(|e| io("deleting", &path, e))?;
            let side = this.sidecar_path(&name);
            match std::fs::remove_file(&side) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("deleting", &side, e)),
            }
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RepoError> + Send + 'static,
) -> Result<T, RepoError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RepoError::Io(format!("repository task failed: {e}")))?
}
