//! The boards slice of the web app, driven like a browser (cookie jar, form posts, redirects
//! checked by hand) and checked against the JSON API: deals and tickets boards with totals and
//! the no-script move form (revision checked, read-only refused), the dashboard's figures, the
//! import wizard with a Dutch Excel file, the export page, the 403/404 pages and the favicon.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pages::{assert_no_inline_code, field, get, post};
use crate::support::{Auth, Backend, PASSWORD, Server, on_both, tenant_fixture};

on_both!(
    deals_board_totals_and_moves,
    dashboard_figures_and_error_pages,
    import_wizard_with_a_dutch_excel_file,
);

async fn sign_in(s: &Server, org: &str, email: &str) -> reqwest::Client {
    crate::pages::signed_in(s, org, email).await.0
}

async fn dutch(c: &reqwest::Client, s: &Server) {
    let (st, _, _) = get(c, s, "/lang/nl?next=/account").await;
    assert_eq!(st, StatusCode::SEE_OTHER);
}

/// The part of the page from `start` up to the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in page:\n{html}"));
    let rest = &html[at..];
    &rest[..rest[start.len()..]
        .find(end)
        .map_or(rest.len(), |e| e + start.len())]
}

async fn deal_pipeline(s: &Server, a: &Auth) -> (String, Vec<(String, String)>) {
    let (st, v) = s.get("/api/v1/pipelines?object_type=deal", a).await;
    let v = v["items"].clone();
    assert_eq!(st, StatusCode::OK, "{v}");
    let p = &v[0];
    let stages = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (p["id"].as_str().unwrap().to_owned(), stages)
}

fn stage_id(stages: &[(String, String)], name: &str) -> String {
    stages.iter().find(|s| s.0 == name).unwrap().1.clone()
}

