//! The S3-compatible repository: one bucket (and an optional key prefix) with Object Lock.
//!
//! Immutability is the server's, not ours: `put_locked` writes each object with Object Lock in
//! COMPLIANCE mode and its own retain-until date, so neither Kluis nor anyone holding the
//! bucket's credentials (root included) can delete or overwrite that object version before the
//! date. Opening refuses a bucket without Object Lock, or with a default retention rule (that
//! would lock the key ledger too, and shredding must be able to destroy it).
//!
//! Versioning, which Object Lock implies, matters for the mutable objects: replacing or deleting
//! a key in a versioned bucket only hides the old bytes behind a newer version or a delete
//! marker. A shredded tenant's root key must really go, so `put_mutable` and `delete` remove
//! every older version of the key by version id.
//!
//! Versioning also means that anyone holding the bucket's credentials can put a delete marker
//! or a newer version on top of a locked object (the server allows both; it only protects the
//! locked version itself). Kluis reads and lists through the version listing and takes, for a
//! key with several versions, the oldest one under COMPLIANCE lock (what the backup wrote), so
//! such writes neither hide nor replace a backup object.
//!
//! Create-only: `put_locked` first lists the key's versions (any stored version, even one hidden
//! behind a delete marker, means the name is taken) and then sends `If-None-Match: *`. Servers
//! that honour the header (AWS since 2024) refuse a concurrent second writer with 412; servers
//! that ignore it (Ceph RGW 16) leave a small race between the check and the PUT, in which a
//! second writer adds a newer version on top. Both versions stay locked, and the signed
//! manifest's SHA-256 tells which bytes belong to the backup.
//!
//! One PUT per object (no multipart upload), so an object is at most 5 GiB; it is held in
//! memory while it is sent. Callers chunk large files.
//!
//! Requests are signed with AWS Signature V4 by the `aws-sigv4` crate, sent with path-style
//! addressing (`https://endpoint/bucket/key`) over rustls. Credentials come from the
//! environment ([`S3Config::from_env`]) and never appear in `Debug`, logs or errors.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::StreamExt as _;
use md5::Md5;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::repo::{ObjectInfo, RepoError, check_name};

/// Environment variables read by [`S3Config::from_env`].
pub const ENDPOINT_ENV: &str = "KLUIS_S3_ENDPOINT";
pub const REGION_ENV: &str = "AWS_REGION";
pub const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
/// A file holding the secret key (preferred to the variable: not in the process environment).
pub const SECRET_KEY_FILE_ENV: &str = "AWS_SECRET_ACCESS_KEY_FILE";
pub const SESSION_TOKEN_ENV: &str = "AWS_SESSION_TOKEN";
/// PEM file of extra CA certificates to trust (an on-premises gateway with a private CA).
pub const CA_FILE_ENV: &str = "KLUIS_S3_CA_FILE";

