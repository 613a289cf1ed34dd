//! Cross-tenant isolation of the web pages, the page counterpart of `isolation.rs` (and reusing
//! its fixtures): signed in to tenant A, every page and every form post that names one of
//! tenant B's objects is a 404 (or 403) page, no response A gets ever carries one of B's
//! distinctive values or ids, and B's data (read through the JSON API) is unchanged
//! afterwards. Then the read-only role: no page shows it an edit control, and a forged post of
//! every form (with the reader's own valid CSRF token) is refused with a 403 and stores
//! nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::isolation::{BRecords, b_records, snapshot};
use crate::support::{Auth, Backend, PASSWORD, Server, on_both, tenant_fixture};

on_both!(
    pages_never_reach_another_tenant,
    readers_get_no_edit_controls_and_forged_posts_fail,
);

/// Every record type's page prefix.
const PREFIXES: [&str; 6] = [
    "contacts",
    "companies",
    "deals",
    "tickets",
    "tasks",
    "notes",
];

/// The record page actions, with fields that would pass if the record were the poster's own.
fn actions(target: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let mut edit = vec![("revision", "1".to_owned())];
    for f in ["first_name", "name", "subject", "title", "body"] {
        edit.push((leak(format!("o:{f}")), String::new()));
        edit.push((leak(format!("f:{f}")), "Overschreven".into()));
    }
    vec![
        // Nothing changed (no original values sent): still not a "saved" for them.
        ("/edit", vec![("revision", "1".into())]),
        ("/edit", edit),
        (
            "/links",
            vec![("action", "add".into()), ("target", target.into())],
        ),
        (
            "/links",
            vec![("action", "remove".into()), ("target", target.into())],
        ),
        (
            "/tags",
            vec![("action", "add".into()), ("new_tag", "Overgenomen".into())],
        ),
        ("/note", vec![("body", "Overgenomen notitie".into())]),
        ("/task", vec![("title", "Overgenomen taak".into())]),
        ("/trash", vec![("revision", "1".into())]),
        (
            "/restore-version",
            vec![("revision", "1".into()), ("version", "1".into())],
        ),
    ]
}

/// A form field name built at run time, for the `&'static str` keys of the form lists.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

struct Session {
    cookie: String,
    csrf: String,
}

fn session(a: &Auth) -> Session {
    match a {
        Auth::Session { cookie, csrf } => Session {
            cookie: format!("__Host-kluis_session={cookie}"),
            csrf: csrf.clone(),
        },
        other => panic!("not a session: {other:?}"),
    }
}

/// One response: status, Location and body.
struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

async fn send(rb: reqwest::RequestBuilder) -> Answer {
    let r = rb.header("accept", "text/html").send().await.unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Answer {
        status,
        location,
        body: r.text().await.unwrap(),
    }
}

async fn get(s: &Server, who: &Session, path: &str) -> Answer {
    send(s.client.get(s.url(path)).header("cookie", &who.cookie)).await
}

async fn post(s: &Server, who: &Session, path: &str, fields: &[(&str, String)]) -> Answer {
    let mut form: Vec<(&str, &str)> = vec![("csrf", who.csrf.as_str())];
    form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
    send(
        s.client
            .post(s.url(path))
            .header("cookie", &who.cookie)
            .form(&form),
    )
    .await
}

/// What A must never see: B's distinctive values and every id of B's that we know.
struct Secrets(Vec<String>);

impl Secrets {
    /// Fails if `a` carries one of B's secrets, except what the request itself sent (a 404
    /// page may name the address that was asked for; that tells A nothing).
    fn check(&self, what: &str, sent: &str, a: &Answer) {
        for secret in &self.0 {
            if sent.contains(secret.as_str()) {
                continue;
            }
            assert!(
                !a.body.contains(secret.as_str()) && !a.location.contains(secret.as_str()),
                "{what}: the answer carries B's {secret:?}:\n{}{}",
                a.location,
                a.body
            );
        }
    }
}

fn not_found_or_forbidden(what: &str, a: &Answer) {
    assert!(
        a.status == StatusCode::NOT_FOUND || a.status == StatusCode::FORBIDDEN,
        "{what}: {} {}\n{}",
        a.status,
        a.location,
        a.body
    );
    assert!(
        a.body.contains("<html"),
        "{what}: a page in the app's frame"
    );
}

