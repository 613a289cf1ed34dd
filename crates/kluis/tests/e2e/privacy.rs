//! Data-subject requests (issue 19): a subject seeded across every object type, versions and
//! the trash is found by export; after erasure nothing about them is left in any API answer,
//! the audit log or the database files, and `kluis audit verify` still passes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, Server, code, on_both, tenant_fixture};

on_both!(
    subject_is_found_exported_and_erased_everywhere,
    retention_policy_is_set_reported_and_audited,
    incident_register_deadlines_notices_and_export
);

const EMAIL: &str = "Zwaantje.Vergeet@Voorbeeld.nl";
const PHONE: &str = "+31 6 11223344";
const NAME: &str = "Zwaantje";
const SURNAME: &str = "Vergeetmij";

/// The files of a ustar archive: (name, contents).
fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at] != 0 {
        let h = &bytes[at..at + 512];
        assert_eq!(&h[257..262], b"ustar", "not a ustar header");
        let name = String::from_utf8(h[..100].split(|b| *b == 0).next().unwrap().to_vec()).unwrap();
        let size_field = std::str::from_utf8(&h[124..135]).unwrap();
        let size = usize::from_str_radix(size_field.trim_matches(char::from(0)).trim(), 8).unwrap();
        // The header checksum: the sum of its bytes with the checksum field as spaces.
        let stored = std::str::from_utf8(&h[148..154]).unwrap();
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum, "{name}");
        out.push((name, bytes[at + 512..at + 512 + size].to_vec()));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