/// The largest single PUT S3 accepts.
const MAX_PUT: u64 = 5 << 30;
/// ListObjectsV2's own maximum.
const DEFAULT_PAGE_SIZE: u32 = 1000;
/// HEAD requests in flight while a listing collects retention dates.
const LIST_HEAD_CONCURRENCY: usize = 16;

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (SigV4's rule).
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Where and as whom to reach the object store.
#[derive(Clone)]
pub struct S3Config {
    /// `https://host[:port]`; plain `http` only to a loopback address (tests, a local gateway).
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Extra CA certificates (PEM) trusted besides the public roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl S3Config {
    /// Reads `KLUIS_S3_ENDPOINT` (default: AWS's regional endpoint), `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`, default `us-east-1`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
    /// or `AWS_SECRET_ACCESS_KEY_FILE`, and optionally `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<S3Config, RepoError> {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let region = var(REGION_ENV)
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let endpoint =
            var(ENDPOINT_ENV).unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let access_key_id = var(ACCESS_KEY_ENV)
            .ok_or_else(|| RepoError::Io(format!("S3 repository: {ACCESS_KEY_ENV} is not set")))?;
        let secret_access_key = match var(SECRET_KEY_FILE_ENV) {
            Some(path) => std::fs::read_to_string(&path)
                .map(|s| s.trim().to_owned())
                // The path is not secret; the file's content is never echoed.
                .map_err(|e| RepoError::Io(format!("S3 repository: reading {path}: {e}")))?,
            None => var(SECRET_KEY_ENV).ok_or_else(|| {
                RepoError::Io(format!(
                    "S3 repository: neither {SECRET_KEY_ENV} nor {SECRET_KEY_FILE_ENV} is set"
                ))
            })?,
        };
        Ok(S3Config {
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            session_token: var(SESSION_TOKEN_ENV),
            ca_file: var(CA_FILE_ENV).map(Into::into),
        })
    }
}

/// A bucket with Object Lock, used as a backup repository. Cloning is cheap (the HTTP client's
/// connection pool is shared).
#[derive(Clone)]
pub struct S3Repo {
    http: reqwest::Client,
    /// `scheme://host[:port]/bucket`
    base: String,
    bucket: String,
    /// "" or `a/b/`: prepended to every object name.
    prefix: String,
    region: String,
    credentials: Credentials,
    page_size: u32,
}

impl fmt::Debug for S3Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Repo")
            .field("base", &self.base)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// One answer from the server.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `<Code>` of an S3 error document, if any.
    fn error_code(&self) -> String {
        std::str::from_utf8(&self.body)
            .ok()
            .and_then(|s| roxmltree::Document::parse(s).ok())
            .and_then(|d| xml_child_text(d.root_element(), "Code"))
            .unwrap_or_default()
    }
}

/// One stored version of a key (ListObjectVersions).
struct Version {
    version_id: String,
    delete_marker: bool,
    size: u64,
}

/// What HEAD says about the current version of a key.
struct Head {
    /// Set when the version is under Object Lock in COMPLIANCE mode.
    retain_until: Option<OffsetDateTime>,
    /// Object Lock mode as the server reports it (COMPLIANCE, GOVERNANCE).
    lock_mode: Option<String>,
}

