//! The record tables and search, driven like a browser (session cookie, form posts, redirects
//! checked by hand), with the JSON API read afterwards to check what was stored: list, sort,
//! filters, columns, cursor pages, search by fragment of sealed names (nothing in the database
//! files), bulk actions behind a confirmation, CSV export, saved views, read-only users and
//! tenant isolation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pages::assert_no_inline_code;
use crate::support::{Auth, Backend, PASSWORD, Server, on_both, tenant_fixture};

on_both!(
    tables_list_sort_filter_page_and_search,
    tables_bulk_actions_need_confirmation_and_write_permission,
    tables_never_show_another_tenant,
);

/// Headless Chromium: the shell at 375 px (no sideways scroll, nav on screen), the skip link by
/// keyboard, the global and table search, Dutch amounts; screenshots as test artifacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_tables_on_a_phone_and_a_wide_screen() {
    let Some(tools) = kluis_testkit::browser::browser_tools() else {
        return;
    };
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "scherm").await;
    let (_, acme) = s
        .post(
            "/api/v1/companies",
            &t.owner,
            json!({"fields": {"name": "Acme Holding"}}),
        )
        .await;
    contact(
        &s,
        &t.owner,
        json!({"fields": {"first_name": "Jan", "last_name": "Janssen", "email": "jan@scherm.test"}}),
    )
    .await;
    contact(
        &s,
        &t.owner,
        json!({"fields": {"first_name": "Piet", "last_name": "Puk"}, "company_id": acme["id"]}),
    )
    .await;
    let (st, _) = s
        .post(
            "/api/v1/deals",
            &t.owner,
            json!({"fields": {"name": "Groot"}, "amount_minor": 123_450, "currency": "EUR"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots/tables");
    let input = json!({
        "base": format!("https://localhost:{}", s.port),
        "cert": s.dir.path().join("tls/cert.pem"),
        "organisation": "scherm",
        "email": "owner@scherm.test",
        "password": PASSWORD,
        "chromium": tools.chromium,
        "artifacts": artifacts,
    });
    let (ok, out, err) = tools.run("tables.mjs", &input);
    eprintln!("{out}");
    assert!(ok, "browser run failed:\n{out}\n{err}");
    assert!(out.contains("{\"ok\":true}"), "{out}");
    assert!(artifacts.join("contacts-375.png").exists());
}

fn cookie_of(a: &Auth) -> String {
    match a {
        Auth::Session { cookie, .. } => format!("__Host-kluis_session={cookie}"),
        other => panic!("not a session: {other:?}"),
    }
}

fn csrf_of(a: &Auth) -> String {
    match a {
        Auth::Session { csrf, .. } => csrf.clone(),
        other => panic!("not a session: {other:?}"),
    }
}

async fn send(rb: reqwest::RequestBuilder) -> (StatusCode, String, String) {
    let r = rb.header("accept", "text/html").send().await.unwrap();
    let st = r.status();
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (st, loc, r.text().await.unwrap())
}

async fn page(s: &Server, a: &Auth, path: &str) -> (StatusCode, String, String) {
    let rb = s.client.get(s.url(path)).header("cookie", cookie_of(a));
    send(rb).await
}

async fn page_nl(s: &Server, a: &Auth, path: &str) -> (StatusCode, String, String) {
    let rb = s
        .client
        .get(s.url(path))
        .header("cookie", format!("{}; __Host-kluis_lang=nl", cookie_of(a)));
    send(rb).await
}

async fn form(
    s: &Server,
    a: &Auth,
    path: &str,
    f: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let rb = s
        .client
        .post(s.url(path))
        .header("cookie", cookie_of(a))
        .form(f);
    send(rb).await
}

async fn contact(s: &Server, a: &Auth, body: Value) -> String {
    let (st, v) = s.post("/api/v1/contacts", a, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The record ids a table page links to, in order.
fn row_ids(html: &str, base: &str) -> Vec<String> {
    let mut out = Vec::new();
    let needle = format!("<th scope=\"row\"><a href=\"{base}/");
    let mut rest = html;
    while let Some(i) = rest.find(&needle) {
        let r = &rest[i + needle.len()..];
        out.push(r[..36].to_owned());
        rest = &r[36..];
    }
    out
}

fn next_link(html: &str) -> Option<String> {
    let i = html.find("id=\"next-page\"")?;
    let before = &html[..i];
    let h = before.rfind("href=\"")?;
    Some(
        before[h + 6..]
            .split('"')
            .next()?
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

async fn read_only_user(s: &Server, slug: &str) -> Auth {
    let email = format!("reader@{slug}.test");
    s.cli(
        &[
            "user",
            "create",
            "--tenant",
            slug,
            "--email",
            &email,
            "--role",
            "read_only",
            "--password-stdin",
            "--json",
        ],
        Some(PASSWORD),
    );
    s.login(slug, &email, PASSWORD).await
}

async fn tables_list_sort_filter_page_and_search(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "tafel").await;
    let (st, tag) = s
        .post("/api/v1/tags", &t.owner, json!({"name": "VIP"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{tag}");
    let vip = tag["id"].as_str().unwrap().to_owned();
    let (st, acme) = s
        .post(
            "/api/v1/companies",
            &t.owner,
            json!({"fields": {"name": "Acme Holding", "domain": "acme.example"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let acme = acme["id"].as_str().unwrap().to_owned();
    let jan = contact(
        &s,
        &t.owner,
        json!({"fields": {"first_name": "Jan", "last_name": "Janssen", "email": "jan@voorbeeld.test", "city": "Zwolle"}}),
    )
    .await;
    let piet = contact(
        &s,
        &t.owner,
        json!({"fields": {"first_name": "Piet", "last_name": "Puk"}, "company_id": acme}),
    )
    .await;
    let klaas = contact(
        &s,
        &t.owner,
        json!({"fields": {"first_name": "Klaas", "last_name": "Vaak"}, "owner_id": t.member_id, "tag_ids": [vip]}),
    )
    .await;
    let mut all = vec![jan.clone(), piet.clone(), klaas.clone()];
    for i in 0..10 {
        all.push(
            contact(
                &s,
                &t.owner,
                json!({"fields": {"first_name": format!("Vulling{i}"), "last_name": "Rij"}}),
            )
            .await,
        );
    }

    // The table: every record links to its page; no inline code; the shell's navigation.
    let (st, _, html) = page(&s, &t.owner, "/contacts").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_inline_code(&html);
    assert_eq!(row_ids(&html, "/contacts"), all);
    assert!(
        html.contains("Janssen") && html.contains("Acme Holding"),
        "{html}"
    );
    for href in [
        "/companies",
        "/deals",
        "/tickets",
        "/tasks",
        "/dashboard",
        "/import",
        "/trash",
        "/settings",
    ] {
        assert!(html.contains(&format!("href=\"{href}\"")), "nav {href}");
    }
    assert!(html.contains("href=\"#main\"") && html.contains("<nav class=\"app-nav\""));
    assert!(html.contains("aria-current=\"page\">Contacts"));
    assert!(html.contains("action=\"/search\""));
    // A member sees no Settings.
    let (_, _, mhtml) = page(&s, &t.member, "/contacts").await;
    assert!(!mhtml.contains("href=\"/settings\""));
    // `/` goes to the contacts.
    let (st, loc, _) = page(&s, &t.owner, "/").await;
    assert!(st.is_redirection());
    assert_eq!(loc, "/contacts");

    // Cursor pages of 10, in both orders.
    let (_, _, p1) = page(&s, &t.owner, "/contacts?limit=10").await;
    assert_eq!(row_ids(&p1, "/contacts"), all[..10].to_vec());
    let next = next_link(&p1).expect("a next page");
    let (_, _, p2) = page(&s, &t.owner, &next).await;
    assert_eq!(row_ids(&p2, "/contacts"), all[10..].to_vec());
    assert!(next_link(&p2).is_none());
    assert!(p2.contains("id=\"first-page\""));
    let (_, _, newest) = page(&s, &t.owner, "/contacts?sort=-created&limit=10").await;
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(row_ids(&newest, "/contacts"), rev[..10].to_vec());

    // Filters: owner, tag, "me", created range.
    let (_, _, h) = page(&s, &t.owner, &format!("/contacts?owner={}", t.member_id)).await;
    assert_eq!(row_ids(&h, "/contacts"), vec![klaas.clone()]);
    let (_, _, h) = page(&s, &t.owner, &format!("/contacts?tag={vip}")).await;
    assert_eq!(row_ids(&h, "/contacts"), vec![klaas.clone()]);
    let (_, _, h) = page(&s, &t.member, "/contacts?owner=me").await;
    assert_eq!(row_ids(&h, "/contacts"), vec![klaas.clone()]);
    let (_, _, h) = page(&s, &t.owner, "/contacts?created_to=2000-01-01").await;
    assert!(row_ids(&h, "/contacts").is_empty());
    assert!(h.contains("id=\"no-records\""));
    let (st, _, h) = page(&s, &t.owner, "/contacts?tag=not-a-tag").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{h}");

    // Columns the user picks, custom fields included.
    let (st, cf) = s
        .post(
            "/api/v1/custom-fields",
            &t.owner,
            json!({"object_type": "contact", "key": "lievelingskleur", "label": "Lievelingskleur", "kind": "text"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{cf}");
    let (st, _, v) = s
        .call_with(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{jan}"),
            &t.owner,
            &[("if-match", "*")],
            Some(json!({"fields": {"custom.lievelingskleur": "Oranje"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, _, h) = page(
        &s,
        &t.owner,
        "/contacts?col=last_name&col=city&col=custom.lievelingskleur&col=tags",
    )
    .await;
    assert!(h.contains("<th scope=\"col\">City</th>"), "{h}");
    assert!(h.contains("<th scope=\"col\">Lievelingskleur</th>"));
    assert!(!h.contains("<th scope=\"col\">Email</th>"));
    assert!(
        h.contains("<td>Zwolle</td>")
            && h.contains("<td>Oranje</td>")
            && h.contains("<td>VIP</td>")
    );

    // Search by fragments of sealed values, on the table, the global box and the API.
    let (_, _, h) = page(&s, &t.owner, "/contacts?q=janss").await;
    assert_eq!(row_ids(&h, "/contacts"), vec![jan.clone()]);
    let (_, _, h) = page(&s, &t.owner, "/contacts?q=ACME").await;
    assert_eq!(
        row_ids(&h, "/contacts"),
        vec![piet.clone()],
        "contacts of Acme"
    );
    let (_, _, h) = page(&s, &t.owner, "/contacts?q=vaak&owner=me").await;
    assert!(
        row_ids(&h, "/contacts").is_empty(),
        "filters apply to a search"
    );
    let (_, _, h) = page(&s, &t.owner, "/contacts?q=rij&limit=10").await;
    let first: Vec<String> = row_ids(&h, "/contacts");
    assert_eq!(first, all[3..13].to_vec());
    let (st, _, h) = page(&s, &t.owner, "/search?q=acme").await;
    assert_eq!(st, StatusCode::OK);
    assert!(h.contains(&format!("/companies/{acme}")) && h.contains(&format!("/contacts/{piet}")));
    let (st, v) = s.get("/api/v1/contacts?q=jan", &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![jan.as_str()]);
    // A change is found by the next search, also in another process on the same database.
    let sib = s.sibling().await;
    let sib_search = |q: &str| {
        sib.client
            .get(sib.url(&format!("/api/v1/contacts?q={q}")))
            .header("cookie", cookie_of(&t.owner))
            .send()
    };
    let v: Value = sib_search("janss").await.unwrap().json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    let mies = contact(
        &s,
        &t.owner,
        json!({"fields": {"first_name": "Mies", "last_name": "Janssens"}}),
    )
    .await;
    let v: Value = sib_search("janss").await.unwrap().json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    let (st, _) = s
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{mies}"),
            &t.owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let v: Value = sib_search("janss").await.unwrap().json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    // Nothing of the names reaches the database files.
    let dump = s.database_dump().await;
    for name in [
        "Janssen",
        "janssen",
        "Acme Holding",
        "acme holding",
        "Vulling",
    ] {
        assert!(
            !dump.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name} found in the database"
        );
    }

    // Dutch formats on the deals table.
    let (st, d) = s
        .post(
            "/api/v1/deals",
            &t.owner,
            json!({"fields": {"name": "Grote deal"}, "amount_minor": 123_450, "currency": "EUR", "close_date": "2026-11-25"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{d}");
    let (_, _, h) = page_nl(&s, &t.owner, "/deals").await;
    assert!(h.contains("€ 1.234,50") && h.contains("25-11-2026"), "{h}");
    assert!(h.contains("lang=\"nl\"") && h.contains("Contactpersonen"));
    let (_, _, h) = page(&s, &t.owner, "/deals").await;
    assert!(h.contains("€1,234.50") && h.contains("2026-11-25"));

    // CSV export of the current view.
    let (st, _, csv) = page(&s, &t.owner, &format!("/contacts/export.csv?tag={vip}")).await;
    assert_eq!(st, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("id,") && lines[1].contains("Klaas"));
    let (_, _, csv) = page(&s, &t.owner, "/contacts/export.csv?q=janss").await;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    // A member may not export (the same permission as the API's).
    let (st, _, _) = page(&s, &t.member, "/contacts/export.csv").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, _, h) = page(&s, &t.member, "/contacts").await;
    assert!(!h.contains("id=\"export-csv\""));

    // Tasks have their table too.
    let (st, _) = s
        .post(
            "/api/v1/tasks",
            &t.owner,
            json!({"fields": {"title": "Bel Jan"}, "due_date": "2026-12-01"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, h) = page(&s, &t.owner, "/tasks/all?done=false").await;
    assert_eq!(st, StatusCode::OK);
    assert!(h.contains("Bel Jan") && h.contains("2026-12-01"), "{h}");
}

async fn tables_bulk_actions_need_confirmation_and_write_permission(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "bulk").await;
    let (_, tag) = s
        .post("/api/v1/tags", &t.owner, json!({"name": "Nieuwsbrief"}))
        .await;
    let tag = tag["id"].as_str().unwrap().to_owned();
    let a = contact(&s, &t.owner, json!({"fields": {"first_name": "Anna"}})).await;
    let bb = contact(&s, &t.owner, json!({"fields": {"first_name": "Bert"}})).await;
    let c = contact(&s, &t.owner, json!({"fields": {"first_name": "Cor"}})).await;
    let csrf = csrf_of(&t.owner);

    let (_, _, h) = page(&s, &t.owner, "/contacts").await;
    assert!(h.contains("id=\"bulk\"") && h.contains(&format!("value=\"{a}\"")));

    // Tag: the first post only asks.
    let ask = [
        ("csrf", csrf.as_str()),
        ("action", "tag"),
        ("tag", tag.as_str()),
        ("id", a.as_str()),
        ("id", bb.as_str()),
        ("back", "sort=-created"),
    ];
    let (st, _, h) = form(&s, &t.owner, "/contacts/bulk", &ask).await;
    assert_eq!(st, StatusCode::OK, "{h}");
    assert!(h.contains("Anna") && h.contains("Bert") && !h.contains("Cor"));
    assert!(h.contains("Nieuwsbrief") && h.contains("name=\"confirm\" value=\"yes\""));
    let (_, v) = s.get(&format!("/api/v1/contacts/{a}"), &t.owner).await;
    assert_eq!(v["tag_ids"], json!([]), "nothing changed before confirming");
    let mut confirm = ask.to_vec();
    confirm.push(("confirm", "yes"));
    let (st, loc, _) = form(&s, &t.owner, "/contacts/bulk", &confirm).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(loc, "/contacts?sort=-created&ok=bulk&n=2&failed=0");
    for (id, tagged) in [(&a, true), (&bb, true), (&c, false)] {
        let (_, v) = s.get(&format!("/api/v1/contacts/{id}"), &t.owner).await;
        assert_eq!(v["tag_ids"] == json!([tag]), tagged, "{v}");
    }
    let (_, _, h) = page(&s, &t.owner, &loc).await;
    assert!(h.contains("Records changed: 2"), "{h}");

    // Owner.
    let f = [
        ("csrf", csrf.as_str()),
        ("action", "owner"),
        ("owner", t.member_id.as_str()),
        ("id", c.as_str()),
        ("confirm", "yes"),
    ];
    let (st, _, _) = form(&s, &t.owner, "/contacts/bulk", &f).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&format!("/api/v1/contacts/{c}"), &t.owner).await;
    assert_eq!(v["owner_id"], json!(t.member_id));

    // Trash, after the confirmation.
    let f = [
        ("csrf", csrf.as_str()),
        ("action", "trash"),
        ("id", a.as_str()),
    ];
    let (st, _, h) = form(&s, &t.owner, "/contacts/bulk", &f).await;
    assert_eq!(st, StatusCode::OK);
    assert!(h.contains("bulk-confirm"));
    let mut f = f.to_vec();
    f.push(("confirm", "yes"));
    let (st, _, _) = form(&s, &t.owner, "/contacts/bulk", &f).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _) = s.get(&format!("/api/v1/contacts/{a}"), &t.owner).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = s.get("/api/v1/trash", &t.owner).await;
    assert_eq!(v["items"][0]["id"], json!(a));

    // Without the CSRF token: refused.
    let f = [
        ("csrf", "wrong"),
        ("action", "trash"),
        ("id", bb.as_str()),
        ("confirm", "yes"),
    ];
    let (st, _, _) = form(&s, &t.owner, "/contacts/bulk", &f).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // A read-only user sees no bulk controls, and a forged post is refused by the service.
    let reader = read_only_user(&s, "bulk").await;
    let (st, _, h) = page(&s, &reader, "/contacts").await;
    assert_eq!(st, StatusCode::OK);
    assert!(h.contains("Bert"));
    assert!(
        !h.contains("id=\"bulk\"") && !h.contains("name=\"id\""),
        "{h}"
    );
    let rcsrf = csrf_of(&reader);
    for action in ["trash", "owner"] {
        let f = [
            ("csrf", rcsrf.as_str()),
            ("action", action),
            ("owner", ""),
            ("id", bb.as_str()),
            ("confirm", "yes"),
        ];
        let (st, _, _) = form(&s, &reader, "/contacts/bulk", &f).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{action}");
    }
    let (st, v) = s.get(&format!("/api/v1/contacts/{bb}"), &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["owner_id"], json!(t.owner_id));

    // Saved views: personal ones for their maker, shared ones for everyone.
    let (st, loc, _) = form(
        &s,
        &t.owner,
        "/contacts/views",
        &[
            ("csrf", csrf.as_str()),
            ("name", "Mijn nieuwsbrief"),
            ("query", &format!("tag={tag}&col=first_name&cursor=abc")),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        loc,
        format!("/contacts?tag={tag}&col=first_name&ok=view_saved")
    );
    let (_, _, h) = page(&s, &t.owner, &loc).await;
    assert!(
        h.contains("View saved.") && h.contains("Mijn nieuwsbrief"),
        "{h}"
    );
    assert!(h.contains(&format!("href=\"/contacts?tag={tag}&#38;col=first_name\" class=\"saved-view\" aria-current=\"true\"")), "{h}");
    assert_eq!(row_ids(&h, "/contacts"), vec![bb.clone()]);
    let (_, _, h) = page(&s, &t.member, "/contacts").await;
    assert!(
        !h.contains("Mijn nieuwsbrief"),
        "a personal view is its maker's"
    );
    let (st, _, _) = form(
        &s,
        &t.owner,
        "/contacts/views",
        &[
            ("csrf", csrf.as_str()),
            ("name", "Van iedereen"),
            ("query", "sort=-created"),
            ("shared", "1"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, _, h) = page(&s, &t.member, "/contacts").await;
    assert!(
        h.contains("Van iedereen") && !h.contains("/contacts/views/delete"),
        "{h}"
    );
    let (_, _, h) = page(&s, &t.owner, "/contacts").await;
    let at = h.find("Van iedereen").unwrap();
    let id_at = h[at..].find("name=\"id\" value=\"").unwrap() + at + 17;
    let shared_id = h[id_at..id_at + 36].to_owned();
    // A member cannot delete a shared view; a reader may keep a personal view, not share one.
    let mcsrf = csrf_of(&t.member);
    let (st, _, _) = form(
        &s,
        &t.member,
        "/contacts/views/delete",
        &[("csrf", mcsrf.as_str()), ("id", shared_id.as_str())],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = form(
        &s,
        &reader,
        "/contacts/views",
        &[("csrf", rcsrf.as_str()), ("name", "Lezer"), ("query", "")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _, _) = form(
        &s,
        &reader,
        "/contacts/views",
        &[
            ("csrf", rcsrf.as_str()),
            ("name", "Gedeeld"),
            ("query", ""),
            ("shared", "1"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, loc, _) = form(
        &s,
        &t.owner,
        "/contacts/views/delete",
        &[("csrf", csrf.as_str()), ("id", shared_id.as_str())],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/contacts?ok=view_deleted")
    );
    let (_, _, h) = page(&s, &t.member, "/contacts").await;
    assert!(!h.contains("Van iedereen"));
    let dump = s.database_dump().await;
    assert!(!dump.windows(16).any(|w| w == b"Mijn nieuwsbrief"));
}

async fn tables_never_show_another_tenant(b: Backend) {
    let s = Server::start(b).await;
    let a = tenant_fixture(&s, "eerste").await;
    let bt = tenant_fixture(&s, "tweede").await;
    let mine = contact(
        &s,
        &a.owner,
        json!({"fields": {"first_name": "Anke", "last_name": "Bakker"}}),
    )
    .await;
    let theirs = contact(
        &s,
        &bt.owner,
        json!({"fields": {"first_name": "Bram", "last_name": "Bakker"}}),
    )
    .await;
    for (path, ok) in [
        ("/contacts", true),
        ("/contacts?q=bakker", true),
        ("/search?q=bakker", true),
    ] {
        let (st, _, h) = page(&s, &a.owner, path).await;
        assert_eq!(st.is_success(), ok);
        assert!(h.contains("Anke"), "{path}");
        assert!(!h.contains("Bram") && !h.contains(&theirs), "{path}: {h}");
    }
    let (_, _, h) = page(&s, &bt.owner, "/contacts?q=bakker").await;
    assert_eq!(row_ids(&h, "/contacts"), vec![theirs.clone()]);
    assert!(!h.contains(&mine));
    // A bulk action on another tenant's record changes nothing there.
    let csrf = csrf_of(&a.owner);
    let f = [
        ("csrf", csrf.as_str()),
        ("action", "trash"),
        ("id", theirs.as_str()),
        ("confirm", "yes"),
    ];
    let (st, loc, _) = form(&s, &a.owner, "/contacts/bulk", &f).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(loc.ends_with("n=0&failed=1"), "{loc}");
    let (st, _) = s
        .get(&format!("/api/v1/contacts/{theirs}"), &bt.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
}
