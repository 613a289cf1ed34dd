//! Custom roles, teams and record scope (issue 17, permissions), end to end on both engines.
//!
//! The core of it is a walk over the OpenAPI document like the isolation walk: a member whose
//! role has record scope "own" tries every record route (read and write) on another member's
//! records of every type, and every answer is a refusal with none of those records' values in
//! its body (canaries). Then team scope widens exactly to the team, rights are refused per
//! object type, an API key is held to its maker's role, the audit trail to the reader's
//! scope, and the pages (tables, record page, board, CSV export) to the same services.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, PASSWORD, Server, code, on_both, tenant_fixture};

on_both!(record_scope_holds_on_every_route_and_page);

/// The record routes and what to fill their `{id}` with.
const COLLECTIONS: [(&str, &str); 6] = [
    ("/api/v1/contacts", "contact"),
    ("/api/v1/companies", "company"),
    ("/api/v1/deals", "deal"),
    ("/api/v1/tickets", "ticket"),
    ("/api/v1/notes", "note"),
    ("/api/v1/tasks", "task"),
];

/// Rights on every type with one scope.
fn rules(scope: &str, delete: bool) -> Value {
    let r = json!({"read": true, "create": true, "update": true, "delete": delete,
                   "export": true, "scope": scope});
    json!({"contact": r, "company": r, "deal": r, "ticket": r, "note": r, "task": r})
}

