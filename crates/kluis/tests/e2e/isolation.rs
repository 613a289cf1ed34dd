//! Cross-tenant isolation, generically: walk every route of the OpenAPI document (which is
//! generated from the route table) and, as tenant A (owner session and API key), try to read,
//! list, change and delete tenant B's objects. Every attempt must fail, and B's data must be
//! unchanged afterwards. A new route is covered as soon as it is registered.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, Server, TenantFixture, on_both, tenant_fixture};

on_both!(tenant_a_cannot_touch_tenant_b_on_any_route);

/// A snapshot of everything B has that the API can show, read as B.
pub(crate) async fn snapshot(s: &Server, b: &TenantFixture) -> Value {
    let mut out = serde_json::Map::new();
    for path in [
        "/api/v1/users",
        "/api/v1/apikeys",
        "/api/v1/settings/password-policy",
        "/api/v1/settings/sensitive-data",
        "/api/v1/settings/trash-retention",
        "/api/v1/settings/mfa",
        "/api/v1/me/mfa",
        "/api/v1/me/sessions",
        "/api/v1/contacts",
        "/api/v1/companies",
        "/api/v1/trash",
        "/api/v1/deals",
        "/api/v1/pipelines",
        "/api/v1/notes",
        "/api/v1/tasks",
        "/api/v1/custom-fields",
        "/api/v1/custom-values",
        "/api/v1/tags",
        "/api/v1/tickets",
        "/api/v1/pipelines?object_type=ticket",
        "/api/v1/roles",
        "/api/v1/roles/assignments",
        "/api/v1/teams",
        "/api/v1/privacy/requests",
        "/api/v1/settings/retention",
    ] {
        let (st, v) = s.get(path, &b.owner).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        let mut v = v;
        // last_used_at / last_seen_at move when B itself reads; compare everything else.
        strip(&mut v, &["last_used_at", "last_seen_at", "current"]);
        out.insert(path.to_owned(), v);
    }
    Value::Object(out)
}

fn strip(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(m) => {
            for k in keys {
                m.remove(*k);
            }
            m.values_mut().for_each(|x| strip(x, keys));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip(x, keys)),
        _ => {}
    }
}

