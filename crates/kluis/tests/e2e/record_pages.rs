//! The record pages, driven like a browser (cookie jar, form posts, redirects followed by hand),
//! with the JSON API read afterwards to check what was stored: create pages, editing with a
//! conflicting second session, linked records, tags, notes and tasks in the timeline, version
//! restore, the trash, my tasks; read-only users and other tenants' records.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pages::{field, get, post};
use crate::support::{Backend, PASSWORD, Server, on_both, tenant_fixture};

on_both!(
    record_pages_working_day,
    record_pages_refuse_readers_and_strangers
);

async fn sign_in(s: &Server, org: &str, email: &str) -> (reqwest::Client, String) {
    crate::pages::signed_in(s, org, email).await
}

fn unescape(v: &str) -> String {
    v.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The edit form as a browser submits it untouched: every value as shown (`o:` hidden fields
/// and the `f:` inputs, which start equal), the revision and the CSRF token.
fn edit_form(html: &str, csrf: &str) -> Vec<(String, String)> {
    let mut out = vec![
        ("csrf".to_owned(), csrf.to_owned()),
        ("revision".to_owned(), field(html, "revision")),
    ];
    let mut rest = html;
    while let Some(i) = rest.find("name=\"o:") {
        let after = &rest[i + 8..];
        let name = &after[..after.find('"').unwrap()];
        let v = field(html, &format!("o:{name}"));
        out.push((format!("o:{name}"), unescape(&v)));
        out.push((format!("f:{name}"), unescape(&v)));
        rest = after;
    }
    assert!(out.len() > 4, "no edit form in page:\n{html}");
    out
}

fn set(form: &mut [(String, String)], name: &str, value: &str) {
    let key = format!("f:{name}");
    for (k, v) in form.iter_mut() {
        if *k == key {
            *v = value.to_owned();
        }
    }
}

async fn post_pairs(
    c: &reqwest::Client,
    s: &Server,
    path: &str,
    form: &[(String, String)],
) -> (StatusCode, String, String) {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    post(c, s, path, &pairs).await
}

/// The id in a `Location` such as `/contacts/<id>?done=created`.
fn id_in(loc: &str, prefix: &str) -> String {
    let rest = loc
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{loc} is not under {prefix}"));
    rest.split('?').next().unwrap().to_owned()
}

/// No inline script, style or handler (the CSP forbids them).
fn assert_clean(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains(" style="), "inline style attribute");
    assert!(!lower.contains("<style"), "inline style element");
    assert!(!lower.contains("<script>"), "inline script");
    assert!(!lower.contains(" onclick="), "inline handler");
}

/// The text of the element with this id (up to the next tag).
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in page:\n{html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].trim().to_owned()
}

