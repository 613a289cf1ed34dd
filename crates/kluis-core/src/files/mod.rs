//! Files on records (contacts, companies, deals, tickets, notes): upload, list, download,
//! rename, replace (a new version), delete to the file trash, restore, purge, and malware
//! scanning.
//!
//! - Bytes are sealed as they stream in (`kluis_crypto::filestream`: AES-256-GCM STREAM chunks
//!   bound to tenant, file, version and position) under a random key per version; that key is
//!   stored sealed under the tenant's data key (`crm_file_versions.wrapped_key`), so KEK
//!   rotation, customer-key revocation and shredding reach files like every other value. The
//!   name is sealed too. Memory is one chunk, whatever the size.
//! - Every version is scanned by clamd while it streams in (`scan.rs`); a version is served
//!   only when `clean` (or `unscanned` where the operator switched scanning off). Infected
//!   versions are kept sealed, never served (quarantine), and the upload is refused; when the
//!   scanner cannot answer the version stays `pending` and [`Kluis::rescan_pending_files`]
//!   scans it later.
//! - Deleting moves a file to the file trash; it is purged after the tenant's trash retention
//!   (or the server's `files_trash_retention_days`, default 90).

pub mod blobs;
pub mod scan;
pub mod sniff;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use kluis_crypto::filestream::{self, FileBinding, FileKey, Opener, Sealer};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::audit::{Event, actor_label};
use crate::authz::{Permission, Right};
use crate::crm::ObjectType;
use crate::db::TenantTx;
use crate::db::files::{FileRow, FileVersionRow};
use crate::keys::TenantKeys;
use crate::users::rfc3339;
use crate::{Actor, Error, ErrorKind, Kluis, RecordId, RequestContext, Result, TenantId};

pub use blobs::LocalBlobs;
pub use scan::{Clamd, Verdict};

/// Settings of file storage (validated by the binary's config loader).
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Where sealed files are kept (default `<data-dir>/files`).
    pub dir: PathBuf,
    /// Largest file accepted (default 100 MiB).
    pub max_file_bytes: u64,
    /// Stored bytes per tenant, every version and the file trash included (default 10 GiB).
    pub tenant_quota_bytes: u64,
    /// Days a deleted file stays restorable, unless the tenant set its own trash retention.
    pub trash_retention_days: u32,
    /// clamd; None: scanning switched off by the operator (versions are `unscanned`).
    pub clamd: Option<Clamd>,
}

impl FilesConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FilesConfig {
            dir: dir.into(),
            max_file_bytes: 100 * 1024 * 1024,
            tenant_quota_bytes: 10 * 1024 * 1024 * 1024,
            trash_retention_days: 90,
            clamd: Some(Clamd {
                socket: PathBuf::from("/run/clamav/clamd.ctl"),
                timeout: Duration::from_secs(60),
            }),
        }
    }
}

pub(crate) struct FilesRuntime {
    pub(crate) config: FilesConfig,
    pub(crate) blobs: LocalBlobs,
}

/// Record types that can carry files.
pub fn carries_files(t: ObjectType) -> bool {
    matches!(
        t,
        ObjectType::Contact
            | ObjectType::Company
            | ObjectType::Deal
            | ObjectType::Ticket
            | ObjectType::Note
    )
}

/// A file as the API shows it (its current version).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileInfo {
    pub id: Uuid,
    pub record_id: Uuid,
    /// `contact`, `company`, `deal`, `ticket` or `note`.
    pub object_type: String,
    pub name: String,
    /// The current version (1 for a new file).
    pub version: i64,
    pub size: i64,
    pub content_type: String,
    /// `pending` (waiting for the malware scan: not downloadable yet), `clean`, `infected`
    /// (quarantined: never downloadable) or `unscanned` (scanning switched off).
    pub status: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    /// When it went to the file trash.
    pub deleted_at: Option<String>,
    /// When a file in the trash is purged for good.
    pub purge_after: Option<String>,
}

/// One version of a file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileVersionInfo {
    pub version: i64,
    pub size: i64,
    pub content_type: String,
    pub status: String,
    /// The signature name when infected.
    pub scan_result: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub current: bool,
}