/// A plausible body for an operation, built from its request schema, so the request gets past
/// parsing and reaches authorization and the tenant-scoped lookup.
fn body_for(path: &str, method: &Method) -> Option<Value> {
    match (method.as_str(), path) {
        ("POST", "/api/v1/users") => {
            Some(json!({"email": "intruder@a.test", "display_name": "I", "role": "member"}))
        }
        ("PATCH", _) if path.starts_with("/api/v1/users/") => {
            Some(json!({"display_name": "pwned", "role": "read_only", "status": "disabled"}))
        }
        ("POST", "/api/v1/deals") => Some(json!({"fields": {"name": "Intrusion"}})),
        ("POST", "/api/v1/custom-fields") => {
            Some(json!({"object_type": "contact", "key": "geheim_b", "label": "x", "kind": "text"}))
        }
        ("PATCH", _) if path.starts_with("/api/v1/custom-fields/") => {
            Some(json!({"label": "pwned", "required": true}))
        }
        ("POST", "/api/v1/custom-values") => Some(json!({"key": "eigen_a", "value": "pwned"})),
        ("PUT", _) if path.starts_with("/api/v1/custom-values/") => Some(json!({"value": "pwned"})),
        ("POST", "/api/v1/tickets") => Some(json!({"fields": {"subject": "Intrusion"}})),
        ("PATCH", _) if path.starts_with("/api/v1/tickets/") => {
            Some(json!({"fields": {"subject": "pwned"}, "priority": "urgent"}))
        }
        ("POST", "/api/v1/tags") => Some(json!({"name": "Van A"})),
        ("POST", "/api/v1/roles") => {
            Some(json!({"name": "Van A", "objects": {"contact": {"read": true, "scope": "all"}}}))
        }
        ("PATCH", _) if path.starts_with("/api/v1/roles/") => {
            Some(json!({"name": "pwned", "objects": {}}))
        }
        ("PUT", _) if path.ends_with("/custom-role") => Some(json!({"role_id": null})),
        ("POST", _) if path.ends_with("/unmask") => Some(json!({"field": "email"})),
        ("POST", "/api/v1/teams") => Some(json!({"name": "Van A"})),
        ("PATCH", _) if path.starts_with("/api/v1/teams/") => Some(json!({"name": "pwned"})),
        ("PATCH", _) if path.starts_with("/api/v1/tags/") => Some(json!({"name": "pwned"})),
        ("PATCH", _) if path.starts_with("/api/v1/files/") => Some(json!({"name": "pwned.txt"})),
        ("POST", "/api/v1/privacy/requests") => {
            Some(json!({"kind": "erasure", "email": "iemand@tenant-a.test"}))
        }
        ("POST", "/api/v1/notes") => Some(json!({"fields": {"body": "Intrusion"}})),
        ("POST", "/api/v1/tasks") => Some(json!({"fields": {"title": "Intrusion"}})),
        ("PATCH", _) if path.starts_with("/api/v1/notes/") => {
            Some(json!({"fields": {"body": "pwned"}}))
        }
        ("PATCH", _) if path.starts_with("/api/v1/tasks/") => {
            Some(json!({"fields": {"title": "pwned"}, "done": true}))
        }
        ("PATCH", _) if path.starts_with("/api/v1/deals/") => {
            Some(json!({"fields": {"name": "pwned"}, "amount_minor": 1}))
        }
        ("POST" | "PUT", _) if path.starts_with("/api/v1/pipelines") => {
            Some(json!({"name": "pwned", "stages": [{"name": "x"}]}))
        }
        ("POST", "/api/v1/contacts" | "/api/v1/companies") => {
            Some(json!({"fields": {"email": "intruder@a.test", "name": "Intruder"}}))
        }
        ("PATCH", _) if path.starts_with("/api/v1/contacts/") => {
            Some(json!({"fields": {"first_name": "pwned"}}))
        }
        ("PATCH", _) if path.starts_with("/api/v1/companies/") => {
            Some(json!({"fields": {"name": "pwned"}}))
        }
        ("POST", "/api/v1/apikeys") => Some(json!({"name": "x", "scopes": ["users:read"]})),
        ("PUT", "/api/v1/settings/password-policy") => Some(
            json!({"min_length": 20, "require_upper": true, "require_lower": true, "require_digit": true, "require_special": true, "reject_common": true}),
        ),
        ("POST", "/api/v1/auth/mfa") => Some(json!({"code": "123456"})),
        ("POST", "/api/v1/me/mfa/totp/confirm" | "/api/v1/me/mfa/recovery-codes") => {
            Some(json!({"code": "123456"}))
        }
        ("POST", "/api/v1/me/mfa/disable") => Some(json!({"code": "123456"})),
        ("PUT", "/api/v1/settings/mfa") => Some(json!({"required_roles": ["read_only"]})),
        ("POST", "/api/v1/me/password") => {
            Some(json!({"current_password": "x", "new_password": "y"}))
        }
        ("PUT", "/api/v1/settings/sensitive-data") => Some(json!({"mode": "flag"})),
        ("PUT", "/api/v1/settings/trash-retention") => Some(json!({"days": 5})),
        ("PUT", "/api/v1/settings/retention") => {
            Some(json!({"contact_inactive_years": 1, "contact_action": "delete", "audit_years": 1}))
        }
        ("POST", "/api/v1/platform/tenants") => Some(json!({"slug": "evil", "name": "Evil"})),
        ("POST", "/api/v1/auth/login") => {
            Some(json!({"tenant": "x", "email": "x@x.test", "password": "x"}))
        }
        ("POST", "/api/v1/setup") => Some(
            json!({"token": "x", "tenant_slug": "xxx", "tenant_name": "x", "owner_email": "x@x.test", "owner_name": "x", "owner_password": "x"}),
        ),
        ("POST", _) | ("PUT", _) | ("PATCH", _) => Some(json!({})),
        _ => None,
    }
}

/// B's CRM records: a contact, a company and a contact in the trash.
pub(crate) struct BRecords {
    /// B's owner's session.
    pub(crate) session: String,
    pub(crate) contact: String,
    pub(crate) company: String,
    pub(crate) trashed: String,
    pub(crate) deal: String,
    pub(crate) pipeline: String,
    pub(crate) note: String,
    pub(crate) task: String,
    pub(crate) custom_field: String,
    pub(crate) tag: String,
    pub(crate) ticket: String,
    pub(crate) import: String,
    pub(crate) role: String,
    pub(crate) team: String,
    /// A file on B's contact.
    pub(crate) file: String,
    /// A support-access grant B's owner gave an operator.
    pub(crate) grant: String,
    /// An erasure request about B's contact.
    pub(crate) privacy_request: String,
}