/// Today in UTC, `YYYY-MM-DD` (days since 1970 to a civil date, after Howard Hinnant).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn record_pages_working_day(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "werkdag").await;
    let o = &t.owner;
    // A custom field shows and edits like the built-in ones.
    let (st, v) = s
        .post(
            "/api/v1/custom-fields",
            o,
            json!({"object_type": "contact", "key": "segment", "label": "Segment", "kind": "text"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    let (c, csrf) = sign_in(&s, "werkdag", "owner@werkdag.test").await;

    // A company through its create page.
    let (st, _, html) = get(&c, &s, "/companies/new").await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_clean(&html);
    let (st, loc, body) = post(
        &c,
        &s,
        "/companies/new",
        &[
            ("csrf", &csrf),
            ("f:name", "Acme BV"),
            ("f:domain", "acme.nl"),
            ("f:city", "Delft"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let company = id_in(&loc, "/companies/");
    let (_, v) = s.get(&format!("/api/v1/companies/{company}"), o).await;
    assert_eq!(v["fields"]["name"], "Acme BV", "{v}");

    // A contact linked to it, from the company's "new contact" link.
    let (_, _, html) = get(&c, &s, &format!("/companies/{company}")).await;
    assert!(
        html.contains(&format!("/contacts/new?company_id={company}")),
        "{html}"
    );
    let (st, _, html) = get(&c, &s, &format!("/contacts/new?company_id={company}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        html.contains(&format!("<option value=\"{company}\" selected>Acme BV")),
        "{html}"
    );
    let (st, loc, body) = post(
        &c,
        &s,
        "/contacts/new",
        &[
            ("csrf", &csrf),
            ("company_id", &company),
            ("f:first_name", "Jan"),
            ("f:last_name", "Jansen"),
            ("f:email", "jan@acme.nl"),
            ("f:city", "Delft"),
            ("f:custom.segment", "MKB"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let contact = id_in(&loc, "/contacts/");
    let api = format!("/api/v1/contacts/{contact}");
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["company_id"], company.as_str(), "{v}");
    assert_eq!(v["fields"]["custom.segment"], "MKB", "{v}");
    let (_, _, html) = get(&c, &s, &format!("/companies/{company}")).await;
    assert!(html.contains("Jan Jansen"), "the company lists its contact");

    // The record page: every field, editable.
    let page = format!("/contacts/{contact}");
    let (st, _, html) = get(&c, &s, &page).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_clean(&html);
    assert_eq!(text_of(&html, "record-title"), "Jan Jansen");
    assert!(html.contains("name=\"f:custom.segment\""), "{html}");
    assert!(html.contains("id=\"company-link\">Acme BV<"), "{html}");

    // Edit a field.
    let mut form = edit_form(&html, &csrf);
    set(&mut form, "city", "Utrecht");
    let (st, loc, body) = post_pairs(&c, &s, &format!("{page}/edit"), &form).await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, format!("{page}?done=saved").as_str()),
        "{body}"
    );
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["fields"]["city"], "Utrecht");
    assert_eq!(v["fields"]["first_name"], "Jan", "untouched values stay");
    assert_eq!(v["revision"], 2);

    // A second session (the member, on their own page) changes another value meanwhile: the
    // owner's stale form still saves, on top of it, and nothing is lost.
    let (c2, csrf2) = sign_in(&s, "werkdag", "member@werkdag.test").await;
    let (_, _, stale) = get(&c, &s, &page).await;
    let (_, _, html2) = get(&c2, &s, &page).await;
    let mut form2 = edit_form(&html2, &csrf2);
    set(&mut form2, "job_title", "Inkoper");
    let (st, _, body) = post_pairs(&c2, &s, &format!("{page}/edit"), &form2).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let mut form = edit_form(&stale, &csrf);
    set(&mut form, "phone", "06-12345678");
    let (st, _, body) = post_pairs(&c, &s, &format!("{page}/edit"), &form).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["fields"]["job_title"], "Inkoper", "{v}");
    assert_eq!(v["fields"]["phone"], "06-12345678", "{v}");

    // Both change the same value: the second save is refused with both values shown.
    let (_, _, stale) = get(&c, &s, &page).await;
    let (_, _, html2) = get(&c2, &s, &page).await;
    let mut form2 = edit_form(&html2, &csrf2);
    set(&mut form2, "city", "Amsterdam");
    let (st, _, body) = post_pairs(&c2, &s, &format!("{page}/edit"), &form2).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let mut form = edit_form(&stale, &csrf);
    set(&mut form, "city", "Rotterdam");
    let (st, _, html) = post_pairs(&c, &s, &format!("{page}/edit"), &form).await;
    assert_eq!(st, StatusCode::CONFLICT, "{html}");
    assert_clean(&html);
    assert!(html.contains("id=\"conflict\""), "{html}");
    assert!(
        html.contains("<td class=\"conflict-yours\">Rotterdam</td><td class=\"conflict-stored\">Amsterdam</td>"),
        "{html}"
    );
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["fields"]["city"], "Amsterdam", "nothing overwritten: {v}");
    let stored_rev = v["revision"].as_i64().unwrap();
    // The form offered keeps the person's value, on the new revision; applying it saves.
    assert!(
        html.contains("name=\"f:city\" type=\"text\" value=\"Rotterdam\""),
        "{html}"
    );
    assert_eq!(field(&html, "revision"), stored_rev.to_string());
    let mut apply = edit_form(&html, &csrf);
    set(&mut apply, "city", "Rotterdam");
    let (st, _, body) = post_pairs(&c, &s, &format!("{page}/edit"), &apply).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["fields"]["city"], "Rotterdam", "{v}");
    assert_eq!(v["fields"]["job_title"], "Inkoper", "{v}");

    // An invalid value: the page again with the reason, the value kept, nothing stored.
    let (_, _, html) = get(&c, &s, &page).await;
    let mut form = edit_form(&html, &csrf);
    set(&mut form, "email", "not-an-email");
    let (st, _, html) = post_pairs(&c, &s, &format!("{page}/edit"), &form).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("value=\"not-an-email\""), "{html}");
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["fields"]["email"], "jan@acme.nl");
    // That page's form still starts from what was shown before: when the other session changes
    // the email meanwhile, saving the corrected value is a conflict, not an overwrite.
    assert_eq!(field(&html, "revision"), v["revision"].to_string());
    let mut retry = edit_form(&html, &csrf);
    set(&mut retry, "email", "jan2@acme.nl");
    let (_, _, html2) = get(&c2, &s, &page).await;
    let mut form2 = edit_form(&html2, &csrf2);
    set(&mut form2, "email", "jan.j@acme.nl");
    let (st, _, body) = post_pairs(&c2, &s, &format!("{page}/edit"), &form2).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let (st, _, html) = post_pairs(&c, &s, &format!("{page}/edit"), &retry).await;
    assert_eq!(st, StatusCode::CONFLICT, "{html}");
    assert!(
        html.contains("<td class=\"conflict-yours\">jan2@acme.nl</td><td class=\"conflict-stored\">jan.j@acme.nl</td>"),
        "{html}"
    );
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["fields"]["email"], "jan.j@acme.nl", "{v}");

    // Company link: remove and add again.
    let links = format!("{page}/links");
    let (st, _, _) = post(&c, &s, &links, &[("csrf", &csrf), ("action", "remove")]).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["company_id"], Value::Null, "{v}");
    let (st, _, _) = post(
        &c,
        &s,
        &links,
        &[("csrf", &csrf), ("action", "add"), ("target", &company)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["company_id"], company.as_str(), "{v}");
    // The same link from the company's side.
    let company_links = format!("/companies/{company}/links");
    let (st, _, _) = post(
        &c,
        &s,
        &company_links,
        &[("csrf", &csrf), ("action", "remove"), ("target", &contact)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["company_id"], Value::Null, "{v}");
    let (_, _, html) = get(&c, &s, &format!("/companies/{company}")).await;
    assert!(
        html.contains(&format!("<option value=\"{contact}\">Jan Jansen")),
        "{html}"
    );
    let (st, _, _) = post(
        &c,
        &s,
        &company_links,
        &[("csrf", &csrf), ("action", "add"), ("target", &contact)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["company_id"], company.as_str(), "{v}");

    // A deal with the contact, its amount typed the Dutch way; contacts removed and added.
    let (st, _, html) = get(&c, &s, &format!("/deals/new?contact_id={contact}")).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    let (st, loc, body) = post(
        &c,
        &s,
        "/deals/new",
        &[
            ("csrf", &csrf),
            ("contact_id", &contact),
            ("f:name", "Acme licenties"),
            ("f:amount", "1.234,50"),
            ("f:currency", "EUR"),
            ("f:close_date", "2026-11-25"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let deal = id_in(&loc, "/deals/");
    let deal_api = format!("/api/v1/deals/{deal}");
    let (_, v) = s.get(&deal_api, o).await;
    assert_eq!(v["deal"]["amount_minor"], 123_450, "{v}");
    assert_eq!(v["contact_ids"], json!([contact]), "{v}");
    let deal_links = format!("/deals/{deal}/links");
    let (st, _, _) = post(
        &c,
        &s,
        &deal_links,
        &[("csrf", &csrf), ("action", "remove"), ("target", &contact)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&deal_api, o).await;
    assert_eq!(v["contact_ids"], json!([]), "{v}");
    let (st, _, _) = post(
        &c,
        &s,
        &deal_links,
        &[("csrf", &csrf), ("action", "add"), ("target", &contact)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&deal_api, o).await;
    assert_eq!(v["contact_ids"], json!([contact]), "{v}");
    // Dutch formats on the deal page.
    let (_, _, _) = get(&c, &s, &format!("/lang/nl?next=/deals/{deal}")).await;
    let (_, _, html) = get(&c, &s, &format!("/deals/{deal}")).await;
    assert!(html.contains("<html lang=\"nl\">"), "{html}");
    assert!(html.contains("value=\"1.234,50\""), "{html}");
    let (_, _, _) = get(&c, &s, "/lang/en?next=/tasks").await;
    // A ticket for the contact.
    let (st, loc, body) = post(
        &c,
        &s,
        "/tickets/new",
        &[
            ("csrf", &csrf),
            ("contact_id", &contact),
            ("f:subject", "Factuur klopt niet"),
            ("f:priority", "high"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER, "{body}");
    let ticket = id_in(&loc, "/tickets/");
    let (_, v) = s.get(&format!("/api/v1/tickets/{ticket}"), o).await;
    assert_eq!(v["contact_ids"], json!([contact]), "{v}");
    assert_eq!(v["deal"]["priority"], "high", "{v}");
    let (_, _, html) = get(&c, &s, &page).await;
    assert!(html.contains("Acme licenties") && html.contains("Factuur klopt niet"));

    // Tags: a new one by name, then removed.
    let tags = format!("{page}/tags");
    let (st, _, _) = post(
        &c,
        &s,
        &tags,
        &[("csrf", &csrf), ("action", "add"), ("new_tag", "VIP")],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&api, o).await;
    let tag_ids = v["tag_ids"].as_array().unwrap().clone();
    assert_eq!(tag_ids.len(), 1, "{v}");
    let tag = tag_ids[0].as_str().unwrap().to_owned();
    let (_, _, html) = get(&c, &s, &page).await;
    assert!(html.contains("<span class=\"badge\">VIP</span>"), "{html}");
    let (st, _, _) = post(
        &c,
        &s,
        &tags,
        &[("csrf", &csrf), ("action", "remove"), ("tag", &tag)],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["tag_ids"], json!([]), "{v}");

    // A note and a task: stored about the contact, shown in its timeline with the changes.
    let (st, loc, _) = post(
        &c,
        &s,
        &format!("{page}/note"),
        &[("csrf", &csrf), ("body", "Belde over de offerte")],
    )
    .await;
    assert_eq!(
        (st, loc),
        (StatusCode::SEE_OTHER, format!("{page}?done=note"))
    );
    let today = today();
    let (st, _, _) = post(
        &c,
        &s,
        &format!("{page}/task"),
        &[
            ("csrf", &csrf),
            ("title", "Offerte sturen"),
            ("due_date", &today),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (_, v) = s
        .get(&format!("/api/v1/notes?related_id={contact}"), o)
        .await;
    assert_eq!(
        v["items"][0]["fields"]["body"], "Belde over de offerte",
        "{v}"
    );
    let (_, v) = s
        .get(&format!("/api/v1/tasks?related_id={contact}"), o)
        .await;
    let task = v["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["items"][0]["task"]["due_date"], today.as_str(), "{v}");
    let (_, _, html) = get(&c, &s, &page).await;
    let timeline = &html[html.find("id=\"timeline\"").unwrap()..];
    assert!(timeline.contains("Belde over de offerte"), "{timeline}");
    assert!(timeline.contains("Offerte sturen"), "{timeline}");
    assert!(
        timeline.contains("City: Amsterdam → Rotterdam"),
        "{timeline}"
    );
    assert!(timeline.contains("Job title: — → Inkoper"), "{timeline}");

    // Restore the version where the city was Utrecht (revision 2).
    let (_, v) = s.get(&api, o).await;
    let rev = v["revision"].as_i64().unwrap().to_string();
    assert!(
        timeline.contains("name=\"version\" value=\"2\""),
        "{timeline}"
    );
    let (st, loc, body) = post(
        &c,
        &s,
        &format!("{page}/restore-version"),
        &[("csrf", &csrf), ("revision", &rev), ("version", "2")],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (
            StatusCode::SEE_OTHER,
            format!("{page}?done=version").as_str()
        ),
        "{body}"
    );
    let (_, v) = s.get(&api, o).await;
    assert_eq!(v["fields"]["city"], "Utrecht", "{v}");
    // A stale restore is refused, not applied.
    let (st, _, _) = post(
        &c,
        &s,
        &format!("{page}/restore-version"),
        &[("csrf", &csrf), ("revision", &rev), ("version", "3")],
    )
    .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);

    // My tasks: due today, then marked done.
    let (st, _, html) = get(&c, &s, "/tasks").await;
    assert_eq!(st, StatusCode::OK);
    assert_clean(&html);
    let today_list = &html[html.find("id=\"tasks-today\"").expect("a today section")..];
    assert!(today_list.contains("Offerte sturen"), "{html}");
    assert!(html.contains("href=\"/tasks/all\""));
    let (st, loc, _) = post(
        &c,
        &s,
        &format!("/tasks/{task}/done"),
        &[("csrf", &csrf), ("next", "/tasks")],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/tasks?done=task_done")
    );
    let (_, v) = s.get(&format!("/api/v1/tasks/{task}"), o).await;
    assert_eq!(v["task"]["done"], true, "{v}");
    let (_, _, html) = get(&c, &s, "/tasks").await;
    assert!(!html.contains("Offerte sturen"), "{html}");
    // The task's own page shows what it is about.
    let (st, _, html) = get(&c, &s, &format!("/tasks/{task}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        html.contains(&format!("href=\"/contacts/{contact}\"")),
        "{html}"
    );

    // Trash and restore.
    let (_, v) = s.get(&api, o).await;
    let rev = v["revision"].as_i64().unwrap().to_string();
    let (st, loc, _) = post(
        &c,
        &s,
        &format!("{page}/trash"),
        &[("csrf", &csrf), ("revision", &rev)],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (StatusCode::SEE_OTHER, "/trash?done=trashed")
    );
    let (st, _) = s.get(&api, o).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _, html) = get(&c, &s, &page).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "a trashed record's page is gone");
    assert!(html.contains("<html"), "a page, not JSON");
    let (_, _, html) = get(&c, &s, "/trash").await;
    assert_clean(&html);
    assert!(html.contains("Jan Jansen"), "{html}");
    let (st, loc, _) = post(
        &c,
        &s,
        &format!("/trash/{contact}/restore"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(
        (st, loc.as_str()),
        (
            StatusCode::SEE_OTHER,
            format!("{page}?done=restored").as_str()
        )
    );
    let (st, v) = s.get(&api, o).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["fields"]["city"], "Utrecht");

    // The owner sees the record's audit events in the timeline too.
    let (_, _, html) = get(&c, &s, &page).await;
    assert!(html.contains("contact.delete"), "{html}");
    assert!(html.contains("contact.restore"), "{html}");
}

async fn record_pages_refuse_readers_and_strangers(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "lezer").await;
    let other = tenant_fixture(&s, "anders").await;
    s.cli(
        &[
            "user",
            "create",
            "--tenant",
            "lezer",
            "--email",
            "reader@lezer.test",
            "--role",
            "read_only",
            "--password-stdin",
            "--json",
        ],
        Some(PASSWORD),
    );
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            &t.owner,
            json!({"fields": {"first_name": "Els", "city": "Delft"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let contact = v["id"].as_str().unwrap().to_owned();
    let api = format!("/api/v1/contacts/{contact}");
    let page = format!("/contacts/{contact}");

    // A read-only user sees the values but no edit control.
    let (c, csrf) = sign_in(&s, "lezer", "reader@lezer.test").await;
    let (st, _, html) = get(&c, &s, &page).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert_clean(&html);
    assert!(html.contains("id=\"read-only\""), "{html}");
    assert!(html.contains(">Delft<"), "{html}");
    let own_forms = format!("action=\"{page}");
    for control in [
        "id=\"edit-form\"",
        own_forms.as_str(),
        "name=\"f:",
        "action=\"/tasks/",
    ] {
        assert!(!html.contains(control), "{control} shown to a reader");
    }
    let (st, _, _) = get(&c, &s, "/contacts/new").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, _, html) = get(&c, &s, "/tasks").await;
    assert!(!html.contains("/done\""), "no mark-done for a reader");
    // Forged posts (with the reader's own valid CSRF token) are refused by the services.
    let forged: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/edit",
            vec![
                ("revision", "1"),
                ("o:city", "Delft"),
                ("f:city", "Haarlem"),
            ],
        ),
        ("/links", vec![("action", "remove")]),
        ("/tags", vec![("action", "add"), ("new_tag", "Hacked")]),
        ("/note", vec![("body", "x")]),
        ("/task", vec![("title", "x")]),
        ("/trash", vec![("revision", "1")]),
        (
            "/restore-version",
            vec![("revision", "1"), ("version", "1")],
        ),
    ];
    for (action, fields) in &forged {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields.iter().copied());
        let (st, _, html) = post(&c, &s, &format!("{page}{action}"), &form).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{action}: {html}");
        assert!(html.contains("<html"), "a page in the app's frame");
    }
    let (st, _, _) = post(
        &c,
        &s,
        "/contacts/new",
        &[("csrf", &csrf), ("f:first_name", "Nep")],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, v) = s.get(&api, &t.owner).await;
    assert_eq!(v["revision"], 1, "nothing changed: {v}");
    assert_eq!(v["fields"]["city"], "Delft");
    let (_, v) = s.get("/api/v1/contacts", &t.owner).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = s.get("/api/v1/notes", &t.owner).await;
    assert_eq!(v["items"], json!([]), "{v}");

    // Without the CSRF token, even the owner's post is refused.
    let (oc, ocsrf) = sign_in(&s, "lezer", "owner@lezer.test").await;
    let (st, _, _) = post(
        &oc,
        &s,
        &format!("{page}/edit"),
        &[
            ("csrf", "forged"),
            ("revision", "1"),
            ("o:city", "Delft"),
            ("f:city", "Haarlem"),
        ],
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Another tenant's record is not found, for pages and posts alike.
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            &other.owner,
            json!({"fields": {"first_name": "Geheim", "city": "Zwolle"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let foreign = v["id"].as_str().unwrap().to_owned();
    for path in [
        format!("/contacts/{foreign}"),
        format!("/companies/{foreign}"),
        format!("/notes/{foreign}"),
    ] {
        let (st, _, html) = get(&oc, &s, &path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("<html") && !html.contains("Geheim") && !html.contains("Zwolle"));
    }
    for (action, fields) in &forged {
        let mut form = vec![("csrf", ocsrf.as_str())];
        form.extend(fields.iter().copied());
        let (st, _, html) = post(&oc, &s, &format!("/contacts/{foreign}{action}"), &form).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{action}: {html}");
    }
    let (st, _, _) = post(
        &oc,
        &s,
        &format!("/trash/{foreign}/restore"),
        &[("csrf", &ocsrf)],
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = s
        .get(&format!("/api/v1/contacts/{foreign}"), &other.owner)
        .await;
    assert_eq!(v["revision"], 1, "{v}");
    let (_, v) = s.get("/api/v1/notes", &other.owner).await;
    assert_eq!(v["items"], json!([]), "{v}");
    // And a malformed id is a 404 page too.
    let (st, _, _) = get(&oc, &s, "/contacts/not-a-uuid").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Headless Chromium on the record pages at 375 px and 1440 px: no CSP violation or script
/// error, no sideways scrolling, an edit by keyboard, a conflicting edit from a second session
/// (both values shown, ours applied on the new revision); screenshots are written to
/// `target/tmp/record-pages/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_record_pages_at_phone_and_desktop_width() {
    let Some(tools) = kluis_testkit::browser::browser_tools() else {
        return;
    };
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "scherm").await;
    let o = &t.owner;
    let (_, company) = s
        .post(
            "/api/v1/companies",
            o,
            json!({"fields": {"name": "Bakkerij de Gouden Korenschoof en Zonen BV", "domain": "korenschoof.nl"}}),
        )
        .await;
    let company = company["id"].as_str().unwrap().to_owned();
    let (_, contact) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "Annemarie", "last_name": "van der Heijden-Vermeulen", "email": "annemarie.vanderheijden@korenschoof.nl", "city": "Delft", "description": "Een lange omschrijving die op een telefoon netjes moet afbreken zonder dat de pagina opzij scrollt."}, "company_id": company}),
        )
        .await;
    let contact = contact["id"].as_str().unwrap().to_owned();
    let (_, deal) = s
        .post(
            "/api/v1/deals",
            o,
            json!({"fields": {"name": "Ovens 2027"}, "amount_minor": 1_234_567_890, "contact_ids": [contact]}),
        )
        .await;
    let deal = deal["id"].as_str().unwrap().to_owned();
    for body in ["Gebeld over de levering", "Offerte nagestuurd"] {
        let (st, v) = s
            .post(
                "/api/v1/notes",
                o,
                json!({"fields": {"body": body}, "related_ids": [contact]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let (st, _, v) = s
        .call_with(
            reqwest::Method::PATCH,
            &format!("/api/v1/contacts/{contact}"),
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"city": "Utrecht"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("record-pages");
    let input = json!({
        "base": format!("https://localhost:{}", s.port),
        "cert": s.dir.path().join("tls/cert.pem"),
        "organisation": "scherm",
        "email": "owner@scherm.test",
        "password": PASSWORD,
        "chromium": tools.chromium,
        "out": out,
        "pages": [
            format!("/contacts/{contact}"),
            format!("/companies/{company}"),
            format!("/deals/{deal}"),
            "/contacts/new",
            "/tasks",
            "/trash",
        ],
    });
    let (ok, stdout, err) = tools.run("record.mjs", &input);
    eprintln!("{stdout}");
    assert!(ok, "browser run failed:\n{stdout}\n{err}");
    assert!(stdout.contains("{\"ok\":true}"), "{stdout}");
    let (_, v) = s.get(&format!("/api/v1/contacts/{contact}"), o).await;
    assert_eq!(v["fields"]["city"], "Haarlem", "{v}");
    // Every save is in the history: Leiden (keyboard), Gouda (other session), Haarlem.
    let (_, versions) = s
        .get(&format!("/api/v1/contacts/{contact}/versions"), o)
        .await;
    let versions = versions["items"].clone();
    let cities: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["fields"]["city"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(cities, ["Haarlem", "Gouda", "Leiden", "Utrecht", "Delft"]);
}