async fn new_user(s: &Server, owner: &Auth, email: &str, role: &str) -> String {
    let (st, v) = s
        .post(
            "/api/v1/users",
            owner,
            json!({"email": email, "display_name": email, "role": role, "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn assign(s: &Server, owner: &Auth, user: &str, role: Value) {
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/api/v1/users/{user}/custom-role"),
            owner,
            Some(json!({ "role_id": role })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// One record of each type made by `who` (so owned by them), each carrying a canary.
async fn records_of(s: &Server, who: &Auth, tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, t) in COLLECTIONS {
        let canary = format!("Kanarie{tag}{t}");
        let fields = match t {
            "contact" => {
                json!({"email": format!("{}@perm.test", canary.to_lowercase()), "first_name": canary})
            }
            "company" => json!({"name": canary}),
            "deal" => json!({"name": canary}),
            "ticket" => json!({"subject": canary}),
            "note" => json!({"body": canary}),
            _ => json!({"title": canary}),
        };
        let (st, v) = s.post(path, who, json!({ "fields": fields })).await;
        assert_eq!(st, StatusCode::CREATED, "{path}: {v}");
        out.push((t.to_owned(), v["id"].as_str().unwrap().to_owned()));
    }
    out
}

/// PATCH of a record at a known revision (records need If-Match).
async fn patch_at(
    s: &Server,
    path: &str,
    who: &Auth,
    rev: i64,
    body: Value,
) -> (StatusCode, Value) {
    let etag = format!("\"{rev}\"");
    let (st, _, v) = s
        .call_with(Method::PATCH, path, who, &[("if-match", &etag)], Some(body))
        .await;
    (st, v)
}

fn id_of<'a>(recs: &'a [(String, String)], t: &str) -> &'a str {
    &recs.iter().find(|(k, _)| k == t).unwrap().1
}

fn body_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn record_scope_holds_on_every_route_and_page(backend: Backend) {
    let s = Server::start(backend).await;
    let t = tenant_fixture(&s, "perm").await;
    let owner = &t.owner;
    let member2_id = new_user(&s, owner, "member2@perm.test", "member").await;
    let admin_id = new_user(&s, owner, "admin@perm.test", "admin").await;

    // Built-in roles are listed in the same shape as custom ones, read-only.
    let (st, roles) = s.get("/api/v1/roles", owner).await;
    assert_eq!(st, StatusCode::OK, "{roles}");
    let builtin: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["built_in"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        builtin,
        ["owner", "admin", "manager", "member", "read_only"]
    );
    assert_eq!(roles[3]["objects"]["contact"]["export"], false, "{roles}");
    assert_eq!(roles[3]["objects"]["contact"]["scope"], "all", "{roles}");
    let (st, v) = s
        .call(
            Method::PATCH,
            "/api/v1/roles/member",
            owner,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "built_in_role"));

    // A custom role "Rep": every type, record scope "own", no delete.
    let (st, rep) = s
        .post(
            "/api/v1/roles",
            owner,
            json!({"name": "Rep", "objects": rules("own", false)}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{rep}");
    let rep_id = rep["id"].clone();
    // Only owners and admins assign roles, and a member cannot give themselves one.
    let (st, _) = s
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/custom-role", t.member_id),
            &t.member,
            Some(json!({"role_id": rep_id})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    for u in [&t.member_id, &member2_id, &admin_id] {
        assign(&s, owner, u, rep_id.clone()).await;
    }
    let member2 = s.login("perm", "member2@perm.test", PASSWORD).await;
    let admin = s.login("perm", "admin@perm.test", PASSWORD).await;

    let mine = records_of(&s, &t.member, "Mijn").await;
    let theirs = records_of(&s, &member2, "Ander").await;
    let canaries: Vec<String> = COLLECTIONS
        .iter()
        .map(|(_, t)| format!("KanarieAnder{t}"))
        .chain(["kanarieandercontact@perm.test".to_owned()])
        .collect();
    // One of member2's contacts in the trash, and a version of another.
    let (st, trashed) = s
        .post(
            "/api/v1/contacts",
            &member2,
            json!({"fields": {"email": "kanarieprullenbak@perm.test"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let trashed = trashed["id"].as_str().unwrap().to_owned();
    // Rep has no delete: member2 cannot delete either; the owner does it for them.
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{trashed}"),
            &member2,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{trashed}"),
            owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = patch_at(
        &s,
        &format!("/api/v1/contacts/{}", id_of(&theirs, "contact")),
        &member2,
        1,
        json!({"fields": {"last_name": "KanarieVersie"}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut canaries = canaries;
    canaries.push("kanarieprullenbak".to_owned());
    canaries.push("KanarieVersie".to_owned());
    let before = s.get("/api/v1/contacts", owner).await.1;

    // The member sees their own records.
    for (path, ty) in COLLECTIONS {
        let (st, v) = s
            .get(&format!("{path}/{}", id_of(&mine, ty)), &t.member)
            .await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
    }

    // The walk: every record route of the OpenAPI document, as the member, on member2's
    // records. Reads answer 404/403 or a list without them; writes are refused.
    let (_, doc) = s.get("/api/v1/openapi.json", &Auth::None).await;
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let collection = COLLECTIONS
            .iter()
            .find(|(c, _)| path == c || path.starts_with(&format!("{c}/")));
        let id = match (collection, path.as_str()) {
            (Some((_, ty)), _) => id_of(&theirs, ty).to_owned(),
            (None, p) if p.starts_with("/api/v1/trash") => trashed.clone(),
            _ => continue,
        };
        let url = path.replace("{id}", &id).replace("{revision}", "1");
        for (method, _) in ops.as_object().unwrap() {
            let m: Method = method.to_uppercase().parse().unwrap();
            let body = match m.as_str() {
                "POST" if !path.contains('{') => None,
                "GET" | "DELETE" => None,
                _ => Some(json!({"fields": {"first_name": "pwned"}})),
            };
            if m == Method::POST && !path.contains('{') {
                // Creating is the member's right; it is covered below (owner scope).
                continue;
            }
            let urls: Vec<String> =
                if m == Method::GET && !path.contains('{') && collection.is_some() {
                    // Lists and exports, plain and searched for a canary's text.
                    vec![
                        url.clone(),
                        format!("{url}?q=KanarieAnder"),
                        format!("{url}?q=kanarie"),
                    ]
                } else {
                    vec![url.clone()]
                };
            for u in urls {
                let (st, v) = s.call(m.clone(), &u, &t.member, body.clone()).await;
                walked += 1;
                let text = body_text(&v);
                for c in &canaries {
                    assert!(
                        !text.to_lowercase().contains(&c.to_lowercase()),
                        "{m} {u} as a member with scope own showed member2's {c}: {text}"
                    );
                }
                if path.contains('{') {
                    assert!(
                        matches!(
                            st,
                            StatusCode::NOT_FOUND
                                | StatusCode::FORBIDDEN
                                | StatusCode::PRECONDITION_REQUIRED
                        ),
                        "{m} {u} on member2's record must be refused, got {st} {v}"
                    );
                } else {
                    assert!(st.is_success(), "{m} {u}: {st} {v}");
                }
            }
        }
    }
    assert!(walked > 40, "walked only {walked} requests");
    // Nothing of member2's changed.
    assert_eq!(s.get("/api/v1/contacts", owner).await.1, before);

    // Writing: a record may not be given an owner outside one's scope.
    let (st, v) = s
        .post(
            "/api/v1/contacts",
            &t.member,
            json!({"fields": {"first_name": "Geplant"}, "owner_id": member2_id}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "owner_out_of_scope"),
        "{v}"
    );

    // The audit trail: an admin with scope "own" reads the events of their own records only.
    let (st, v) = s.get("/api/v1/audit/events", &admin).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "scope_too_narrow"));
    let (st, v) = s
        .get(
            &format!(
                "/api/v1/audit/events?object_id={}",
                id_of(&theirs, "contact")
            ),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, own_contact) = s
        .post(
            "/api/v1/contacts",
            &admin,
            json!({"fields": {"first_name": "Admins eigen"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .get(
            &format!(
                "/api/v1/audit/events?object_id={}",
                own_contact["id"].as_str().unwrap()
            ),
            &admin,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["items"][0]["action"], "contact.create", "{v}");

    // An API key is held to its maker's role: the admin's key with crm:read sees only the
    // admin's records, although its scope alone would reach all.
    let (st, key) = s
        .post(
            "/api/v1/apikeys",
            &admin,
            json!({"name": "rep key", "scopes": ["crm:read"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{key}");
    let key = Auth::Bearer(key["secret"].as_str().unwrap().to_owned());
    let (st, v) = s.get("/api/v1/contacts", &key).await;
    assert_eq!(st, StatusCode::OK);
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [own_contact["id"].as_str().unwrap()], "{v}");
    let (st, _) = s
        .get(
            &format!("/api/v1/contacts/{}", id_of(&theirs, "contact")),
            &key,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // The scope still narrows the role: crm:read cannot write, whatever the role allows.
    let (st, _) = s
        .post(
            "/api/v1/contacts",
            &key,
            json!({"fields": {"first_name": "x"}}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Pages call the same services: tables, record page, board and CSV export.
    let (c, _) = crate::pages::signed_in(&s, "perm", "member@perm.test").await;
    for path in [
        "/contacts".to_owned(),
        "/contacts?q=kanarie".to_owned(),
        "/companies".to_owned(),
        "/deals".to_owned(),
        "/deals/board".to_owned(),
        "/tickets/board".to_owned(),
        "/tasks".to_owned(),
        "/trash".to_owned(),
        "/dashboard".to_owned(),
        "/search?q=kanarie".to_owned(),
        "/contacts/export.csv".to_owned(),
        format!("/contacts/{}", id_of(&mine, "contact")),
    ] {
        let (st, _, html) = crate::pages::get(&c, &s, &path).await;
        assert!(st.is_success(), "{path}: {st}");
        for canary in &canaries {
            assert!(
                !html.to_lowercase().contains(&canary.to_lowercase()),
                "page {path} showed member2's {canary}"
            );
        }
    }
    let (_, _, own_page) = crate::pages::get(&c, &s, "/contacts").await;
    assert!(
        own_page.contains("KanarieMijncontact"),
        "own contact missing"
    );
    for (path, ty) in COLLECTIONS {
        let page = path.trim_start_matches("/api/v1");
        let (st, _, html) =
            crate::pages::get(&c, &s, &format!("{page}/{}", id_of(&theirs, ty))).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{page}");
        assert!(!html.contains("KanarieAnder"), "{page}");
    }

    // Team scope: sharing a team shows a team-mate's records, and leaving it hides them on
    // the next request.
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/roles/{}", rep_id.as_str().unwrap()),
            owner,
            Some(json!({"objects": rules("team", false)})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let other = format!("/api/v1/contacts/{}", id_of(&theirs, "contact"));
    assert_eq!(s.get(&other, &t.member).await.0, StatusCode::NOT_FOUND);
    let (st, team) = s
        .post("/api/v1/teams", owner, json!({"name": "Noord"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{team}");
    let team = team["id"].as_str().unwrap().to_owned();
    for u in [&t.member_id, &member2_id] {
        let (st, v) = s
            .call(
                Method::PUT,
                &format!("/api/v1/teams/{team}/members/{u}"),
                owner,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    assert_eq!(s.get(&other, &t.member).await.0, StatusCode::OK);
    let (_, list) = s.get("/api/v1/contacts?q=KanarieAnder", &t.member).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) = s.get("/api/v1/contacts", &t.member).await;
    // Own two (incl. the versioned one is member2's) plus member2's live one; the admin's
    // contact is outside the team.
    assert!(
        !list.to_string().contains("Admins eigen"),
        "team scope showed a non-member's record: {list}"
    );
    assert!(list.to_string().contains("KanarieAndercontact"), "{list}");
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/teams/{team}/members/{member2_id}"),
            owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.get(&other, &t.member).await.0, StatusCode::NOT_FOUND);

    // A role in use cannot be deleted; every change above is in the audit trail.
    let (st, v) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/roles/{}", rep_id.as_str().unwrap()),
            owner,
            None,
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "role_in_use"));
    let (st, spare) = s
        .post("/api/v1/roles", owner, json!({"name": "Ongebruikt"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{spare}");
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/roles/{}", spare["id"].as_str().unwrap()),
            owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/teams/{team}"),
            owner,
            Some(json!({"name": "Zuid"})),
        )
        .await;
    assert_eq!(
        (st, v["name"].as_str()),
        (StatusCode::OK, Some("Zuid")),
        "{v}"
    );
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/teams/{team}"),
            owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get(&format!("/api/v1/teams/{team}"), owner).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    for a in [
        "role.create",
        "role.update",
        "role.delete",
        "user.custom_role",
        "team.create",
        "team.update",
        "team.delete",
        "team.member_add",
        "team.member_remove",
    ] {
        let (st, log) = s
            .get(&format!("/api/v1/audit/events?action={a}"), owner)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert!(
            !log["items"].as_array().unwrap().is_empty(),
            "no {a} event: {log}"
        );
    }
    // Taking the custom role away restores the built-in member role (scope all).
    assign(&s, owner, &t.member_id, Value::Null).await;
    assert_eq!(s.get(&other, &t.member).await.0, StatusCode::OK);
}

on_both!(field_rules_hold_in_every_output);

/// Field rules: a hidden field (built-in and custom) is absent from every output a member
/// with the role can reach — API JSON, search, exports, versions, audit payloads, pages —
/// a masked one is shown masked until unmasked (audited), and writing a read-only one is
/// refused with `field_read_only`.
async fn field_rules_hold_in_every_output(backend: Backend) {
    let s = Server::start(backend).await;
    let t = tenant_fixture(&s, "velden").await;
    let owner = &t.owner;
    let admin_id = new_user(&s, owner, "admin@velden.test", "admin").await;
    let (st, v) = s
        .post(
            "/api/v1/custom-fields",
            owner,
            json!({"object_type": "contact", "key": "codenaam", "label": "Codenaam", "kind": "text"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, c) = s
        .post(
            "/api/v1/contacts",
            owner,
            json!({"fields": {"first_name": "Zichtbaar", "last_name": "Persoon",
                   "email": "verborgenkanarie@velden.test", "phone": "+31612345678",
                   "custom.codenaam": "Kanariecode"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    // A second revision, so the hidden values are in a version and an update event too.
    let (st, v) = patch_at(
        &s,
        &format!("/api/v1/contacts/{id}"),
        owner,
        1,
        json!({"fields": {"email": "tweedekanarie@velden.test", "custom.codenaam": "Kanariecode2"}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let hidden = [
        "verborgenkanarie",
        "tweedekanarie",
        "Kanariecode",
        "612345678",
    ];
    // The owner (built-in role) sees them all, the audit payloads included: the checks
    // below can fail.
    let (_, log) = s
        .get(&format!("/api/v1/audit/events?object_id={id}"), owner)
        .await;
    assert!(log.to_string().contains("tweedekanarie"), "{log}");

    // Every type readable at scope "all" (else reading the whole audit trail is refused as
    // reaching beyond the role), contacts with field rules.
    let mut objects = rules("all", false);
    objects["contact"] = json!({"read": true, "create": true, "update": true, "export": true,
                                "unmask": true, "scope": "all"});
    let (st, role) = s
        .post(
            "/api/v1/roles",
            owner,
            json!({"name": "Zicht", "objects": objects,
                   "fields": {"contact": {"email": "hidden", "custom.codenaam": "hidden",
                    "phone": "masked", "first_name": "read_only"}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    // A typo in a field name protects nothing: refused.
    let (st, v) = s
        .post(
            "/api/v1/roles",
            owner,
            json!({"name": "Typo", "fields": {"contact": {"emial": "hidden"}}}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_field")
    );
    for u in [&t.member_id, &admin_id] {
        assign(&s, owner, u, role["id"].clone()).await;
    }
    let admin = s.login("velden", "admin@velden.test", PASSWORD).await;

    let check = |what: &str, text: &str| {
        for h in hidden {
            assert!(
                !text.to_lowercase().contains(&h.to_lowercase()),
                "{what} showed the hidden value {h}: {text}"
            );
        }
    };
    // Every contact route of the API document that reads.
    let (_, doc) = s.get("/api/v1/openapi.json", &Auth::None).await;
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/contacts") || ops.get("get").is_none() {
            continue;
        }
        let url = path.replace("{id}", &id).replace("{revision}", "1");
        let mut urls = vec![url.clone()];
        if !path.contains('{') {
            urls.push(format!("{url}?q=verborgenkanarie"));
            urls.push(format!("{url}?q=kanariecode"));
        }
        for u in urls {
            let (st, v) = s.get(&u, &t.member).await;
            assert!(st.is_success(), "GET {u}: {st} {v}");
            check(&format!("GET {u}"), &body_text(&v));
            walked += 1;
        }
    }
    assert!(walked >= 5, "walked {walked}");
    // Searching on a hidden field finds nothing; an exact lookup on it is refused.
    let (_, v) = s
        .get("/api/v1/contacts?q=verborgenkanarie", &t.member)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0, "{v}");
    let (st, v) = s
        .get(
            "/api/v1/contacts?email=tweedekanarie@velden.test",
            &t.member,
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "field_hidden"));
    // Shown: the rest, and the masked field masked.
    let (_, rec) = s.get(&format!("/api/v1/contacts/{id}"), &t.member).await;
    assert_eq!(rec["fields"]["last_name"], "Persoon", "{rec}");
    assert_eq!(rec["fields"]["phone"], "******5678", "{rec}");
    assert!(rec["fields"].get("email").is_none(), "{rec}");
    // The audit trail as an admin with the role: the record's events and the whole log.
    for u in [
        format!("/api/v1/audit/events?object_id={id}"),
        "/api/v1/audit/events?limit=200".to_owned(),
    ] {
        let (st, v) = s.get(&u, &admin).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        check(&u, &v.to_string());
    }
    // Pages: table, search, record page (with its timeline of versions), CSV export.
    let (c, _) = crate::pages::signed_in(&s, "velden", "member@velden.test").await;
    for path in [
        "/contacts".to_owned(),
        "/contacts?q=kanarie".to_owned(),
        "/search?q=kanarie".to_owned(),
        format!("/contacts/{id}"),
        "/contacts/export.csv".to_owned(),
    ] {
        let (st, _, html) = crate::pages::get(&c, &s, &path).await;
        assert!(st.is_success(), "{path}: {st}");
        check(&format!("page {path}"), &html);
    }

    // Writing a read-only or hidden field is refused with a stable code; the rest is not.
    for fields in [
        json!({"first_name": "Anders"}),
        json!({"email": "nieuw@velden.test"}),
        json!({"phone": "+31600000000"}),
    ] {
        let (st, v) = patch_at(
            &s,
            &format!("/api/v1/contacts/{id}"),
            &t.member,
            2,
            json!({ "fields": fields }),
        )
        .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::FORBIDDEN, "field_read_only"),
            "{fields}"
        );
    }
    let (st, v) = patch_at(
        &s,
        &format!("/api/v1/contacts/{id}"),
        &t.member,
        2,
        json!({"fields": {"first_name": "Zichtbaar", "last_name": "Anders"}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    check("update answer", &v.to_string());

    // Unmasking: one field, audited; a hidden field is not "masked" and stays hidden.
    let unmask = format!("/api/v1/records/{id}/unmask");
    let (st, v) = s.post(&unmask, &t.member, json!({"field": "phone"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["value"], "+31612345678");
    let (st, v) = s.post(&unmask, &t.member, json!({"field": "email"})).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "not_masked")
    );
    let (_, log) = s
        .get(
            &format!("/api/v1/audit/events?action=contact.unmask&object_id={id}"),
            owner,
        )
        .await;
    let events = log["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{log}");
    assert_eq!(events[0]["details"]["field"], "phone");
    assert!(!log.to_string().contains("612345678"), "{log}");
    // A role without unmask gets 403.
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/roles/{}", role["id"].as_str().unwrap()),
            owner,
            Some(json!({"objects": {"contact": {"read": true, "scope": "all"}}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s.post(&unmask, &t.member, json!({"field": "phone"})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}
