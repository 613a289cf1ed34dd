//! The S3 repository against a real S3 server (Ceph radosgw, started by kluis-testkit), plus
//! direct requests to that server proving that the immutability is the server's: nothing the
//! repository's credentials can send removes or shortens a locked object version.

use kluis_backup::s3::{S3Config, S3Repo};
use kluis_backup::{Repo, RepoError};
use kluis_testkit::s3::{S3Server, s3_server};
use time::OffsetDateTime;

fn config(s: &S3Server) -> S3Config {
    S3Config {
        endpoint: s.endpoint.clone(),
        region: s.region.clone(),
        access_key_id: s.access_key.clone(),
        secret_access_key: s.secret_key.clone(),
        session_token: None,
        ca_file: None,
    }
}

/// A fresh bucket with Object Lock and a repository on it under `prefix`.
async fn fresh(s: &S3Server, prefix: &str) -> (String, S3Repo) {
    let bucket = s.unique_bucket("kluis-bk");
    s.create_bucket(&bucket, true)
        .await
        .unwrap_or_else(|e| panic!("create bucket: {e:#}"));
    let repo = S3Repo::open(config(s), &bucket, prefix)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    (bucket, repo)
}

/// Every `(key, version id, is delete marker)` in the bucket, from the server itself.
async fn raw_versions(s: &S3Server, bucket: &str) -> Vec<(String, String, bool)> {
    let r = s
        .request("GET", &format!("/{bucket}?versions="), &[], Vec::new())
        .await
        .unwrap_or_else(|e| panic!("list versions: {e:#}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("Version") || n.has_tag_name("DeleteMarker"))
        .map(|n| {
            let t = |tag: &str| {
                n.children()
                    .find(|c| c.has_tag_name(tag))
                    .and_then(|c| c.text())
                    .unwrap_or_default()
                    .to_owned()
            };
            (t("Key"), t("VersionId"), n.has_tag_name("DeleteMarker"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_repository_keeps_the_contract() {
    let Some(s) = s3_server() else { return };
    let (_bucket, repo) = fresh(s, "kluis/prod").await;
    // Small pages, so that the contract's listing spans several requests.
    let s3 = repo.with_page_size(10);
    let repo = Repo::S3(s3.clone());
    crate::contract::repo_contract(&repo).await;
    // The names-only listing (no HEAD per object) agrees with the full one.
    let full: Vec<(String, u64)> = repo
        .list("")
        .await
        .unwrap_or_else(|e| panic!("list: {e}"))
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    let names = s3
        .list_names("")
        .await
        .unwrap_or_else(|e| panic!("list_names: {e}"));
    assert!(full.len() > crate::contract::MANY, "{}", full.len());
    assert_eq!(names, full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_to_remove_a_locked_version() {
    let Some(s) = s3_server() else { return };
    let (bucket, repo) = fresh(s, "").await;
    let until = OffsetDateTime::now_utc() + time::Duration::hours(2);
    repo.put_locked("base/000001.seg", b"sealed bytes".to_vec(), until)
        .await
        .unwrap_or_else(|e| panic!("put_locked: {e}"));
    let versions = raw_versions(s, &bucket).await;
    assert_eq!(versions.len(), 1, "{versions:?}");
    let (key, vid, _) = &versions[0];
    assert_eq!(key, "base/000001.seg");
    let obj = format!("/{bucket}/{key}");
    let with_version = format!("{obj}?versionId={vid}");

    // The server reports COMPLIANCE and our date.
    let head = s.request("HEAD", &with_version, &[], Vec::new()).await.ok();
    let head = head.unwrap_or_else(|| panic!("HEAD failed"));
    assert_eq!(head.header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    assert!(head.header("x-amz-object-lock-retain-until-date").is_some());

    // Deleting that very version: refused, with or without the governance bypass.
    for bypass in [
        &[][..],
        &[("x-amz-bypass-governance-retention", "true")][..],
    ] {
        let r = s.request("DELETE", &with_version, bypass, Vec::new()).await;
        let r = r.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            r.status,
            403,
            "delete version (bypass {bypass:?}): {}",
            r.text()
        );
    }
    // Shortening the retention, or switching to GOVERNANCE: refused.
    let earlier = (OffsetDateTime::now_utc() + time::Duration::seconds(5))
        .replace_nanosecond(0)
        .unwrap_or(until)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    for mode in ["COMPLIANCE", "GOVERNANCE"] {
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{mode}</Mode>\
             <RetainUntilDate>{earlier}</RetainUntilDate></Retention>"
        );
        let md5 = {
            use base64::Engine as _;
            use md5::Digest as _;
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()))
        };
        let r = s
            .request(
                "PUT",
                &format!("{with_version}&retention="),
                &[
                    ("content-md5", md5.as_str()),
                    ("x-amz-bypass-governance-retention", "true"),
                ],
                body.into_bytes(),
            )
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(
            r.status == 400 || r.status == 403,
            "shortening retention ({mode}) answered {}: {}",
            r.status,
            r.text()
        );
    }
    // Suspending versioning (which would let a PUT replace the bytes) and deleting the bucket:
    // refused.
    let body = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                <Status>Suspended</Status></VersioningConfiguration>";
    let r = s
        .request(
            "PUT",
            &format!("/{bucket}?versioning="),
            &[],
            body.as_bytes().to_vec(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.status, 409, "suspend versioning: {}", r.text());
    let r = s
        .request("DELETE", &format!("/{bucket}"), &[], Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.status, 409, "delete bucket: {}", r.text());

    // A plain DELETE only adds a delete marker, and a plain PUT a newer version on top: the
    // server allows both. Neither hides nor replaces the backup: the repository still reads
    // the locked version, lists it, refuses to delete it, and will not re-create the name.
    let r = s
        .request("DELETE", &obj, &[], Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.status, 204, "{}", r.text());
    let plain = s.request("GET", &obj, &[], Vec::new()).await;
    assert_eq!(
        plain.map(|r| r.status).ok(),
        Some(404),
        "hidden to plain GET"
    );
    assert_eq!(
        repo.get("base/000001.seg").await.ok().as_deref(),
        Some(&b"sealed bytes"[..])
    );
    let forged = s
        .request("PUT", &obj, &[], b"forged bytes, longer".to_vec())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(forged.status, 200, "{}", forged.text());
    assert_eq!(
        repo.get("base/000001.seg").await.ok().as_deref(),
        Some(&b"sealed bytes"[..])
    );
    let listed = repo.list("base/").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].size, 12);
    assert!(
        listed[0]
            .retain_until
            .is_some_and(|t| t > OffsetDateTime::now_utc())
    );
    assert!(matches!(
        repo.delete("base/000001.seg").await,
        Err(RepoError::Retained { .. })
    ));
    let again = repo
        .put_locked("base/000001.seg", b"replacement".to_vec(), until)
        .await;
    assert!(matches!(again, Err(RepoError::Exists(_))), "{again:?}");
    let r = s
        .request("GET", &with_version, &[], Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!((r.status, r.body.as_slice()), (200, &b"sealed bytes"[..]));
    assert!(
        raw_versions(s, &bucket)
            .await
            .iter()
            .any(|(_, v, marker)| v == vid && !marker)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutable_objects_leave_no_old_versions() {
    // Shredding relies on this: a replaced or deleted ledger key must not survive as an older
    // version of the object.
    let Some(s) = s3_server() else { return };
    let (bucket, repo) = fresh(s, "p").await;
    for v in ["key v1", "key v2", "key v3"] {
        repo.put_mutable("ledger/tenant-a.key", v.as_bytes().to_vec())
            .await
            .unwrap_or_else(|e| panic!("put_mutable: {e}"));
    }
    let versions = raw_versions(s, &bucket).await;
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0].0, "p/ledger/tenant-a.key");
    let r = s
        .request(
            "GET",
            &format!(
                "/{bucket}/p/ledger/tenant-a.key?versionId={}",
                versions[0].1
            ),
            &[],
            Vec::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.body, b"key v3");
    // Two unlocked versions (as a crash between put_mutable's PUT and its clean-up leaves):
    // the newest is the value.
    let r = s
        .request(
            "PUT",
            &format!("/{bucket}/p/ledger/tenant-a.key"),
            &[],
            b"key v4".to_vec(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(raw_versions(s, &bucket).await.len(), 2);
    assert_eq!(
        repo.get("ledger/tenant-a.key").await.ok().as_deref(),
        Some(&b"key v4"[..])
    );
    repo.delete("ledger/tenant-a.key")
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    let versions = raw_versions(s, &bucket).await;
    assert!(versions.is_empty(), "left behind: {versions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_refuses_buckets_that_cannot_lock() {
    let Some(s) = s3_server() else { return };
    // No Object Lock at all.
    let plain = s.unique_bucket("kluis-plain");
    s.create_bucket(&plain, false)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let e = S3Repo::open(config(s), &plain, "").await.err();
    let e = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("Object Lock"), "{e}");

    // Object Lock with a default retention: the ledger could not be shredded.
    let (bucket, _) = fresh(s, "").await;
    let body = "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                <ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
                <Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule>\
                </ObjectLockConfiguration>";
    let md5 = {
        use base64::Engine as _;
        use md5::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()))
    };
    let r = s
        .request(
            "PUT",
            &format!("/{bucket}?object-lock="),
            &[("content-md5", md5.as_str())],
            body.as_bytes().to_vec(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let e = S3Repo::open(config(s), &bucket, "").await.err();
    let e = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("default Object Lock retention"), "{e}");

    // A missing bucket.
    let e = S3Repo::open(config(s), "kluis-no-such-bucket", "")
        .await
        .err();
    let e = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("does not exist"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_without_echoing_them() {
    let Some(s) = s3_server() else { return };
    let (bucket, _) = fresh(s, "").await;
    let mut cfg = config(s);
    cfg.secret_access_key = "not-the-secret-Zq8wPl".into();
    let e = S3Repo::open(cfg, &bucket, "").await.err();
    let msg = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("403"), "{msg}");
    assert!(
        !msg.contains("Zq8wPl") && !msg.contains(&s.secret_key),
        "{msg}"
    );
    assert!(!msg.contains(&s.access_key), "{msg}");
}

/// `Repo::open("s3://bucket/prefix")` as the CLI calls it, with everything from the environment.
/// The environment is per process, so this runs the `open_from_env_child` test in a child
/// process of this test binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_open_takes_the_environment() {
    let Some(s) = s3_server() else { return };
    let (bucket, _) = fresh(s, "").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{}\n", s.secret_key)).unwrap_or_else(|e| panic!("{e}"));
    let run = |extra: Vec<(&'static str, String)>, remove: &[&str]| {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "--exact",
            "s3::open_from_env_child",
            "--ignored",
            "--nocapture",
        ])
        .env("KLUIS_TEST_S3_LOCATION", format!("s3://{bucket}/from-env"));
        for (k, v) in s.env().into_iter().chain(extra) {
            cmd.env(k, v);
        }
        for k in remove {
            cmd.env_remove(k);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    // Secret in the environment.
    let (ok, out) = run(vec![], &[]);
    assert!(ok && out.contains("child: round trip ok"), "{out}");
    // Secret in a file instead.
    let (ok, out) = run(
        vec![(
            "AWS_SECRET_ACCESS_KEY_FILE",
            secret_file.to_string_lossy().into_owned(),
        )],
        &["AWS_SECRET_ACCESS_KEY"],
    );
    assert!(ok && out.contains("child: round trip ok"), "{out}");
    // Plain http to a host that is not loopback: refused before any request.
    let (ok, out) = run(
        vec![("KLUIS_S3_ENDPOINT", "http://s3.example.com".to_owned())],
        &[],
    );
    assert!(
        !ok && out.contains("only allowed to a loopback address"),
        "{out}"
    );
    assert!(!out.contains(&s.secret_key), "the secret leaked: {out}");
    // No credentials at all.
    let (ok, out) = run(vec![], &["AWS_ACCESS_KEY_ID"]);
    assert!(!ok && out.contains("AWS_ACCESS_KEY_ID is not set"), "{out}");
}

/// Run only by [`repo_open_takes_the_environment`], in its own process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of repo_open_takes_the_environment"]
async fn open_from_env_child() {
    let location = std::env::var("KLUIS_TEST_S3_LOCATION").unwrap_or_default();
    let repo = match Repo::open(&location).await {
        Ok(r) => r,
        Err(e) => panic!("child: open failed: {e}"),
    };
    repo.put_mutable("state/position", b"42".to_vec())
        .await
        .unwrap_or_else(|e| panic!("child: {e}"));
    assert_eq!(
        repo.get("state/position").await.ok().as_deref(),
        Some(&b"42"[..])
    );
    assert!(matches!(&repo, Repo::S3(r) if r.prefix() == "from-env/"));
    println!("child: round trip ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca() {
    let Some(s) = s3_server() else { return };
    let (bucket, _) = fresh(s, "").await;
    let mut cfg = config(s);
    cfg.endpoint = s.tls_endpoint.clone();
    // Without the gateway's CA: the certificate is not trusted, nothing is sent in the clear.
    let e = S3Repo::open(cfg.clone(), &bucket, "tls").await.err();
    let e = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("S3 GET") && e.contains("certificate"), "{e}");
    // With it (KLUIS_S3_CA_FILE): a full round trip over TLS.
    cfg.ca_file = Some(s.ca_file.clone());
    let repo = S3Repo::open(cfg, &bucket, "tls")
        .await
        .unwrap_or_else(|e| panic!("open over https: {e}"));
    let until = OffsetDateTime::now_utc() + time::Duration::hours(1);
    repo.put_locked("over/tls.seg", b"over tls".to_vec(), until)
        .await
        .unwrap_or_else(|e| panic!("put over https: {e}"));
    assert_eq!(
        repo.get("over/tls.seg").await.ok().as_deref(),
        Some(&b"over tls"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_goes_past_the_servers_1000_key_page() {
    use futures_util::StreamExt as _;
    let Some(s) = s3_server() else { return };
    let (_bucket, repo) = fresh(s, "big").await;
    const N: usize = 1001;
    let results: Vec<_> = futures_util::stream::iter((0..N).map(|i| {
        let repo = &repo;
        async move {
            repo.put_mutable(&format!("wal/{i:06}"), vec![1u8; i % 7])
                .await
        }
    }))
    .buffer_unordered(16)
    .collect()
    .await;
    for r in results {
        r.unwrap_or_else(|e| panic!("put: {e}"));
    }
    let names = repo
        .list_names("wal/")
        .await
        .unwrap_or_else(|e| panic!("list_names: {e}"));
    let want: Vec<(String, u64)> = (0..N)
        .map(|i| (format!("wal/{i:06}"), (i % 7) as u64))
        .collect();
    assert_eq!(names, want);
    let full = repo
        .list("wal/")
        .await
        .unwrap_or_else(|e| panic!("list: {e}"));
    assert_eq!(full.len(), N);
    assert!(full.iter().all(|o| o.retain_until.is_none()));
}
