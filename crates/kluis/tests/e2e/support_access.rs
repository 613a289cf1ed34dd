//! Support access over HTTPS: an operator signs in (password and TOTP), asks, an owner
//! approves; under the grant personal data is masked, unmasking is audited, every request is
//! recorded, the high-risk actions are refused on every route they map to, and a revocation
//! stops the next request in every server process.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, Server, code, on_both, tenant_fixture};

on_both!(an_operator_works_only_under_an_approved_grant);
on_both!(blocked_actions_are_refused_on_every_route);

pub(crate) struct Op {
    pub email: String,
    pub password: String,
    pub secret: Vec<u8>,
}

/// `kluis operator create`, as the platform's console does it.
pub(crate) fn create_operator(s: &Server, email: &str) -> Op {
    let o: Value = serde_json::from_str(&s.cli(
        &[
            "operator", "create", "--email", email, "--name", "Sam", "--json",
        ],
        None,
    ))
    .unwrap();
    Op {
        email: o["email"].as_str().unwrap().to_owned(),
        password: o["password"].as_str().unwrap().to_owned(),
        secret: kluis_crypto::totp::secret_from_base32(o["totp_secret"].as_str().unwrap()).unwrap(),
    }
}

/// Signs the operator in with the TOTP code of `step_offset` steps from now (a code is
/// accepted once, so a second sign-in takes the next one).
pub(crate) async fn operator_sign_in(s: &Server, op: &Op, step_offset: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = kluis_crypto::totp::code_at(&op.secret, now + 30 * step_offset).unwrap();
    let (st, v) = s
        .post(
            "/api/v1/operator/sessions",
            &Auth::None,
            json!({"email": op.email, "password": op.password, "code": code}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

/// A request as the operator under `grant`.
async fn as_operator(
    s: &Server,
    token: &str,
    grant: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (st, _, v) = s
        .call_with(
            method,
            path,
            &Auth::Bearer(token.to_owned()),
            &[("kluis-support-grant", grant)],
            body,
        )
        .await;
    (st, v)
}

async fn an_operator_works_only_under_an_approved_grant(backend: Backend) {
    let s = Server::start(backend).await;
    let t = tenant_fixture(&s, "steun").await;
    let op = create_operator(&s, "sam@kluis.test");

    // Sign-in needs the password and a valid code.
    let (st, v) = s
        .post(
            "/api/v1/operator/sessions",
            &Auth::None,
            json!({"email": op.email, "password": op.password, "code": "000000"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let token = operator_sign_in(&s, &op, 0).await;
    // An operator session alone reaches no tenant data.
    let (st, v) = s
        .get("/api/v1/contacts", &Auth::Bearer(token.clone()))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "support_grant_invalid")
    );

    let (_, contact) = s
        .post(
            "/api/v1/contacts",
            &t.owner,
            json!({"fields": {"first_name": "Jan", "last_name": "Jansen",
                              "email": "jan@acme.nl", "phone": "+31 6 12345678"}}),
        )
        .await;
    let cid = contact["id"].as_str().unwrap().to_owned();

    // The operator asks; nothing opens until the owner approves.
    let (st, req) = s
        .post(
            "/api/v1/support-access/requests",
            &Auth::Bearer(token.clone()),
            json!({"tenant": "steun", "reason": "ticket 4711: contact will not save",
                   "access": "write", "hours": 2}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{req}");
    assert_eq!(req["status"], "requested");
    let gid = req["id"].as_str().unwrap().to_owned();
    let (st, v) = as_operator(&s, &token, &gid, Method::GET, "/api/v1/contacts", None).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "support_grant_invalid")
    );
    // More than 24 hours is refused.
    let (st, v) = s
        .post(
            "/api/v1/support-access/requests",
            &Auth::Bearer(token.clone()),
            json!({"tenant": "steun", "reason": "a very long investigation",
                   "access": "read", "hours": 25}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // A second request, refused by the owner, never opens.
    let (_, other_req) = s
        .post(
            "/api/v1/support-access/requests",
            &Auth::Bearer(token.clone()),
            json!({"tenant": "steun", "reason": "ticket 4712: please look at deals",
                   "access": "read", "hours": 1}),
        )
        .await;
    let other_id = other_req["id"].as_str().unwrap().to_owned();
    let (st, r) = s
        .post(
            &format!("/api/v1/support-access/requests/{other_id}/refuse"),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(
        (st, r["status"].as_str()),
        (StatusCode::OK, Some("refused"))
    );
    let (st, v) = as_operator(&s, &token, &other_id, Method::GET, "/api/v1/deals", None).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "support_grant_invalid")
    );
    // A member cannot approve; an API key cannot either; the owner can.
    let approve = format!("/api/v1/support-access/requests/{gid}/approve");
    let (st, _) = s.post(&approve, &t.member, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = s.post(&approve, &t.key, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, g) = s.post(&approve, &t.owner, json!({})).await;
    assert_eq!(st, StatusCode::OK, "{g}");
    assert_eq!(g["status"], "active");
    let (_, mine) = s
        .get(
            &format!("/api/v1/support-access/requests/{gid}"),
            &Auth::Bearer(token.clone()),
        )
        .await;
    assert_eq!(mine["status"], "active");

    // Under the grant: contact details masked in a read, a list, the versions.
    let (st, c) = as_operator(
        &s,
        &token,
        &gid,
        Method::GET,
        &format!("/api/v1/contacts/{cid}"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    assert_eq!(c["fields"]["email"], "j***@acme.nl");
    assert_eq!(c["fields"]["phone"], "******5678");
    assert_eq!(c["fields"]["first_name"], "Jan");
    let (_, list) = as_operator(&s, &token, &gid, Method::GET, "/api/v1/contacts", None).await;
    let text = list.to_string();
    assert!(
        text.contains("j***@acme.nl") && !text.contains("jan@acme.nl"),
        "{text}"
    );
    let (_, versions) = as_operator(
        &s,
        &token,
        &gid,
        Method::GET,
        &format!("/api/v1/contacts/{cid}/versions"),
        None,
    )
    .await;
    assert!(!versions.to_string().contains("jan@acme.nl"), "{versions}");
    // A masked field is no search key: looking up the exact address finds nothing.
    let (_, found) = as_operator(
        &s,
        &token,
        &gid,
        Method::GET,
        "/api/v1/contacts?email=jan@acme.nl",
        None,
    )
    .await;
    assert!(!found.to_string().contains(&cid), "{found}");
    // Unmasking one value is its own act, in the log.
    let (st, u) = as_operator(
        &s,
        &token,
        &gid,
        Method::POST,
        &format!("/api/v1/records/{cid}/unmask"),
        Some(json!({"field": "email"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["value"], "jan@acme.nl");
    // A write grant changes records; the change carries the grant.
    let (_, h, _) = s
        .call_with(
            Method::GET,
            &format!("/api/v1/contacts/{cid}"),
            &Auth::Bearer(token.clone()),
            &[("kluis-support-grant", &gid)],
            None,
        )
        .await;
    let etag = h["etag"].to_str().unwrap().to_owned();
    let (st, _, v) = s
        .call_with(
            Method::PATCH,
            &format!("/api/v1/contacts/{cid}"),
            &Auth::Bearer(token.clone()),
            &[("kluis-support-grant", &gid), ("if-match", &etag)],
            Some(json!({"fields": {"last_name": "Janssen"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Access transparency: the owner sees every request and what it did.
    let (st, activity) = s
        .get(
            &format!("/api/v1/support-access/grants/{gid}/activity"),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{activity}");
    let events = activity.as_array().unwrap();
    let label = g["actor"].as_str().unwrap();
    assert!(events.iter().all(|e| e["actor"] == label));
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.iter().filter(|a| **a == "support.access").count() >= 6);
    assert!(actions.contains(&"contact.unmask"), "{actions:?}");
    assert!(actions.contains(&"contact.update"), "{actions:?}");
    let paths: Vec<&str> = events
        .iter()
        .filter_map(|e| e["details"]["path"].as_str())
        .collect();
    assert!(
        paths.contains(&format!("/api/v1/contacts/{cid}").as_str()),
        "{paths:?}"
    );

    // Revoked in one process: the next request fails in another process too.
    let sibling = s.sibling().await;
    let grant_auth = Auth::Bearer(token.clone());
    let via_sibling = |path: &str| {
        sibling
            .client
            .get(sibling.url(path))
            .bearer_auth(&token)
            .header("kluis-support-grant", &gid)
            .send()
    };
    assert_eq!(
        via_sibling("/api/v1/contacts").await.unwrap().status(),
        StatusCode::OK
    );
    let (st, r) = s
        .post(
            &format!("/api/v1/support-access/grants/{gid}/revoke"),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(
        (st, r["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    assert_eq!(
        via_sibling("/api/v1/contacts").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let (st, v) = as_operator(&s, &token, &gid, Method::GET, "/api/v1/contacts", None).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "support_grant_invalid")
    );
    drop(grant_auth);

    // A read grant given on the owner's initiative reads but does not write; it names the
    // operator by email. The grant of tenant "steun" opens nothing in another tenant.
    let (st, g2) = s
        .post(
            "/api/v1/support-access/grants",
            &t.owner,
            json!({"operator": "sam@kluis.test", "reason": "quarterly data check",
                   "access": "read", "hours": 1}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{g2}");
    let g2 = g2["id"].as_str().unwrap().to_owned();
    let (st, _) = as_operator(&s, &token, &g2, Method::GET, "/api/v1/contacts", None).await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = as_operator(
        &s,
        &token,
        &g2,
        Method::POST,
        "/api/v1/contacts",
        Some(json!({"fields": {"first_name": "Nieuw"}})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let other = tenant_fixture(&s, "ander").await;
    let (_, oc) = s
        .post(
            "/api/v1/contacts",
            &other.owner,
            json!({"fields": {"first_name": "Ander"}}),
        )
        .await;
    let (st, _) = as_operator(
        &s,
        &token,
        &g2,
        Method::GET,
        &format!("/api/v1/contacts/{}", oc["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Signing out ends the operator session, and with it every grant's use.
    let (st, _) = s
        .call(
            Method::DELETE,
            "/api/v1/operator/sessions/current",
            &Auth::Bearer(token.clone()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = as_operator(&s, &token, &g2, Method::GET, "/api/v1/contacts", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Every step is in the tenant's log; the operator's sign-in and sign-out in the
    // platform's; both logs verify.
    let log = s.cli(&["audit", "events", "--tenant", "steun"], None);
    for action in [
        "support.request",
        "support.refuse",
        "support.approve",
        "support.access",
        "support.revoke",
        "support.grant",
    ] {
        assert!(log.contains(action), "{action} missing from the tenant log");
    }
    let platform = s.cli(&["audit", "events", "--tenant", "platform"], None);
    for action in ["operator.create", "operator.sign_in", "operator.sign_out"] {
        assert!(
            platform.contains(action),
            "{action} missing from the platform log"
        );
    }
    for tenant in ["steun", "platform"] {
        let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", tenant], None);
        assert!(ok, "audit verify {tenant}: {out}{err}");
    }
}

/// Seed 000's list, on every route of the OpenAPI document it maps to: app keys (viewing
/// included), encryption keys, imports, exports, deleting anything, changing people, roles,
/// teams, SCIM or settings, and deciding about support access. Each answers
/// `403 support_action_blocked` under a read-write grant, whatever the body; nothing changes.
async fn blocked_actions_are_refused_on_every_route(backend: Backend) {
    let s = Server::start(backend).await;
    let t = tenant_fixture(&s, "geblokt").await;
    let op = create_operator(&s, "blok@kluis.test");
    let token = operator_sign_in(&s, &op, 0).await;
    let (_, g) = s
        .post(
            "/api/v1/support-access/grants",
            &t.owner,
            json!({"operator": "blok@kluis.test", "reason": "checking the blocked list",
                   "access": "write", "hours": 1}),
        )
        .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let (_, contact) = s
        .post(
            "/api/v1/contacts",
            &t.owner,
            json!({"fields": {"first_name": "Blijf"}}),
        )
        .await;
    let cid = contact["id"].as_str().unwrap().to_owned();

    let (_, doc) = s.get("/api/v1/openapi.json", &Auth::None).await;
    let mut blocked = 0;
    let mut allowed = 0;
    let mut wrong = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let tag = op["tags"][0].as_str().unwrap_or_default();
            // Routes outside a tenant's API (public, sign-in, platform, the operator's own).
            if matches!(
                tag,
                "health"
                    | "setup"
                    | "auth"
                    | "platform"
                    | "operator"
                    | "status"
                    | "metrics"
                    | "scim"
            ) || !path.starts_with("/api/v1/")
            {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let write = m != Method::GET;
            let must_block = m == Method::DELETE
                || path.ends_with("/export")
                || path.ends_with("/purge")
                || [
                    "/api/v1/apikeys",
                    "/api/v1/keys/",
                    "/api/v1/imports",
                    "/api/v1/me",
                    "/api/v1/support-access/",
                    "/api/v1/audit/export",
                ]
                .iter()
                .any(|p| path.starts_with(p))
                || (write
                    && [
                        "/api/v1/settings",
                        "/api/v1/users",
                        "/api/v1/roles",
                        "/api/v1/teams",
                        "/api/v1/scim",
                        "/api/v1/custom-fields",
                        "/api/v1/custom-values",
                        "/api/v1/pipelines",
                    ]
                    .iter()
                    .any(|p| path.starts_with(p)));
            let url = path
                .replace("{id}", &cid)
                .replace("{user_id}", &t.member_id)
                .replace("{session_id}", &cid)
                .replace("{passkey_id}", &cid)
                .replace("{revision}", "1")
                .replace("{key}", "x")
                .replace("{type}", "contacts");
            let body = write.then(|| json!({}));
            let (st, v) = as_operator(&s, &token, &gid, m.clone(), &url, body).await;
            if must_block {
                blocked += 1;
                if (st, code(&v)) != (StatusCode::FORBIDDEN, "support_action_blocked") {
                    wrong.push(format!("{m} {url} not blocked: {st} {v}"));
                }
            } else {
                allowed += 1;
                if code(&v) == "support_action_blocked" || st.is_server_error() {
                    wrong.push(format!("{m} {path} is not on the blocked list: {st} {v}"));
                }
            }
        }
    }
    assert!(
        blocked >= 40 && allowed >= 20,
        "blocked {blocked}, allowed {allowed}"
    );
    // The contact is still there, the owner's key still works, no key was made.
    let (st, _) = s.get(&format!("/api/v1/contacts/{cid}"), &t.owner).await;
    assert_eq!(st, StatusCode::OK);
    let (_, keys) = s.get("/api/v1/apikeys", &t.owner).await;
    assert_eq!(keys["items"].as_array().map(Vec::len), Some(1), "{keys}");
}
