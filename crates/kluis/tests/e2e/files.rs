//! Files on records (issue 23), end to end against the real server, a real clamd (kluis-testkit
//! `clamav`) and both engines: sealed storage (a canary is nowhere on disk or in the
//! database), safe downloads, versions, the file trash, EICAR refused on every upload path, a
//! scanner outage, moved ciphertext, other tenants, and a 1 GiB upload in flat memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, Server, code, on_both, tenant_fixture};
use kluis_testkit::clamav::{Clamd, EICAR, EICAR_SIGNATURE};

on_both!(
    files_round_trip_sealed_and_served_safely,
    eicar_is_refused_on_every_upload_path,
    scanner_outage_leaves_files_pending_until_a_rescan,
    moved_ciphertext_does_not_open,
    other_tenants_cannot_reach_files,
    files_on_the_record_page
);

const CANARY: &str = "KANARIE-7f3a9c-vertrouwelijk";

/// A server scanning with `clamd` (its socket may not be up yet), rescanning every second.
async fn server(b: Backend, clamd: &Clamd, extra: &[(&str, &str)]) -> Server {
    let sock = clamd.socket().display().to_string();
    let mut env = vec![
        ("KLUIS_CLAMAV_SOCKET", sock.as_str()),
        ("KLUIS_CLAMAV_TIMEOUT_SECS", "10"),
        ("KLUIS_FILES_RESCAN_INTERVAL_SECS", "1"),
    ];
    env.extend_from_slice(extra);
    Server::start_with(b, &env).await
}

async fn upload(
    s: &Server,
    auth: &Auth,
    path: &str,
    name: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let url = format!("{path}?name={}", urlencode(name));
    s.upload(&url, auth, "application/octet-stream", body).await
}