async fn export(s: &Server, auth: &Auth, id: &str) -> Vec<(String, Vec<u8>)> {
    let res = auth
        .apply(
            s.client
                .post(s.url(&format!("/api/v1/privacy/requests/{id}/export"))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-tar");
    untar(&res.bytes().await.unwrap())
}

async fn create(s: &Server, auth: &Auth, kind: &str) -> Value {
    let (st, r) = s
        .post(
            "/api/v1/privacy/requests",
            auth,
            json!({"kind": kind, "email": EMAIL, "phone": PHONE}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    r
}

async fn post_id(s: &Server, auth: &Auth, path: &str, body: Value) -> String {
    let (st, v) = s.post(path, auth, body).await;
    assert_eq!(st, StatusCode::CREATED, "{path}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn subject_is_found_exported_and_erased_everywhere(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "inzage").await;
    let o = &t.owner;

    // The subject across every object type, versions and the trash.
    // A contact that had her address once (only a version holds it now; an address is
    // unique among live contacts, so this one gave it up first).
    let earlier = post_id(
        &s,
        o,
        "/api/v1/contacts",
        json!({"fields": {"first_name": "Gedeeld", "email": EMAIL.to_lowercase()}}),
    )
    .await;
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/contacts/{earlier}"),
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"email": "ander@voorbeeld.nl"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let contact = post_id(
        &s,
        o,
        "/api/v1/contacts",
        json!({"fields": {"first_name": NAME, "last_name": "Eerst", "email": EMAIL, "phone": "06-11223344"}}),
    )
    .await;
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/contacts/{contact}"),
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"last_name": SURNAME}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Her private company address is a company's email (the blind index finds it).
    let company = post_id(
        &s,
        o,
        "/api/v1/companies",
        json!({"fields": {"name": "Eenmanszaak Z", "email": EMAIL.to_uppercase()}}),
    )
    .await;
    let note = post_id(
        &s,
        o,
        "/api/v1/notes",
        json!({"fields": {"body": "Belde over de levering"}, "related_ids": [contact]}),
    )
    .await;
    let task = post_id(
        &s,
        o,
        "/api/v1/tasks",
        json!({"fields": {"title": "Offerte nasturen"}, "related_ids": [contact]}),
    )
    .await;
    let deal = post_id(
        &s,
        o,
        "/api/v1/deals",
        json!({"fields": {"name": "Keuken"}, "contact_ids": [contact]}),
    )
    .await;
    // Not linked, only mentioned: the phone in another notation, in a ticket's text.
    let ticket = post_id(
        &s,
        o,
        "/api/v1/tickets",
        json!({"fields": {"subject": "Klacht", "description": "Terugbellen op 0611223344"}}),
    )
    .await;
    // A note mentioning her, in the trash.
    let trashed = post_id(
        &s,
        o,
        "/api/v1/notes",
        json!({"fields": {"body": format!("Mail van {EMAIL} doorgestuurd")}}),
    )
    .await;
    let (st, _) = s
        .call(Method::DELETE, &format!("/api/v1/notes/{trashed}"), o, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // Others, which must stay.
    let other = post_id(
        &s,
        o,
        "/api/v1/contacts",
        json!({"fields": {"first_name": "Blijft", "email": "blijft@voorbeeld.nl"}}),
    )
    .await;
    let other_note = post_id(
        &s,
        o,
        "/api/v1/notes",
        json!({"fields": {"body": "Over iemand anders"}, "related_ids": [other]}),
    )
    .await;
    let subject_ids = [
        &contact, &company, &note, &task, &deal, &ticket, &earlier, &trashed,
    ];

    // Who may: owners and admins; not a member, not an API key without the rights.
    for auth in [&t.member, &t.key] {
        let (st, v) = s
            .post(
                "/api/v1/privacy/requests",
                auth,
                json!({"kind": "access", "email": EMAIL}),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    }
    for (body, want) in [
        (json!({"kind": "access"}), "subject_required"),
        (json!({"kind": "inzage", "email": EMAIL}), "invalid_kind"),
        (
            json!({"kind": "access", "phone": "bel me"}),
            "invalid_phone",
        ),
    ] {
        let (st, v) = s.post("/api/v1/privacy/requests", o, body).await;
        assert_eq!((st, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, want));
    }

    // An access request: the export finds every record, with versions, and the events.
    let access = create(&s, o, "access").await;
    assert_eq!(access["status"], "open");
    assert_eq!(access["overdue"], false);
    let created = time::OffsetDateTime::parse(
        access["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let due = time::OffsetDateTime::parse(
        access["due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        (28..=31).contains(&(due - created).whole_days()),
        "{access}"
    );
    let id = access["id"].as_str().unwrap();
    let files = export(&s, o, id).await;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["subject.json", "records.csv", "audit_events.csv"]);
    let data: Value = serde_json::from_slice(&files[0].1).unwrap();
    let found: Vec<&str> = data["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for want in subject_ids {
        assert!(found.contains(&want.as_str()), "{want} not found: {data}");
    }
    for not in [&other, &other_note] {
        assert!(!found.contains(&not.as_str()), "{not} is not hers");
    }
    let rec = |id: &str| {
        data["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(rec(&contact)["reason"], "email");
    assert_eq!(rec(&contact)["versions"][0]["fields"]["last_name"], "Eerst");
    assert_eq!(rec(&note)["reason"], "linked");
    assert_eq!(rec(&ticket)["reason"], "mentioned");
    assert_eq!(rec(&trashed)["in_trash"], true);
    assert_eq!(
        rec(&earlier)["versions"][0]["fields"]["email"],
        EMAIL.to_lowercase()
    );
    let events = data["audit_events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "contact.update" && e["object_id"] == contact.as_str()),
        "{data}"
    );
    let csv = String::from_utf8(files[1].1.clone()).unwrap();
    assert!(csv.contains(SURNAME) && csv.contains("Eerst") && csv.contains(&ticket));
    assert!(String::from_utf8_lossy(&files[2].1).contains("contact.create"));
    let (_, got) = s.get(&format!("/api/v1/privacy/requests/{id}"), o).await;
    assert_eq!(got["status"], "exported", "{got}");
    // An access request cannot erase.
    let (st, v) = s
        .post(
            &format!("/api/v1/privacy/requests/{id}/erase"),
            o,
            json!({}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "not_erasure"));

    // The erasure.
    let erasure = create(&s, o, "erasure").await;
    let eid = erasure["id"].as_str().unwrap();
    let (st, done) = s
        .post(
            &format!("/api/v1/privacy/requests/{eid}/erase"),
            o,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "erased");
    assert!(done["email"].is_null() && done["phone"].is_null(), "{done}");

    // Every API: gone by id, from lists, lookups, search, the trash and the audit trail.
    for (path, id) in [
        ("contacts", &contact),
        ("companies", &company),
        ("notes", &note),
        ("tasks", &task),
        ("deals", &deal),
        ("tickets", &ticket),
        ("contacts", &earlier),
    ] {
        let (st, _) = s.get(&format!("/api/v1/{path}/{id}"), o).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}/{id}");
        let (st, _) = s.get(&format!("/api/v1/{path}/{id}/versions"), o).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}/{id}/versions");
    }
    let mut answers = String::new();
    for path in [
        format!("/api/v1/contacts?email={}", EMAIL.to_lowercase()),
        "/api/v1/contacts?phone=%2B31611223344".to_owned(),
        format!("/api/v1/companies?email={}", EMAIL.to_lowercase()),
        format!("/api/v1/contacts?q={NAME}"),
        format!("/api/v1/contacts?q={SURNAME}"),
        "/api/v1/contacts".to_owned(),
        "/api/v1/companies".to_owned(),
        "/api/v1/notes".to_owned(),
        "/api/v1/tasks".to_owned(),
        "/api/v1/deals".to_owned(),
        "/api/v1/tickets".to_owned(),
        "/api/v1/trash".to_owned(),
        "/api/v1/privacy/requests".to_owned(),
    ] {
        let (st, v) = s.get(&path, o).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        answers.push_str(&v.to_string());
    }
    for e in crate::audit::events(&s, o, "").await {
        answers.push_str(&e.to_string());
    }
    let lower = answers.to_lowercase();
    for needle in [
        EMAIL.to_lowercase().as_str(),
        "11223344",
        &NAME.to_lowercase(),
        &SURNAME.to_lowercase(),
        "eenmanszaak",
        "offerte nasturen",
        "terugbellen",
    ] {
        assert!(!lower.contains(needle), "{needle} is still shown");
    }
    for id in subject_ids {
        assert!(
            !answers.contains(&format!("\"id\":\"{id}\"")),
            "{id} listed"
        );
    }
    // The earlier access request about her keeps no identifiers either.
    let (_, got) = s.get(&format!("/api/v1/privacy/requests/{id}"), o).await;
    assert!(got["email"].is_null() && got["phone"].is_null(), "{got}");
    // What is not hers stays.
    for (path, id) in [("contacts", &other), ("notes", &other_note)] {
        let (st, _) = s.get(&format!("/api/v1/{path}/{id}"), o).await;
        assert_eq!(st, StatusCode::OK);
    }
    // The erasure is in the log, naming records and redacted events, not the subject.
    let erased = crate::audit::events(&s, o, "&action=privacy.erase").await;
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0]["object_id"], eid);
    assert_eq!(
        erased[0]["details"]["records"].as_array().unwrap().len(),
        subject_ids.len()
    );
    let redacted = erased[0]["details"]["redacted"].as_array().unwrap();
    assert!(redacted.len() >= subject_ids.len(), "{erased:?}");
    for action in ["privacy.request.create", "privacy.export", "contact.purge"] {
        assert!(
            !crate::audit::events(&s, o, &format!("&action={action}"))
                .await
                .is_empty(),
            "{action}"
        );
    }
    // A new search decrypts every record, version and event again: nothing left.
    let again = create(&s, o, "access").await;
    let files = export(&s, o, again["id"].as_str().unwrap()).await;
    let data: Value = serde_json::from_slice(&files[0].1).unwrap();
    assert_eq!(data["records"], json!([]), "{data}");
    assert_eq!(data["audit_events"], json!([]), "{data}");
    // The erased request cannot be exported any more.
    let (st, v) = s
        .post(
            &format!("/api/v1/privacy/requests/{eid}/export"),
            o,
            json!({}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "subject_erased"));

    // The database files (SQLite with its WAL; every row on PostgreSQL). Values are sealed at
    // rest, so this guards against a plaintext copy (a log table, an index) rather than
    // proving the erasure; the decrypting search above proves that.
    let dump = s.database_dump().await;
    let dump = String::from_utf8_lossy(&dump).to_lowercase();
    for needle in [EMAIL.to_lowercase().as_str(), "11223344", "zwaantje"] {
        assert!(!dump.contains(needle), "{needle} in the database");
    }

    // The log still verifies: chain, leaves, signed checkpoints, and the state it vouches for.
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "inzage"], None);
    assert!(ok && !out.contains("BROKEN"), "{out}{err}");
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--state"], None);
    assert!(ok && !out.contains("BROKEN"), "{out}{err}");
}

/// The retention policy over the API: owners set it, it has no report until a dry run, the
/// dry run lists the contacts due; members cannot change it; every step is audited. (When it
/// acts, and that it acts on time, is tested with a moving clock in kluis-core's tests.)
async fn retention_policy_is_set_reported_and_audited(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "bewaar").await;
    let o = &t.owner;
    let path = "/api/v1/settings/retention";
    let (st, v) = s.get(path, o).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["policy"],
        json!({"contact_inactive_years": null, "contact_action": "delete", "audit_years": 6})
    );
    let policy =
        json!({"contact_inactive_years": 3, "contact_action": "anonymise", "audit_years": 6});
    let (st, v) = s
        .call(Method::PUT, path, &t.member, Some(policy.clone()))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    for (bad, field) in [
        (
            json!({"contact_inactive_years": 0, "contact_action": "delete", "audit_years": 6}),
            "contact_inactive_years",
        ),
        (
            json!({"contact_inactive_years": 2, "contact_action": "vergeet", "audit_years": 6}),
            "contact_action",
        ),
        (
            json!({"contact_inactive_years": null, "contact_action": "delete", "audit_years": 51}),
            "audit_years",
        ),
    ] {
        let (st, v) = s.call(Method::PUT, path, o, Some(bad)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (st, v) = s.call(Method::PUT, path, o, Some(policy.clone())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["policy"], policy);
    assert!(v["dry_run"].is_null());
    let (_, c) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"email": "nieuw@bewaar.test"}}),
        )
        .await;
    let (st, r) = s.post(&format!("{path}/dry-run"), o, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["dry_run"], true);
    assert_eq!(
        r["contacts"],
        json!([]),
        "a new contact is not due: {r} {c}"
    );
    assert_eq!(r["contact_action"], "anonymise");
    let (_, v) = s.get(path, o).await;
    assert_eq!(v["dry_run"], r);
    let changed = crate::audit::events(&s, o, "&action=settings.retention.update").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["details"]["new"], policy);
    assert_eq!(
        crate::audit::events(&s, o, "&action=retention.dry_run")
            .await
            .len(),
        1
    );
}

