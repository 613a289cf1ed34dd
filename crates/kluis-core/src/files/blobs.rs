//! Where sealed file versions are kept: the local data directory, `<dir>/<tenant>/<blob>` with
//! random blob ids (no names, no record ids), directories 0700 and files 0600. An upload is
//! written under `<dir>/tmp/` and renamed into place once its rows are written.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::{Error, Result, TenantId};

#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    tracing::error!(error = %e, what, "file storage");
    Error::internal("file storage")
}

fn private_dir(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| io_err("creating a storage directory", e))
}

impl LocalBlobs {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        private_dir(&root.join("tmp"))?;
        Ok(LocalBlobs { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, tenant: TenantId, blob: Uuid) -> PathBuf {
        self.root
            .join(tenant.0.simple().to_string())
            .join(blob.simple().to_string())
    }

    /// A new temporary blob file (0600).
    pub async fn create_temp(&self) -> Result<(PathBuf, tokio::fs::File)> {
        let p = self
            .root
            .join("tmp")
            .join(Uuid::new_v4().simple().to_string());
        let f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .await
            .map_err(|e| io_err("creating an upload file", e))?;
        Ok((p, f))
    }

    /// Flushes a written temporary blob to disk.
    pub async fn sync(f: &mut tokio::fs::File) -> Result<()> {
        f.flush().await.map_err(|e| io_err("writing", e))?;
        f.sync_all().await.map_err(|e| io_err("syncing", e))
    }

    /// Moves a finished temporary blob into place.
    pub async fn commit(&self, temp: &Path, tenant: TenantId, blob: Uuid) -> Result<()> {
        let dest = self.path(tenant, blob);
        if let Some(dir) = dest.parent() {
            private_dir(dir)?;
        }
        tokio::fs::rename(temp, &dest)
            .await
            .map_err(|e| io_err("moving an upload into place", e))
    }

    /// Removes a blob (or temporary file); a missing one is fine.
    pub async fn remove(p: &Path) {
        if let Err(e) = tokio::fs::remove_file(p).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(error = %e, "removing a stored file");
        }
    }
}