/// A download: what to say in the headers, and the plaintext chunk by chunk.
pub struct FileDownload {
    pub name: String,
    pub size: u64,
    /// The type to serve (active content already replaced by `application/octet-stream`).
    pub content_type: String,
    reader: BlobReader,
}

impl FileDownload {
    /// The next plaintext chunk; None at the end. An error means the stored bytes do not open
    /// (tampered, moved, cut short): the caller must abort the response.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        self.reader.next_chunk().await
    }
}

struct BlobReader {
    file: tokio::fs::File,
    opener: Opener,
    /// The first chunk, opened before the download answers (so a blob that does not belong
    /// here is an error status, not a cut-off body).
    first: Option<Vec<u8>>,
}

impl BlobReader {
    async fn open(path: &std::path::Path, key: &FileKey, binding: &FileBinding) -> Result<Self> {
        let mut file = tokio::fs::File::open(path).await.map_err(|e| {
            tracing::error!(error = %e, "opening a stored file");
            unreadable()
        })?;
        let len = file.metadata().await.map_err(|_| unreadable())?.len();
        let mut header = [0u8; filestream::HEADER_LEN];
        file.read_exact(&mut header)
            .await
            .map_err(|_| unreadable())?;
        let opener = Opener::new(key, binding, &header, len).map_err(|_| unreadable())?;
        let mut r = BlobReader {
            file,
            opener,
            first: None,
        };
        r.first = r.read_chunk().await?;
        Ok(r)
    }

    async fn read_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        let n = self.opener.next_len();
        if n == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; n];
        self.file
            .read_exact(&mut buf)
            .await
            .map_err(|_| unreadable())?;
        self.opener.open_next(&mut buf).map_err(|_| {
            tracing::error!("a stored file failed authentication (altered, moved or cut short)");
            unreadable()
        })?;
        Ok(Some(buf))
    }

    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        self.read_chunk().await
    }
}

fn unreadable() -> Error {
    Error::new(
        ErrorKind::Internal,
        "data_unreadable",
        "stored data could not be decrypted",
    )
}

fn not_configured() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "files_unavailable",
        "file storage is not configured on this server",
    )
}

fn too_large(limit: u64) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        "file_too_large",
        format!("a file may have at most {limit} bytes"),
    )
}

fn quota_exceeded(quota: u64) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        "quota_exceeded",
        format!("the organisation's file storage ({quota} bytes) is full"),
    )
}

fn infected() -> Error {
    Error::new(
        ErrorKind::Validation,
        "file_infected",
        "the malware scanner found a threat in this file; it was quarantined and not stored for use",
    )
}

const TABLE: &str = "crm_file_versions";

fn binding(tenant: TenantId, file: Uuid, version: i64) -> FileBinding {
    FileBinding {
        tenant: *tenant.0.as_bytes(),
        file: *file.as_bytes(),
        version: u32::try_from(version).unwrap_or(u32::MAX),
    }
}

/// The sealing context of a version's key: bound to the blob id, which names one version.
fn seal_key(keys: &TenantKeys, blob: Uuid, key: &FileKey) -> Result<Vec<u8>> {
    keys.seal(TABLE, "wrapped_key", blob, key.expose_secret())
}

fn open_key(keys: &TenantKeys, v: &FileVersionRow) -> Result<FileKey> {
    let raw = keys.open(TABLE, "wrapped_key", v.blob_id, &v.wrapped_key)?;
    FileKey::from_slice(&raw).map_err(|_| unreadable())
}

fn open_name(keys: &TenantKeys, f: &FileRow) -> Result<String> {
    keys.open_str("crm_files", "name", f.id, &f.name)
}

/// Whether a version may be served.
fn servable(status: &str) -> bool {
    matches!(status, "clean" | "unscanned")
}

/// What became of one streamed upload.
struct Stored {
    temp: PathBuf,
    blob: Uuid,
    size: u64,
    stored_size: u64,
    content_type: String,
    wrapped_key: Vec<u8>,
    verdict: Option<Verdict>,
}

/// Removes the temporary file of an upload that did not make it.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Removes blobs whose rows are gone (after the transaction that deleted them committed).
pub(crate) async fn remove_blobs(paths: Vec<PathBuf>) {
    for p in paths {
        LocalBlobs::remove(&p).await;
    }
}