fn stage_ids(pipelines: &Value) -> Vec<String> {
    pipelines
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["stages"].as_array().unwrap().iter())
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The id in the first `name="id" value="..."` after `marker`.
fn id_after(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {html}"));
    let needle = "name=\"id\" value=\"";
    let i = html[at..].find(needle).unwrap() + at + needle.len();
    html[i..i + 36].to_owned()
}

async fn create(s: &Server, a: &Auth, path: &str, body: Value) -> String {
    let (st, v) = s.post(path, a, body).await;
    assert_eq!(st, StatusCode::CREATED, "{path}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

fn b_ids(r: &BRecords) -> Vec<(&'static str, String)> {
    vec![
        ("contacts", r.contact.clone()),
        ("companies", r.company.clone()),
        ("contacts", r.trashed.clone()),
        ("deals", r.deal.clone()),
        ("tickets", r.ticket.clone()),
        ("tasks", r.task.clone()),
        ("notes", r.note.clone()),
    ]
}

async fn pages_never_reach_another_tenant(backend: Backend) {
    let s = Server::start(backend).await;
    let a = tenant_fixture(&s, "alfa").await;
    let b = tenant_fixture(&s, "bravo").await;
    let r = b_records(&s, &b).await;
    let (wa, wb) = (session(&a.owner), session(&b.owner));

    // A's own records, to point at B's from A's side too.
    let a_contact = create(
        &s,
        &a.owner,
        "/api/v1/contacts",
        json!({"fields": {"first_name": "Anke", "last_name": "Alfa"}}),
    )
    .await;
    let a_deal = create(
        &s,
        &a.owner,
        "/api/v1/deals",
        json!({"fields": {"name": "Deal A"}, "amount_minor": 100}),
    )
    .await;
    let a_ticket = create(
        &s,
        &a.owner,
        "/api/v1/tickets",
        json!({"fields": {"subject": "Vraag A"}}),
    )
    .await;

    // A shared saved view of B's.
    let saved = post(
        &s,
        &wb,
        "/contacts/views",
        &[
            ("name", "Weergave van B".into()),
            ("query", "q=klant".into()),
            ("shared", "1".into()),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let b_list = get(&s, &wb, "/contacts").await;
    let b_view = id_after(&b_list.body, "Weergave van B");

    let (_, b_deal_pipes) = s.get("/api/v1/pipelines?object_type=deal", &b.owner).await;
    let (_, b_ticket_pipes) = s
        .get("/api/v1/pipelines?object_type=ticket", &b.owner)
        .await;
    let (b_deal_pipes, b_ticket_pipes) = (
        b_deal_pipes["items"].clone(),
        b_ticket_pipes["items"].clone(),
    );
    let b_deal_stages = stage_ids(&b_deal_pipes);
    let b_ticket_stages = stage_ids(&b_ticket_pipes);
    let b_ticket_pipeline = b_ticket_pipes[0]["id"].as_str().unwrap().to_owned();

    let mut secrets: Vec<String> = [
        "Bedrijf B",
        "tenant-b.test",
        "Deal B",
        "Geheime notitie B",
        "Taak B",
        "Geheim B",
        "geheim_b",
        "Slogan van B",
        "Geheime tag B",
        "Klacht B",
        "Weergave van B",
        "bravo",
    ]
    .iter()
    .map(|v| (*v).to_owned())
    .collect();
    secrets.extend(b_ids(&r).into_iter().map(|(_, id)| id));
    secrets.extend([
        r.pipeline.clone(),
        r.custom_field.clone(),
        r.tag.clone(),
        r.import.clone(),
        r.session.clone(),
        b.id.clone(),
        b.owner_id.clone(),
        b.member_id.clone(),
        b.key_id.clone(),
        b_view.clone(),
        b_ticket_pipeline.clone(),
    ]);
    secrets.extend(b_deal_stages.iter().cloned());
    secrets.extend(b_ticket_stages.iter().cloned());
    let secrets = Secrets(secrets);
    let before = snapshot(&s, &b).await;
    let mut requests = 0usize;

    // Every B record under every record prefix: the page and every action on it.
    for (own_prefix, id) in b_ids(&r) {
        for prefix in PREFIXES {
            let path = format!("/{prefix}/{id}");
            let ans = get(&s, &wa, &path).await;
            not_found_or_forbidden(&path, &ans);
            secrets.check(&path, &path, &ans);
            requests += 1;
            if prefix != own_prefix {
                continue;
            }
            for (action, fields) in actions(&a_contact) {
                let path = format!("/{prefix}/{id}{action}");
                let ans = post(&s, &wa, &path, &fields).await;
                not_found_or_forbidden(&path, &ans);
                secrets.check(&path, &path, &ans);
                requests += 1;
            }
        }
    }
    // From A's own record towards B's: a link to B's record, B's tag.
    for (action, fields) in [
        (
            format!("/contacts/{a_contact}/links"),
            vec![("action", "add".to_owned()), ("target", r.company.clone())],
        ),
        (
            format!("/contacts/{a_contact}/links"),
            vec![("action", "add".to_owned()), ("target", r.deal.clone())],
        ),
        (
            format!("/contacts/{a_contact}/tags"),
            vec![("action", "add".to_owned()), ("tag", r.tag.clone())],
        ),
        (
            format!("/deals/{a_deal}/links"),
            vec![("action", "add".to_owned()), ("target", r.contact.clone())],
        ),
    ] {
        let sent = format!("{action} {fields:?}");
        let ans = post(&s, &wa, &action, &fields).await;
        secrets.check(&action, &sent, &ans);
        requests += 1;
    }
    let (_, mine) = s
        .get(&format!("/api/v1/contacts/{a_contact}"), &a.owner)
        .await;
    assert_eq!(mine["revision"], 1, "A's contact unchanged: {mine}");
    assert_eq!(mine["tag_ids"], json!([]), "{mine}");
    let (_, mine) = s.get(&format!("/api/v1/deals/{a_deal}"), &a.owner).await;
    assert_eq!(mine["revision"], 1, "A's deal unchanged: {mine}");

    // The trash, a task's done button, the import status page.
    let posts: Vec<(String, Vec<(&str, String)>)> = vec![
        (format!("/trash/{}/restore", r.trashed), vec![]),
        (format!("/tasks/{}/done", r.task), vec![]),
        (
            "/deals/board/move".to_owned(),
            vec![
                ("id", r.deal.clone()),
                ("rev", "1".into()),
                ("pipeline", r.pipeline.clone()),
                ("stage", b_deal_stages[1].clone()),
            ],
        ),
        (
            "/tickets/board/move".to_owned(),
            vec![
                ("id", r.ticket.clone()),
                ("rev", "1".into()),
                ("pipeline", b_ticket_pipeline.clone()),
                ("stage", b_ticket_stages[1].clone()),
            ],
        ),
    ];
    for (path, fields) in &posts {
        let sent = format!("{path} {fields:?}");
        let ans = post(&s, &wa, path, fields).await;
        not_found_or_forbidden(&sent, &ans);
        secrets.check(path, &sent, &ans);
        requests += 1;
    }
    // A's own deal and ticket moved into B's stages: refused, and nothing moves.
    for (path, id, pipeline, stage) in [
        ("/deals/board/move", &a_deal, &r.pipeline, &b_deal_stages[1]),
        (
            "/tickets/board/move",
            &a_ticket,
            &b_ticket_pipeline,
            &b_ticket_stages[1],
        ),
    ] {
        let fields = vec![
            ("id", id.clone()),
            ("rev", "1".to_owned()),
            ("pipeline", pipeline.clone()),
            ("stage", stage.clone()),
        ];
        let sent = format!("{path} {fields:?}");
        let ans = post(&s, &wa, path, &fields).await;
        assert_ne!(
            ans.status,
            StatusCode::SEE_OTHER,
            "{sent}: {}",
            ans.location
        );
        secrets.check(path, &sent, &ans);
        requests += 1;
    }
    for path in [
        format!("/api/v1/deals/{a_deal}"),
        format!("/api/v1/tickets/{a_ticket}"),
    ] {
        let (_, v) = s.get(&path, &a.owner).await;
        assert_eq!(v["revision"], 1, "{path} moved: {v}");
    }
    let path = format!("/import/status/{}", r.import);
    let ans = get(&s, &wa, &path).await;
    not_found_or_forbidden(&path, &ans);
    secrets.check(&path, &path, &ans);

    // B's saved view: not listed, not deletable. Bulk actions on B's records: nothing done.
    let ans = post(&s, &wa, "/contacts/views/delete", &[("id", b_view.clone())]).await;
    secrets.check("delete B's view", &b_view, &ans);
    for (path, action) in [
        ("/contacts/bulk", "trash"),
        ("/contacts/bulk", "tag"),
        ("/companies/bulk", "trash"),
        ("/deals/bulk", "trash"),
        ("/tickets/bulk", "trash"),
    ] {
        let fields = vec![
            ("action", action.to_owned()),
            ("tag", r.tag.clone()),
            ("id", r.contact.clone()),
            ("id", r.company.clone()),
            ("id", r.deal.clone()),
            ("id", r.ticket.clone()),
            ("confirm", "yes".to_owned()),
        ];
        let sent = format!("{path} {fields:?}");
        let ans = post(&s, &wa, path, &fields).await;
        secrets.check(path, &sent, &ans);
        requests += 1;
    }
    // Settings forms that name an object: B's tag, field, pipeline, key, session.
    for (path, fields) in [
        (
            "/settings/tags/delete",
            vec![("id", r.tag.clone()), ("action", "delete".to_owned())],
        ),
        (
            "/settings/tags/update",
            vec![("tag", r.tag.clone()), ("name", "Overgenomen".to_owned())],
        ),
        (
            "/settings/fields/delete",
            vec![
                ("id", r.custom_field.clone()),
                ("action", "delete".to_owned()),
            ],
        ),
        (
            "/settings/fields/update",
            vec![
                ("field", r.custom_field.clone()),
                ("label", "Overgenomen".to_owned()),
            ],
        ),
        (
            "/settings/pipelines/delete",
            vec![("id", r.pipeline.clone()), ("action", "delete".to_owned())],
        ),
        ("/settings/api-keys/revoke", vec![("key", b.key_id.clone())]),
        (
            "/account/sessions/revoke",
            vec![("session", r.session.clone())],
        ),
    ] {
        let sent = format!("{path} {fields:?}");
        let ans = post(&s, &wa, path, &fields).await;
        assert!(
            !ans.status.is_success(),
            "{sent}: {} {}",
            ans.status,
            ans.location
        );
        secrets.check(path, &sent, &ans);
        requests += 1;
    }

    // Everything A can list, search and export: none of B's values.
    let mut reads: Vec<String> = [
        "/contacts",
        "/companies",
        "/deals",
        "/tickets",
        "/tasks",
        "/tasks/all",
        "/deals/board",
        "/tickets/board",
        "/dashboard",
        "/trash",
        "/export",
        "/import",
        "/settings",
        "/settings/users",
        "/settings/api-keys",
        "/settings/fields",
        "/settings/pipelines",
        "/settings/tags",
        "/settings/audit",
        "/settings/audit/export",
        "/admin/security",
        "/account",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    for t in ["contacts", "companies", "deals", "tickets", "tasks/all"] {
        reads.push(format!("/{t}/export.csv"));
        for q in ["klant", "bedrijf", "deal", "klacht", "taak", "tenant-b"] {
            reads.push(format!("/{t}?q={q}"));
            reads.push(format!("/{t}/export.csv?q={q}"));
        }
    }
    for q in [
        "klant", "Klant", "bedrijf", "Bedrijf", "deal b", "klacht", "taak", "tenant-b", "geheim",
    ] {
        reads.push(format!("/search?q={q}"));
    }
    for path in &reads {
        let ans = get(&s, &wa, path).await;
        assert_eq!(ans.status, StatusCode::OK, "{path}: {}", ans.body);
        secrets.check(path, "", &ans);
        requests += 1;
    }
    let audit = get(&s, &wa, &format!("/settings/audit?record={}", r.contact)).await;
    secrets.check("audit by B's record", &r.contact, &audit);

    // B is untouched: the API's view of everything B has, and B's view still listed for B.
    assert_eq!(snapshot(&s, &b).await, before, "B changed");
    let b_list = get(&s, &wb, "/contacts").await;
    assert!(b_list.body.contains("Weergave van B"), "B's view deleted");
    eprintln!("{requests} page requests as A checked");
}

async fn readers_get_no_edit_controls_and_forged_posts_fail(backend: Backend) {
    let s = Server::start(backend).await;
    let t = tenant_fixture(&s, "lezen").await;
    let o = &t.owner;
    s.cli(
        &[
            "user",
            "create",
            "--tenant",
            "lezen",
            "--email",
            "reader@lezen.test",
            "--role",
            "read_only",
            "--password-stdin",
            "--json",
        ],
        Some(PASSWORD),
    );
    let reader = session(&s.login("lezen", "reader@lezen.test", PASSWORD).await);
    let company = create(
        &s,
        o,
        "/api/v1/companies",
        json!({"fields": {"name": "Lees BV"}}),
    )
    .await;
    let contact = create(
        &s,
        o,
        "/api/v1/contacts",
        json!({"fields": {"first_name": "Lies"}, "company_id": company}),
    )
    .await;
    let deal = create(
        &s,
        o,
        "/api/v1/deals",
        json!({"fields": {"name": "Lees deal"}, "amount_minor": 100, "contact_ids": [contact]}),
    )
    .await;
    let ticket = create(
        &s,
        o,
        "/api/v1/tickets",
        json!({"fields": {"subject": "Lees vraag"}, "contact_ids": [contact]}),
    )
    .await;
    let task = create(
        &s,
        o,
        "/api/v1/tasks",
        json!({"fields": {"title": "Lees taak"}, "due_date": "2027-01-15", "related_ids": [contact]}),
    )
    .await;
    let note = create(
        &s,
        o,
        "/api/v1/notes",
        json!({"fields": {"body": "Lees notitie"}, "related_ids": [contact]}),
    )
    .await;
    let tag = create(&s, o, "/api/v1/tags", json!({"name": "Leestag"})).await;
    let gone = create(
        &s,
        o,
        "/api/v1/contacts",
        json!({"fields": {"first_name": "Weg"}}),
    )
    .await;
    let (st, _) = s
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{gone}"),
            o,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, pipes) = s.get("/api/v1/pipelines?object_type=deal", o).await;
    let (_, tpipes) = s.get("/api/v1/pipelines?object_type=ticket", o).await;
    let (pipes, tpipes) = (pipes["items"].clone(), tpipes["items"].clone());
    let records = [
        ("contacts", contact.clone()),
        ("companies", company.clone()),
        ("deals", deal.clone()),
        ("tickets", ticket.clone()),
        ("tasks", task.clone()),
        ("notes", note.clone()),
    ];

    // No page offers the reader a form that changes anything. What a reader may post: sign
    // out, and a personal saved view of a table (deleting its own).
    let mut pages: Vec<String> = records.iter().map(|(p, id)| format!("/{p}/{id}")).collect();
    pages.extend(
        [
            "/contacts",
            "/companies",
            "/deals",
            "/tickets",
            "/tasks",
            "/tasks/all",
            "/deals/board",
            "/tickets/board",
            "/dashboard",
            "/trash",
            "/search?q=lee",
            "/account",
        ]
        .iter()
        .map(|p| (*p).to_owned()),
    );
    for path in &pages {
        let ans = get(&s, &reader, path).await;
        assert_eq!(ans.status, StatusCode::OK, "{path}: {}", ans.body);
        let html = &ans.body;
        let mut rest = html.as_str();
        while let Some(i) = rest.find("<form") {
            let tag_end = rest[i..].find('>').unwrap() + i;
            let tag = &rest[i..tag_end];
            rest = &rest[tag_end..];
            if !tag.contains("method=\"post\"") {
                continue;
            }
            let action = tag
                .split("action=\"")
                .nth(1)
                .and_then(|a| a.split('"').next())
                .unwrap_or_default();
            let allowed = action == "/sign-out"
                || action.starts_with("/account/")
                || (action.ends_with("/views") || action.ends_with("/views/delete"))
                    && !path.starts_with("/account");
            assert!(allowed, "{path} offers a reader the form {tag}");
        }
        for control in [
            "name=\"f:",
            "draggable=\"true\"",
            "id=\"bulk\"",
            "id=\"edit-form\"",
            "href=\"/contacts/new\"",
            "href=\"/deals/new\"",
        ] {
            assert!(!html.contains(control), "{path} shows a reader {control}");
        }
        assert!(
            !html.contains("name=\"shared\""),
            "{path}: a reader cannot share a view"
        );
    }

    // Forged posts of every form, with the reader's own valid CSRF token.
    let before = snapshot(&s, &t).await;
    let mut forged: Vec<(String, Vec<(&str, String)>)> = Vec::new();
    for (prefix, id) in &records {
        // A target the record may be linked to (a contact's company, everything else's contact),
        // so the post gets as far as the permission check.
        let target = if *prefix == "contacts" {
            &company
        } else {
            &contact
        };
        for (action, fields) in actions(target) {
            forged.push((format!("/{prefix}/{id}{action}"), fields));
        }
        forged.push((
            format!("/{prefix}/{id}/tags"),
            vec![("action", "add".into()), ("tag", tag.clone())],
        ));
    }
    for p in ["contacts", "companies", "deals", "tickets"] {
        forged.push((
            format!("/{p}/new"),
            vec![
                ("f:first_name", "Nep".into()),
                ("f:name", "Nep".into()),
                ("f:subject", "Nep".into()),
            ],
        ));
        forged.push((
            format!("/{p}/bulk"),
            vec![
                ("action", "trash".into()),
                ("id", contact.clone()),
                ("id", company.clone()),
                ("id", deal.clone()),
                ("id", ticket.clone()),
                ("confirm", "yes".into()),
            ],
        ));
    }
    forged.push((
        "/contacts/views".into(),
        vec![
            ("name", "Gedeeld".into()),
            ("query", String::new()),
            ("shared", "1".into()),
        ],
    ));
    forged.push((format!("/tasks/{task}/done"), vec![]));
    forged.push((format!("/trash/{gone}/restore"), vec![]));
    forged.push((
        "/deals/board/move".into(),
        vec![
            ("id", deal.clone()),
            ("rev", "1".into()),
            ("pipeline", pipes[0]["id"].as_str().unwrap().to_owned()),
            ("stage", stage_ids(&pipes)[1].clone()),
        ],
    ));
    forged.push((
        "/tickets/board/move".into(),
        vec![
            ("id", ticket.clone()),
            ("rev", "1".into()),
            ("pipeline", tpipes[0]["id"].as_str().unwrap().to_owned()),
            ("stage", stage_ids(&tpipes)[1].clone()),
        ],
    ));
    for (path, fields) in [
        ("/settings/tags/create", vec![("name", "Nep")]),
        (
            "/settings/tags/delete",
            vec![("id", tag.as_str()), ("action", "delete")],
        ),
        (
            "/settings/fields/create",
            vec![
                ("object_type", "contact"),
                ("key", "nep"),
                ("label", "Nep"),
                ("kind", "text"),
            ],
        ),
        (
            "/settings/pipelines/create",
            vec![("name", "Nep"), ("object_type", "deal"), ("stages", "A\nB")],
        ),
        (
            "/settings/users/invite",
            vec![
                ("email", "nep@lezen.test"),
                ("display_name", "Nep"),
                ("role", "owner"),
            ],
        ),
        (
            "/settings/users/update",
            vec![("user", t.owner_id.as_str()), ("role", "read_only")],
        ),
        (
            "/settings/api-keys/create",
            vec![("name", "nep"), ("scope", "crm:write")],
        ),
        ("/settings/sensitive-data", vec![("mode", "flag")]),
        ("/settings/trash-retention", vec![("days", "1")]),
        ("/admin/security/mfa-policy", vec![("policy", "required")]),
    ] {
        forged.push((
            path.to_owned(),
            fields.into_iter().map(|(k, v)| (k, v.to_owned())).collect(),
        ));
    }
    for (path, fields) in &forged {
        let ans = post(&s, &reader, path, fields).await;
        assert_eq!(
            ans.status,
            StatusCode::FORBIDDEN,
            "{path} {fields:?}: {}\n{}",
            ans.location,
            ans.body
        );
    }
    assert_eq!(
        snapshot(&s, &t).await,
        before,
        "a forged post stored something"
    );
    let list = get(&s, &session(o), "/contacts").await;
    assert!(!list.body.contains("Gedeeld"), "the reader shared a view");
    eprintln!("{} forged posts refused", forged.len());
}
