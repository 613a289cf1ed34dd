//! SCIM 2.0 provisioning end to end: the requests Entra ID sends (bodies as in Microsoft's
//! "Develop and plan provisioning for a SCIM endpoint" request/response examples, plus the
//! documented quirks: capitalised ops, `"False"` strings, path-less replace), group-to-role
//! mapping, deprovisioning that ends sessions and API keys at once, tenant isolation, filter
//! injection, and the PyPI `scim2-tester` conformance checker against the running server.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, PASSWORD, Server, on_both, tenant_fixture};

on_both!(
    entra_user_and_group_lifecycle,
    deprovisioning_revokes_sessions_and_keys,
    tenants_are_isolated,
    token_admin_and_authentication,
    attributes_follow_data_key_rotation
);

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn scim_token(s: &Server, owner: &Auth) -> Auth {
    let (st, v) = s.post("/api/v1/scim/token", owner, json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let t = v["token"].as_str().unwrap();
    assert!(t.starts_with("kluisscim_"));
    Auth::Bearer(t.to_owned())
}

/// A SCIM request with `Content-Type: application/scim+json`; returns status, headers, body.
async fn scim(
    s: &Server,
    method: Method,
    path: &str,
    auth: &Auth,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut rb = s.client.request(method, s.url(&format!("/scim/v2{path}")));
    if let Auth::Bearer(t) = auth {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let res = rb.send().await.unwrap();
    let st = res.status();
    let h = res.headers().clone();
    let text = res.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (st, h, v)
}

fn assert_scim_error(v: &Value, status: u16, scim_type: Option<&str>) {
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{v}"
    );
    assert_eq!(v["status"], status.to_string(), "{v}");
    if let Some(t) = scim_type {
        assert_eq!(v["scimType"], t, "{v}");
    }
}

/// Percent-encodes a query value.
fn enc(filter: &str) -> String {
    filter
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn kluis_user(s: &Server, owner: &Auth, id: &str) -> Value {
    let (st, v) = s.get(&format!("/api/v1/users/{id}"), owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn entra_user_and_group_lifecycle(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "scim-a").await;
    let token = scim_token(&s, &t.owner).await;
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/scim/settings",
            &t.owner,
            Some(json!({"default_role": "read_only", "mappings": [
                {"group": "Kluis Admins", "role": "admin"},
                {"group": "Kluis Sales", "role": "member"}
            ]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Entra ID first looks the user up by userName: nothing yet.
    let user_name = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1";
    let (st, h, v) = scim(
        &s,
        Method::GET,
        &format!(
            "/Users?filter={}",
            enc(&format!("userName eq \"{user_name}\""))
        ),
        &token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(h["content-type"], "application/scim+json");
    assert_eq!(v["totalResults"], 0);
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );

    // Create User, as Entra ID sends it.
    let create = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": user_name,
        "active": true,
        "emails": [{
            "primary": true,
            "type": "work",
            "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
        }],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    });
    let (st, h, u) = scim(&s, Method::POST, "/Users", &token, Some(create.clone())).await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    let uid = u["id"].as_str().unwrap().to_owned();
    assert_eq!(u["userName"], user_name);
    assert_eq!(u["active"], true);
    assert_eq!(u["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
    assert_eq!(u["name"]["familyName"], "familyName");
    assert_eq!(u["meta"]["resourceType"], "User");
    let location = u["meta"]["location"].as_str().unwrap();
    assert!(location.ends_with(&format!("/scim/v2/Users/{uid}")), "{u}");
    assert_eq!(h["location"], location);
    assert!(u["meta"]["version"].as_str().unwrap().starts_with("W/\""));
    assert!(u["meta"]["created"].is_string() && u["meta"]["lastModified"].is_string());
    // In Kluis: the work address, the default role, no password (SSO or an invitation).
    let k = kluis_user(&s, &t.owner, &uid).await;
    assert_eq!(
        k["email"],
        "test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
    );
    assert_eq!(k["role"], "read_only");
    assert_eq!(k["has_password"], false);
    assert_eq!(k["display_name"], "givenName familyName");

    // The same userName again (any case): 409 uniqueness.
    let mut dup = create.clone();
    dup["userName"] = json!(user_name.to_uppercase());
    dup["emails"][0]["value"] = json!("other@testuser.com");
    let (st, _, v) = scim(&s, Method::POST, "/Users", &token, Some(dup)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_scim_error(&v, 409, Some("uniqueness"));
    // Another userName with a taken address: 409 too.
    let mut dup = create.clone();
    dup["userName"] = json!("someone-else");
    let (st, _, v) = scim(&s, Method::POST, "/Users", &token, Some(dup)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_scim_error(&v, 409, Some("uniqueness"));

    // The lookups Entra ID makes, and the others the allow-list supports.
    for f in [
        format!("userName eq \"{user_name}\""),
        format!("userName eq \"{}\"", user_name.to_lowercase()),
        "externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"".to_owned(),
        "emails[type eq \"work\"].value eq \"Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com\"".to_owned(),
        "name.givenName eq \"givenName\" or userName eq \"nobody\"".to_owned(),
        "name.familyName sw \"family\" and active eq true".to_owned(),
        "userName co \"ab6490ee\"".to_owned(),
        "externalId pr and not (userName eq \"x\")".to_owned(),
    ] {
        let (st, _, v) = scim(&s, Method::GET, &format!("/Users?filter={}", enc(&f)), &token, None).await;
        assert_eq!(st, StatusCode::OK, "{f}: {v}");
        assert_eq!(v["totalResults"], 1, "{f}: {v}");
        assert_eq!(v["Resources"][0]["id"], uid, "{f}");
    }
    let (_, _, v) = scim(
        &s,
        Method::GET,
        &format!(
            "/Users?filter={}",
            enc("externalId eq \"0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF\"")
        ),
        &token,
        None,
    )
    .await;
    assert_eq!(v["totalResults"], 0, "externalId is case-exact: {v}");
    // Paging over all users (owner, member, the provisioned one).
    let (_, _, v) = scim(&s, Method::GET, "/Users?startIndex=2&count=1", &token, None).await;
    assert_eq!(v["totalResults"], 3, "{v}");
    assert_eq!(v["startIndex"], 2);
    assert_eq!(v["itemsPerPage"], 1);

    // Update user [multi-valued properties].
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Users/{uid}"),
        &token,
        Some(json!({"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["emails"][0]["value"], "updatedemail@microsoft.com");
    assert_eq!(v["name"]["familyName"], "updatedFamilyName");
    let k = kluis_user(&s, &t.owner, &uid).await;
    assert_eq!(k["email"], "updatedemail@microsoft.com");
    assert_eq!(k["display_name"], "givenName familyName"); // `formatted` wins
    // Update user [single-valued properties].
    let new_name = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com";
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Users/{uid}"),
        &token,
        Some(json!({"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "userName", "value": new_name}
        ]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["userName"], new_name);
    // PUT replaces the whole resource.
    let mut put = create.clone();
    put["userName"] = json!(new_name);
    put["name"] = json!({"givenName": "Bea", "familyName": "Visser"});
    put["emails"] = json!([{"type": "work", "value": "bea@testuser.com", "primary": true}]);
    let (st, _, v) = scim(&s, Method::PUT, &format!("/Users/{uid}"), &token, Some(put)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["name"],
        json!({"givenName": "Bea", "familyName": "Visser"})
    );
    let k = kluis_user(&s, &t.owner, &uid).await;
    assert_eq!(
        (k["email"].as_str(), k["display_name"].as_str()),
        (Some("bea@testuser.com"), Some("Bea Visser"))
    );

    // Create Group, as Entra ID sends it; then its lookups.
    let (st, _, g) = scim(
        &s,
        Method::POST,
        "/Groups",
        &token,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"}
        })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let (st, _, v) = scim(
        &s,
        Method::GET,
        &format!("/Groups/{gid}?excludedAttributes=members"),
        &token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["displayName"], "displayName");
    let (_, _, v) = scim(
        &s,
        Method::GET,
        &format!(
            "/Groups?excludedAttributes=members&filter={}",
            enc("displayName eq \"displayName\"")
        ),
        &token,
        None,
    )
    .await;
    assert_eq!(v["totalResults"], 1, "{v}");
    // Update Group [non-member attributes]: rename it to the mapped admin group.
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &token,
        Some(json!({"schemas": [PATCH], "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Kluis Admins"}
        ]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Update Group [add members]: the member becomes an admin.
    let add = json!({"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"$ref": null, "value": uid}]}
    ]});
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &token,
        Some(add.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["members"][0]["value"], uid);
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["role"], "admin");
    // Update Group [remove members] with a value list (Entra ID): back to the default role.
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &token,
        Some(json!({"schemas": [PATCH], "Operations": [
            {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": uid}]}
        ]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.get("members").is_none(), "{v}");
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["role"], "read_only");
    // Again, removing with a filter path.
    scim(
        &s,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &token,
        Some(add.clone()),
    )
    .await;
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["role"], "admin");
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &token,
        Some(json!({"schemas": [PATCH], "Operations": [
            {"op": "remove", "path": format!("members[value eq \"{uid}\"]")}
        ]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["role"], "read_only");
    // Highest role wins: in "Kluis Sales" (member) and "Kluis Admins" (admin).
    let (st, _, sales) = scim(
        &s,
        Method::POST,
        "/Groups",
        &token,
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Kluis Sales", "members": [{"value": uid}]}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{sales}");
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["role"], "member");
    scim(
        &s,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &token,
        Some(add),
    )
    .await;
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["role"], "admin");
    // Deleting the admin group takes its role away.
    let (st, _, _) = scim(&s, Method::DELETE, &format!("/Groups/{gid}"), &token, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["role"], "member");
    let (st, _, v) = scim(&s, Method::GET, &format!("/Groups/{gid}"), &token, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_scim_error(&v, 404, None);
    // A group cannot take a member that is not a user of this tenant.
    let (st, _, v) = scim(
        &s,
        Method::POST,
        "/Groups",
        &token,
        Some(json!({"displayName": "Ghosts", "members": [{"value": uuid::Uuid::now_v7().to_string()}]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_scim_error(&v, 400, Some("invalidValue"));

    // Disable user (Entra ID), then the two quirky forms.
    let disable = json!({"Operations": [{"op": "Replace", "path": "active", "value": false}], "schemas": [PATCH]});
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Users/{uid}"),
        &token,
        Some(disable),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["active"], false);
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["status"], "disabled");
    let (_, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Users/{uid}"),
        &token,
        Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": true}}]})),
    )
    .await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(kluis_user(&s, &t.owner, &uid).await["status"], "active");
    let (_, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Users/{uid}"),
        &token,
        Some(json!({"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})),
    )
    .await;
    assert_eq!(v["active"], false, "{v}");
    let (_, _, v) = scim(
        &s,
        Method::GET,
        &format!(
            "/Users?filter={}",
            enc(&format!("userName eq \"{new_name}\""))
        ),
        &token,
        None,
    )
    .await;
    assert_eq!(
        v["Resources"][0]["active"], false,
        "a disabled user is still found: {v}"
    );

    // Filter injection and anything outside the allow-list: 400 invalidFilter.
    for f in [
        "userName eq \"x\" or 1 eq 1",
        "userName eq \"x\"; DROP TABLE users",
        "userName eq \"x\" or password pr",
        "password eq \"x\"",
        "userName gt \"a\"",
        "userName eq 'x' OR '1'='1'",
        "emails[value eq \"x\"",
        "meta.created pr",
        "userName eq \"x\")",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"x\"",
    ] {
        let (st, _, v) = scim(
            &s,
            Method::GET,
            &format!("/Users?filter={}", enc(f)),
            &token,
            None,
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{f}: {v}");
        assert_scim_error(&v, 400, Some("invalidFilter"));
    }
    let (st, _, v) = scim(
        &s,
        Method::GET,
        &format!(
            "/Groups?filter={}",
            enc("members.value eq \"x\" or title pr")
        ),
        &token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // Malformed PATCH: 400 with a SCIM type.
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Users/{uid}"),
        &token,
        Some(json!({"schemas": [PATCH], "Operations": [{"op": "Move", "path": "userName", "value": "x"}]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_scim_error(&v, 400, Some("invalidSyntax"));

    // Delete User.
    let (st, _, _) = scim(&s, Method::DELETE, &format!("/Users/{uid}"), &token, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, v) = scim(&s, Method::GET, &format!("/Users/{uid}"), &token, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_scim_error(&v, 404, None);
    assert_eq!(
        s.get(&format!("/api/v1/users/{uid}"), &t.owner).await.0,
        StatusCode::NOT_FOUND
    );

    // Every change is in the audit trail under the SCIM token.
    let events = crate::audit::events(&s, &t.owner, "").await;
    let scim_actor = events
        .iter()
        .find(|e| e["action"] == "scim.user.create")
        .map(|e| e["actor"].as_str().unwrap().to_owned())
        .expect("scim.user.create event");
    assert!(scim_actor.starts_with("scim:"), "{scim_actor}");
    for action in [
        "scim.token.create",
        "scim.settings.update",
        "scim.user.create",
        "scim.user.update",
        "scim.user.deprovision",
        "scim.user.reactivate",
        "scim.user.role",
        "scim.user.delete",
        "scim.user.list",
        "scim.group.create",
        "scim.group.update",
        "scim.group.delete",
    ] {
        let e = events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action}"));
        if action.starts_with("scim.user") || action.starts_with("scim.group") {
            assert_eq!(e["actor"], scim_actor, "{action}");
        }
    }
}

async fn deprovisioning_revokes_sessions_and_keys(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "scim-d").await;
    let token = scim_token(&s, &t.owner).await;
    for (email, how) in [
        ("bea@scim-d.test", "deactivate"),
        ("cor@scim-d.test", "delete"),
    ] {
        // An admin created in Kluis with a password, signed in, holding an API key they made.
        let (st, u) = s
            .post(
                "/api/v1/users",
                &t.owner,
                json!({"email": email, "display_name": "Admin", "role": "admin", "password": PASSWORD}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{u}");
        let session = s.login("scim-d", email, PASSWORD).await;
        let (st, k) = s
            .post(
                "/api/v1/apikeys",
                &session,
                json!({"name": "sync", "scopes": ["users:read"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{k}");
        let key = Auth::Bearer(k["secret"].as_str().unwrap().to_owned());
        assert_eq!(s.get("/api/v1/me", &session).await.0, StatusCode::OK);
        assert_eq!(s.get("/api/v1/users", &key).await.0, StatusCode::OK);
        // Entra ID matches the existing user by userName.
        let (_, _, v) = scim(
            &s,
            Method::GET,
            &format!("/Users?filter={}", enc(&format!("userName eq \"{email}\""))),
            &token,
            None,
        )
        .await;
        assert_eq!(v["totalResults"], 1, "{v}");
        let id = v["Resources"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(id, u["id"]);
        let st = if how == "deactivate" {
            scim(
                &s,
                Method::PATCH,
                &format!("/Users/{id}"),
                &token,
                Some(json!({"Operations": [{"op": "Replace", "path": "active", "value": false}], "schemas": [PATCH]})),
            )
            .await
            .0
        } else {
            scim(&s, Method::DELETE, &format!("/Users/{id}"), &token, None)
                .await
                .0
        };
        assert!(st.is_success(), "{how}: {st}");
        // At once: the session cookie and the API key no longer work.
        assert_eq!(
            s.get("/api/v1/me", &session).await.0,
            StatusCode::UNAUTHORIZED,
            "{how}"
        );
        assert_eq!(
            s.get("/api/v1/users", &key).await.0,
            StatusCode::UNAUTHORIZED,
            "{how}"
        );
        let kid = k["id"].as_str().unwrap();
        let (_, kv) = s.get(&format!("/api/v1/apikeys/{kid}"), &t.owner).await;
        assert!(kv["revoked_at"].is_string(), "{how}: {kv}");
        if how == "deactivate" {
            // Reactivating does not bring the revoked key back.
            scim(
                &s,
                Method::PATCH,
                &format!("/Users/{id}"),
                &token,
                Some(json!({"Operations": [{"op": "Replace", "path": "active", "value": "True"}], "schemas": [PATCH]})),
            )
            .await;
            assert_eq!(
                s.get("/api/v1/users", &key).await.0,
                StatusCode::UNAUTHORIZED
            );
            let e = crate::audit::events(&s, &t.owner, "&action=scim.user.deprovision").await;
            assert_eq!(e[0]["details"]["sessions_revoked"], 1, "{e:?}");
            assert_eq!(e[0]["details"]["api_keys_revoked"], 1, "{e:?}");
        }
    }
    // Owners are out of SCIM's reach.
    let (st, _, v) = scim(
        &s,
        Method::PATCH,
        &format!("/Users/{}", t.owner_id),
        &token,
        Some(json!({"Operations": [{"op": "Replace", "path": "active", "value": false}], "schemas": [PATCH]})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_scim_error(&v, 403, Some("mutability"));
    let (st, _, _) = scim(
        &s,
        Method::DELETE,
        &format!("/Users/{}", t.owner_id),
        &token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/v1/me", &t.owner).await.0, StatusCode::OK);
}

async fn tenants_are_isolated(b: Backend) {
    let s = Server::start(b).await;
    let a = tenant_fixture(&s, "scim-ta").await;
    let bt = tenant_fixture(&s, "scim-tb").await;
    let ta = scim_token(&s, &a.owner).await;
    let tb = scim_token(&s, &bt.owner).await;
    let (_, _, u) = scim(
        &s,
        Method::POST,
        "/Users",
        &ta,
        Some(json!({"userName": "ann@scim-ta.test", "emails": [{"value": "ann@scim-ta.test", "type": "work"}]})),
    )
    .await;
    let uid = u["id"].as_str().unwrap().to_owned();
    let (_, _, g) = scim(
        &s,
        Method::POST,
        "/Groups",
        &ta,
        Some(json!({"displayName": "A team", "members": [{"value": uid}]})),
    )
    .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    // B's token sees nothing of A, by id, by filter or in a list, and cannot change it.
    for (m, p, body) in [
        (Method::GET, format!("/Users/{uid}"), None),
        (Method::GET, format!("/Users/{}", a.member_id), None),
        (
            Method::PUT,
            format!("/Users/{uid}"),
            Some(json!({"userName": "x@y.nl"})),
        ),
        (
            Method::PATCH,
            format!("/Users/{uid}"),
            Some(
                json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": false}]}),
            ),
        ),
        (Method::DELETE, format!("/Users/{uid}"), None),
        (Method::GET, format!("/Groups/{gid}"), None),
        (
            Method::PATCH,
            format!("/Groups/{gid}"),
            Some(json!({"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]})),
        ),
        (Method::DELETE, format!("/Groups/{gid}"), None),
    ] {
        let (st, _, v) = scim(&s, m.clone(), &p, &tb, body).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{m} {p}: {v}");
    }
    let (_, _, v) = scim(
        &s,
        Method::GET,
        &format!("/Users?filter={}", enc("userName eq \"ann@scim-ta.test\"")),
        &tb,
        None,
    )
    .await;
    assert_eq!(v["totalResults"], 0, "{v}");
    let (_, _, v) = scim(&s, Method::GET, "/Users", &tb, None).await;
    assert!(
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != uid),
        "{v}"
    );
    let (_, _, v) = scim(&s, Method::GET, "/Groups", &tb, None).await;
    assert_eq!(v["totalResults"], 0, "{v}");
    // Nor can B put A's user into its own group.
    let (st, _, v) = scim(
        &s,
        Method::POST,
        "/Groups",
        &tb,
        Some(json!({"displayName": "B team", "members": [{"value": uid}]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // A's user and group are untouched.
    let (_, _, v) = scim(&s, Method::GET, &format!("/Groups/{gid}"), &ta, None).await;
    assert_eq!(v["members"][0]["value"], uid, "{v}");
    assert_eq!(kluis_user(&s, &a.owner, &uid).await["status"], "active");
    // A token carrying B's tenant id with A's secret is nobody.
    let Auth::Bearer(a_secret) = &ta else {
        unreachable!()
    };
    let secret = a_secret.rsplit('_').next().unwrap();
    let forged = format!("kluisscim_{}_{secret}", bt.id.replace('-', ""));
    let (st, _, v) = scim(&s, Method::GET, "/Users", &Auth::Bearer(forged), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
}

async fn token_admin_and_authentication(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "scim-k").await;
    // Only signed-in owners/admins manage the token: not a member, not an API key.
    assert_eq!(
        s.post("/api/v1/scim/token", &t.member, json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post("/api/v1/scim/token", &t.key, json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/api/v1/scim/settings", &t.key).await.0,
        StatusCode::FORBIDDEN
    );
    // No owner role through SCIM.
    let (st, v) = s
        .call(Method::PUT, "/api/v1/scim/settings", &t.owner, Some(json!({"default_role": "member", "mappings": [{"group": "Bazen", "role": "owner"}]})))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/scim/settings",
            &t.owner,
            Some(json!({"default_role": "owner", "mappings": []})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    let first = scim_token(&s, &t.owner).await;
    let (_, v) = s.get("/api/v1/scim/settings", &t.owner).await;
    assert_eq!(v["token_active"], true, "{v}");
    // The SCIM endpoint accepts the token and nothing else: no API key, no cookie, no nothing.
    assert_eq!(
        scim(&s, Method::GET, "/Users", &first, None).await.0,
        StatusCode::OK
    );
    for auth in [
        Auth::None,
        t.key.clone(),
        Auth::Bearer("kluisscim_nope".into()),
    ] {
        let (st, h, v) = scim(&s, Method::GET, "/Users", &auth, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(h["content-type"], "application/scim+json");
        assert_scim_error(&v, 401, None);
    }
    let res = s
        .client
        .get(s.url("/scim/v2/Users"))
        .header(
            "cookie",
            match &t.owner {
                Auth::Session { cookie, .. } => format!("__Host-kluis_session={cookie}"),
                _ => unreachable!(),
            },
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // ... and the token is refused by the rest of the API.
    assert_eq!(
        s.get("/api/v1/users", &first).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/api/v1/me", &first).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Rotation: the old token stops at once; revocation stops the new one.
    let second = scim_token(&s, &t.owner).await;
    assert_eq!(
        scim(&s, Method::GET, "/Users", &first, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        scim(&s, Method::GET, "/Users", &second, None).await.0,
        StatusCode::OK
    );
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/scim/token", &t.owner, None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        scim(&s, Method::GET, "/Users", &second, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let e = crate::audit::events(&s, &t.owner, "&action=scim.token.create").await;
    assert_eq!(e.len(), 2);
    assert_eq!(e[1]["details"]["rotated"], true);
    assert_eq!(
        crate::audit::events(&s, &t.owner, "&action=scim.token.revoke")
            .await
            .len(),
        1
    );

    // Discovery, content type, unknown endpoints and methods.
    let third = scim_token(&s, &t.owner).await;
    let (st, h, v) = scim(&s, Method::GET, "/ServiceProviderConfig", &third, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "application/scim+json");
    assert_eq!(v["patch"]["supported"], true);
    assert_eq!(v["bulk"]["supported"], false);
    let (_, _, v) = scim(&s, Method::GET, "/ResourceTypes", &third, None).await;
    assert_eq!(v["totalResults"], 2);
    let (_, _, v) = scim(&s, Method::GET, "/Schemas", &third, None).await;
    assert_eq!(v["totalResults"], 2);
    let (st, _, v) = scim(&s, Method::GET, "/Nope", &third, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_scim_error(&v, 404, None);
    let (st, _, _) = scim(&s, Method::DELETE, "/ServiceProviderConfig", &third, None).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    // A body over the API's size limit is refused like everywhere else.
    let big = json!({"userName": "x".repeat(2 * 1024 * 1024)});
    let (st, _, _) = scim(&s, Method::POST, "/Users", &third, Some(big)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
}

/// The sealed SCIM attributes move to a new data key with the rest, so old key versions can be
/// disabled afterwards and provisioned users still read back.
async fn attributes_follow_data_key_rotation(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "scim-r").await;
    let token = scim_token(&s, &t.owner).await;
    let (st, _, u) = scim(
        &s,
        Method::POST,
        "/Users",
        &token,
        Some(json!({"userName": "Rik", "externalId": "ext-rik",
                    "name": {"givenName": "Rik", "familyName": "Draai"},
                    "emails": [{"value": "rik@scim-r.test", "type": "work"}]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    let uid = u["id"].as_str().unwrap().to_owned();
    let out = s.cli(&["keys", "rotate-dek", "--tenant", "scim-r"], None);
    assert!(out.contains("under data key version 2"), "{out}");
    s.cli(
        &[
            "keys",
            "min-decryption-version",
            "--tenant",
            "scim-r",
            "--version",
            "2",
        ],
        None,
    );
    let (st, _, v) = scim(&s, Method::GET, &format!("/Users/{uid}"), &token, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["name"]["familyName"], "Draai");
    let (_, _, v) = scim(
        &s,
        Method::GET,
        &format!("/Users?filter={}", enc("externalId eq \"ext-rik\"")),
        &token,
        None,
    )
    .await;
    assert_eq!(v["totalResults"], 1, "{v}");
}

// ---- conformance -------------------------------------------------------------------------------

const REQUIRE_SCIM_ENV: &str = "KLUIS_REQUIRE_SCIM";

/// The PyPI `scim2-tester` suite (pinned in .ci/run) against the running server: every check
/// must pass (optional features the server does not offer are declared unsupported in its
/// ServiceProviderConfig, so the tester skips them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_conformance() {
    let have = std::process::Command::new("python3")
        .args(["-c", "import scim2_tester, httpx2"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        let msg = "skipped: SCIM conformance — python3 with scim2-tester[httpx2] not found (pip install 'scim2-tester[httpx2]==0.5.2')";
        if std::env::var(REQUIRE_SCIM_ENV).is_ok_and(|v| v.trim() == "1") {
            panic!("{msg} ({REQUIRE_SCIM_ENV}=1 is set, so this is an error)");
        }
        println!("{msg}");
        return;
    }
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "scim-c").await;
    let Auth::Bearer(token) = scim_token(&s, &t.owner).await else {
        unreachable!()
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/scim_conformance.py");
    let cert = s.dir.path().join("tls/cert.pem");
    let out = tokio::task::spawn_blocking({
        let base = format!("https://localhost:{}/scim/v2", s.port);
        move || {
            std::process::Command::new("python3")
                .arg(script)
                .arg(base)
                .arg(cert)
                .env("KLUIS_SCIM_TOKEN", token)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "scim2-tester failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("failed: 0"), "{stdout}");
}