async fn replace(s: &Server, auth: &Auth, id: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let rb = s
        .client
        .put(s.url(&format!("/api/v1/files/{id}/content")))
        .header("content-type", "application/octet-stream")
        .body(body);
    let res = auth.apply(rb).send().await.unwrap();
    let st = res.status();
    (
        st,
        serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// GET a file's content: status, headers, bytes.
async fn download(
    s: &Server,
    auth: &Auth,
    id: &str,
    query: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let rb = s
        .client
        .get(s.url(&format!("/api/v1/files/{id}/content{query}")));
    let res = auth.apply(rb).send().await.unwrap();
    let st = res.status();
    let h = res.headers().clone();
    let body = res.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (st, h, body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

async fn contact(s: &Server, auth: &Auth, email: &str) -> String {
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            auth,
            json!({"fields": {"email": email}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn grep_dir(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(grep_dir(&p, needle));
        } else if let Ok(b) = std::fs::read(&p)
            && b.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(p);
        }
    }
    hits
}

async fn actions(s: &Server, auth: &Auth, action: &str) -> Vec<Value> {
    crate::audit::events(s, auth, &format!("&action={action}")).await
}

async fn files_round_trip_sealed_and_served_safely(b: Backend) {
    let Some(clamd) = Clamd::start() else { return };
    let s = server(
        b,
        &clamd,
        &[
            ("KLUIS_FILES_MAX_BYTES", "3000000"),
            ("KLUIS_FILES_TENANT_QUOTA_BYTES", "8000000"),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "bestanden").await;
    let cid = contact(&s, &t.owner, "jan@bestanden.test").await;
    let files = format!("/api/v1/contacts/{cid}/files");

    // Upload (a PDF, 3 chunks and a bit: the canary sits in the middle).
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(std::iter::repeat_n(b'a', 100_000));
    pdf.extend_from_slice(CANARY.as_bytes());
    pdf.extend(std::iter::repeat_n(b'z', 100_000));
    let name = format!("Contract {CANARY} €.pdf");
    let (st, f) = upload(&s, &t.owner, &files, &name, pdf.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{f}");
    assert_eq!(f["status"], "clean");
    assert_eq!(f["content_type"], "application/pdf");
    assert_eq!(f["version"], 1);
    assert_eq!(f["size"], pdf.len());
    let id = f["id"].as_str().unwrap().to_owned();

    let (st, list) = s.get(&files, &t.key).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["name"], name.as_str());

    // Download: the same bytes, as an attachment, inert.
    let (st, h, body) = download(&s, &t.key, &id, "").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, pdf);
    let disp = h["content-disposition"].to_str().unwrap();
    assert!(disp.starts_with("attachment; filename=\""), "{disp}");
    assert!(disp.contains("filename*=UTF-8''Contract%20"), "{disp}");
    assert!(disp.contains("%E2%82%AC.pdf"), "{disp}");
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");

    // Nothing readable on disk or in the database: neither the content nor the name.
    let hits = grep_dir(s.dir.path(), CANARY.as_bytes());
    assert!(hits.is_empty(), "canary found in {hits:?}");
    let dump = s.database_dump().await;
    assert!(!dump.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()));

    // Markup: refused under a harmless name; under its own name stored and served inert.
    let page = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec();
    let (st, v) = upload(&s, &t.owner, &files, "leesmij.txt", page.clone()).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(code(&v), "file_type_mismatch");
    let (st, v) = upload(
        &s,
        &t.owner,
        &files,
        "exe.pdf",
        b"MZ\x90\0\x03\0\0\0".to_vec(),
    )
    .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "file_type_mismatch")
    );
    let (st, v) = upload(&s, &t.owner, &files, "pagina.html", page.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, h, body) = download(&s, &t.owner, v["id"].as_str().unwrap(), "").await;
    assert_eq!(body, page);
    assert_eq!(h["content-type"], "application/octet-stream");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    let (st, v) = upload(&s, &t.owner, &files, "logo.svg", svg).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, h, _) = download(&s, &t.owner, v["id"].as_str().unwrap(), "").await;
    assert_eq!(h["content-type"], "application/octet-stream");

    // Rename (the extension must keep matching the content).
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/files/{id}"),
            &t.owner,
            Some(json!({"name": "offerte.pdf"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "offerte.pdf");
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/files/{id}"),
            &t.owner,
            Some(json!({"name": "offerte.html"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "file_type_mismatch")
    );

    // Replace: version 2; version 1 kept and downloadable.
    let v2 = b"%PDF-1.7\nversie twee".to_vec();
    let (st, v) = replace(&s, &t.owner, &id, v2.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["version"], 2);
    let (_, _, body) = download(&s, &t.owner, &id, "").await;
    assert_eq!(body, v2);
    let (_, _, body) = download(&s, &t.owner, &id, "?version=1").await;
    assert_eq!(body, pdf);
    let (st, vs) = s
        .get(&format!("/api/v1/files/{id}/versions"), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
    let vs = vs["items"].as_array().unwrap();
    assert_eq!(vs.len(), 2);
    assert_eq!(
        (vs[0]["version"].as_i64(), vs[0]["current"].as_bool()),
        (Some(2), Some(true))
    );

    // Limits: per file (checked as the bytes stream in: a chunked body with no length) and
    // the organisation's quota.
    let big = futures_util::stream::iter(
        (0..3).map(|i| Ok::<_, std::io::Error>(vec![7u8; 1_000_000 + i])),
    );
    let rb = s
        .client
        .post(s.url(&format!("{files}?name=groot.bin")))
        .body(reqwest::Body::wrap_stream(big));
    let res = t.owner.apply(rb).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(code(&v), "file_too_large");
    let hits = grep_dir(&s.dir.path().join("files/tmp"), b"\x07\x07");
    assert!(
        hits.is_empty()
            && std::fs::read_dir(s.dir.path().join("files/tmp"))
                .unwrap()
                .count()
                == 0,
        "a refused upload left its temporary file"
    );
    let mut last = (StatusCode::OK, Value::Null);
    for i in 0..4 {
        last = upload(
            &s,
            &t.owner,
            &files,
            &format!("vulling{i}.bin"),
            vec![1u8; 2_500_000],
        )
        .await;
        if last.0 != StatusCode::CREATED {
            break;
        }
    }
    assert_eq!(
        (last.0, code(&last.1)),
        (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded")
    );

    // Every record type carries files; tasks do not.
    for (path, fields) in [
        ("/api/v1/companies", json!({"name": "Bedrijf"})),
        ("/api/v1/deals", json!({"name": "Deal"})),
        ("/api/v1/tickets", json!({"subject": "Vraag"})),
        ("/api/v1/notes", json!({"body": "Notitie"})),
    ] {
        let (st, r) = s.post(path, &t.owner, json!({"fields": fields})).await;
        assert_eq!(st, StatusCode::CREATED, "{r}");
        let p = format!("{path}/{}/files", r["id"].as_str().unwrap());
        let (st, v) = upload(&s, &t.key, &p, "notitie.txt", b"hallo".to_vec()).await;
        assert_eq!(st, StatusCode::CREATED, "{path}: {v}");
        let (_, l) = s.get(&p, &t.key).await;
        assert_eq!(l["items"].as_array().unwrap().len(), 1, "{path}");
    }

    // Delete to the file trash, restore.
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/files/{id}"),
            &t.owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, l) = s.get(&files, &t.owner).await;
    assert!(
        l["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["id"] != id.as_str())
    );
    let (_, l) = s.get(&format!("{files}?trashed=true"), &t.owner).await;
    assert_eq!(l["items"][0]["id"], id.as_str());
    assert!(l["items"][0]["purge_after"].is_string());
    let (st, _, _) = download(&s, &t.owner, &id, "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .post(&format!("/api/v1/files/{id}/restore"), &t.owner, json!({}))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, body) = download(&s, &t.owner, &id, "").await;
    assert_eq!((st, body), (StatusCode::OK, v2.clone()));

    // Purge is privileged (crm:purge): a member cannot, the owner can.
    s.call(
        Method::DELETE,
        &format!("/api/v1/files/{id}"),
        &t.owner,
        None,
    )
    .await;
    let (st, _) = s
        .post(&format!("/api/v1/files/{id}/purge"), &t.member, json!({}))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = s
        .post(&format!("/api/v1/files/{id}/purge"), &t.owner, json!({}))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, _) = s.get(&format!("/api/v1/files/{id}"), &t.owner).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Every step is in the audit trail.
    for a in [
        "file.upload",
        "file.download",
        "file.rename",
        "file.replace",
        "file.delete",
        "file.restore",
        "file.purge",
    ] {
        let ev = actions(&s, &t.owner, a).await;
        assert!(
            ev.iter().any(|e| e["object_id"] == id.as_str()),
            "no {a} event for the file"
        );
    }
}

async fn eicar_is_refused_on_every_upload_path(b: Backend) {
    let Some(clamd) = Clamd::start() else { return };
    let s = server(b, &clamd, &[]).await;
    let t = tenant_fixture(&s, "virus").await;
    let cid = contact(&s, &t.owner, "v@virus.test").await;
    let files = format!("/api/v1/contacts/{cid}/files");

    // A new upload.
    let (st, v) = upload(&s, &t.key, &files, "eicar.com", EICAR.to_vec()).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "file_infected"),
        "{v}"
    );
    let (_, l) = s.get(&files, &t.key).await;
    let q = &l["items"][0];
    assert_eq!(q["status"], "infected", "{l}");
    let qid = q["id"].as_str().unwrap().to_owned();
    let (st, _, body) = download(&s, &t.key, &qid, "").await;
    assert_eq!(
        (st, code(&json_of(&body))),
        (StatusCode::CONFLICT, "file_quarantined")
    );
    let (_, vs) = s
        .get(&format!("/api/v1/files/{qid}/versions"), &t.key)
        .await;
    assert_eq!(vs["items"][0]["scan_result"], EICAR_SIGNATURE);
    // Inside other bytes too (a text file with the test string in it).
    let mut wrapped = b"regel een\n".to_vec();
    wrapped.extend_from_slice(EICAR);
    let (st, v) = upload(&s, &t.owner, &files, "notities.txt", wrapped).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "file_infected")
    );

    // A replacement: refused, quarantined as a version that never becomes current.
    let (st, v) = upload(&s, &t.owner, &files, "schoon.txt", b"schoon".to_vec()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (st, v) = replace(&s, &t.owner, &id, EICAR.to_vec()).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "file_infected"),
        "{v}"
    );
    let (_, info) = s.get(&format!("/api/v1/files/{id}"), &t.owner).await;
    assert_eq!(
        (info["version"].as_i64(), info["status"].as_str()),
        (Some(1), Some("clean"))
    );
    let (st, _, body) = download(&s, &t.owner, &id, "").await;
    assert_eq!((st, body), (StatusCode::OK, b"schoon".to_vec()));
    let (st, _, _) = download(&s, &t.owner, &id, "?version=2").await;
    assert_eq!(st, StatusCode::CONFLICT);

    let ev = actions(&s, &t.owner, "file.quarantine").await;
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert!(ev.iter().any(|e| e["object_id"] == id.as_str()));
}

