//! CRM records over HTTP, on SQLite and PostgreSQL: CRUD, lookups on sealed fields, duplicate
//! detection, validation, If-Match, Idempotency-Key, trash, versions, permissions and the audit
//! event of every CRM route.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, Server, code, on_both, tenant_fixture};

on_both!(
    contacts_and_companies_end_to_end,
    concurrent_updates_and_retried_creates,
    deals_and_pipelines,
    sensitive_data_guard,
    exports_are_streamed_privileged_and_safe,
    notes_and_tasks,
    custom_fields_and_values,
    tags_on_records,
    tickets
);

/// The newest audit event with this action, read as the owner.
async fn last_event(s: &Server, auth: &Auth, action: &str) -> Value {
    let (st, v) = s
        .get(
            &format!("/api/v1/audit/events?limit=200&action={action}"),
            auth,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("no {action} event"))
}

async fn contacts_and_companies_end_to_end(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "crm").await;
    let o = &t.owner;

    // Company, then a contact at that company.
    let (st, h, company) = s
        .call_with(
            Method::POST,
            "/api/v1/companies",
            o,
            &[],
            Some(json!({"fields": {"name": "Bakkerij De Korenaar", "domain": "Korenaar.NL", "city": "Leiden"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{company}");
    assert_eq!(h["etag"], "\"1\"");
    assert_eq!(company["fields"]["domain"], "korenaar.nl");
    let cid = company["id"].as_str().unwrap().to_owned();
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("/api/v1/companies/{cid}")
    );
    let e = last_event(&s, o, "company.create").await;
    assert_eq!(e["object_id"], cid);
    assert_eq!(
        e["details"]["changed"]["name"]["new"],
        "Bakkerij De Korenaar"
    );

    let (st, contact) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "Sanne", "last_name": "Jansen", "email": "Sanne.Jansen@Korenaar.nl", "phone": "06-12345678"}, "company_id": cid}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{contact}");
    let id = contact["id"].as_str().unwrap().to_owned();
    assert_eq!(
        contact["owner_id"], t.owner_id,
        "the creator owns it by default"
    );
    assert_eq!(contact["fields"]["email"], "sanne.jansen@korenaar.nl");
    assert_eq!(contact["revision"], 1);

    // Lookups on sealed fields: email in any case, phone in any notation, company filter.
    for q in [
        "email=SANNE.JANSEN@korenaar.nl",
        "phone=%2B31%206%201234%205678",
        "phone=0612345678",
    ] {
        let (st, v) = s.get(&format!("/api/v1/contacts?{q}"), &t.key).await;
        assert_eq!(st, StatusCode::OK, "{q}: {v}");
        assert_eq!(v["items"].as_array().unwrap().len(), 1, "{q}: {v}");
        assert_eq!(v["items"][0]["id"], id);
    }
    let (_, v) = s.get("/api/v1/contacts?email=nobody@korenaar.nl", o).await;
    assert!(v["items"].as_array().unwrap().is_empty());
    let (_, v) = s
        .get(&format!("/api/v1/contacts?company_id={cid}"), o)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = s.get("/api/v1/companies?domain=korenaar.nl", o).await;
    assert_eq!(v["items"][0]["id"], cid);
    let e = last_event(&s, o, "company.list").await;
    assert_eq!(e["details"]["count"], 1, "list reads are audited as counts");

    // Duplicates and validation: clear 4xx codes naming the field, values never echoed.
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"email": "sanne.jansen@korenaar.nl"}}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "duplicate"), "{v}");
    assert_eq!(v["error"]["field"], "fields.email");
    for (body, want) in [
        (json!({"fields": {"email": "geen-email"}}), "invalid_email"),
        (json!({"fields": {"city": "Leiden"}}), "required"),
        (json!({"fields": {"shoe_size": "44"}}), "unknown_field"),
        (json!({"fields": {"first_name": ["x"]}}), "invalid_type"),
        (
            json!({"fields": {"first_name": "A"}, "owner_id": t.id}),
            "unknown_user",
        ),
        (
            json!({"fields": {"first_name": "A"}, "company_id": id}),
            "unknown_company",
        ),
        (
            json!({"fields": {"first_name": "A"}, "extra": 1}),
            "unknown_field",
        ),
    ] {
        let (st, v) = s.post("/api/v1/contacts", o, body.clone()).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{body}: {v}"
        );
        assert!(!v.to_string().contains("geen-email"));
    }
    // An unknown field names the fields there are (names, never values).
    let (_, v) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"shoe_size": "44"}}),
        )
        .await;
    let message = v["error"]["message"].as_str().unwrap();
    for name in ["first_name", "job_title", "postal_code", "description"] {
        assert!(message.contains(name), "{message}");
    }
    assert!(!message.contains("44"), "{message}");
    let (st, v) = s.get("/api/v1/contacts?sort=name", o).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_sort")
    );
    // A contact id is not a company.
    let (st, _) = s.get(&format!("/api/v1/companies/{id}"), o).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Update with If-Match, then versions and restore of revision 1.
    let path = format!("/api/v1/contacts/{id}");
    let (st, h, v) = s
        .call_with(
            Method::PATCH,
            &path,
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"last_name": "de Vries", "phone": null}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(h["etag"], "\"2\"");
    assert!(v["fields"].get("phone").is_none());
    let e = last_event(&s, o, "contact.update").await;
    assert_eq!(
        e["details"]["changed"]["last_name"],
        json!({"old": "Jansen", "new": "de Vries"})
    );
    let (st, versions) = s.get(&format!("{path}/versions"), o).await;
    let versions = versions["items"].clone();
    assert_eq!(st, StatusCode::OK, "{versions}");
    assert_eq!(versions[1]["revision"], 1);
    assert_eq!(versions[1]["fields"]["last_name"], "Jansen");
    let (st, _, _) = s
        .call_with(
            Method::POST,
            &format!("{path}/versions/1/restore"),
            o,
            &[],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::PRECONDITION_REQUIRED);
    let (st, h, v) = s
        .call_with(
            Method::POST,
            &format!("{path}/versions/1/restore"),
            o,
            &[("if-match", "\"2\"")],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(h["etag"], "\"3\"");
    assert_eq!(
        v["fields"], contact["fields"],
        "revision 1's values, exactly"
    );
    let e = last_event(&s, o, "contact.restore_version").await;
    assert_eq!(e["details"]["restored_revision"], 1);

    // Trash: delete, gone from lists, listed in the trash, restored, deleted again and purged.
    let (st, _) = s.call(Method::DELETE, &path, o, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    last_event(&s, o, "contact.delete").await;
    let (st, _) = s.get(&path, o).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = s
        .get("/api/v1/contacts?email=sanne.jansen@korenaar.nl", o)
        .await;
    assert!(v["items"].as_array().unwrap().is_empty());
    let (_, v) = s.get("/api/v1/trash?object_type=contact", o).await;
    assert_eq!(v["items"][0]["id"], id, "{v}");
    assert!(v["items"][0]["deleted_at"].is_string());
    let (st, v) = s
        .post(&format!("/api/v1/trash/{id}/restore"), o, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    last_event(&s, o, "contact.restore").await;
    s.call(Method::DELETE, &path, o, None).await;
    // Purging is a separate, privileged permission: members and keys cannot.
    for auth in [&t.member, &t.key] {
        let (st, _) = s
            .call(Method::DELETE, &format!("/api/v1/trash/{id}"), auth, None)
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
    let (st, _) = s
        .call(Method::DELETE, &format!("/api/v1/trash/{id}"), o, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    last_event(&s, o, "contact.purge").await;
    let (st, _) = s
        .post(&format!("/api/v1/trash/{id}/restore"), o, json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Company routes write their own events too.
    let cpath = format!("/api/v1/companies/{cid}");
    let (st, _, _) = s
        .call_with(
            Method::PATCH,
            &cpath,
            o,
            &[("if-match", "*")],
            Some(json!({"fields": {"city": "Delft"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "company.update").await;
    let (st, _, _) = s
        .call_with(
            Method::POST,
            &format!("{cpath}/versions/1/restore"),
            o,
            &[("if-match", "\"2\"")],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "company.restore_version").await;
    s.call(Method::DELETE, &cpath, o, None).await;
    last_event(&s, o, "company.delete").await;
    s.post(&format!("/api/v1/trash/{cid}/restore"), o, json!({}))
        .await;
    last_event(&s, o, "company.restore").await;
    s.call(Method::DELETE, &cpath, o, None).await;
    let (st, _) = s
        .call(Method::DELETE, &format!("/api/v1/trash/{cid}"), o, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    last_event(&s, o, "company.purge").await;

    // Read-only users read but do not write.
    let (st, _) = s
        .call(
            Method::POST,
            "/api/v1/users",
            o,
            Some(json!({"email": "lezer@crm.test", "display_name": "Lezer", "role": "read_only", "password": crate::support::PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let reader = s
        .login("crm", "lezer@crm.test", crate::support::PASSWORD)
        .await;
    let (st, _) = s.get("/api/v1/contacts", &reader).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .post(
            "/api/v1/contacts",
            &reader,
            json!({"fields": {"first_name": "X"}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

async fn concurrent_updates_and_retried_creates(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "gelijk").await;
    let o = &t.owner;
    let body = json!({"fields": {"first_name": "Piet", "email": "piet@gelijk.test"}});
    // A retried create with the same Idempotency-Key returns the first result.
    let mut first = None;
    for _ in 0..3 {
        let (st, h, v) = s
            .call_with(
                Method::POST,
                "/api/v1/contacts",
                &t.key,
                &[("idempotency-key", "aanmaak-0001")],
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(h["etag"], "\"1\"");
        match &first {
            None => first = Some(v),
            Some(f) => assert_eq!(&v, f),
        }
    }
    let (_, v) = s.get("/api/v1/contacts", o).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "no duplicate");
    // The same key with another body is refused.
    let (st, _, v) = s
        .call_with(
            Method::POST,
            "/api/v1/contacts",
            &t.key,
            &[("idempotency-key", "aanmaak-0001")],
            Some(json!({"fields": {"first_name": "Anders"}})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    // Keys are per caller: the owner session's same key is a new request.
    let (st, _, v) = s
        .call_with(
            Method::POST,
            "/api/v1/contacts",
            o,
            &[("idempotency-key", "aanmaak-0001")],
            Some(json!({"fields": {"first_name": "Eigen"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");

    let id = first.unwrap()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/contacts/{id}");
    let patch = |name: &str| json!({"fields": {"first_name": name}});
    // No If-Match: refused (428), never a blind overwrite.
    let (st, _, v) = s
        .call_with(Method::PATCH, &path, o, &[], Some(patch("Blind")))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::PRECONDITION_REQUIRED, "precondition_required")
    );
    // Two writers read revision 1; the first wins, the second gets 412 and changes nothing.
    let (st, _, _) = s
        .call_with(
            Method::PATCH,
            &path,
            o,
            &[("if-match", "\"1\"")],
            Some(patch("Eerste")),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    for stale in ["\"1\"", "W/\"2\"", "\"7\", \"1\""] {
        let (st, _, v) = s
            .call_with(
                Method::PATCH,
                &path,
                &t.key,
                &[("if-match", stale)],
                Some(patch("Tweede")),
            )
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            "{stale}"
        );
    }
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &path,
            o,
            &[("if-match", "nonsense")],
            Some(patch("X")),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_if_match")
    );
    let (_, h, v) = s.call_with(Method::GET, &path, o, &[], None).await;
    assert_eq!(v["fields"]["first_name"], "Eerste");
    assert_eq!(h["etag"], "\"2\"");
    // A stale delete is refused too when If-Match is sent.
    let (st, _, _) = s
        .call_with(Method::DELETE, &path, o, &[("if-match", "\"1\"")], None)
        .await;
    assert_eq!(st, StatusCode::PRECONDITION_FAILED);
    // Pagination: 7 contacts, pages of 3, newest first, no overlap.
    for i in 0..5 {
        s.post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"email": format!("p{i}@gelijk.test")}}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (st, v) = s
            .get(
                &format!("/api/v1/contacts?limit=3&sort=-created{cursor}"),
                o,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        for r in v["items"].as_array().unwrap() {
            seen.push(r["id"].as_str().unwrap().to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first (ids are time-ordered)");
    let (st, v) = s.get("/api/v1/contacts?created_from=gisteren", o).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_time")
    );
    let (_, v) = s
        .get(
            "/api/v1/contacts?created_from=2000-01-01T00:00:00Z&created_to=2001-01-01T00:00:00Z",
            o,
        )
        .await;
    assert!(v["items"].as_array().unwrap().is_empty());
}

async fn deals_and_pipelines(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "verkoop").await;
    let o = &t.owner;
    // A default pipeline exists from the start.
    let (st, p) = s.get("/api/v1/pipelines", &t.key).await;
    let p = p["items"].clone();
    assert_eq!(st, StatusCode::OK, "{p}");
    let sales = &p[0];
    let stage = |name: &str| -> String {
        sales["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(sales["stages"].as_array().unwrap().len(), 6);
    let (_, c) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"email": "koper@verkoop.test"}}),
        )
        .await;
    let contact = c["id"].as_str().unwrap().to_owned();

    let (st, d) = s
        .post(
            "/api/v1/deals",
            o,
            json!({"fields": {"name": "Jaarcontract 2027"}, "amount_minor": 1250000, "close_date": "2026-12-31", "contact_ids": [contact]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(
        d["deal"]["stage_id"],
        stage("New"),
        "first stage by default"
    );
    assert_eq!(d["deal"]["currency"], "EUR");
    assert_eq!(d["outcome"], "open");
    assert_eq!(d["contact_ids"], json!([contact]));
    let e = last_event(&s, o, "deal.create").await;
    assert_eq!(e["details"]["deal"]["amount_minor"], 1250000);

    // Won: move to the Won stage.
    let path = format!("/api/v1/deals/{id}");
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &path,
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"stage_id": stage("Won"), "amount_minor": 1300000})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "won");
    let e = last_event(&s, o, "deal.update").await;
    assert_eq!(
        e["details"]["deal"]["amount_minor"],
        json!({"old": 1250000, "new": 1300000})
    );
    // Filters: outcome, stage, pipeline, contact, close date range.
    for (q, n) in [
        ("outcome=won".to_owned(), 1),
        ("outcome=open".to_owned(), 0),
        (format!("stage_id={}", stage("Won")), 1),
        (format!("pipeline_id={}", sales["id"].as_str().unwrap()), 1),
        (format!("contact_id={contact}"), 1),
        ("close_from=2026-12-01&close_to=2026-12-31".to_owned(), 1),
        ("close_from=2027-01-01".to_owned(), 0),
    ] {
        let (st, v) = s.get(&format!("/api/v1/deals?{q}"), &t.key).await;
        assert_eq!(st, StatusCode::OK, "{q}: {v}");
        assert_eq!(v["items"].as_array().unwrap().len(), n, "{q}: {v}");
    }
    for (q, want) in [
        ("/api/v1/deals?outcome=maybe", "invalid_outcome"),
        ("/api/v1/deals?close_from=31-12-2026", "invalid_date"),
        ("/api/v1/contacts?outcome=won", "not_applicable"),
    ] {
        let (st, v) = s.get(q, o).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{q}"
        );
    }
    for (body, want) in [
        (
            json!({"fields": {"name": "X"}, "amount_minor": -5}),
            "invalid_amount",
        ),
        (
            json!({"fields": {"name": "X"}, "currency": "euro"}),
            "invalid_currency",
        ),
        (
            json!({"fields": {"name": "X"}, "close_date": "2026-02-30"}),
            "invalid_date",
        ),
        (
            json!({"fields": {"name": "X"}, "stage_id": t.id}),
            "unknown_stage",
        ),
        (
            json!({"fields": {"name": "X"}, "contact_ids": [id]}),
            "unknown_contact",
        ),
        (json!({"fields": {}}), "required"),
    ] {
        let (st, v) = s.post("/api/v1/deals", o, body.clone()).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{body}: {v}"
        );
    }
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "X"}, "amount_minor": 5}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "not_applicable")
    );

    // A second pipeline (admins only); moving the deal there lands in its first stage.
    let (st, _) = s
        .post(
            "/api/v1/pipelines",
            &t.member,
            json!({"name": "Partners", "stages": [{"name": "Intake"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, p2) = s
        .post(
            "/api/v1/pipelines",
            o,
            json!({"name": "Partners", "stages": [{"name": "Intake"}, {"name": "Getekend", "outcome": "won"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p2}");
    last_event(&s, o, "pipeline.create").await;
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &path,
            o,
            &[("if-match", "\"2\"")],
            Some(json!({"pipeline_id": p2["id"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["deal"]["stage_id"], p2["stages"][0]["id"]);
    assert_eq!(v["outcome"], "open");
    // A stage of another pipeline is refused.
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &path,
            o,
            &[("if-match", "\"3\"")],
            Some(json!({"stage_id": stage("Lost")})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_stage")
    );
    // Stages and pipelines in use cannot be removed; renaming keeps ids.
    let p2path = format!("/api/v1/pipelines/{}", p2["id"].as_str().unwrap());
    let (st, v) = s
        .call(
            Method::PUT,
            &p2path,
            o,
            Some(json!({"name": "Partners NL", "stages": [{"name": "Nieuw"}, {"id": p2["stages"][1]["id"], "name": "Getekend", "outcome": "won"}]})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "in_use"), "{v}");
    let (st, v) = s
        .call(
            Method::PUT,
            &p2path,
            o,
            Some(json!({"name": "Partners NL", "stages": [{"id": p2["stages"][0]["id"], "name": "Aanmelding"}, {"id": p2["stages"][1]["id"], "name": "Getekend", "outcome": "won"}, {"name": "Afgehaakt", "outcome": "lost"}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["stages"][0]["id"], p2["stages"][0]["id"]);
    assert_eq!(v["stages"][2]["outcome"], "lost");
    last_event(&s, o, "pipeline.update").await;
    let (st, v) = s.call(Method::DELETE, &p2path, o, None).await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "in_use"));

    // Restore revision 2: back in the Sales pipeline, Won, at the old amount.
    let (st, _, v) = s
        .call_with(
            Method::POST,
            &format!("{path}/versions/2/restore"),
            o,
            &[("if-match", "\"3\"")],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["deal"]["stage_id"], stage("Won"));
    assert_eq!(v["deal"]["amount_minor"], 1300000);
    assert_eq!(v["outcome"], "won");
    last_event(&s, o, "deal.restore_version").await;
    // Now the second pipeline is empty and can go; the deal lifecycle ends in the trash.
    let (st, _) = s.call(Method::DELETE, &p2path, o, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    last_event(&s, o, "pipeline.delete").await;
    let (st, _) = s.call(Method::DELETE, &path, o, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    last_event(&s, o, "deal.delete").await;
    let (_, v) = s.get("/api/v1/trash?object_type=deal", o).await;
    assert_eq!(v["items"][0]["id"], id);
    assert_eq!(v["items"][0]["outcome"], "won");
}

async fn sensitive_data_guard(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "gevoelig").await;
    let o = &t.owner;
    let iban = "NL91ABNA0417164300";
    // Blocked by default, with the field and the kind named and the value nowhere.
    for (path, fields, field) in [
        (
            "/api/v1/contacts",
            json!({"first_name": "A", "description": format!("Mijn rekening is {iban}.")}),
            "fields.description",
        ),
        (
            "/api/v1/companies",
            json!({"name": "B", "description": "Pas 4111 1111 1111 1111, exp 12/28"}),
            "fields.description",
        ),
        (
            "/api/v1/contacts",
            json!({"first_name": "C", "job_title": "BSN 111222333"}),
            "fields.job_title",
        ),
        (
            "/api/v1/deals",
            json!({"name": "D", "description": "BE68 5390 0754 7034"}),
            "fields.description",
        ),
    ] {
        let (st, v) = s.post(path, o, json!({ "fields": fields })).await;
        assert_eq!(
            (st, code(&v), v["error"]["field"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "sensitive_data",
                Some(field)
            ),
            "{path} {fields}: {v}"
        );
        for secret in [iban, "4111", "111222333", "5390"] {
            assert!(!v.to_string().contains(secret), "{v}");
        }
    }
    // Look-alikes that fail the checksum pass.
    for text in [
        "NL91ABNA0417164301",
        "4111 1111 1111 1112",
        "111222334",
        "+31 6 12345678",
        "1012 AB Amsterdam",
    ] {
        let (st, v) = s
            .post(
                "/api/v1/contacts",
                o,
                json!({"fields": {"first_name": "L", "description": text}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{text}: {v}");
        assert!(v.get("sensitive").is_none(), "{v}");
    }
    // Only owners and admins switch to flag mode; the switch is audited.
    let path = "/api/v1/settings/sensitive-data";
    let (st, v) = s.get(path, &t.key).await;
    assert_eq!((st, v["mode"].as_str()), (StatusCode::OK, Some("block")));
    let (st, _) = s
        .call(Method::PUT, path, &t.member, Some(json!({"mode": "flag"})))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = s
        .call(Method::PUT, path, o, Some(json!({"mode": "maybe"})))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_mode")
    );
    let (st, _) = s
        .call(Method::PUT, path, o, Some(json!({"mode": "flag"})))
        .await;
    assert_eq!(st, StatusCode::OK);
    let e = last_event(&s, o, "settings.sensitive_data.update").await;
    assert_eq!(
        e["details"],
        json!({"old": "block", "new": "flag", "ip": "127.0.0.1", "request_id": e["details"]["request_id"], "user_agent": e["details"]["user_agent"]})
    );
    // Flag mode: stored, and the record says which kinds it holds.
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "F", "description": format!("IBAN {iban}")}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["sensitive"], json!(["iban"]));
    let id = v["id"].as_str().unwrap().to_owned();
    // Back to block: unrelated changes still work (the flagged value is not re-judged), new
    // forbidden values do not.
    s.call(Method::PUT, path, o, Some(json!({"mode": "block"})))
        .await;
    let cpath = format!("/api/v1/contacts/{id}");
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &cpath,
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"city": "Zwolle"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["sensitive"], json!(["iban"]));
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &cpath,
            o,
            &[("if-match", "\"2\"")],
            Some(json!({"fields": {"job_title": "kaart 5555 5555 5555 4444"}})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "sensitive_data")
    );
    // Nothing detected reaches the logs.
    let logs = s.logs();
    for secret in [
        iban,
        "4111 1111 1111 1111",
        "111222333",
        "5555 5555 5555 4444",
    ] {
        assert!(!logs.contains(secret), "logged: {secret}");
    }
}

async fn exports_are_streamed_privileged_and_safe(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "uitvoer").await;
    let o = &t.owner;
    for i in 0..1203 {
        let first = if i == 7 {
            "=HYPERLINK(\"http://evil.test\",\"klik\")".to_owned()
        } else {
            format!("Naam{i}")
        };
        let (st, v) = s
            .post(
                "/api/v1/contacts",
                o,
                json!({"fields": {"first_name": first, "email": format!("c{i}@uitvoer.test"), "city": "Den Haag, \"centrum\""}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    // Privileged: a member or a key without crm:export cannot.
    for auth in [&t.member, &t.key] {
        let res = s
            .client
            .get(s.url("/api/v1/contacts/export?format=csv"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let (st, v) = s.get("/api/v1/contacts/export?format=csv", auth).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    }
    let (st, v) = s.get("/api/v1/contacts/export?format=xml", o).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_format")
    );
    let (st, _) = s.get("/api/v1/contacts/export?limit=5", o).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s.get("/api/v1/contacts?format=csv", o).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // CSV: every record (more than one export page), quoted properly, formulas neutralised.
    let (st, body) = s.get("/api/v1/contacts/export?format=csv", o).await;
    assert_eq!(st, StatusCode::OK);
    let text = body.as_str().unwrap().to_owned();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    let first = headers.iter().position(|h| h == "first_name").unwrap();
    let city = headers.iter().position(|h| h == "city").unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1203);
    assert_eq!(&rows[0][city], "Den Haag, \"centrum\"");
    let evil = rows
        .iter()
        .find(|r| r[first].contains("HYPERLINK"))
        .unwrap();
    assert!(
        evil[first].starts_with("'="),
        "formula neutralised: {:?}",
        &evil[first]
    );
    // JSON Lines with a filter.
    let (st, body) = s
        .get("/api/v1/contacts/export?email=C5@uitvoer.test", o)
        .await;
    assert_eq!(st, StatusCode::OK);
    let lines: Vec<Value> = match body {
        Value::String(t) => t
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        one => vec![one],
    };
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["fields"]["email"], "c5@uitvoer.test");
    // Recorded, with the filters but not the looked-up value.
    let e = last_event(&s, o, "contact.export").await;
    assert_eq!(e["details"]["filters"]["format"], "jsonl");
    assert_eq!(e["details"]["filters"]["email"], true);
    assert!(!e.to_string().contains("c5@uitvoer.test"));
    // Deals export with their columns.
    s.post(
        "/api/v1/deals",
        o,
        json!({"fields": {"name": "Groot"}, "amount_minor": 990000}),
    )
    .await;
    let (_, body) = s.get("/api/v1/deals/export?format=csv", o).await;
    let text = body.as_str().unwrap().to_owned();
    assert!(text.lines().next().unwrap().contains("amount_minor"));
    assert!(text.contains("990000") && text.contains("open"), "{text}");
}

async fn notes_and_tasks(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "taken").await;
    let o = &t.owner;
    let (_, c) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"email": "klant@taken.test"}}),
        )
        .await;
    let contact = c["id"].as_str().unwrap().to_owned();
    let (_, d) = s
        .post(
            "/api/v1/deals",
            o,
            json!({"fields": {"name": "Deal"}, "contact_ids": [contact]}),
        )
        .await;
    let deal = d["id"].as_str().unwrap().to_owned();

    // A note about a contact and a deal.
    let (st, n) = s
        .post(
            "/api/v1/notes",
            &t.key,
            json!({"fields": {"body": "Gebeld over de offerte.\nTerugbellen volgende week."}, "related_ids": [contact, deal, contact]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{n}");
    assert_eq!(
        n["related_ids"].as_array().unwrap().len(),
        2,
        "deduplicated"
    );
    let note = n["id"].as_str().unwrap().to_owned();
    last_event(&s, o, "note.create").await;
    for q in [
        format!("related_id={contact}"),
        format!("related_id={deal}"),
    ] {
        let (_, v) = s.get(&format!("/api/v1/notes?{q}"), o).await;
        assert_eq!(v["items"][0]["id"], note, "{q}: {v}");
    }
    // Notes are about contacts, companies and deals; not about notes, not about nothing real.
    for (related, want) in [
        (json!([note]), "unknown_record"),
        (json!([t.id]), "unknown_record"),
    ] {
        let (st, v) = s
            .post(
                "/api/v1/notes",
                o,
                json!({"fields": {"body": "x"}, "related_ids": related}),
            )
            .await;
        assert_eq!((st, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, want));
    }
    for (body, want) in [
        (
            json!({"fields": {"body": "x"}, "amount_minor": 5}),
            "not_applicable",
        ),
        (
            json!({"fields": {"body": "x"}, "done": true}),
            "not_applicable",
        ),
        (json!({"fields": {}}), "required"),
    ] {
        let (st, v) = s.post("/api/v1/notes", o, body.clone()).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{body}"
        );
    }
    // Editing a note keeps the earlier version.
    let (st, _, _) = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/notes/{note}"),
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"body": "Gecorrigeerd"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "note.update").await;
    let (_, v) = s.get(&format!("/api/v1/notes/{note}/versions"), o).await;
    let v = v["items"].clone();
    assert!(
        v[1]["fields"]["body"]
            .as_str()
            .unwrap()
            .starts_with("Gebeld")
    );
    let (st, _, _) = s
        .call_with(
            Method::POST,
            &format!("/api/v1/notes/{note}/versions/1/restore"),
            o,
            &[("if-match", "\"2\"")],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "note.restore_version").await;
    s.call(Method::DELETE, &format!("/api/v1/notes/{note}"), o, None)
        .await;
    last_event(&s, o, "note.delete").await;

    // Tasks: due date, assignee (the owner), done.
    let (st, tk) = s
        .post(
            "/api/v1/tasks",
            o,
            json!({"fields": {"title": "Offerte sturen"}, "due_date": "2026-12-01", "related_ids": [deal], "owner_id": t.member_id}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{tk}");
    assert_eq!(
        tk["task"],
        json!({"due_date": "2026-12-01", "done": false, "done_at": null})
    );
    assert_eq!(tk["owner_id"], t.member_id);
    let task = tk["id"].as_str().unwrap().to_owned();
    s.post(
        "/api/v1/tasks",
        o,
        json!({"fields": {"title": "Later"}, "due_date": "2027-03-01"}),
    )
    .await;
    let (st, v) = s
        .post(
            "/api/v1/tasks",
            o,
            json!({"fields": {"title": "x"}, "due_date": "morgen"}),
        )
        .await;
    assert_eq!(
        (st, code(&v), v["error"]["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_date",
            Some("due_date")
        )
    );
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/tasks/{task}"),
            &t.member,
            &[("if-match", "\"1\"")],
            Some(json!({"done": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["task"]["done"], true);
    assert!(v["task"]["done_at"].is_string());
    let e = last_event(&s, o, "task.update").await;
    assert!(e["details"]["task"]["done_at"]["new"].is_i64(), "{e}");
    for (q, n) in [
        ("done=true", 1),
        ("done=false", 1),
        ("due_to=2026-12-31", 1),
        ("due_from=2027-01-01&done=false", 1),
    ] {
        let (st, v) = s.get(&format!("/api/v1/tasks?{q}"), o).await;
        assert_eq!(st, StatusCode::OK, "{q}: {v}");
        assert_eq!(v["items"].as_array().unwrap().len(), n, "{q}: {v}");
    }
    let (st, v) = s.get("/api/v1/contacts?done=true", o).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "not_applicable")
    );
    let (st, _, _) = s
        .call_with(
            Method::POST,
            &format!("/api/v1/tasks/{task}/versions/1/restore"),
            o,
            &[("if-match", "\"2\"")],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "task.restore_version").await;
    let (_, v) = s.get(&format!("/api/v1/tasks/{task}"), o).await;
    assert_eq!(v["task"]["done"], false, "restored to open");
    s.call(Method::DELETE, &format!("/api/v1/tasks/{task}"), o, None)
        .await;
    last_event(&s, o, "task.delete").await;
}

async fn custom_fields_and_values(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "eigen-velden").await;
    let o = &t.owner;
    let define = async |body: Value| s.post("/api/v1/custom-fields", o, body).await;
    // One field of every kind on contacts.
    let kinds = [
        (
            "bron",
            json!({"kind": "single_select", "options": ["Beurs", "Website", "Tip"]}),
        ),
        (
            "interesses",
            json!({"kind": "multi_select", "options": ["A", "B", "C"]}),
        ),
        ("klantnummer", json!({"kind": "text", "unique": true})),
        ("notitie", json!({"kind": "long_text"})),
        ("score", json!({"kind": "number"})),
        ("budget", json!({"kind": "currency", "currency": "EUR"})),
        ("verjaardag", json!({"kind": "date"})),
        ("laatste_contact", json!({"kind": "datetime"})),
        ("nieuwsbrief", json!({"kind": "boolean"})),
        ("prive_email", json!({"kind": "email"})),
        ("werk_telefoon", json!({"kind": "phone"})),
        ("linkedin", json!({"kind": "url"})),
    ];
    let mut ids = std::collections::HashMap::new();
    for (key, extra) in &kinds {
        let mut body = json!({"object_type": "contact", "key": key, "label": key.to_uppercase()});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (st, v) = define(body).await;
        assert_eq!(st, StatusCode::CREATED, "{key}: {v}");
        ids.insert(*key, v["id"].as_str().unwrap().to_owned());
    }
    last_event(&s, o, "custom_field.create").await;
    for (body, want) in [
        (
            json!({"object_type": "contact", "key": "Bron", "label": "x", "kind": "text"}),
            "invalid_key",
        ),
        (
            json!({"object_type": "contact", "key": "bron", "label": "x", "kind": "text"}),
            "duplicate",
        ),
        (
            json!({"object_type": "contact", "key": "keuze", "label": "x", "kind": "single_select"}),
            "invalid_options",
        ),
        (
            json!({"object_type": "contact", "key": "tekst", "label": "x", "kind": "text", "options": ["a"]}),
            "not_applicable",
        ),
        (
            json!({"object_type": "contact", "key": "x", "label": "x", "kind": "colour"}),
            "invalid_field",
        ),
    ] {
        let (st, v) = define(body.clone()).await;
        assert!(st.is_client_error() && code(&v) == want, "{body}: {st} {v}");
    }
    let (st, _) = s
        .post(
            "/api/v1/custom-fields",
            &t.member,
            json!({"object_type": "contact", "key": "m", "label": "m", "kind": "text"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Valid values of every kind, normalised.
    let good = json!({
        "first_name": "Eva",
        "custom.bron": "Beurs",
        "custom.interesses": ["C", "A", "C"],
        "custom.klantnummer": "K-1001",
        "custom.notitie": "regel 1\nregel 2",
        "custom.score": 7.5,
        "custom.budget": 250000,
        "custom.verjaardag": "1990-04-01",
        "custom.laatste_contact": "2026-11-20T10:00:00+01:00",
        "custom.nieuwsbrief": true,
        "custom.prive_email": "Eva@Thuis.NL",
        "custom.werk_telefoon": "030 123 4567",
        "custom.linkedin": "https://linkedin.com/in/eva"
    });
    let (st, c) = s
        .post("/api/v1/contacts", o, json!({ "fields": good }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let f = &c["fields"];
    assert_eq!(f["custom.interesses"], json!(["A", "C"]));
    assert_eq!(f["custom.laatste_contact"], "2026-11-20T09:00:00Z");
    assert_eq!(f["custom.prive_email"], "eva@thuis.nl");
    assert_eq!(f["custom.nieuwsbrief"], true);
    let id = c["id"].as_str().unwrap().to_owned();
    // Invalid values of every kind: 422 naming the field.
    for (key, bad, want) in [
        ("bron", json!("Radio"), "invalid_option"),
        ("interesses", json!(["A", "Z"]), "invalid_option"),
        ("interesses", json!("A"), "invalid_type"),
        ("score", json!("zeven"), "invalid_type"),
        ("budget", json!(12.5), "invalid_type"),
        ("verjaardag", json!("01-04-1990"), "invalid_date"),
        ("laatste_contact", json!("gisteren"), "invalid_datetime"),
        ("nieuwsbrief", json!("ja"), "invalid_type"),
        ("prive_email", json!("geen"), "invalid_email"),
        ("werk_telefoon", json!("bel me"), "invalid_phone"),
        ("linkedin", json!("javascript:alert(1)"), "invalid_url"),
        ("klantnummer", json!(5), "invalid_type"),
        ("onbekend", json!("x"), "unknown_field"),
    ] {
        let mut fields = serde_json::Map::new();
        fields.insert("first_name".into(), json!("X"));
        fields.insert(format!("custom.{key}"), bad.clone());
        let (st, v) = s
            .post("/api/v1/contacts", o, json!({ "fields": fields }))
            .await;
        assert_eq!(
            (st, code(&v), v["error"]["field"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                want,
                Some(format!("fields.custom.{key}").as_str())
            ),
            "{key} = {bad}: {v}"
        );
    }
    // Unique: a second contact with the same customer number (any case) is refused.
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "Dub", "custom.klantnummer": "k-1001"}}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "duplicate"), "{v}");
    // Required: once set, new records need it; old ones need it when they are written.
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/custom-fields/{}", ids["bron"]),
            o,
            Some(json!({"required": true, "options": ["Beurs", "Website", "Tip", "Radio"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "custom_field.update").await;
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "Zonder"}}),
        )
        .await;
    assert_eq!(
        (st, code(&v), v["error"]["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            Some("fields.custom.bron")
        )
    );
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "Met", "custom.bron": "Radio"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "new option accepted: {v}");
    // A field in the trash cannot be written; its values stay and come back with it.
    let fpath = format!("/api/v1/custom-fields/{}", ids["score"]);
    let (st, _) = s.call(Method::DELETE, &fpath, o, None).await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "custom_field.delete").await;
    let cpath = format!("/api/v1/contacts/{id}");
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &cpath,
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"custom.score": 9}})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_field")
    );
    let (_, v) = s.get(&cpath, o).await;
    assert_eq!(v["fields"]["custom.score"], 7.5);
    let (st, _) = s.post(&format!("{fpath}/restore"), o, json!({})).await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "custom_field.restore").await;
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &cpath,
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"fields": {"custom.score": 9}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, list) = s
        .get("/api/v1/custom-fields?object_type=contact", &t.key)
        .await;
    let list = list["items"].clone();
    assert_eq!(list.as_array().unwrap().len(), kinds.len());

    // Making a field unique later indexes the values records already hold, and is refused while
    // two live records share one.
    let (_, lid) = define(
        json!({"object_type": "contact", "key": "lidnummer", "label": "Lid", "kind": "text"}),
    )
    .await;
    let lpath = format!("/api/v1/custom-fields/{}", lid["id"].as_str().unwrap());
    let mut lid_ids = Vec::new();
    for name in ["Een", "Twee"] {
        let (st, v) = s
            .post("/api/v1/contacts", o, json!({"fields": {"first_name": name, "custom.bron": "Tip", "custom.lidnummer": "L-7"}}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        lid_ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (st, v) = s
        .call(Method::PATCH, &lpath, o, Some(json!({"unique": true})))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "duplicate_values"),
        "{v}"
    );
    let (st, _, _) = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/contacts/{}", lid_ids[1]),
            o,
            &[("if-match", "*")],
            Some(json!({"fields": {"custom.lidnummer": "L-8"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .call(Method::PATCH, &lpath, o, Some(json!({"unique": true})))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .post("/api/v1/contacts", o, json!({"fields": {"first_name": "Drie", "custom.bron": "Tip", "custom.lidnummer": "l-7"}}))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "duplicate"),
        "existing value indexed: {v}"
    );

    // Custom values: create, change, delete; sealed and audited.
    let (st, v) = s
        .post(
            "/api/v1/custom-values",
            o,
            json!({"key": "slogan", "value": "Altijd dichtbij"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    last_event(&s, o, "custom_value.create").await;
    let (st, _) = s
        .post(
            "/api/v1/custom-values",
            o,
            json!({"key": "slogan", "value": "Twee keer"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/custom-values/slogan",
            o,
            Some(json!({"value": "Nog dichterbij"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let e = last_event(&s, o, "custom_value.update").await;
    assert_eq!(e["details"]["old"], "Altijd dichtbij");
    let (st, _) = s
        .call(
            Method::PUT,
            "/api/v1/custom-values/bestaat_niet",
            o,
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = s.get("/api/v1/custom-values", &t.key).await;
    let v = v["items"].clone();
    assert_eq!(v[0]["value"], "Nog dichterbij");
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/custom-values/slogan", o, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    last_event(&s, o, "custom_value.delete").await;
    // In the trash: listed as such, not changeable, restorable.
    let (_, v) = s.get("/api/v1/custom-values", o).await;
    let v = v["items"].clone();
    assert!(v[0]["deleted_at"].is_string(), "{v}");
    let (st, _) = s
        .call(
            Method::PUT,
            "/api/v1/custom-values/slogan",
            o,
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .post("/api/v1/custom-values/slogan/restore", o, json!({}))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    last_event(&s, o, "custom_value.restore").await;
    let (_, v) = s.get("/api/v1/custom-values", o).await;
    let v = v["items"].clone();
    assert_eq!(
        (v[0]["value"].as_str(), v[0]["deleted_at"].is_null()),
        (Some("Nog dichterbij"), true)
    );
    let dump = s.database_dump().await;
    assert!(!crate::secrets::contains(&dump, b"Nog dichterbij"));
    assert!(!crate::secrets::contains(&dump, b"K-1001"));
}

async fn tags_on_records(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "labels").await;
    let o = &t.owner;
    let (st, vip) = s
        .post(
            "/api/v1/tags",
            &t.key,
            json!({"name": "VIP", "color": "#FF0000"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{vip}");
    assert_eq!(vip["color"], "#ff0000");
    let vip_id = vip["id"].as_str().unwrap().to_owned();
    last_event(&s, o, "tag.create").await;
    let (st, lead) = s.post("/api/v1/tags", o, json!({"name": "Lead"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let lead_id = lead["id"].as_str().unwrap().to_owned();
    for (body, st_want, want) in [
        (json!({"name": "vip"}), StatusCode::CONFLICT, "duplicate"),
        (
            json!({"name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        ),
        (
            json!({"name": "X", "color": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_color",
        ),
    ] {
        let (st, v) = s.post("/api/v1/tags", o, body.clone()).await;
        assert_eq!((st, code(&v)), (st_want, want), "{body}");
    }
    // Tags on records of any type; filter by tag.
    let (st, c) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "Getagd"}, "tag_ids": [vip_id, lead_id, vip_id]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    assert_eq!(c["tag_ids"].as_array().unwrap().len(), 2);
    let cid = c["id"].as_str().unwrap().to_owned();
    s.post(
        "/api/v1/deals",
        o,
        json!({"fields": {"name": "Deal"}, "tag_ids": [vip_id]}),
    )
    .await;
    s.post(
        "/api/v1/contacts",
        o,
        json!({"fields": {"first_name": "Zonder"}}),
    )
    .await;
    let (_, v) = s.get(&format!("/api/v1/contacts?tag_id={vip_id}"), o).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["id"], cid);
    let (_, v) = s.get(&format!("/api/v1/deals?tag_id={vip_id}"), o).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"first_name": "X"}, "tag_ids": [t.id]}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_tag")
    );
    // Changing a record's tags is audited.
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/contacts/{cid}"),
            o,
            &[("if-match", "\"1\"")],
            Some(json!({"tag_ids": [lead_id]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["tag_ids"], json!([lead_id]));
    let e = last_event(&s, o, "contact.update").await;
    assert_eq!(e["details"]["tag_ids"], json!([lead_id]));
    // Rename; trash hides the tag on records; restore brings it back.
    let tpath = format!("/api/v1/tags/{lead_id}");
    let (st, v) = s
        .call(
            Method::PATCH,
            &tpath,
            o,
            Some(json!({"name": "Warme lead"})),
        )
        .await;
    assert_eq!(
        (st, v["name"].as_str()),
        (StatusCode::OK, Some("Warme lead"))
    );
    let e = last_event(&s, o, "tag.update").await;
    assert_eq!(
        e["details"]["name"],
        json!({"old": "Lead", "new": "Warme lead"})
    );
    let (st, _) = s.call(Method::DELETE, &tpath, o, None).await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "tag.delete").await;
    let (_, v) = s.get(&format!("/api/v1/contacts/{cid}"), o).await;
    assert_eq!(v["tag_ids"], json!([]));
    let (st, _) = s.post(&format!("{tpath}/restore"), o, json!({})).await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "tag.restore").await;
    let (_, v) = s.get(&format!("/api/v1/contacts/{cid}"), o).await;
    assert_eq!(v["tag_ids"], json!([lead_id]));
    let (_, list) = s.get("/api/v1/tags", o).await;
    let list = list["items"].clone();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let dump = s.database_dump().await;
    assert!(
        !crate::secrets::contains(&dump, b"Warme lead"),
        "tag names are sealed"
    );
}

async fn tickets(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "support").await;
    let o = &t.owner;
    let (st, p) = s.get("/api/v1/pipelines?object_type=ticket", &t.key).await;
    let p = p["items"].clone();
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p[0]["name"], "Support");
    assert_eq!(p[0]["object_type"], "ticket");
    let closed = p[0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["outcome"] == "closed")
        .unwrap()["id"]
        .clone();
    let (_, c) = s
        .post(
            "/api/v1/contacts",
            o,
            json!({"fields": {"email": "klant@support.test"}}),
        )
        .await;
    let contact = c["id"].clone();
    let (st, tk) = s
        .post(
            "/api/v1/tickets",
            o,
            json!({"fields": {"subject": "Factuur klopt niet", "description": "Bedrag te hoog"}, "contact_ids": [contact], "owner_id": t.member_id}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{tk}");
    assert_eq!(tk["deal"]["priority"], "normal");
    assert_eq!(tk["outcome"], "open");
    assert_eq!(tk["owner_id"], t.member_id, "assignee");
    let id = tk["id"].as_str().unwrap().to_owned();
    last_event(&s, o, "ticket.create").await;
    for (body, want) in [
        (
            json!({"fields": {"subject": "x"}, "priority": "asap"}),
            "invalid_priority",
        ),
        (
            json!({"fields": {"subject": "x"}, "amount_minor": 5}),
            "not_applicable",
        ),
        (
            json!({"fields": {"subject": "x"}, "stage_id": p[0]["id"]}),
            "unknown_stage",
        ),
        (json!({"fields": {}}), "required"),
    ] {
        let (st, v) = s.post("/api/v1/tickets", o, body.clone()).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{body}: {v}"
        );
    }
    let (st, v) = s
        .post(
            "/api/v1/deals",
            o,
            json!({"fields": {"name": "x"}, "priority": "high"}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "not_applicable")
    );
    let path = format!("/api/v1/tickets/{id}");
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &path,
            &t.member,
            &[("if-match", "\"1\"")],
            Some(json!({"priority": "urgent"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &path,
            &t.member,
            &[("if-match", "\"2\"")],
            Some(json!({"stage_id": closed})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "closed");
    last_event(&s, o, "ticket.update").await;
    for (q, n) in [
        ("outcome=closed".to_owned(), 1),
        ("outcome=open".to_owned(), 0),
        ("priority=urgent".to_owned(), 1),
        (format!("contact_id={}", contact.as_str().unwrap()), 1),
    ] {
        let (st, v) = s.get(&format!("/api/v1/tickets?{q}"), o).await;
        assert_eq!(st, StatusCode::OK, "{q}: {v}");
        assert_eq!(v["items"].as_array().unwrap().len(), n, "{q}: {v}");
    }
    // Ticket pipelines close; they do not win or lose.
    let (st, v) = s
        .post("/api/v1/pipelines", o, json!({"object_type": "ticket", "name": "Retouren", "stages": [{"name": "Open"}, {"name": "Gewonnen", "outcome": "won"}]}))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_outcome")
    );
    let (st, v) = s
        .post("/api/v1/pipelines", o, json!({"object_type": "ticket", "name": "Retouren", "stages": [{"name": "Open"}, {"name": "Afgehandeld", "outcome": "closed"}]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, list) = s.get("/api/v1/pipelines?object_type=ticket", o).await;
    let list = list["items"].clone();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (st, _, _) = s
        .call_with(
            Method::POST,
            &format!("{path}/versions/1/restore"),
            o,
            &[("if-match", "\"3\"")],
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    last_event(&s, o, "ticket.restore_version").await;
    let (_, v) = s.get(&path, o).await;
    assert_eq!(
        (v["outcome"].as_str(), v["deal"]["priority"].as_str()),
        (Some("open"), Some("normal"))
    );
    s.call(Method::DELETE, &path, o, None).await;
    last_event(&s, o, "ticket.delete").await;
    let (_, body) = s.get("/api/v1/tickets/export?format=csv", o).await;
    assert!(
        body.as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .contains("priority")
    );
}