pub(crate) async fn b_records(s: &Server, b: &TenantFixture) -> BRecords {
    let mut ids = Vec::new();
    for (path, fields) in [
        (
            "/api/v1/companies",
            json!({"name": "Bedrijf B", "domain": "tenant-b.test"}),
        ),
        (
            "/api/v1/contacts",
            json!({"email": "klant@tenant-b.test", "first_name": "Klant"}),
        ),
        ("/api/v1/contacts", json!({"email": "weg@tenant-b.test"})),
    ] {
        let (st, v) = s.post(path, &b.owner, json!({ "fields": fields })).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{}", ids[2]),
            &b.owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, deal) = s
        .post(
            "/api/v1/deals",
            &b.owner,
            json!({"fields": {"name": "Deal B"}, "amount_minor": 500000, "contact_ids": [ids[1]]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{deal}");
    let (st, note) = s
        .post(
            "/api/v1/notes",
            &b.owner,
            json!({"fields": {"body": "Geheime notitie B"}, "related_ids": [ids[1]]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{note}");
    let (st, task) = s
        .post(
            "/api/v1/tasks",
            &b.owner,
            json!({"fields": {"title": "Taak B"}, "due_date": "2027-01-15", "related_ids": [ids[1]]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{task}");
    let (st, cf) = s
        .post(
            "/api/v1/custom-fields",
            &b.owner,
            json!({"object_type": "contact", "key": "geheim_b", "label": "Geheim B", "kind": "text"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{cf}");
    let (st, cv) = s
        .post(
            "/api/v1/custom-values",
            &b.owner,
            json!({"key": "slogan_b", "value": "Slogan van B"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{cv}");
    let (st, tag) = s
        .post("/api/v1/tags", &b.owner, json!({"name": "Geheime tag B"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{tag}");
    let (st, ticket) = s
        .post(
            "/api/v1/tickets",
            &b.owner,
            json!({"fields": {"subject": "Klacht B"}, "contact_ids": [ids[1]], "priority": "high"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ticket}");
    let (st, import) = s
        .upload(
            "/api/v1/imports?object_type=contact&dry_run=true",
            &b.owner,
            "text/csv",
            b"email\nimport@tenant-b.test\n".to_vec(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{import}");
    let (st, role) = s
        .post(
            "/api/v1/roles",
            &b.owner,
            json!({"name": "Rol B", "objects": {"contact": {"read": true, "update": true, "scope": "team"}}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/custom-role", b.member_id),
            &b.owner,
            Some(json!({"role_id": role["id"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, team) = s
        .post("/api/v1/teams", &b.owner, json!({"name": "Team B"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{team}");
    let team = team["id"].as_str().unwrap().to_owned();
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/api/v1/teams/{team}/members/{}", b.member_id),
            &b.owner,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, file) = s
        .upload(
            &format!("/api/v1/contacts/{}/files?name=bestand-van-b.txt", ids[1]),
            &b.owner,
            "application/octet-stream",
            b"Bestandsinhoud van B".to_vec(),
        )
        .await;
    // 201 with a scanner, 202 (pending) without one: the isolation walk needs neither.
    assert!(
        st == StatusCode::CREATED || st == StatusCode::ACCEPTED,
        "{file}"
    );
    let (st, privacy) = s
        .post(
            "/api/v1/privacy/requests",
            &b.owner,
            json!({"kind": "erasure", "email": "klant@tenant-b.test"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{privacy}");
    let (st, sessions) = s.get("/api/v1/me/sessions", &b.owner).await;
    let sessions = sessions["items"].clone();
    assert_eq!(st, StatusCode::OK, "{sessions}");
    // An operator (unique per server, since b_records runs once per server) with a grant in B.
    let op_email = format!("op-{}@kluis.test", &b.id[..8]);
    crate::support_access::create_operator(s, &op_email);
    let (st, grant) = s
        .post(
            "/api/v1/support-access/grants",
            &b.owner,
            json!({"operator": op_email, "reason": "Geheim B support reason",
                   "access": "read", "hours": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{grant}");
    BRecords {
        grant: grant["id"].as_str().unwrap().to_owned(),
        import: import["id"].as_str().unwrap().to_owned(),
        role: role["id"].as_str().unwrap().to_owned(),
        team,
        file: file["id"].as_str().unwrap().to_owned(),
        privacy_request: privacy["id"].as_str().unwrap().to_owned(),
        session: sessions[0]["id"].as_str().unwrap().to_owned(),
        ticket: ticket["id"].as_str().unwrap().to_owned(),
        tag: tag["id"].as_str().unwrap().to_owned(),
        custom_field: cf["id"].as_str().unwrap().to_owned(),
        note: note["id"].as_str().unwrap().to_owned(),
        task: task["id"].as_str().unwrap().to_owned(),
        company: ids[0].clone(),
        contact: ids[1].clone(),
        trashed: ids[2].clone(),
        deal: deal["id"].as_str().unwrap().to_owned(),
        pipeline: deal["deal"]["pipeline_id"].as_str().unwrap().to_owned(),
    }
}

/// Fills `{id}` with B's object of the collection the path names. A path whose id we do not
/// know how to fill makes the test fail: a new route must be taught here, not skipped.
fn fill(path: &str, b: &TenantFixture, r: &BRecords) -> String {
    if !path.contains('{') {
        return path.to_owned();
    }
    let path = path
        .replace("{revision}", "1")
        .replace("{session_id}", &r.session)
        .replace("{passkey_id}", &r.session)
        .replace("{user_id}", &b.member_id);
    let id = if path.starts_with("/api/v1/contacts/{id}") {
        &r.contact
    } else if path.starts_with("/api/v1/companies/{id}") {
        &r.company
    } else if path.starts_with("/api/v1/deals/{id}") {
        &r.deal
    } else if path.starts_with("/api/v1/tickets/{id}") {
        &r.ticket
    } else if path.starts_with("/api/v1/tags/{id}") {
        &r.tag
    } else if path.starts_with("/api/v1/custom-fields/{id}") {
        &r.custom_field
    } else if path.starts_with("/api/v1/custom-values/{key}") {
        return path.replace("{key}", "slogan_b");
    } else if path.starts_with("/api/v1/notes/{id}") {
        &r.note
    } else if path.starts_with("/api/v1/tasks/{id}") {
        &r.task
    } else if path.starts_with("/api/v1/pipelines/{id}") {
        &r.pipeline
    } else if path.starts_with("/api/v1/records/{id}") {
        &r.contact
    } else if path.starts_with("/api/v1/roles/{id}") {
        &r.role
    } else if path.starts_with("/api/v1/teams/{id}") {
        &r.team
    } else if path.starts_with("/api/v1/files/{id}") {
        &r.file
    } else if path.starts_with("/api/v1/privacy/requests/{id}") {
        &r.privacy_request
    } else if path.starts_with("/api/v1/imports/{id}") {
        &r.import
    } else if path.starts_with("/api/v1/trash/{id}") {
        &r.trashed
    } else if path.starts_with("/api/v1/support-access/") {
        &r.grant
    } else if path.starts_with("/api/v1/me/sessions/{id}")
        // B has no passkeys: any id of B's (A must get a 404 either way).
        || path.starts_with("/api/v1/me/passkeys/{id}")
    {
        &r.session
    } else if path.starts_with("/api/v1/users/{id}") {
        &b.member_id
    } else if path.starts_with("/api/v1/apikeys/{id}") {
        &b.key_id
    } else if path.starts_with("/api/v1/platform/tenants/{id}")
        || path.starts_with("/api/v1/platform/status/notices/{id}")
        || path.starts_with("/api/v1/platform/incidents/{id}")
    {
        // Platform routes: tenant credentials are refused whatever the id.
        &b.id
    } else if path.starts_with("/sso/saml/{tenant}/") {
        // Public SAML endpoints (ACS, SP metadata) of tenant B.
        return path.replace("{tenant}", &b.id);
    } else {
        panic!(
            "route {path} has a path parameter the isolation test does not know how to fill with tenant B's object; extend `fill`"
        );
    };
    path.replace("{id}", id)
}

async fn tenant_a_cannot_touch_tenant_b_on_any_route(backend: Backend) {
    let s = Server::start(backend).await;
    let mut a = tenant_fixture(&s, "tenant-a").await;
    let b = tenant_fixture(&s, "tenant-b").await;
    let records = b_records(&s, &b).await;
    let before = snapshot(&s, &b).await;

    let (_, doc) = s.get("/api/v1/openapi.json", &Auth::None).await;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(
        paths.len() >= 15,
        "route table looks incomplete: {}",
        paths.len()
    );
    let b_secrets = [
        b.member_id.as_str(),
        b.owner_id.as_str(),
        b.key_id.as_str(),
        "owner@tenant-b.test",
        "member@tenant-b.test",
        "klant@tenant-b.test",
        "weg@tenant-b.test",
        records.contact.as_str(),
        records.company.as_str(),
        records.deal.as_str(),
        records.pipeline.as_str(),
        "Deal B",
        "Rol B",
        "Team B",
        records.role.as_str(),
        records.team.as_str(),
        "Geheime notitie B",
        "Taak B",
        "Slogan van B",
        "Geheime tag B",
        "Klacht B",
        "Geheim B",
        records.note.as_str(),
        records.task.as_str(),
        records.import.as_str(),
        records.session.as_str(),
        records.file.as_str(),
        records.privacy_request.as_str(),
        "bestand-van-b.txt",
        "Bestandsinhoud van B",
    ];
    let mut exercised = 0;

    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let tag = op["tags"][0].as_str().unwrap_or_default();
            let url = fill(path, &b, &records);
            for actor in [a.owner.clone(), a.key.clone()] {
                let (st, v) = s
                    .call(method.clone(), &url, &actor, body_for(path, &method))
                    .await;
                exercised += 1;
                let text = v.to_string();
                for secret in b_secrets {
                    assert!(
                        !text.contains(secret),
                        "{method} {url} as A leaked B's {secret}: {text}"
                    );
                }
                match tag {
                    // Public or self-only routes: anything but a 5xx is fine, nothing of B leaks (checked above).
                    "health" | "setup" | "auth" => {
                        assert!(!st.is_server_error(), "{method} {url}: {st} {v}")
                    }
                    // Platform routes need a platform key: tenant credentials are refused.
                    // The operator's sign-in is public (a tenant's credentials are no operator's).
                    "operator" if path == "/api/v1/operator/sessions" => {
                        assert!(st.is_client_error(), "{method} {url} as tenant A: {st} {v}")
                    }
                    "platform" | "operator" => assert_eq!(
                        st,
                        StatusCode::UNAUTHORIZED,
                        "{method} {url} as tenant A: {v}"
                    ),
                    _ if path.contains('{') => assert!(
                        st == StatusCode::NOT_FOUND || st == StatusCode::FORBIDDEN,
                        "{method} {url} with B's id as A must be 404/403, got {st} {v}"
                    ),
                    // Collection routes act on A's own tenant; B's data is checked below.
                    _ => assert!(!st.is_server_error(), "{method} {url}: {st} {v}"),
                }
                if tag == "auth" {
                    // logout / logout-all end A's session: sign in again so later routes are
                    // exercised with a live session rather than bouncing off a 401.
                    a.owner = s
                        .login("tenant-a", "owner@tenant-a.test", crate::support::PASSWORD)
                        .await;
                }
            }
        }
    }
    assert!(exercised > 30);

    // B's credentials still work and B's data is exactly as before.
    let after = snapshot(&s, &b).await;
    assert_eq!(
        before, after,
        "tenant B's data changed after tenant A's attempts"
    );
    let (st, _) = s
        .get(&format!("/api/v1/users/{}", b.member_id), &b.key)
        .await;
    assert_eq!(st, StatusCode::OK);
    // B's file is still B's: same name, same version, in the same place.
    let (st, f) = s
        .get(&format!("/api/v1/files/{}", records.file), &b.owner)
        .await;
    assert_eq!(st, StatusCode::OK, "{f}");
    assert_eq!(
        (
            f["name"].as_str(),
            f["version"].as_i64(),
            f["deleted_at"].is_null()
        ),
        (Some("bestand-van-b.txt"), Some(1), true)
    );

    // Tampering with the tenant part of a credential does not move it to another tenant.
    let forged = a
        .key_secret
        .replace(&a.id.replace('-', ""), &b.id.replace('-', ""));
    assert_ne!(forged, a.key_secret);
    let (st, _) = s.get("/api/v1/users", &Auth::Bearer(forged)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    if let Auth::Session { cookie, csrf } = &a.owner {
        let forged = cookie.replace(&a.id.replace('-', ""), &b.id.replace('-', ""));
        let (st, _) = s
            .get(
                "/api/v1/users",
                &Auth::Session {
                    cookie: forged,
                    csrf: csrf.clone(),
                },
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
}
