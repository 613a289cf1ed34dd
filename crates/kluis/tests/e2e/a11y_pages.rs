//! Accessibility of every page, in headless Chromium with axe-core (tests/browser/axe.mjs):
//! WCAG 2.1 A/AA, no serious or critical violation, at 375 px and 1440 px, as an owner, as a
//! read-only user and signed out. Screenshots of every page at both widths go to
//! `target/screenshots/axe/`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, PASSWORD, Server, tenant_fixture};

async fn create(s: &Server, a: &Auth, path: &str, body: Value) -> String {
    let (st, v) = s.post(path, a, body).await;
    assert_eq!(st, StatusCode::CREATED, "{path}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

fn page(name: &str, path: &str, status: u16) -> Value {
    json!({"name": name, "path": path, "status": status})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_axe_finds_nothing_serious_on_any_page() {
    let Some(tools) = kluis_testkit::browser::browser_tools() else {
        return;
    };
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "toegang").await;
    let o = &t.owner;
    s.cli(
        &[
            "user",
            "create",
            "--tenant",
            "toegang",
            "--email",
            "reader@toegang.test",
            "--role",
            "read_only",
            "--password-stdin",
            "--json",
        ],
        Some(PASSWORD),
    );
    let company = create(
        &s,
        o,
        "/api/v1/companies",
        json!({"fields": {"name": "Bakkerij de Korenschoof", "domain": "korenschoof.nl"}}),
    )
    .await;
    let contact = create(
        &s,
        o,
        "/api/v1/contacts",
        json!({"fields": {"first_name": "Jan", "last_name": "Janssen", "email": "jan@korenschoof.nl", "city": "Delft"}, "company_id": company}),
    )
    .await;
    let deal = create(
        &s,
        o,
        "/api/v1/deals",
        json!({"fields": {"name": "Ovens 2027"}, "amount_minor": 1_234_550, "currency": "EUR", "contact_ids": [contact]}),
    )
    .await;
    let ticket = create(
        &s,
        o,
        "/api/v1/tickets",
        json!({"fields": {"subject": "Oven lekt"}, "contact_ids": [contact], "priority": "high"}),
    )
    .await;
    let task = create(
        &s,
        o,
        "/api/v1/tasks",
        json!({"fields": {"title": "Terugbellen"}, "due_date": "2027-01-15", "related_ids": [contact]}),
    )
    .await;
    let note = create(
        &s,
        o,
        "/api/v1/notes",
        json!({"fields": {"body": "Gebeld over de levering"}, "related_ids": [contact]}),
    )
    .await;
    create(&s, o, "/api/v1/tags", json!({"name": "VIP"})).await;
    create(
        &s,
        o,
        "/api/v1/custom-fields",
        json!({"object_type": "contact", "key": "klantnummer", "label": "Klantnummer", "kind": "text"}),
    )
    .await;
    let gone = create(
        &s,
        o,
        "/api/v1/contacts",
        json!({"fields": {"first_name": "Oud", "last_name": "Contact"}}),
    )
    .await;
    let (st, _) = s
        .call(Method::DELETE, &format!("/api/v1/contacts/{gone}"), o, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    let missing = "/contacts/00000000-0000-4000-8000-000000000000";
    // What everyone signed in can open.
    let crm = vec![
        page("contacts", "/contacts", 200),
        page("companies", "/companies", 200),
        page("deals", "/deals", 200),
        page("tickets", "/tickets", 200),
        page("contact", &format!("/contacts/{contact}"), 200),
        page("company", &format!("/companies/{company}"), 200),
        page("deal", &format!("/deals/{deal}"), 200),
        page("ticket", &format!("/tickets/{ticket}"), 200),
        page("task", &format!("/tasks/{task}"), 200),
        page("note", &format!("/notes/{note}"), 200),
        page("deals-board", "/deals/board", 200),
        page("tickets-board", "/tickets/board", 200),
        page("tasks", "/tasks", 200),
        page("dashboard", "/dashboard", 200),
        page("trash", "/trash", 200),
        page("search", "/search?q=jans", 200),
        page("account", "/account", 200),
        page("404", missing, 404),
    ];
    let admin_only = [
        ("settings", "/settings"),
        ("settings-users", "/settings/users"),
        ("settings-api-keys", "/settings/api-keys"),
        ("settings-fields", "/settings/fields"),
        ("settings-pipelines", "/settings/pipelines"),
        ("settings-tags", "/settings/tags"),
        ("settings-audit", "/settings/audit"),
        ("admin-security", "/admin/security"),
    ];
    // Pages for those who may write or export (a reader's answer is probed below).
    let writer_only = [
        ("contacts-new", "/contacts/new"),
        ("companies-new", "/companies/new"),
        ("deals-new", "/deals/new"),
        ("tickets-new", "/tickets/new"),
        ("import", "/import"),
        ("export", "/export"),
    ];
    let mut owner = crm.clone();
    owner.extend(admin_only.iter().map(|(n, p)| page(n, p, 200)));
    owner.extend(writer_only.iter().map(|(n, p)| page(n, p, 200)));
    // The reader gets the 403 page for the administrators' pages; what a reader gets for the
    // create pages is whatever the slices answer (checked per page below, not assumed here).
    let mut reader = crm;
    reader.extend(admin_only.iter().map(|(n, p)| page(n, p, 403)));
    for (n, p) in writer_only {
        let st = page_status(&s, "toegang", "reader@toegang.test", p).await;
        assert!(
            st == StatusCode::FORBIDDEN || st == StatusCode::OK,
            "{p} as a reader: {st}"
        );
        reader.push(page(n, p, st.as_u16()));
    }
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots/axe");
    let input = json!({
        "base": format!("https://localhost:{}", s.port),
        "cert": s.dir.path().join("tls/cert.pem"),
        "chromium": tools.chromium,
        "artifacts": artifacts,
        "users": [
            {"name": "owner", "organisation": "toegang", "email": "owner@toegang.test", "password": PASSWORD, "pages": owner},
            {"name": "reader", "organisation": "toegang", "email": "reader@toegang.test", "password": PASSWORD, "pages": reader},
            {"name": "visitor", "pages": [page("sign-in", "/sign-in", 200), page("status", "/status", 200)]},
        ],
    });
    let (ok, out, err) = tools.run("axe.mjs", &input);
    eprintln!("{out}");
    assert!(ok, "axe run failed:\n{out}\n{err}");
    assert!(out.contains("{\"ok\":true}"), "{out}");
    assert!(artifacts.join("owner-contacts-375.png").exists());
    assert!(artifacts.join("reader-settings-1440.png").exists());
}

/// The status a signed-in user gets for a page (a fresh session, so the browser's is untouched).
async fn page_status(s: &Server, org: &str, email: &str, path: &str) -> StatusCode {
    let a = s.login(org, email, PASSWORD).await;
    let Auth::Session { cookie, .. } = a else {
        panic!("not a session")
    };
    s.client
        .get(s.url(path))
        .header("cookie", format!("__Host-kluis_session={cookie}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .status()
}