async fn create(s: &Server, a: &Auth, path: &str, body: Value) -> Value {
    let (st, v) = s.post(path, a, body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn deals_board_totals_and_moves(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "bord").await;
    let o = &t.owner;
    let (pipeline, stages) = deal_pipeline(&s, o).await;
    let new = stage_id(&stages, "New");
    let qualified = stage_id(&stages, "Qualified");
    let won = stage_id(&stages, "Won");
    let a = create(&s, o, "/api/v1/deals", json!({"fields": {"name": "Jaarcontract"}, "amount_minor": 123_450, "close_date": "2026-11-25"})).await;
    create(
        &s,
        o,
        "/api/v1/deals",
        json!({"fields": {"name": "Licenties"}, "amount_minor": 100_000}),
    )
    .await;
    create(&s, o, "/api/v1/deals", json!({"fields": {"name": "Onderhoud <script>"}, "amount_minor": 50_000, "stage_id": qualified})).await;
    create(
        &s,
        o,
        "/api/v1/deals",
        json!({"fields": {"name": "Binnen"}, "amount_minor": 999_900, "stage_id": won}),
    )
    .await;
    let a_id = a["id"].as_str().unwrap().to_owned();

    let c = sign_in(&s, "bord", "owner@bord.test").await;
    dutch(&c, &s).await;
    let (st, _, html) = get(&c, &s, "/deals/board").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_inline_code(&html);
    assert!(html.contains("<script src=\"/assets/board.js\" defer></script>"));
    assert!(html.contains("Dealbord"), "Dutch page");
    // Columns per stage, with the count and the total in Dutch format.
    let col_new = between(&html, &format!("data-stage=\"{new}\""), "</section>");
    assert!(
        col_new.contains("<span class=\"col-count\">2</span>"),
        "{col_new}"
    );
    assert!(
        col_new.contains("<span class=\"col-total\">€ 2.234,50</span>"),
        "{col_new}"
    );
    assert!(
        col_new.contains("€ 1.234,50") && col_new.contains("25-11-2026"),
        "{col_new}"
    );
    assert!(col_new.contains(&format!("href=\"/deals/{a_id}\"")));
    let col_q = between(&html, &format!("data-stage=\"{qualified}\""), "</section>");
    assert!(
        col_q.contains("€ 500,00") && col_q.contains("Onderhoud &"),
        "{col_q}"
    );
    assert!(!html.contains("<script>"), "names are escaped");
    assert!(html.contains(&format!("board-col outcome-won\" data-stage=\"{won}\"")));
    let col_won = between(&html, &format!("data-stage=\"{won}\""), "</section>");
    assert!(col_won.contains("gewonnen"), "{col_won}");
    // The no-script move form of card A: previous/next buttons and a stage list.
    let card = between(&html, &format!("id=\"card-{a_id}\""), "</li>");
    assert!(
        card.contains(&format!("name=\"to\" value=\"{qualified}\"")),
        "{card}"
    );
    assert!(
        !card.contains("move-prev"),
        "the first stage has no previous"
    );
    let csrf = field(&html, "csrf");

    // Move A to the next stage by the form (the button's stage wins over the list).
    let (st, loc, body) = post(
        &c,
        &s,
        "/deals/board/move",
        &[
            ("csrf", &csrf),
            ("id", &a_id),
            ("rev", "1"),
            ("pipeline", &pipeline),
            ("stage", &new),
            ("to", &qualified),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        loc,
        format!("/deals/board?pipeline={pipeline}&done=moved#card-{a_id}")
    );
    let (_, v) = s.get(&format!("/api/v1/deals/{a_id}"), o).await;
    assert_eq!(v["deal"]["stage_id"], json!(qualified), "{v}");
    assert_eq!(v["revision"], 2);
    let (_, _, html) = get(&c, &s, &loc).await;
    assert!(html.contains("Verplaatst."));
    let col_q = between(&html, &format!("data-stage=\"{qualified}\""), "</section>");
    assert!(
        col_q.contains("<span class=\"col-total\">€ 1.734,50</span>"),
        "{col_q}"
    );

    // A stale revision (the board was loaded before another change) is refused: 412, no change.
    let (st, _, html) = post(
        &c,
        &s,
        "/deals/board/move",
        &[
            ("csrf", &csrf),
            ("id", &a_id),
            ("rev", "1"),
            ("pipeline", &pipeline),
            ("stage", &won),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "{html}");
    assert!(html.contains("class=\"notice error\""), "{html}");
    let (_, v) = s.get(&format!("/api/v1/deals/{a_id}"), o).await;
    assert_eq!(v["deal"]["stage_id"], json!(qualified));
    // Without the CSRF token: refused.
    let (st, _, _) = post(
        &c,
        &s,
        "/deals/board/move",
        &[
            ("csrf", "nope"),
            ("id", &a_id),
            ("rev", "2"),
            ("stage", &won),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // The ticket board: by the stage list, to the closed stage.
    let tk = create(
        &s,
        o,
        "/api/v1/tickets",
        json!({"fields": {"subject": "Printer stuk"}, "priority": "urgent"}),
    )
    .await;
    let tk_id = tk["id"].as_str().unwrap().to_owned();
    let (_, tp) = s.get("/api/v1/pipelines?object_type=ticket", o).await;
    let tp = tp["items"].clone();
    let closed = tp[0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["outcome"] == "closed")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _, html) = get(&c, &s, "/tickets/board").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_inline_code(&html);
    assert!(
        html.contains("Printer stuk") && html.contains("Prioriteit: Urgent"),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"/tickets/{tk_id}\"")));
    let (st, _, body) = post(
        &c,
        &s,
        "/tickets/board/move",
        &[
            ("csrf", &csrf),
            ("id", &tk_id),
            ("rev", "1"),
            ("pipeline", tp[0]["id"].as_str().unwrap()),
            ("stage", &closed),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let (_, v) = s.get(&format!("/api/v1/tickets/{tk_id}"), o).await;
    assert_eq!(
        (v["deal"]["stage_id"].as_str(), v["outcome"].as_str()),
        (Some(closed.as_str()), Some("closed")),
        "{v}"
    );

    // A read-only user sees the board without move controls, and a forged post is refused.
    let (st, _) = s
        .call(
            Method::POST,
            "/api/v1/users",
            o,
            Some(json!({"email": "lezer@bord.test", "display_name": "Lezer", "role": "read_only", "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let r = sign_in(&s, "bord", "lezer@bord.test").await;
    let (st, _, html) = get(&r, &s, "/deals/board").await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("Jaarcontract"));
    assert!(
        !html.contains("card-move") && !html.contains("draggable"),
        "{html}"
    );
    let (_, _, account) = get(&r, &s, "/account").await;
    let reader_csrf = field(&account, "csrf");
    let (st, _, html) = post(
        &r,
        &s,
        "/deals/board/move",
        &[
            ("csrf", &reader_csrf),
            ("id", &a_id),
            ("rev", "2"),
            ("pipeline", &pipeline),
            ("stage", &won),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{html}");
    assert!(
        html.contains("No access") && html.contains("<main"),
        "a styled 403 page: {html}"
    );
    let (_, v) = s.get(&format!("/api/v1/deals/{a_id}"), o).await;
    assert_eq!(v["deal"]["stage_id"], json!(qualified));
    assert_eq!(v["revision"], 2);
}

async fn dashboard_figures_and_error_pages(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "cijfers").await;
    let o = &t.owner;
    let (_, stages) = deal_pipeline(&s, o).await;
    let won = stage_id(&stages, "Won");
    let proposal = stage_id(&stages, "Proposal");
    // Today (UTC), as the server sees it.
    let first = create(&s, o, "/api/v1/notes", json!({"fields": {"body": "Start"}})).await;
    let today = first["created_at"].as_str().unwrap()[..10].to_owned();
    for (amount, stage) in [
        (250_000, &proposal),
        (50, &proposal),
        (100_000, &won),
        (200_000, &won),
    ] {
        create(&s, o, "/api/v1/deals", json!({"fields": {"name": "D"}, "amount_minor": amount, "stage_id": stage, "close_date": today})).await;
    }
    for p in ["urgent", "high", "high", "low"] {
        create(
            &s,
            o,
            "/api/v1/tickets",
            json!({"fields": {"subject": "T"}, "priority": p}),
        )
        .await;
    }
    for due in [Some("2020-01-01"), Some(today.as_str()), None] {
        let mut body = json!({"fields": {"title": "Bellen"}});
        if let Some(d) = due {
            body["due_date"] = json!(d);
        }
        create(&s, o, "/api/v1/tasks", body).await;
    }

    let c = sign_in(&s, "cijfers", "owner@cijfers.test").await;
    let (st, _, html) = get(&c, &s, "/dashboard").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_inline_code(&html);
    assert_eq!(html.matches("role=\"img\"").count(), 4, "four charts");
    assert_eq!(html.matches("<title id=").count(), 4);
    assert_eq!(html.matches("<desc id=").count(), 4);
    assert_eq!(html.matches("<table class=\"chart-table\">").count(), 4);
    let row = |label: &str, value: &str| {
        format!("<tr><th scope=\"row\">{label}</th><td>{value}</td></tr>")
    };
    let value = between(&html, "Pipeline value by stage</caption>", "</table>");
    assert!(value.contains(&row("Proposal", "€2,500.50")), "{value}");
    assert!(value.contains(&row("Won", "€3,000.00")), "{value}");
    assert!(value.contains(&row("New", "€0.00")), "{value}");
    let month = &today[..7];
    let won_t = between(&html, "Deals won per month</caption>", "</table>");
    assert!(won_t.contains(&row(month, "2")), "{won_t}");
    let tickets = between(&html, "Open tickets by priority</caption>", "</table>");
    for (p, n) in [
        ("Urgent", "1"),
        ("High", "2"),
        ("Normal", "0"),
        ("Low", "1"),
    ] {
        assert!(tickets.contains(&row(p, n)), "{tickets}");
    }
    let tasks = between(&html, "Tasks due</caption>", "</table>");
    for (l, n) in [
        ("Overdue", "1"),
        ("Today", "1"),
        ("Next 7 days", "0"),
        ("No due date", "1"),
    ] {
        assert!(tasks.contains(&row(l, n)), "{tasks}");
    }
    // In Dutch: Dutch money.
    dutch(&c, &s).await;
    let (_, _, html) = get(&c, &s, "/dashboard").await;
    assert!(html.contains(&row("Proposal", "€ 2.500,50")), "{html}");

    // Unknown pages: the 404 page for browsers, JSON for API clients and the API's paths.
    let r = c
        .get(s.url("/no/such/page"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Pagina niet gevonden") && html.contains("/assets/kluis.css"),
        "{html}"
    );
    assert_no_inline_code(&html);
    let r = c
        .get(s.url("/api/v1/unknown"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "route_not_found", "{v}");
    let (st, v) = s.get("/no/such/page", &Auth::None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("route_not_found"))
    );

    // The favicon: a small cacheable SVG.
    let r = c.get(s.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    assert!(r.text().await.unwrap().starts_with("<svg"));
    // The board script is served as a script.
    let r = c.get(s.url("/assets/board.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );

    // The export page links the API's CSV export, which answers with the data.
    let (st, _, html) = get(&c, &s, "/export").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(
        // This browser asks for Dutch: the links ask for what Dutch Excel opens.
        // (askama writes `&` as `&#38;` in attributes; compare the URL it stands for.)
        html.replace("&#38;", "&")
            .replace("&amp;", "&")
            .contains("href=\"/api/v1/deals/export?format=csv&delimiter=%3B&bom=true&headers=nl\""),
        "{html}"
    );
    let r = c
        .get(s.url("/api/v1/tickets/export?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.text().await.unwrap().lines().count(),
        5,
        "header and four tickets"
    );
    // A member may not export or import: the 403 page.
    let m = sign_in(&s, "cijfers", "member@cijfers.test").await;
    for path in ["/export", "/import"] {
        let (st, _, html) = get(&m, &s, path).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{path}");
        assert!(
            html.contains("No access") && html.contains("class=\"top\""),
            "{html}"
        );
        assert_no_inline_code(&html);
    }
}

/// A `multipart/form-data` body as a browser sends the upload form.
fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----kluisTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"klanten.csv\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn import_wizard_with_a_dutch_excel_file(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "wizard").await;
    let o = &t.owner;
    let c = sign_in(&s, "wizard", "owner@wizard.test").await;
    dutch(&c, &s).await;

    // Step 1: upload what Dutch Excel writes as plain CSV (Windows-1252, semicolons, CRLF).
    let (st, _, html) = get(&c, &s, "/import").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_inline_code(&html);
    assert!(html.contains("enctype=\"multipart/form-data\""));
    let csrf = field(&html, "csrf");
    let mut excel = b"Voornaam;Achternaam;E-mailadres;Telefoon;Plaats;Notitie\r\n".to_vec();
    excel.extend_from_slice(b"Jos\xe9;de Vries;jose@wizard.test;06 12345678;Utrecht;x\r\n");
    excel.extend_from_slice(b"Anna;Bakker;geen-email;;\"Den Haag; centrum\";y\r\n");
    excel.extend_from_slice(b"Piet;Jansen;piet@wizard.test;+31 20 1234567;Amsterdam;z\r\n");
    let (ct, body) = multipart(&[("csrf", &csrf), ("object_type", "contact")], &excel);
    let r = c
        .post(s.url("/import/upload"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(st, StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    assert!(loc.starts_with("/import/"), "{loc}");

    // Step 2: what was detected, and the Dutch headers pre-mapped.
    let (st, _, html) = get(&c, &s, &loc).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_no_inline_code(&html);
    assert!(
        html.contains("<dd id=\"detected-encoding\">Windows-1252</dd>"),
        "{html}"
    );
    assert!(
        html.contains("<dd id=\"detected-delimiter\">“;”</dd>"),
        "{html}"
    );
    assert!(html.contains("<dd id=\"row-count\">3</dd>"), "{html}");
    for (i, f) in [
        (0, "first_name"),
        (1, "last_name"),
        (2, "email"),
        (3, "phone"),
        (4, "city"),
    ] {
        let sel = between(&html, &format!("<select id=\"map_{i}\""), "</select>");
        assert!(
            sel.contains(&format!("value=\"{f}\" selected")),
            "column {i}: {sel}"
        );
    }
    let sel = between(&html, "<select id=\"map_5\"", "</select>");
    assert!(!sel.contains("selected"), "Notitie is not a field: {sel}");
    let check = format!("{loc}/check");
    let mapping: Vec<(String, String)> = (0..6)
        .map(|i| {
            let v = ["first_name", "last_name", "email", "phone", "city", ""][i];
            (format!("map_{i}"), v.to_owned())
        })
        .collect();
    let form = |mode: &str| {
        let mut f: Vec<(String, String)> = vec![
            ("csrf".into(), csrf.clone()),
            ("mode".into(), mode.into()),
            ("on_duplicate".into(), "error".into()),
        ];
        f.extend(mapping.clone());
        f
    };

    // Step 3: the dry run lists the row error; nothing is written.
    let r = c
        .post(s.url(&check))
        .form(&form("all_or_nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, _, html) = get(&c, &s, &format!("{loc}?step=check")).await;
    assert!(html.contains("<td id=\"preview-failed\">1</td>"), "{html}");
    assert!(html.contains("<td id=\"preview-created\">2</td>"), "{html}");
    let errs = between(&html, "<table id=\"row-errors\">", "</table>");
    assert!(errs.contains("<td>3</td><td>E-mailadres</td>"), "{errs}");
    let (_, v) = s.get("/api/v1/contacts", o).await;
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        0,
        "a dry run writes nothing"
    );

    // Continue on error, check again, then import.
    let r = c
        .post(s.url(&check))
        .form(&form("continue_on_error"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, _, html) = get(&c, &s, &format!("{loc}?step=check")).await;
    assert!(
        html.contains("action=\"/import/") && html.contains("/run\""),
        "{html}"
    );
    let (st, status_loc, body) = post(&c, &s, &format!("{loc}/run"), &[("csrf", &csrf)]).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    assert!(status_loc.starts_with("/import/status/"), "{status_loc}");

    // Step 4: progress until done, then the summary.
    let mut html = String::new();
    for _ in 0..100 {
        let (st, _, h) = get(&c, &s, &status_loc).await;
        assert_eq!(st, StatusCode::OK, "{h}");
        html = h;
        if !html.contains("http-equiv=\"refresh\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_no_inline_code(&html);
    assert!(html.contains("Importeren voltooid."), "{html}");
    assert!(html.contains("<td id=\"sum-created\">2</td>"), "{html}");
    assert!(html.contains("<td id=\"sum-failed\">1</td>"), "{html}");
    assert!(html.contains("<progress"), "{html}");

    // The records, read through the API: the accents decoded from Windows-1252.
    let (_, v) = s.get("/api/v1/contacts?email=jose@wizard.test", o).await;
    let jose = &v["items"][0];
    assert_eq!(jose["fields"]["first_name"], "José", "{v}");
    assert_eq!(jose["fields"]["last_name"], "de Vries");
    assert_eq!(jose["fields"]["city"], "Utrecht");
    let (_, v) = s.get("/api/v1/contacts", o).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    // The wizard's upload is gone after the import.
    let (st, _, _) = get(&c, &s, &loc).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Headless Chromium drags a deal to the next stage on the board (board.js) and moves it back
/// with the keyboard; the API shows both moves. Any CSP violation or script error fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_drags_a_deal_and_moves_it_back_by_keyboard() {
    let Some(tools) = kluis_testkit::browser::browser_tools() else {
        return;
    };
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "sleep").await;
    let o = &t.owner;
    let (_, stages) = deal_pipeline(&s, o).await;
    let d = create(
        &s,
        o,
        "/api/v1/deals",
        json!({"fields": {"name": "Sleepdeal"}, "amount_minor": 42_00}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_owned();
    let input = json!({
        "base": format!("https://localhost:{}", s.port),
        "cert": s.dir.path().join("tls/cert.pem"),
        "organisation": "sleep",
        "email": "owner@sleep.test",
        "password": PASSWORD,
        "deal": id,
        "from": stage_id(&stages, "New"),
        "to": stage_id(&stages, "Qualified"),
        "chromium": tools.chromium,
    });
    let (ok, out, err) = tools.run("board.mjs", &input);
    eprintln!("{out}");
    assert!(ok, "browser run failed:\n{out}\n{err}");
    assert!(out.contains("{\"ok\":true}"), "{out}");
    let (_, v) = s.get(&format!("/api/v1/deals/{id}"), o).await;
    assert_eq!(
        v["deal"]["stage_id"],
        json!(stage_id(&stages, "New")),
        "{v}"
    );
    assert_eq!(v["revision"], 3, "two moves: {v}");
    let (_, versions) = s.get(&format!("/api/v1/deals/{id}/versions"), o).await;
    let versions = versions["items"].clone();
    assert_eq!(
        versions[1]["deal"]["stage_id"],
        json!(stage_id(&stages, "Qualified")),
        "{versions}"
    );
}