/// The incident and breach register: operators only; deadlines computed (the golden cases
/// around weekends and holidays are unit tests of `incidents::deadlines`); overdue shown;
/// owners of the affected organisations told by email in their language, nobody else; the
/// authority export; every step audited.
async fn incident_register_deadlines_notices_and_export(b: Backend) {
    let Some(smtp) = kluis_testkit::smtp::SmtpServer::start(true) else {
        return;
    };
    let s = crate::mail::server_with_mail(b, &smtp, &[]).await;
    let en = tenant_fixture(&s, "lek-en").await;
    let nl = tenant_fixture(&s, "lek-nl").await;
    let other = tenant_fixture(&s, "lek-niet").await;
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/locale",
            &nl.owner,
            Some(json!({"locale": "nl"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ops = s.platform_key();
    let post = "/api/v1/platform/incidents";
    // Friday 27 November 2026, 10:00 in Amsterdam.
    let incident = json!({
        "severity": "high",
        "title": "Back-up bucket public",
        "description": "A backup bucket was readable without credentials for 3 hours.",
        "data_categories": ["contact details", "notes"],
        "personal_data_breach": true,
        "subjects_estimate": 1200,
        "consequences": "Contact details may have been copied.",
        "measures": "Bucket closed, keys rotated, access logs reviewed.",
        "detected_at": "2026-11-27T09:00:00Z",
        "tenant_ids": [en.id, nl.id],
    });
    let (st, _) = s
        .call(Method::POST, post, &en.owner, Some(incident.clone()))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    for (field, bad) in [
        ("severity", json!("p0")),
        ("detected_at", json!("2999-01-01T00:00:00Z")),
        ("tenant_ids", json!([uuid_like()])),
    ] {
        let mut body = incident.clone();
        body[field] = bad;
        let (st, v) = s.call(Method::POST, post, &ops, Some(body)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (st, i) = s.call(Method::POST, post, &ops, Some(incident)).await;
    assert_eq!(st, StatusCode::CREATED, "{i}");
    // Monday 30 November and Tuesday 1 December are the two business days.
    assert_eq!(i["customer_notice_due"], "2026-12-01T23:00:00Z");
    assert_eq!(i["authority_due"], "2026-11-30T09:00:00Z");
    assert_eq!(i["customer_notice_overdue"], true);
    assert_eq!(i["authority_overdue"], true);
    let id = i["id"].as_str().unwrap().to_owned();
    // A security incident without personal data has no authority deadline.
    let (st, j) = s
        .call(
            Method::POST,
            post,
            &ops,
            Some(
                json!({"severity": "low", "title": "Port scan", "description": "Blocked.",
                "personal_data_breach": false, "tenant_ids": []}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    assert!(j["authority_due"].is_null());
    assert_eq!(j["customer_notice_overdue"], false);
    let (st, list) = s.call(Method::GET, post, &ops, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);

    // The notices: one per owner of each affected organisation, in its language.
    let (st, n) = s
        .call(
            Method::POST,
            &format!("{post}/{id}/notify-customers"),
            &ops,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{n}");
    assert_eq!(n["customer_notice_overdue"], false);
    assert_eq!(n["customer_notice_late"], true, "told after the deadline");
    let mails = smtp.wait_for(2, std::time::Duration::from_secs(30));
    assert_eq!(mails.len(), 2, "{mails:?}");
    let to = |email: &str| {
        mails
            .iter()
            .find(|m| m.rcpt_tos == vec![email.to_owned()])
            .unwrap_or_else(|| panic!("no mail to {email}"))
    };
    let m = to("owner@lek-en.test");
    assert!(
        m.subject.starts_with("Security incident notice (high)"),
        "{}",
        m.subject
    );
    assert!(m.text.contains("contact details, notes") && m.text.contains("72 hours"));
    let m = to("owner@lek-nl.test");
    assert!(
        m.subject.starts_with("Melding beveiligingsincident (hoog)"),
        "{}",
        m.subject
    );
    assert!(m.text.contains("Autoriteit Persoonsgegevens"));
    assert!(!mails.iter().any(|m| {
        m.rcpt_tos
            .iter()
            .any(|r| r.contains("lek-niet") || r.contains("member@"))
    }));
    let _ = other;

    let (st, v) = s
        .call(
            Method::POST,
            &format!("{post}/{id}/authority-notified"),
            &ops,
            Some(json!({"reference": "AP-2026-0042"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["authority_overdue"].clone(), v["authority_late"].clone()),
        (json!(false), json!(true))
    );
    let (st, v) = s
        .call(
            Method::POST,
            &format!("{post}/{}/authority-notified", j["id"].as_str().unwrap()),
            &ops,
            Some(json!({"reference": "x"})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "not_a_breach"));
    let (st, x) = s
        .call(Method::GET, &format!("{post}/{id}/export"), &ops, None)
        .await;
    assert_eq!(st, StatusCode::OK, "{x}");
    assert_eq!(x["nature"]["approximate_subjects"], 1200);
    assert_eq!(x["timeline"]["authority_reference"], "AP-2026-0042");
    assert_eq!(
        x["deadlines_met"],
        json!({"customer_notice": false, "authority": false})
    );
    let (st, c) = s
        .call(Method::POST, &format!("{post}/{id}/close"), &ops, None)
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert!(c["closed_at"].is_string());
    let (st, v) = s
        .call(Method::POST, &format!("{post}/{id}/close"), &ops, None)
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "closed"));

    // Every step in the platform log; the notice in each affected organisation's own log.
    let log = s.cli(&["audit", "events", "--tenant", "platform"], None);
    for action in [
        "incident.record",
        "incident.notify_customers",
        "incident.authority_notified",
        "incident.export",
        "incident.close",
    ] {
        assert!(log.contains(action), "{action}: {log}");
    }
    for (t, n) in [(&en, 1), (&nl, 1), (&other, 0)] {
        let e = crate::audit::events(&s, &t.owner, "&action=incident.notice").await;
        assert_eq!(e.len(), n);
    }
}

fn uuid_like() -> String {
    "0190a0b0-0000-7000-8000-000000000000".to_owned()
}