async fn wait_for_status(s: &Server, auth: &Auth, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = s.get(&format!("/api/v1/files/{id}"), auth).await;
        if v["status"] == want {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "file {id} never became {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn scanner_outage_leaves_files_pending_until_a_rescan(b: Backend) {
    let Some(mut clamd) = Clamd::start() else {
        return;
    };
    let s = server(b, &clamd, &[]).await;
    let t = tenant_fixture(&s, "storing").await;
    let cid = contact(&s, &t.owner, "s@storing.test").await;
    let files = format!("/api/v1/contacts/{cid}/files");
    clamd.stop();

    let (st, clean) = upload(&s, &t.owner, &files, "brief.txt", b"beste klant".to_vec()).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{clean}");
    assert_eq!(clean["status"], "pending");
    let clean = clean["id"].as_str().unwrap().to_owned();
    let (st, bad) = upload(&s, &t.owner, &files, "eicar.com", EICAR.to_vec()).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{bad}");
    let bad = bad["id"].as_str().unwrap().to_owned();
    // Never served unscanned, for as long as the scanner is away (several rescans).
    for _ in 0..3 {
        for id in [&clean, &bad] {
            let (st, _, body) = download(&s, &t.owner, id, "").await;
            assert_eq!(
                (st, code(&json_of(&body))),
                (StatusCode::CONFLICT, "file_pending")
            );
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    clamd.run().unwrap();
    wait_for_status(&s, &t.owner, &clean, "clean").await;
    let (st, _, body) = download(&s, &t.owner, &clean, "").await;
    assert_eq!((st, body), (StatusCode::OK, b"beste klant".to_vec()));
    wait_for_status(&s, &t.owner, &bad, "infected").await;
    let (st, _, body) = download(&s, &t.owner, &bad, "").await;
    assert_eq!(
        (st, code(&json_of(&body))),
        (StatusCode::CONFLICT, "file_quarantined")
    );
    let ev = actions(&s, &t.owner, "file.scan").await;
    assert_eq!(ev.len(), 2, "{ev:?}");
}

/// The blob files of one tenant, newest last.
fn blobs(s: &Server, tenant: &str) -> Vec<PathBuf> {
    let dir = s.dir.path().join("files").join(tenant.replace('-', ""));
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

async fn moved_ciphertext_does_not_open(b: Backend) {
    let Some(clamd) = Clamd::start() else { return };
    let mut s = server(b, &clamd, &[]).await;
    let t = tenant_fixture(&s, "verplaatst").await;
    let cid = contact(&s, &t.owner, "m@verplaatst.test").await;
    let files = format!("/api/v1/contacts/{cid}/files");
    let a_bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (_, a) = upload(&s, &t.owner, &files, "a.bin", a_bytes.clone()).await;
    // Which blob is whose: the one there after the first upload is A's (not the mtime order,
    // which a loaded machine does not keep reliably).
    let first = blobs(&s, &t.id);
    assert_eq!(first.len(), 1);
    let (_, bf) = upload(&s, &t.owner, &files, "b.bin", vec![9u8; 200_000]).await;
    let (a, bf) = (
        a["id"].as_str().unwrap().to_owned(),
        bf["id"].as_str().unwrap().to_owned(),
    );
    let paths = blobs(&s, &t.id);
    assert_eq!(paths.len(), 2);
    let pa = &first[0];
    let pb = paths.iter().find(|p| *p != pa).unwrap();
    let orig_a = std::fs::read(pa).unwrap();
    let orig_b = std::fs::read(pb).unwrap();

    // A's ciphertext moved into B's place: B does not open (and A's bytes never come out).
    std::fs::write(pb, &orig_a).unwrap();
    let (st, _, body) = download(&s, &t.owner, &bf, "").await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(code(&json_of(&body)), "data_unreadable");
    // Chunks of A moved to other positions within A.
    let chunk = 65_536 + 16;
    let header = 11;
    let mut swapped = orig_a.clone();
    swapped[header..header + chunk].copy_from_slice(&orig_a[header + chunk..header + 2 * chunk]);
    swapped[header + chunk..header + 2 * chunk].copy_from_slice(&orig_a[header..header + chunk]);
    std::fs::write(pa, &swapped).unwrap();
    let (st, _, body) = download(&s, &t.owner, &a, "").await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !body
            .windows(100)
            .any(|w| a_bytes.windows(100).any(|x| x == w))
    );
    // Cut short by a chunk: the body breaks off (the last chunk is missing).
    std::fs::write(pa, &orig_a[..orig_a.len() - 100]).unwrap();
    // A fresh connection: the answers above broke off mid-body, and a pooled connection the
    // server closed after that would fail the request before it is sent.
    let cert = std::fs::read(s.dir.path().join("tls/cert.pem")).unwrap();
    let fresh = crate::support::client_with(&cert, s.port, false);
    let rb = fresh.get(s.url(&format!("/api/v1/files/{a}/content")));
    // The server may fail before or after the headers (it streams): either way the whole
    // content never arrives.
    let got = match t.owner.apply(rb).send().await {
        Ok(res) => res.bytes().await.map_or(0, |b| b.len()),
        Err(_) => 0,
    };
    assert!(got < a_bytes.len(), "a truncated blob was served whole");
    // Put back, both open again (on a fresh connection, as above).
    s.client = crate::support::client_with(&cert, s.port, false);
    std::fs::write(pa, &orig_a).unwrap();
    std::fs::write(pb, &orig_b).unwrap();
    let (st, _, body) = download(&s, &t.owner, &a, "").await;
    assert_eq!((st, body), (StatusCode::OK, a_bytes));
    let (st, _, _) = download(&s, &t.owner, &bf, "").await;
    assert_eq!(st, StatusCode::OK);
}

async fn other_tenants_cannot_reach_files(b: Backend) {
    let Some(clamd) = Clamd::start() else { return };
    let s = server(b, &clamd, &[]).await;
    let a = tenant_fixture(&s, "huurder-a").await;
    let bt = tenant_fixture(&s, "huurder-b").await;
    let cid = contact(&s, &a.owner, "x@huurder-a.test").await;
    let (_, f) = upload(
        &s,
        &a.owner,
        &format!("/api/v1/contacts/{cid}/files"),
        "geheim.txt",
        CANARY.as_bytes().to_vec(),
    )
    .await;
    let id = f["id"].as_str().unwrap().to_owned();
    for auth in [&bt.owner, &bt.key] {
        for (m, p) in [
            (Method::GET, format!("/api/v1/files/{id}")),
            (Method::GET, format!("/api/v1/files/{id}/content")),
            (Method::GET, format!("/api/v1/files/{id}/versions")),
            (Method::DELETE, format!("/api/v1/files/{id}")),
            (Method::POST, format!("/api/v1/files/{id}/restore")),
            (Method::GET, format!("/api/v1/contacts/{cid}/files")),
        ] {
            let (st, v) = s.call(m.clone(), &p, auth, None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{m} {p}: {v}");
            assert!(!v.to_string().contains(CANARY));
        }
        let (st, _) = upload(
            &s,
            auth,
            &format!("/api/v1/contacts/{cid}/files"),
            "in.txt",
            b"x".to_vec(),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = replace(&s, auth, &id, b"overschreven".to_vec()).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
    // B's own id space: the same file id under B's contact route is not there either.
    let bc = contact(&s, &bt.owner, "y@huurder-b.test").await;
    let (_, l) = s
        .get(&format!("/api/v1/contacts/{bc}/files"), &bt.owner)
        .await;
    assert_eq!(l["items"].as_array().unwrap().len(), 0);
    let (st, _, body) = download(&s, &a.owner, &id, "").await;
    assert_eq!((st, body), (StatusCode::OK, CANARY.as_bytes().to_vec()));
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// MiB number `n` of the big test file: a fixed pseudo-random block with `n` in its first
/// bytes, so a chunk moved to another place would show.
fn block(base: &[u8], n: u64) -> Vec<u8> {
    let mut b = base.to_vec();
    b[..8].copy_from_slice(&n.to_le_bytes());
    b
}

/// A 1 GiB upload and download (size: `KLUIS_FILES_BIG_MIB`, default 1024) keep the server's
/// resident memory flat: sampled from /proc while the bytes stream through.
#[tokio::test]
async fn a_large_upload_keeps_server_memory_flat() {
    let mib: u64 = std::env::var("KLUIS_FILES_BIG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let size = mib * 1024 * 1024;
    let limit = (size + 1).to_string();
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("KLUIS_FILES_SCAN", "false"),
            ("KLUIS_FILES_MAX_BYTES", limit.as_str()),
            ("KLUIS_FILES_TENANT_QUOTA_BYTES", limit.as_str()),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "groot").await;
    let cid = contact(&s, &t.owner, "g@groot.test").await;
    let pid = s.pid();
    let baseline = rss_kib(pid);

    let sampler = |stop: std::sync::Arc<std::sync::atomic::AtomicBool>| {
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };

    // Upload: generated on the fly, 1 MiB at a time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak_up = sampler(stop.clone());
    let piece = 1024 * 1024usize;
    let base: std::sync::Arc<Vec<u8>> = std::sync::Arc::new(
        (0..piece as u64)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );
    let b2 = base.clone();
    let stream =
        futures_util::stream::iter(0..mib).map(move |n| Ok::<_, std::io::Error>(block(&b2, n)));
    use futures_util::StreamExt;
    let started = Instant::now();
    let rb = s
        .client
        .post(s.url(&format!("/api/v1/contacts/{cid}/files?name=groot.bin")))
        .header("content-type", "application/octet-stream")
        .header("content-length", size.to_string())
        .body(reqwest::Body::wrap_stream(stream));
    let res = t.owner.apply(rb).send().await.unwrap();
    let st = res.status();
    let v: Value = res.json().await.unwrap();
    let up_secs = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_up = peak_up.join().unwrap();
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["size"].as_u64(), Some(size));
    let id = v["id"].as_str().unwrap().to_owned();

    // Download: checked byte by byte as it streams.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak_down = sampler(stop.clone());
    let started = Instant::now();
    let rb = s.client.get(s.url(&format!("/api/v1/files/{id}/content")));
    let res = t.owner.apply(rb).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.bytes_stream();
    let mut pos = 0u64;
    let mut pending: Vec<u8> = Vec::with_capacity(2 * piece);
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk.unwrap());
        while pending.len() >= piece {
            let n = pos / piece as u64;
            assert!(pending[..piece] == block(&base, n)[..], "MiB {n} differs");
            pending.drain(..piece);
            pos += piece as u64;
        }
    }
    pos += pending.len() as u64;
    let down_secs = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_down = peak_down.join().unwrap();
    assert_eq!(pos, size);

    let grew_up = peak_up.saturating_sub(baseline) / 1024;
    let grew_down = peak_down.saturating_sub(baseline) / 1024;
    eprintln!(
        "{mib} MiB: server RSS baseline {} MiB, peak during upload +{grew_up} MiB ({:.0} MB/s), during download +{grew_down} MiB ({:.0} MB/s)",
        baseline / 1024,
        size as f64 / up_secs / 1e6,
        size as f64 / down_secs / 1e6,
    );
    // Flat: the growth is buffers (a chunk per stage, connection buffers, allocator caches),
    // nowhere near the file's size.
    assert!(
        grew_up < 64,
        "server memory grew by {grew_up} MiB during a {mib} MiB upload"
    );
    assert!(
        grew_down < 64,
        "server memory grew by {grew_down} MiB during a {mib} MiB download"
    );
}

/// A multipart form body: the CSRF token first, then the file.
fn multipart(csrf: &str, name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "kluis-test-boundary-5f3c";
    let mut b = Vec::new();
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n")
            .as_bytes(),
    );
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(bytes);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

/// The record page's files section: upload (EICAR refused there too), list, delete, restore.
async fn files_on_the_record_page(b: Backend) {
    let Some(clamd) = Clamd::start() else { return };
    let s = server(b, &clamd, &[]).await;
    let t = tenant_fixture(&s, "pagina").await;
    let cid = contact(&s, &t.owner, "p@pagina.test").await;
    let (c, csrf) = crate::pages::signed_in(&s, "pagina", "owner@pagina.test").await;
    let page = format!("/contacts/{cid}");
    let (st, _, html) = crate::pages::get(&c, &s, &page).await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("id=\"file-upload\""), "{html}");

    let post = |name: &str, bytes: &[u8]| {
        let (ct, body) = multipart(&csrf, name, bytes);
        c.post(s.url(&format!("{page}/files")))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    // EICAR through the page: refused, quarantined, never offered for download.
    let res = post("eicar.com", EICAR).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, l) = s
        .get(&format!("/api/v1/contacts/{cid}/files"), &t.owner)
        .await;
    assert_eq!(l["items"][0]["status"], "infected");
    // A clean file: uploaded, listed with a download link.
    let res = post("offerte.txt", format!("{CANARY} offerte").as_bytes())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, _, html) = crate::pages::get(&c, &s, &page).await;
    assert!(html.contains("offerte.txt"), "{html}");
    let (_, l) = s
        .get(&format!("/api/v1/contacts/{cid}/files"), &t.owner)
        .await;
    let f = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "offerte.txt")
        .unwrap();
    let id = f["id"].as_str().unwrap().to_owned();
    assert!(html.contains(&format!("/api/v1/files/{id}/content")));
    // A post without the form's token is refused and stores nothing.
    let (ct, body) = multipart("verkeerd", "x.txt", b"x");
    let res = c
        .post(s.url(&format!("{page}/files")))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    // Delete and restore through the page.
    let (st, _, _) = crate::pages::post(
        &c,
        &s,
        &format!("{page}/files/delete"),
        &[("csrf", &csrf), ("file", &id)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, l) = s
        .get(
            &format!("/api/v1/contacts/{cid}/files?trashed=true"),
            &t.owner,
        )
        .await;
    assert_eq!(l["items"][0]["id"], id.as_str());
    let (st, _, _) = crate::pages::post(
        &c,
        &s,
        &format!("{page}/files/restore"),
        &[("csrf", &csrf), ("file", &id)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, l) = s
        .get(&format!("/api/v1/contacts/{cid}/files"), &t.owner)
        .await;
    assert!(
        l["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == id.as_str())
    );
    let ev = actions(&s, &t.owner, "file.quarantine").await;
    assert_eq!(ev.len(), 1);
}