/// Bytes sniffed for the content type.
const SNIFF: usize = 8192;

impl Kluis {
    /// Enables files on records.
    pub fn with_files(mut self, config: FilesConfig) -> Result<Self> {
        let blobs = LocalBlobs::new(&config.dir)?;
        self.files = Some(Arc::new(FilesRuntime { config, blobs }));
        Ok(self)
    }

    fn files_rt(&self) -> Result<&Arc<FilesRuntime>> {
        self.files.as_ref().ok_or_else(not_configured)
    }

    /// The files configuration, if files are enabled.
    pub fn files_config(&self) -> Option<&FilesConfig> {
        self.files.as_ref().map(|f| &f.config)
    }

    /// The per-file limit (for an early check of `Content-Length`).
    pub fn max_file_bytes(&self) -> Option<u64> {
        self.files_config().map(|c| c.max_file_bytes)
    }

    async fn trash_retention_ms(&self, tx: &mut TenantTx) -> Result<i64> {
        let days = match crate::settings::stored_trash_retention(tx).await? {
            Some(d) => i64::from(d),
            None => i64::from(self.files_rt()?.config.trash_retention_days),
        };
        Ok(days * 86_400_000)
    }

    fn info(
        &self,
        keys: &TenantKeys,
        f: &FileRow,
        v: &FileVersionRow,
        retention_ms: i64,
    ) -> Result<FileInfo> {
        Ok(FileInfo {
            id: f.id,
            record_id: f.record_id.0,
            object_type: f.object_type.clone(),
            name: open_name(keys, f)?,
            version: v.version,
            size: v.size,
            content_type: v.content_type.clone(),
            status: v.status.clone(),
            created_at: rfc3339(f.created_at),
            created_by: f.created_by.clone(),
            updated_at: rfc3339(f.updated_at),
            deleted_at: f.deleted_at.map(rfc3339),
            purge_after: f.deleted_at.map(|d| rfc3339(d + retention_ms)),
        })
    }

    /// The record a file hangs on must be live, of the type the route names, and within the
    /// actor's role: `right` on its type and the record in the role's scope (out of scope reads
    /// as not found, as the record itself does).
    async fn live_record(
        &self,
        tx: &mut TenantTx,
        actor: &Actor,
        right: Right,
        t: ObjectType,
        id: RecordId,
    ) -> Result<()> {
        if !carries_files(t) {
            return Err(Error::not_found());
        }
        let vis = self.access_in(tx, actor).await?.require(t, right)?;
        let row = tx
            .record(t.as_str(), id)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .ok_or_else(Error::not_found)?;
        if !vis.shows(row.owner_id) {
            return Err(Error::not_found());
        }
        Ok(())
    }

    /// A file of the actor's tenant whose record is live; `trashed`: whether it must be in the
    /// file trash (Some(true)), must not be (Some(false)), or either (None).
    async fn file_row(
        &self,
        tx: &mut TenantTx,
        actor: &Actor,
        right: Right,
        id: Uuid,
        trashed: Option<bool>,
    ) -> Result<FileRow> {
        let f = tx.file(id).await?.ok_or_else(Error::not_found)?;
        if let Some(want) = trashed
            && f.deleted_at.is_some() != want
        {
            return Err(Error::not_found());
        }
        let t = ObjectType::parse(&f.object_type).ok_or_else(Error::not_found)?;
        self.live_record(tx, actor, right, t, f.record_id).await?;
        Ok(f)
    }

    async fn current_version(tx: &mut TenantTx, f: &FileRow) -> Result<FileVersionRow> {
        tx.file_version(f.id, f.current_version)
            .await?
            .ok_or_else(|| Error::internal("file without its current version"))
    }

    /// Files of a record (or those of its files in the file trash).
    pub async fn list_files(
        &self,
        actor: &Actor,
        t: ObjectType,
        record: RecordId,
        trashed: bool,
    ) -> Result<Vec<FileInfo>> {
        actor.require(Permission::CrmRead)?;
        self.files_rt()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        self.live_record(&mut tx, actor, Right::Read, t, record)
            .await?;
        let keys = self.keys(&mut tx).await?;
        let retention = self.trash_retention_ms(&mut tx).await?;
        let mut out = Vec::new();
        for f in tx.files_of_record(record, trashed).await? {
            let v = Self::current_version(&mut tx, &f).await?;
            out.push(self.info(&keys, &f, &v, retention)?);
        }
        Ok(out)
    }