impl S3Repo {
    /// `s3://bucket[/prefix]` with endpoint and credentials from the environment.
    pub async fn open_location(location: &str) -> Result<S3Repo, RepoError> {
        let rest = location
            .strip_prefix("s3://")
            .ok_or_else(|| RepoError::Io(format!("not an s3:// location: {location}")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        S3Repo::open(S3Config::from_env()?, bucket, prefix).await
    }

    /// Connects and checks that the bucket has Object Lock enabled and no default retention.
    pub async fn open(cfg: S3Config, bucket: &str, prefix: &str) -> Result<S3Repo, RepoError> {
        check_bucket_name(bucket)?;
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            check_name(prefix)?;
            format!("{prefix}/")
        };
        let endpoint = check_endpoint(&cfg.endpoint)?;
        let mut http = reqwest::Client::builder()
            // A redirect would send a signed request elsewhere; S3 does not need them.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!endpoint.starts_with("http://"))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600));
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| RepoError::Io(format!("S3 CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| RepoError::Io(format!("S3 CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(RepoError::Io(format!(
                    "S3 CA file {} holds no certificate",
                    path.display()
                )));
            }
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        let http = http
            .build()
            .map_err(|e| RepoError::Io(format!("S3 client: {e}")))?;
        let repo = S3Repo {
            http,
            base: format!("{endpoint}/{bucket}"),
            bucket: bucket.to_owned(),
            prefix,
            region: cfg.region,
            credentials: Credentials::new(
                cfg.access_key_id,
                cfg.secret_access_key,
                cfg.session_token,
                None,
                "kluis",
            ),
            page_size: DEFAULT_PAGE_SIZE,
        };
        repo.check_object_lock().await?;
        Ok(repo)
    }

    /// Objects per listing request (the server may return fewer); tests use a small page to
    /// exercise pagination.
    pub fn with_page_size(mut self, n: u32) -> S3Repo {
        self.page_size = n.clamp(1, DEFAULT_PAGE_SIZE);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix ("" or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    async fn check_object_lock(&self) -> Result<(), RepoError> {
        let r = self
            .send(Method::GET, None, &[("object-lock", "")], &[], Vec::new())
            .await?;
        let body = String::from_utf8_lossy(&r.body);
        if !r.status.is_success() {
            return Err(match r.error_code().as_str() {
                "NoSuchBucket" => {
                    RepoError::Io(format!("S3 bucket {} does not exist", self.bucket))
                }
                "ObjectLockConfigurationNotFoundError" => self.no_lock_error(),
                code => self.http_error("GET ?object-lock", "", r.status, code),
            });
        }
        let doc = roxmltree::Document::parse(&body)
            .map_err(|e| RepoError::Io(format!("S3 object-lock reply: {e}")))?;
        let root = doc.root_element();
        if xml_child_text(root, "ObjectLockEnabled").as_deref() != Some("Enabled") {
            return Err(self.no_lock_error());
        }
        if root
            .descendants()
            .any(|n| n.has_tag_name("DefaultRetention"))
        {
            return Err(RepoError::Io(format!(
                "S3 bucket {} has a default Object Lock retention; the key ledger must stay \
                 deletable, so backups need a bucket without a default rule (Kluis sets \
                 retention per object)",
                self.bucket
            )));
        }
        Ok(())
    }

    fn no_lock_error(&self) -> RepoError {
        RepoError::Io(format!(
            "S3 bucket {} does not have Object Lock enabled; create it with Object Lock \
             (backups must be immutable)",
            self.bucket
        ))
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Writes a new object under COMPLIANCE retention until `retain_until`; refuses an
    /// existing name.
    pub async fn put_locked(
        &self,
        name: &str,
        bytes: Vec<u8>,
        retain_until: OffsetDateTime,
    ) -> Result<(), RepoError> {
        check_name(name)?;
        // Whole seconds, rounded up: retention never ends before the date asked for.
        let until = ceil_second(retain_until);
        if until <= OffsetDateTime::now_utc() {
            return Err(RepoError::Io(format!(
                "retention date {until} for {name} is not in the future"
            )));
        }
        if bytes.len() as u64 > MAX_PUT {
            return Err(RepoError::Io(format!(
                "{name}: {} bytes is more than one S3 PUT takes (5 GiB); write smaller objects",
                bytes.len()
            )));
        }
        let key = self.key(name);
        // Any stored version counts, not only the current one: a delete marker put on top of a
        // locked object (by anyone with a plain DELETE) must not free its name.
        if self.versions(&key).await?.iter().any(|v| !v.delete_marker) {
            return Err(RepoError::Exists(name.to_owned()));
        }
        let until_s = until
            .format(&Rfc3339)
            .map_err(|e| RepoError::Io(format!("formatting {until}: {e}")))?;
        let mut headers = object_headers(&bytes);
        headers.extend([
            ("x-amz-object-lock-mode", "COMPLIANCE".to_owned()),
            ("x-amz-object-lock-retain-until-date", until_s),
            ("if-none-match", "*".to_owned()),
        ]);
        let r = self
            .send(Method::PUT, Some(&key), &[], &headers, bytes)
            .await?;
        if r.status == StatusCode::PRECONDITION_FAILED {
            return Err(RepoError::Exists(name.to_owned()));
        }
        if !r.status.is_success() {
            return Err(self.http_error("PUT", name, r.status, &r.error_code()));
        }
        // Trust, then verify: a server that ignored the lock headers must not pass silently.
        let version = r.header("x-amz-version-id").map(str::to_owned);
        let head = self
            .head(&key, version.as_deref())
            .await?
            .ok_or_else(|| RepoError::Io(format!("{name} vanished right after it was written")))?;
        match (head.lock_mode.as_deref(), head.retain_until) {
            (Some("COMPLIANCE"), Some(t)) if t >= until => Ok(()),
            (mode, t) => Err(RepoError::Io(format!(
                "the S3 server did not lock {name} (mode {mode:?}, retain-until {t:?}); \
                 refusing to treat it as immutable"
            ))),
        }
    }

    /// Writes or replaces an object without retention, and removes the versions it replaced
    /// (they would otherwise keep the old bytes readable by version id).
    pub async fn put_mutable(&self, name: &str, bytes: Vec<u8>) -> Result<(), RepoError> {
        check_name(name)?;
        let key = self.key(name);
        // Every stored version, not only the current one: a locked object hidden behind a
        // delete marker still holds the name.
        let now = OffsetDateTime::now_utc();
        for v in self
            .versions(&key)
            .await?
            .iter()
            .filter(|v| !v.delete_marker)
        {
            if let Some(h) = self.head(&key, Some(&v.version_id)).await?
                && let Some(until) = h.retain_until
                && until > now
            {
                return Err(RepoError::Retained {
                    name: name.to_owned(),
                    until,
                });
            }
        }
        let headers = object_headers(&bytes);
        let r = self
            .send(Method::PUT, Some(&key), &[], &headers, bytes)
            .await?;
        if !r.status.is_success() {
            return Err(self.http_error("PUT", name, r.status, &r.error_code()));
        }
        let Some(new_version) = r.header("x-amz-version-id").map(str::to_owned) else {
            // No versioning (cannot happen with Object Lock): nothing older survives.
            return Ok(());
        };
        // Versions are listed newest first: remove only those older than ours, so that two
        // writers racing on one name cannot delete each other's version and leave nothing.
        let versions = self.versions(&key).await?;
        for v in versions
            .iter()
            .skip_while(|v| v.version_id != new_version)
            .skip(1)
        {
            self.delete_version(name, &key, &v.version_id).await?;
        }
        Ok(())
    }

    /// The current bytes of an object.
    /// The object's bytes (see `resolve` for which version that is).
    pub async fn get(&self, name: &str) -> Result<Vec<u8>, RepoError> {
        check_name(name)?;
        let key = self.key(name);
        let versions = self.versions(&key).await?;
        let Some(v) = self.resolve(&key, &versions).await? else {
            return Err(RepoError::NotFound(name.to_owned()));
        };
        let r = self
            .send(
                Method::GET,
                Some(&key),
                &[("versionId", v.version_id.as_str())],
                &[],
                Vec::new(),
            )
            .await?;
        match r.status {
            s if s.is_success() => Ok(r.body),
            StatusCode::NOT_FOUND => Err(RepoError::NotFound(name.to_owned())),
            s => Err(self.http_error("GET", name, s, &r.error_code())),
        }
    }

    /// Every object whose name starts with `prefix` ("" for all), sorted by name, with its size
    /// and, for locked objects, the retention date.
    ///
    /// Listings carry no retention, so this costs one HEAD per object (16 in flight); callers
    /// that only need names and sizes should use [`S3Repo::list_names`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, RepoError> {
        let found = self.list_resolved(prefix).await?;
        let heads =
            futures_util::stream::iter(found.into_iter().map(|(name, size, version)| async move {
                let key = self.key(&name);
                let head = self.head(&key, Some(&version)).await?;
                Ok::<_, RepoError>(head.map(|h| ObjectInfo {
                    name,
                    size,
                    retain_until: h.retain_until,
                }))
            }))
            .buffered(LIST_HEAD_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut out = Vec::with_capacity(heads.len());
        for h in heads {
            // An object deleted between the listing and its HEAD is simply gone.
            if let Some(info) = h? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Names and sizes of the objects whose name starts with `prefix`, sorted: one request per
    /// page of up to 1000 versions, no retention dates.
    pub async fn list_names(&self, prefix: &str) -> Result<Vec<(String, u64)>, RepoError> {
        Ok(self
            .list_resolved(prefix)
            .await?
            .into_iter()
            .map(|(name, size, _)| (name, size))
            .collect())
    }

    /// `(name, size, version id)` of each object under `prefix`. Built on the version listing,
    /// not ListObjectsV2, so that a delete marker cannot hide an object (see `resolve`).
    async fn list_resolved(&self, prefix: &str) -> Result<Vec<(String, u64, String)>, RepoError> {
        check_list_prefix(prefix)?;
        let all = self.versions_under(&self.key(prefix), false).await?;
        let mut out = Vec::new();
        let mut i = 0;
        while i < all.len() {
            let key = all[i].0.clone();
            let mut versions = Vec::new();
            while i < all.len() && all[i].0 == key {
                let (_, v) = &all[i];
                versions.push(Version {
                    version_id: v.version_id.clone(),
                    delete_marker: v.delete_marker,
                    size: v.size,
                });
                i += 1;
            }
            let Some(name) = key.strip_prefix(&self.prefix) else {
                continue;
            };
            if let Some(v) = self.resolve(&key, &versions).await? {
                out.push((name.to_owned(), v.size, v.version_id.clone()));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Nothing to do: S3 acknowledges a PUT once the object is stored durably (the local
    /// repository syncs files in batches and needs this before a manifest names them).
    pub async fn flush(&self) -> Result<(), RepoError> {
        Ok(())
    }

    /// Deletes every version of an object; refused while any version is under retention.
    pub async fn delete(&self, name: &str) -> Result<(), RepoError> {
        check_name(name)?;
        let key = self.key(name);
        let versions = self.versions(&key).await?;
        if !versions.iter().any(|v| !v.delete_marker) {
            for v in &versions {
                self.delete_version(name, &key, &v.version_id).await?;
            }
            return Err(RepoError::NotFound(name.to_owned()));
        }
        // Check every version first, so that nothing is removed when one of them is retained.
        let now = OffsetDateTime::now_utc();
        for v in versions.iter().filter(|v| !v.delete_marker) {
            if let Some(h) = self.head(&key, Some(&v.version_id)).await?
                && let Some(until) = h.retain_until
                && until > now
            {
                return Err(RepoError::Retained {
                    name: name.to_owned(),
                    until,
                });
            }
        }
        for v in &versions {
            self.delete_version(name, &key, &v.version_id).await?;
        }
        Ok(())
    }

    async fn delete_version(&self, name: &str, key: &str, version: &str) -> Result<(), RepoError> {
        let r = self
            .send(
                Method::DELETE,
                Some(key),
                &[("versionId", version)],
                &[],
                Vec::new(),
            )
            .await?;
        match r.status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Ok(()),
            StatusCode::FORBIDDEN => {
                // The server's clock says the lock still holds (clock skew near the date).
                let until = self
                    .head(key, Some(version))
                    .await?
                    .and_then(|h| h.retain_until)
                    .unwrap_or_else(OffsetDateTime::now_utc);
                Err(RepoError::Retained {
                    name: name.to_owned(),
                    until,
                })
            }
            s => Err(self.http_error("DELETE", name, s, &r.error_code())),
        }
    }

    /// All versions and delete markers of exactly `key`, newest first.
    async fn versions(&self, key: &str) -> Result<Vec<Version>, RepoError> {
        Ok(self
            .versions_under(key, true)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Every version and delete marker of the keys starting with `prefix`, by key and newest
    /// first within a key. `exact`: only the key equal to `prefix` (longer keys such as `a.1`
    /// or `a/b` sort after `a`, so the first of them ends the listing).
    async fn versions_under(
        &self,
        prefix: &str,
        exact: bool,
    ) -> Result<Vec<(String, Version)>, RepoError> {
        let mut out = Vec::new();
        let page = self.page_size.to_string();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut q = vec![
                ("versions", ""),
                ("prefix", prefix),
                ("max-keys", page.as_str()),
            ];
            if let Some((k, v)) = &markers {
                q.push(("key-marker", k.as_str()));
                q.push(("version-id-marker", v.as_str()));
            }
            let r = self.send(Method::GET, None, &q, &[], Vec::new()).await?;
            if !r.status.is_success() {
                return Err(self.http_error("LIST VERSIONS", prefix, r.status, &r.error_code()));
            }
            let body = String::from_utf8_lossy(&r.body);
            let doc = roxmltree::Document::parse(&body)
                .map_err(|e| RepoError::Io(format!("S3 version listing reply: {e}")))?;
            let root = doc.root_element();
            for n in root.children().filter(|n| n.is_element()) {
                let delete_marker = n.has_tag_name("DeleteMarker");
                if !(delete_marker || n.has_tag_name("Version")) {
                    continue;
                }
                let key = xml_child_text(n, "Key").unwrap_or_default();
                if exact && key != prefix {
                    return Ok(out);
                }
                if let Some(version_id) = xml_child_text(n, "VersionId") {
                    let size = xml_child_text(n, "Size")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    out.push((
                        key,
                        Version {
                            version_id,
                            delete_marker,
                            size,
                        },
                    ));
                }
            }
            if xml_child_text(root, "IsTruncated").as_deref() != Some("true") {
                return Ok(out);
            }
            match (
                xml_child_text(root, "NextKeyMarker"),
                xml_child_text(root, "NextVersionIdMarker"),
            ) {
                (Some(k), Some(v)) => markers = Some((k, v)),
                _ => {
                    return Err(RepoError::Io(
                        "S3 version listing is truncated but has no markers".into(),
                    ));
                }
            }
        }
    }

    /// Which stored version of a key is the object (`versions` newest first). Normally there
    /// is exactly one: locked objects are create-only and `put_mutable` removes older
    /// versions. More appear only through writes by someone else holding the credentials (a
    /// newer version or a delete marker on top of a locked object, which the server allows) or
    /// a crash inside `put_mutable`. Then the oldest version under COMPLIANCE lock wins (the
    /// first write of a locked name: what the backup wrote), else the newest (a mutable
    /// object's latest value). Delete markers never hide an object from Kluis.
    async fn resolve<'v>(
        &self,
        key: &str,
        versions: &'v [Version],
    ) -> Result<Option<&'v Version>, RepoError> {
        let real: Vec<&Version> = versions.iter().filter(|v| !v.delete_marker).collect();
        if real.len() <= 1 {
            return Ok(real.first().copied());
        }
        let mut oldest_locked = None;
        for v in &real {
            if let Some(h) = self.head(key, Some(&v.version_id)).await?
                && h.lock_mode.as_deref() == Some("COMPLIANCE")
            {
                oldest_locked = Some(*v);
            }
        }
        Ok(oldest_locked.or(real.first().copied()))
    }

    /// HEAD of the current (or a given) version; None when there is none (or the current one
    /// is a delete marker).
    async fn head(&self, key: &str, version: Option<&str>) -> Result<Option<Head>, RepoError> {
        let q: Vec<(&str, &str)> = version.map(|v| ("versionId", v)).into_iter().collect();
        let r = self
            .send(Method::HEAD, Some(key), &q, &[], Vec::new())
            .await?;
        if r.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status.is_success() {
            return Err(self.http_error("HEAD", key, r.status, ""));
        }
        let lock_mode = r.header("x-amz-object-lock-mode").map(str::to_owned);
        let retain_until = match r.header("x-amz-object-lock-retain-until-date") {
            Some(s) => Some(parse_s3_time(s)?),
            None => None,
        };
        Ok(Some(Head {
            // GOVERNANCE can be bypassed, so only COMPLIANCE counts as retained.
            retain_until: retain_until.filter(|_| lock_mode.as_deref() == Some("COMPLIANCE")),
            lock_mode,
        }))
    }

    fn http_error(&self, op: &str, name: &str, status: StatusCode, code: &str) -> RepoError {
        let code = if code.is_empty() {
            String::new()
        } else {
            format!(" {code}")
        };
        RepoError::Io(format!(
            "S3 {op} {}/{}{name}: HTTP {}{code}",
            self.bucket,
            self.prefix,
            status.as_u16()
        ))
    }

    /// Signs and sends one request. `key` None addresses the bucket itself.
    async fn send(
        &self,
        method: Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&'static str, String)],
        body: Vec<u8>,
    ) -> Result<Reply, RepoError> {
        // Keys are checked to be [A-Za-z0-9._-/], which needs no escaping in a path.
        let mut url = match key {
            Some(k) => format!("{}/{k}", self.base),
            None => format!("{}/", self.base),
        };
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.extend(utf8_percent_encode(v, QUERY_ENCODE));
        }
        let mut settings = SigningSettings::default();
        // S3's variant of SigV4: paths are encoded once and not normalised, and the payload
        // hash travels in x-amz-content-sha256.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| RepoError::Io(format!("S3 signing parameters: {e}")))?
            .into();
        // One SHA-256 of the body serves the signature and, on object PUTs, the checksum that
        // servers knowing `x-amz-checksum-sha256` verify.
        let sha = Sha256::digest(&body);
        let mut headers = headers.to_vec();
        if method == Method::PUT && key.is_some() {
            headers.push(("x-amz-checksum-sha256", B64.encode(sha)));
            headers.push(("x-amz-sdk-checksum-algorithm", "SHA256".to_owned()));
        }
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            SignableBody::Precomputed(hex::encode(sha)),
        )
        .map_err(|e| RepoError::Io(format!("S3 request: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| RepoError::Io(format!("S3 signing: {e}")))?
            .into_parts();
        let mut rb = self.http.request(method.clone(), &url);
        for (k, v) in &headers {
            rb = rb.header(*k, v);
        }
        for (k, v) in instructions.headers() {
            rb = rb.header(k, v);
        }
        // An empty body still needs its length (RGW answers 411 without it).
        let resp = rb
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                // reqwest's message names the URL (endpoint, bucket, key): no secrets in it.
                RepoError::Io(format!("S3 {method} {url}: {}", error_chain(&e)))
            })?;
        let status = resp.status();
        // Method, URL (endpoint, bucket, key) and status only: never headers, which carry the
        // signature and session token.
        tracing::debug!(target: "kluis_backup::s3", %method, %url, status = status.as_u16(), "S3 request");
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| {
                RepoError::Io(format!(
                    "S3 {method} {url}: reading the reply: {}",
                    error_chain(&e)
                ))
            })?
            .to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// Content-MD5 (what Object Lock has always required on PUT). The SHA-256 checksum header is
/// added by `send`, which hashes the body once for it and for the signature.
fn object_headers(bytes: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/octet-stream".to_owned()),
        ("content-md5", B64.encode(Md5::digest(bytes))),
    ]
}

/// An error and its causes ("error sending request: ... : invalid peer certificate: ...").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let c_s = c.to_string();
        if !out.contains(&c_s) {
            out.push_str(": ");
            out.push_str(&c_s);
        }
        cur = c.source();
    }
    out
}

fn xml_child_text(node: roxmltree::Node<'_, '_>, tag: &str) -> Option<String> {
    node.children()
        .find(|n| n.has_tag_name(tag))
        .map(|n| n.text().unwrap_or_default().to_owned())
}

fn ceil_second(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    if t.nanosecond() == 0 {
        t
    } else {
        t.replace_nanosecond(0).unwrap_or(t) + time::Duration::SECOND
    }
}

/// Retain-until dates arrive as RFC 3339, with or without fractional seconds.
fn parse_s3_time(s: &str) -> Result<OffsetDateTime, RepoError> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|e| RepoError::Io(format!("S3 retain-until date {s:?}: {e}")))
}

/// Only `https`, or `http` to a loopback address; no credentials, path or query in the URL.
fn check_endpoint(endpoint: &str) -> Result<String, RepoError> {
    let bad = |why: &str| RepoError::Io(format!("S3 endpoint: {why}"));
    let url = url::Url::parse(endpoint).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the URL would carry the secret.
        return Err(bad(
            "credentials in the URL are refused; use AWS_ACCESS_KEY_ID etc.",
        ));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.path().trim_end_matches('/').is_empty()
    {
        return Err(bad(&format!("{endpoint} must be scheme://host[:port]")));
    }
    let host = url
        .host_str()
        .ok_or_else(|| bad(&format!("{endpoint} has no host")))?;
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(&format!(
                "{endpoint}: plain http is only allowed to a loopback address; use https"
            )));
        }
        s => return Err(bad(&format!("unsupported scheme {s}"))),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// S3 bucket naming rules (lowercase letters, digits, dots and hyphens, 3 to 63).
fn check_bucket_name(b: &str) -> Result<(), RepoError> {
    let ok = (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(RepoError::Io(format!("invalid S3 bucket name: {b:?}")))
    }
}

/// A listing prefix: "" or the start of a name (it may end in `/` or mid-segment).
fn check_list_prefix(prefix: &str) -> Result<(), RepoError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let p = prefix.strip_suffix('/').unwrap_or(prefix);
    check_name(p).map_err(|_| RepoError::BadName(prefix.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "a",
            "base/2026-12-07/000001.seg",
            "ledger/t-1.key",
            "A_b.c-d",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", ".", "a b", "a\\b", "ä", "a?b", "a%2f",
        ] {
            assert!(
                matches!(check_name(bad), Err(RepoError::BadName(_))),
                "{bad:?}"
            );
        }
        assert!(check_list_prefix("").is_ok());
        assert!(check_list_prefix("wal/").is_ok());
        assert!(check_list_prefix("../").is_err());
        assert!(check_list_prefix("a//").is_err());
    }

    #[test]
    fn endpoints() {
        assert!(check_endpoint("https://s3.eu-west-1.amazonaws.com").is_ok());
        assert!(check_endpoint("http://127.0.0.1:9000").is_ok());
        assert!(check_endpoint("http://[::1]:9000").is_ok());
        assert!(check_endpoint("http://localhost:9000/").is_ok());
        assert!(check_endpoint("http://s3.example.com").is_err());
        assert!(check_endpoint("http://10.0.0.1:9000").is_err());
        assert!(check_endpoint("ftp://127.0.0.1").is_err());
        assert!(check_endpoint("https://s3.example.com/bucket").is_err());
        let e = check_endpoint("https://AKIA:topsecret@s3.example.com")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("credentials in the URL"), "{e}");
        assert!(!e.contains("topsecret"), "{e}");
    }

    #[test]
    fn config_debug_hides_secrets() {
        let c = S3Config {
            endpoint: "https://s3.example.com".into(),
            region: "eu-west-1".into(),
            access_key_id: "AKIAEXAMPLEKEY".into(),
            secret_access_key: "wJalrXUtnFEMI-secret".into(),
            session_token: Some("token-secret".into()),
            ca_file: None,
        };
        let d = format!("{c:?}");
        assert!(!d.contains("AKIAEXAMPLEKEY") && !d.contains("wJalr") && !d.contains("token"));
    }

    #[test]
    fn retention_rounds_up() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_400_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(ceil_second(t).unix_timestamp(), 1_700_000_001);
        assert_eq!(
            parse_s3_time("2026-12-07T11:45:18Z")
                .map(|t| t.unix_timestamp())
                .ok(),
            Some(1_796_643_918)
        );
        assert!(parse_s3_time("2026-12-07T11:45:18.123Z").is_ok());
    }

    #[test]
    fn buckets() {
        assert!(check_bucket_name("kluis-backups").is_ok());
        assert!(check_bucket_name("ab").is_err());
        assert!(check_bucket_name("Kluis").is_err());
        assert!(check_bucket_name("-kluis").is_err());
    }
}