    /// One file's description.
    pub async fn file_info(&self, actor: &Actor, id: Uuid) -> Result<FileInfo> {
        actor.require(Permission::CrmRead)?;
        self.files_rt()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let f = self.file_row(&mut tx, actor, Right::Read, id, None).await?;
        let keys = self.keys(&mut tx).await?;
        let retention = self.trash_retention_ms(&mut tx).await?;
        let v = Self::current_version(&mut tx, &f).await?;
        self.info(&keys, &f, &v, retention)
    }

    /// Every version of a file, newest first.
    pub async fn file_versions(&self, actor: &Actor, id: Uuid) -> Result<Vec<FileVersionInfo>> {
        actor.require(Permission::CrmRead)?;
        self.files_rt()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let f = self.file_row(&mut tx, actor, Right::Read, id, None).await?;
        Ok(tx
            .file_versions(id)
            .await?
            .into_iter()
            .map(|v| FileVersionInfo {
                current: v.version == f.current_version,
                version: v.version,
                size: v.size,
                content_type: v.content_type,
                status: v.status,
                scan_result: v.scan_result,
                created_at: rfc3339(v.created_at),
                created_by: v.created_by,
            })
            .collect())
    }

    /// Streams one upload into a sealed temporary blob, scanning it on the way. Enforces the
    /// per-file limit and the tenant's quota (`used` bytes already stored) as bytes arrive.
    #[allow(clippy::too_many_arguments)]
    async fn store_stream<S, B, E>(
        &self,
        keys: &TenantKeys,
        tenant: TenantId,
        file: Uuid,
        version: i64,
        name: &str,
        used: u64,
        mut body: S,
    ) -> Result<Stored>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin + Send,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let rt = self.files_rt()?;
        let (max, quota) = (rt.config.max_file_bytes, rt.config.tenant_quota_bytes);
        if used >= quota {
            return Err(quota_exceeded(quota));
        }
        let key = FileKey::generate()?;
        let blob = Uuid::new_v4();
        let wrapped_key = seal_key(keys, blob, &key)?;
        let (temp, mut out) = rt.blobs.create_temp().await?;
        let mut guard = TempGuard(Some(temp.clone()));
        let (mut sealer, header) = Sealer::new(&key, &binding(tenant, file, version))?;
        let write = |e: std::io::Error| {
            tracing::error!(error = %e, "writing an upload");
            Error::internal("file storage")
        };
        out.write_all(&header).await.map_err(write)?;
        let mut scan = match &rt.config.clamd {
            Some(c) => Some(c.start().await),
            None => None,
        };
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF);
        let mut content_type = None;
        let mut sealed = Vec::with_capacity(filestream::SEALED_CHUNK * 2);
        let mut size: u64 = 0;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| {
                tracing::info!(error = %e, "upload interrupted");
                Error::new(
                    ErrorKind::BadRequest,
                    "upload_failed",
                    "the upload was interrupted",
                )
            })?;
            let piece = piece.as_ref();
            size += piece.len() as u64;
            if size > max {
                return Err(too_large(max));
            }
            if used + size > quota {
                return Err(quota_exceeded(quota));
            }
            if content_type.is_none() {
                let take = piece.len().min(SNIFF - head.len());
                head.extend_from_slice(&piece[..take]);
                if head.len() >= SNIFF {
                    content_type = Some(sniff::content_type(name, &head)?);
                }
            }
            if let Some(s) = scan.as_mut() {
                s.send(piece).await;
            }
            sealer.update(piece, &mut sealed)?;
            if !sealed.is_empty() {
                out.write_all(&sealed).await.map_err(write)?;
                sealed.clear();
            }
        }
        let content_type = match content_type {
            Some(t) => t,
            None => sniff::content_type(name, &head)?,
        };
        sealer.finish(&mut sealed)?;
        out.write_all(&sealed).await.map_err(write)?;
        LocalBlobs::sync(&mut out).await?;
        drop(out);
        let verdict = match scan {
            Some(s) => Some(s.finish().await),
            None => None,
        };
        guard.0 = None;
        Ok(Stored {
            temp,
            blob,
            size,
            stored_size: filestream::sealed_len(size),
            content_type,
            wrapped_key,
            verdict,
        })
    }

    fn version_row(s: &Stored, file: Uuid, version: i64, now: i64, by: &str) -> FileVersionRow {
        let (status, result) = match &s.verdict {
            None => ("unscanned", None),
            Some(Verdict::Clean) => ("clean", None),
            Some(Verdict::Infected(sig)) => ("infected", Some(sig.clone())),
            Some(Verdict::Unavailable(why)) => {
                tracing::warn!(reason = %why, "malware scanner unavailable; file left pending");
                ("pending", None)
            }
        };
        FileVersionRow {
            file_id: file,
            version,
            blob_id: s.blob,
            size: i64::try_from(s.size).unwrap_or(i64::MAX),
            stored_size: i64::try_from(s.stored_size).unwrap_or(i64::MAX),
            content_type: s.content_type.clone(),
            wrapped_key: s.wrapped_key.clone(),
            status: status.to_owned(),
            scan_result: result,
            scanned_at: matches!(s.verdict, Some(Verdict::Clean | Verdict::Infected(_)))
                .then_some(now),
            created_at: now,
            created_by: by.to_owned(),
        }
    }

    /// Uploads a new file onto a record. An infected file is quarantined and refused
    /// (`422 file_infected`); when the scanner cannot answer, the file is stored `pending`.
    pub async fn upload_file<S, B, E>(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        record: RecordId,
        name: &str,
        body: S,
    ) -> Result<FileInfo>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin + Send,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        actor.require(Permission::CrmWrite)?;
        let rt = self.files_rt()?.clone();
        let tenant = actor.tenant();
        let (keys, used) = {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            self.live_record(&mut tx, actor, Right::Update, t, record)
                .await?;
            let keys = self.keys(&mut tx).await?;
            (keys, tx.file_usage().await?)
        };
        let name = sniff::check_name(name)?;
        let id = Uuid::now_v7();
        let stored = self
            .store_stream(
                &keys,
                tenant,
                id,
                1,
                &name,
                u64::try_from(used).unwrap_or(0),
                body,
            )
            .await?;
        let mut guard = TempGuard(Some(stored.temp.clone()));
        let label = actor_label(actor);
        let now = self.now();
        let v = Self::version_row(&stored, id, 1, now, &label);
        let mut tx = self.store.tenant(tenant).begin().await?;
        self.live_record(&mut tx, actor, Right::Update, t, record)
            .await?;
        self.check_quota(&mut tx, stored.size).await?;
        let keys = self.keys(&mut tx).await?;
        let f = FileRow {
            id,
            record_id: record,
            object_type: t.as_str().to_owned(),
            name: keys.seal_str("crm_files", "name", id, &name)?,
            current_version: 1,
            created_at: now,
            created_by: label.clone(),
            updated_at: now,
            deleted_at: None,
            deleted_by: None,
        };
        tx.insert_file(&f).await?;
        tx.insert_file_version(&v).await?;
        let action = if v.status == "infected" {
            "file.quarantine"
        } else {
            "file.upload"
        };
        let ev = Event::ok(action, "file", id).with(json!({
            "record_id": record.0, "object_type": t.as_str(), "version": 1, "size": v.size,
            "content_type": v.content_type, "status": v.status, "scan_result": v.scan_result,
        }));
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        rt.blobs.commit(&stored.temp, tenant, stored.blob).await?;
        guard.0 = None;
        let final_path = rt.blobs.path(tenant, stored.blob);
        if let Err(e) = tx.commit().await {
            LocalBlobs::remove(&final_path).await;
            return Err(e.into());
        }
        if v.status == "infected" {
            return Err(infected());
        }
        let retention = i64::from(rt.config.trash_retention_days) * 86_400_000;
        self.info(&keys, &f, &v, retention)
    }

    async fn check_quota(&self, tx: &mut TenantTx, adding: u64) -> Result<()> {
        let quota = self.files_rt()?.config.tenant_quota_bytes;
        let used = u64::try_from(tx.file_usage().await?).unwrap_or(0);
        if used + adding > quota {
            return Err(quota_exceeded(quota));
        }
        Ok(())
    }

    /// Replaces a file's content: a new version (the old ones are kept). Infected content is
    /// quarantined as a version that never becomes current, and refused.
    pub async fn replace_file<S, B, E>(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: Uuid,
        body: S,
    ) -> Result<FileInfo>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin + Send,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        actor.require(Permission::CrmWrite)?;
        let rt = self.files_rt()?.clone();
        let tenant = actor.tenant();
        let (keys, used, name, version) = {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            let f = self
                .file_row(&mut tx, actor, Right::Update, id, Some(false))
                .await?;
            let keys = self.keys(&mut tx).await?;
            let name = open_name(&keys, &f)?;
            let version = tx.max_file_version(id).await? + 1;
            (keys, tx.file_usage().await?, name, version)
        };
        let stored = self
            .store_stream(
                &keys,
                tenant,
                id,
                version,
                &name,
                u64::try_from(used).unwrap_or(0),
                body,
            )
            .await?;
        let mut guard = TempGuard(Some(stored.temp.clone()));
        let label = actor_label(actor);
        let now = self.now();
        let v = Self::version_row(&stored, id, version, now, &label);
        let mut tx = self.store.tenant(tenant).begin().await?;
        let f = self
            .file_row(&mut tx, actor, Right::Update, id, Some(false))
            .await?;
        if tx.max_file_version(id).await? >= version {
            return Err(Error::new(
                ErrorKind::Conflict,
                "file_changed",
                "another new version of this file was stored meanwhile; try again",
            ));
        }
        self.check_quota(&mut tx, stored.size).await?;
        let keys = self.keys(&mut tx).await?;
        tx.insert_file_version(&v).await?;
        let infected_version = v.status == "infected";
        if !infected_version {
            tx.set_file_current(id, version, now).await?;
        }
        let action = if infected_version {
            "file.quarantine"
        } else {
            "file.replace"
        };
        let ev = Event::ok(action, "file", id).with(json!({
            "record_id": f.record_id.0, "object_type": f.object_type, "version": version,
            "size": v.size, "content_type": v.content_type, "status": v.status,
            "scan_result": v.scan_result,
        }));
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        rt.blobs.commit(&stored.temp, tenant, stored.blob).await?;
        guard.0 = None;
        let final_path = rt.blobs.path(tenant, stored.blob);
        if let Err(e) = tx.commit().await {
            LocalBlobs::remove(&final_path).await;
            return Err(e.into());
        }
        if infected_version {
            return Err(infected());
        }
        let f = FileRow {
            current_version: version,
            updated_at: now,
            ..f
        };
        let retention = i64::from(rt.config.trash_retention_days) * 86_400_000;
        self.info(&keys, &f, &v, retention)
    }

    /// Opens a file (its current version, or `version`) for download; audited before the
    /// first byte. Pending versions are `409 file_pending`, quarantined ones
    /// `409 file_quarantined`.
    pub async fn download_file(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: Uuid,
        version: Option<i64>,
    ) -> Result<FileDownload> {
        actor.require(Permission::CrmRead)?;
        let rt = self.files_rt()?.clone();
        let tenant = actor.tenant();
        let label = actor_label(actor);
        let mut tx = self.store.tenant(tenant).begin().await?;
        let f = self
            .file_row(&mut tx, actor, Right::Read, id, Some(false))
            .await?;
        let v = tx
            .file_version(id, version.unwrap_or(f.current_version))
            .await?
            .ok_or_else(Error::not_found)?;
        match v.status.as_str() {
            "pending" => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "file_pending",
                    "the file has not been scanned for malware yet; try again later",
                ));
            }
            s if !servable(s) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "file_quarantined",
                    "the malware scanner found a threat in this file; it cannot be downloaded",
                ));
            }
            _ => {}
        }
        let keys = self.keys(&mut tx).await?;
        let name = open_name(&keys, &f)?;
        let key = open_key(&keys, &v)?;
        let reader = BlobReader::open(
            &rt.blobs.path(tenant, v.blob_id),
            &key,
            &binding(tenant, id, v.version),
        )
        .await?;
        let ev = Event::ok("file.download", "file", id).with(json!({
            "record_id": f.record_id.0, "object_type": f.object_type, "version": v.version,
            "size": v.size,
        }));
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        tx.commit().await?;
        Ok(FileDownload {
            name,
            size: u64::try_from(v.size).unwrap_or(0),
            content_type: sniff::served_type(&v.content_type).to_owned(),
            reader,
        })
    }

    /// Renames a file.
    pub async fn rename_file(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: Uuid,
        name: &str,
    ) -> Result<FileInfo> {
        actor.require(Permission::CrmWrite)?;
        self.files_rt()?;
        let name = sniff::check_name(name)?;
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let f = self
            .file_row(&mut tx, actor, Right::Update, id, Some(false))
            .await?;
        let v = Self::current_version(&mut tx, &f).await?;
        // The new name must still fit the content (no renaming a program into "offerte.pdf").
        if !sniff::name_fits(&name, &v.content_type) {
            return Err(Error::validation(
                "name",
                "file_type_mismatch",
                format!(
                    "the file's content is {}, which the new name does not say",
                    v.content_type
                ),
            ));
        }
        let keys = self.keys(&mut tx).await?;
        let now = self.now();
        tx.set_file_name(id, &keys.seal_str("crm_files", "name", id, &name)?, now)
            .await?;
        let ev = Event::ok("file.rename", "file", id)
            .with(json!({"record_id": f.record_id.0, "object_type": f.object_type}));
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        let retention = self.trash_retention_ms(&mut tx).await?;
        tx.commit().await?;
        let f = FileRow {
            name: keys.seal_str("crm_files", "name", id, &name)?,
            updated_at: now,
            ..f
        };
        self.info(&keys, &f, &v, retention)
    }

    /// Moves a file to the file trash.
    pub async fn delete_file(&self, actor: &Actor, ctx: &RequestContext, id: Uuid) -> Result<()> {
        self.set_trashed(actor, ctx, id, true).await
    }

    /// Takes a file out of the file trash.
    pub async fn restore_file(&self, actor: &Actor, ctx: &RequestContext, id: Uuid) -> Result<()> {
        self.set_trashed(actor, ctx, id, false).await
    }

    async fn set_trashed(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: Uuid,
        trash: bool,
    ) -> Result<()> {
        actor.require(Permission::CrmWrite)?;
        self.files_rt()?;
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let f = self
            .file_row(&mut tx, actor, Right::Delete, id, Some(!trash))
            .await?;
        let keys = self.keys(&mut tx).await?;
        let now = self.now();
        tx.set_file_deleted(id, trash.then_some((now, label.as_str())))
            .await?;
        let action = if trash { "file.delete" } else { "file.restore" };
        let ev = Event::ok(action, "file", id)
            .with(json!({"record_id": f.record_id.0, "object_type": f.object_type}));
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Purges a file in the file trash now (privileged: `crm:purge`).
    pub async fn purge_file(&self, actor: &Actor, ctx: &RequestContext, id: Uuid) -> Result<()> {
        actor.require(Permission::CrmPurge)?;
        self.files_rt()?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        self.file_row(&mut tx, actor, Right::Delete, id, Some(true))
            .await?;
        self.purge_in(
            tx,
            id,
            &actor_label(actor),
            ctx,
            json!({"reason": "requested"}),
        )
        .await
    }

    /// Deletes a file's rows and, once that committed, its blobs; audited.
    async fn purge_in(
        &self,
        mut tx: TenantTx,
        id: Uuid,
        label: &str,
        ctx: &RequestContext,
        details: serde_json::Value,
    ) -> Result<()> {
        let rt = self.files_rt()?.clone();
        let tenant = tx.tenant();
        let f = tx.file(id).await?.ok_or_else(Error::not_found)?;
        let blobs: Vec<PathBuf> = tx
            .file_versions(id)
            .await?
            .iter()
            .map(|v| rt.blobs.path(tenant, v.blob_id))
            .collect();
        tx.purge_file(id).await?;
        let keys = self.keys(&mut tx).await?;
        let mut details = details;
        details["record_id"] = json!(f.record_id.0);
        details["object_type"] = json!(f.object_type);
        details["versions"] = json!(blobs.len());
        let ev = Event::ok("file.purge", "file", id).with(details);
        self.audit(&mut tx, &keys, label, ctx, ev).await?;
        tx.commit().await?;
        for p in blobs {
            LocalBlobs::remove(&p).await;
        }
        Ok(())
    }

    /// Deletes the rows of every file of a record being purged (in the purge's transaction)
    /// and returns their blobs, to remove once it commits: a purged record's files go with it.
    pub(crate) async fn purge_record_files(
        &self,
        tx: &mut TenantTx,
        record: RecordId,
    ) -> Result<Vec<PathBuf>> {
        let Some(rt) = self.files.clone() else {
            return Ok(Vec::new());
        };
        let tenant = tx.tenant();
        let mut blobs = Vec::new();
        for trashed in [false, true] {
            for f in tx.files_of_record(record, trashed).await? {
                for v in tx.file_versions(f.id).await? {
                    blobs.push(rt.blobs.path(tenant, v.blob_id));
                }
                tx.purge_file(f.id).await?;
            }
        }
        Ok(blobs)
    }

    /// The retention job: purges files that have been in the file trash longer than the
    /// tenant's trash retention (or the server's `files_trash_retention_days`). Returns how
    /// many were purged.
    pub async fn purge_expired_files(&self, tenant: TenantId) -> Result<u64> {
        if self.files.is_none() {
            return Ok(0);
        }
        let mut purged = 0;
        loop {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let before = self.now() - self.trash_retention_ms(&mut tx).await?;
            let Some(id) = tx.files_trashed_before(before, 1).await?.pop() else {
                return Ok(purged);
            };
            self.purge_in(
                tx,
                id,
                "system",
                &RequestContext::default(),
                json!({"reason": "trash_retention"}),
            )
            .await?;
            purged += 1;
        }
    }

    /// Scans versions left `pending` (the scanner was down). Returns (scanned, still pending).
    pub async fn rescan_pending_files(&self, tenant: TenantId) -> Result<(u64, u64)> {
        let Some(rt) = self.files.clone() else {
            return Ok((0, 0));
        };
        let Some(clamd) = rt.config.clamd.clone() else {
            return Ok((0, 0));
        };
        let pending = {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            tx.pending_file_versions(100).await?
        };
        let (mut scanned, mut left) = (0, 0);
        for v in pending {
            let keys = {
                let mut tx = self.store.tenant(tenant).begin_read().await?;
                self.keys(&mut tx).await?
            };
            let key = open_key(&keys, &v)?;
            let mut reader = BlobReader::open(
                &rt.blobs.path(tenant, v.blob_id),
                &key,
                &binding(tenant, v.file_id, v.version),
            )
            .await?;
            let mut session = clamd.start().await;
            while let Some(chunk) = reader.next_chunk().await? {
                session.send(&chunk).await;
            }
            let (status, result) = match session.finish().await {
                Verdict::Clean => ("clean", None),
                Verdict::Infected(sig) => ("infected", Some(sig)),
                Verdict::Unavailable(why) => {
                    tracing::warn!(reason = %why, "malware scanner still unavailable");
                    left += 1;
                    continue;
                }
            };
            let mut tx = self.store.tenant(tenant).begin().await?;
            let keys = self.keys(&mut tx).await?;
            let now = self.now();
            tx.set_file_version_status(v.file_id, v.version, status, result.as_deref(), Some(now))
                .await?;
            if status == "infected" {
                // A quarantined replacement never stays current: fall back to the newest
                // version that is not infected.
                if let Some(f) = tx.file(v.file_id).await?
                    && f.current_version == v.version
                    && let Some(prev) = tx
                        .file_versions(v.file_id)
                        .await?
                        .into_iter()
                        .find(|o| o.version < v.version && o.status != "infected")
                {
                    tx.set_file_current(v.file_id, prev.version, now).await?;
                }
            }
            let ev = Event::ok("file.scan", "file", v.file_id).with(json!({
                "version": v.version, "status": status, "scan_result": result,
            }));
            self.audit(&mut tx, &keys, "system", &RequestContext::default(), ev)
                .await?;
            tx.commit().await?;
            scanned += 1;
        }
        Ok((scanned, left))
    }
}
