//! API behaviour on both engines: malformed input, sessions and CSRF, API keys, roles,
//! password policy, tenant suspension.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, PASSWORD, Server, code, on_both, tenant_fixture};

on_both!(
    malformed_input_gets_4xx_and_writes_nothing,
    sessions_csrf_logout_and_timeouts,
    api_keys_scopes_rotation_revocation,
    roles_are_enforced,
    password_policy_rules_and_tenant_strictening,
    suspended_tenant_is_locked_out_and_platform_api,
    key_changes_hold_in_every_process_when_they_return,
    the_console_lists_disables_and_revokes,
);

async fn user_count(s: &Server, auth: &Auth) -> usize {
    let (st, v) = s.get("/api/v1/users?limit=200", auth).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().len()
}

async fn raw(
    s: &Server,
    auth: &Auth,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut rb = s.client.post(s.url("/api/v1/users")).body(body);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    rb = match auth {
        Auth::Bearer(k) => rb.bearer_auth(k),
        _ => unreachable!(),
    };
    let res = rb.send().await.unwrap();
    let st = res.status();
    (st, res.json().await.unwrap_or(Value::Null))
}

async fn malformed_input_gets_4xx_and_writes_nothing(b: Backend) {
    let s = Server::start_with(b, &[("KLUIS_BODY_LIMIT_BYTES", "4096")]).await;
    let t = tenant_fixture(&s, "malformed").await;
    let before = user_count(&s, &t.key).await;
    let json_ct = Some("application/json");
    // (case, content type, body, expected status, expected code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, StatusCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "not json",
            json_ct,
            b"{\"email\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "bad utf-8",
            json_ct,
            b"{\"email\": \"\xff\xfe@x.test\", \"display_name\": \"x\", \"role\": \"member\"}"
                .to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "wrong type",
            json_ct,
            br#"{"email": 5, "display_name": "x", "role": "member"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "unknown role",
            json_ct,
            br#"{"email": "a@x.test", "display_name": "x", "role": "god"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "unknown field",
            json_ct,
            br#"{"email": "a@x.test", "display_name": "x", "role": "member", "is_admin": true}"#
                .to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
        ),
        (
            "missing field",
            json_ct,
            br#"{"email": "a@x.test", "role": "member"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (
            "no content type",
            None,
            br#"{"email": "a@x.test", "display_name": "x", "role": "member"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "oversized",
            json_ct,
            format!(
                r#"{{"email": "a@x.test", "display_name": "{}", "role": "member"}}"#,
                "x".repeat(8192)
            )
            .into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "bad email",
            json_ct,
            br#"{"email": "not-an-email", "display_name": "x", "role": "member"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            "control chars",
            json_ct,
            br#"{"email": "a@x.test", "display_name": "x\u0000y", "role": "member"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
        ),
    ];
    for (name, ct, body, want_status, want_code) in cases {
        let (st, v) = raw(&s, &t.key, ct, body).await;
        assert_eq!((st, code(&v)), (want_status, want_code), "{name}: {v}");
    }
    // Loose input found in a newcomer's tour: a charset other than UTF-8, a key given twice,
    // and an unknown top-level field named once (not `is_admin.is_admin`).
    let user = br#"{"email": "a@x.test", "display_name": "x", "role": "member"}"#.to_vec();
    let (st, v) = raw(
        &s,
        &t.key,
        Some("application/json; charset=latin1"),
        user.clone(),
    )
    .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_charset"),
        "{v}"
    );
    // charset=utf-8 passes the media-type check (this body then fails on its role: nothing
    // is written, the count below still holds).
    let bad_role = br#"{"email": "a@x.test", "display_name": "x", "role": "god"}"#.to_vec();
    let (st, v) = raw(
        &s,
        &t.key,
        Some("application/json; charset=UTF-8"),
        bad_role,
    )
    .await;
    assert_eq!(code(&v), "invalid_field", "{st} {v}");
    drop(user);
    let twice =
        br#"{"email": "b@x.test", "email": "c@x.test", "display_name": "x", "role": "member"}"#;
    let (st, v) = raw(&s, &t.key, json_ct, twice.to_vec()).await;
    assert_eq!(
        (st, code(&v), v["error"]["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate_field",
            Some("email")
        ),
        "{v}"
    );
    let extra =
        br#"{"email": "d@x.test", "display_name": "x", "role": "member", "is_admin": true}"#;
    let (_, v) = raw(&s, &t.key, json_ct, extra.to_vec()).await;
    assert_eq!(v["error"]["field"], "is_admin", "{v}");
    // Wrong types in the path and query string.
    let (st, v) = s.get("/api/v1/users/not-a-uuid", &t.key).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_id"));
    let (st, v) = s.get("/api/v1/users?limit=lots", &t.key).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));
    // A page size outside 1..=200 is refused and named, not clamped silently.
    for path in [
        "/api/v1/users?limit=0",
        "/api/v1/users?limit=1000000",
        "/api/v1/contacts?limit=201",
        "/api/v1/apikeys?limit=0",
    ] {
        let (st, v) = s.get(path, &t.owner).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit"),
            "{path}: {v}"
        );
        assert_eq!(v["error"]["field"], "limit", "{path}: {v}");
    }
    let (st, v) = s.get("/api/v1/users?cursor=garbage", &t.key).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_cursor")
    );
    assert_eq!(
        user_count(&s, &t.key).await,
        before,
        "a rejected request wrote something"
    );
    // Duplicate email: 409 with a stable code, still nothing written.
    let (st, v) = s
        .post(
            "/api/v1/users",
            &t.key,
            json!({"email": "MEMBER@malformed.test", "display_name": "d", "role": "member"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "email_taken"));
    assert_eq!(user_count(&s, &t.key).await, before);
}

async fn sessions_csrf_logout_and_timeouts(b: Backend) {
    let s = Server::start_with(b, &[("KLUIS_SESSION_IDLE_TIMEOUT_SECS", "3")]).await;
    let t = tenant_fixture(&s, "sessies").await;
    let new_user = json!({"email": "x@sessies.test", "display_name": "X", "role": "member"});
    // Cookie without CSRF header: reads work, writes are refused.
    let (st, _) = s.get("/api/v1/me", &t.owner.without_csrf()).await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .post("/api/v1/users", &t.owner.without_csrf(), new_user.clone())
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "csrf_failed"));
    let Auth::Session { cookie, .. } = &t.owner else {
        unreachable!()
    };
    let wrong = Auth::Session {
        cookie: cookie.clone(),
        csrf: "wrong".into(),
    };
    let (st, v) = s.post("/api/v1/users", &wrong, new_user.clone()).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "csrf_failed"));
    // Cross-site request with a valid CSRF token is refused as well.
    let res = s
        .client
        .post(s.url("/api/v1/users"))
        .header("cookie", format!("__Host-kluis_session={cookie}"))
        .header(
            "x-csrf-token",
            match &t.owner {
                Auth::Session { csrf, .. } => csrf.clone(),
                _ => unreachable!(),
            },
        )
        .header("sec-fetch-site", "cross-site")
        .json(&new_user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (st, _) = s.post("/api/v1/users", &t.owner, new_user).await;
    assert_eq!(st, StatusCode::CREATED);

    // Two sessions; sign out everywhere ends both.
    let second = s.login("sessies", "owner@sessies.test", PASSWORD).await;
    let (_, v) = s.get("/api/v1/me/sessions", &second).await;
    let v = v["items"].clone();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(
        v.as_array()
            .unwrap()
            .iter()
            .filter(|x| x["current"] == true)
            .count(),
        1
    );
    let (st, _) = s.post("/api/v1/auth/logout-all", &second, json!({})).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    for a in [&t.owner, &second] {
        let (st, _) = s.get("/api/v1/me", a).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    // Logout ends one session.
    let one = s.login("sessies", "owner@sessies.test", PASSWORD).await;
    let (st, _) = s.post("/api/v1/auth/logout", &one, json!({})).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/v1/me", &one).await.0, StatusCode::UNAUTHORIZED);

    // Idle timeout (3 s here): a session used within the window lives, then dies when idle.
    let idle = s.login("sessies", "owner@sessies.test", PASSWORD).await;
    assert_eq!(s.get("/api/v1/me", &idle).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(s.get("/api/v1/me", &idle).await.0, StatusCode::UNAUTHORIZED);

    // Password change ends the other sessions, keeps this one.
    let keep = s.login("sessies", "member@sessies.test", PASSWORD).await;
    let other = s.login("sessies", "member@sessies.test", PASSWORD).await;
    let (st, v) = s
        .post(
            "/api/v1/me/password",
            &keep,
            json!({"current_password": PASSWORD, "new_password": "Nieuw-Wachtw00rd!"}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(s.get("/api/v1/me", &keep).await.0, StatusCode::OK);
    assert_eq!(
        s.get("/api/v1/me", &other).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Unknown account and wrong password give the same answer.
    let (st1, v1) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "sessies", "email": "nobody@sessies.test", "password": PASSWORD}),
        )
        .await;
    let (st2, v2) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "sessies", "email": "member@sessies.test", "password": PASSWORD}),
        )
        .await;
    let (st3, v3) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "no-such-org", "email": "member@sessies.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!((st1, &v1), (st2, &v2));
    assert_eq!((st1, &v1), (st3, &v3));
}

async fn api_keys_scopes_rotation_revocation(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "sleutels").await;
    // Created by the owner with users:read only.
    let (st, v) = s
        .post(
            "/api/v1/apikeys",
            &t.owner,
            json!({"name": "reader", "scopes": ["users:read"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let reader = Auth::Bearer(v["secret"].as_str().unwrap().to_owned());
    assert!(v["secret"].as_str().unwrap().starts_with("kluis_"));
    // Shown once: viewing the key gives no secret.
    let (_, view) = s.get(&format!("/api/v1/apikeys/{id}"), &t.owner).await;
    assert!(view.get("secret").is_none(), "{view}");
    // Scope enforcement.
    assert_eq!(
        s.get(&format!("/api/v1/users/{}", t.member_id), &reader)
            .await
            .0,
        StatusCode::OK
    );
    let (st, v) = s
        .post(
            "/api/v1/users",
            &reader,
            json!({"email": "k@sleutels.test", "display_name": "K", "role": "member"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(
        s.get("/api/v1/settings/password-policy", &reader).await.0,
        StatusCode::FORBIDDEN
    );
    // Keys can never manage keys, whatever their scopes.
    assert_eq!(
        s.get("/api/v1/apikeys", &t.key).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(
            "/api/v1/apikeys",
            &t.key,
            json!({"name": "x", "scopes": ["users:read"]})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // A member cannot create keys; nobody grants scopes beyond their own.
    assert_eq!(
        s.post(
            "/api/v1/apikeys",
            &t.member,
            json!({"name": "x", "scopes": ["users:read"]})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (st, v) = s
        .post(
            "/api/v1/apikeys",
            &t.owner,
            json!({"name": "x", "scopes": ["users:delete"]}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
    );
    // Rotation with the default overlap (0): old secret dead at once, new one works.
    let (st, v) = s
        .post(&format!("/api/v1/apikeys/{id}/rotate"), &t.owner, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let rotated = Auth::Bearer(v["secret"].as_str().unwrap().to_owned());
    assert_eq!(
        s.get("/api/v1/users", &reader).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.get("/api/v1/users", &rotated).await.0, StatusCode::OK);
    // Revocation.
    assert_eq!(
        s.call(
            Method::DELETE,
            &format!("/api/v1/apikeys/{id}"),
            &t.owner,
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get("/api/v1/users", &rotated).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, view) = s.get(&format!("/api/v1/apikeys/{id}"), &t.owner).await;
    assert!(view["revoked_at"].is_string());
    // Pagination over keys.
    for i in 0..3 {
        s.post(
            "/api/v1/apikeys",
            &t.owner,
            json!({"name": format!("k{i}"), "scopes": ["users:read"]}),
        )
        .await;
    }
    let (_, p1) = s.get("/api/v1/apikeys?limit=2", &t.owner).await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = s
        .get(
            &format!("/api/v1/apikeys?limit=2&cursor={cursor}"),
            &t.owner,
        )
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 2);
    let (_, p3) = s
        .get(
            &format!(
                "/api/v1/apikeys?limit=2&cursor={}",
                p2["next_cursor"].as_str().unwrap()
            ),
            &t.owner,
        )
        .await;
    assert_eq!(p3["items"].as_array().unwrap().len(), 1);
    assert!(p3["next_cursor"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_rotation_overlap_is_configurable() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[("KLUIS_API_KEY_ROTATION_OVERLAP_SECS", "2")],
    )
    .await;
    let t = tenant_fixture(&s, "overlap").await;
    let (_, v) = s
        .post(
            &format!("/api/v1/apikeys/{}/rotate", t.key_id),
            &t.owner,
            json!({}),
        )
        .await;
    let new = Auth::Bearer(v["secret"].as_str().unwrap().to_owned());
    assert_eq!(
        s.get("/api/v1/users", &t.key).await.0,
        StatusCode::OK,
        "old secret valid during the overlap"
    );
    assert_eq!(s.get("/api/v1/users", &new).await.0, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        s.get("/api/v1/users", &t.key).await.0,
        StatusCode::UNAUTHORIZED,
        "old secret dead after the overlap"
    );
    assert_eq!(s.get("/api/v1/users", &new).await.0, StatusCode::OK);
}

async fn roles_are_enforced(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "rollen").await;
    let mk = |email: &str, role: &str| json!({"email": email, "display_name": "U", "role": role, "password": PASSWORD});
    // Member: may read users, nothing else.
    assert_eq!(s.get("/api/v1/users", &t.member).await.0, StatusCode::OK);
    assert_eq!(
        s.post("/api/v1/users", &t.member, mk("a@rollen.test", "member"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/api/v1/settings/password-policy", &t.member).await.0,
        StatusCode::FORBIDDEN
    );
    // Admin: manages users, but cannot create or touch owners.
    let (st, v) = s
        .post("/api/v1/users", &t.owner, mk("admin@rollen.test", "admin"))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let admin = s.login("rollen", "admin@rollen.test", PASSWORD).await;
    assert_eq!(
        s.post("/api/v1/users", &admin, mk("b@rollen.test", "manager"))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        s.post("/api/v1/users", &admin, mk("c@rollen.test", "owner"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let owner_path = format!("/api/v1/users/{}", t.owner_id);
    assert_eq!(
        s.call(
            Method::PATCH,
            &owner_path,
            &admin,
            Some(json!({"role": "member"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(Method::DELETE, &owner_path, &admin, None).await.0,
        StatusCode::FORBIDDEN
    );
    // The last active owner cannot be demoted, disabled or deleted, even by themselves.
    let (st, v) = s
        .call(
            Method::PATCH,
            &owner_path,
            &t.owner,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "last_owner"));
    let (st, v) = s
        .call(
            Method::PATCH,
            &owner_path,
            &t.owner,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "last_owner"));
    assert_eq!(
        s.call(Method::DELETE, &owner_path, &t.owner, None).await.0,
        StatusCode::CONFLICT
    );
    // Disabling a user ends their sessions at once; deleting removes them.
    let member_path = format!("/api/v1/users/{}", t.member_id);
    let (st, v) = s
        .call(
            Method::PATCH,
            &member_path,
            &admin,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        s.get("/api/v1/me", &t.member).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, _) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "rollen", "email": "member@rollen.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.call(Method::DELETE, &member_path, &admin, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.get(&member_path, &admin).await.0, StatusCode::NOT_FOUND);
    // The API keys a person created go with them: disabled or deleted, their keys stop working
    // in the same transaction (as with SCIM deprovisioning), and the event says how many.
    for (email, how) in [
        ("keys1@rollen.test", "disable"),
        ("keys2@rollen.test", "delete"),
    ] {
        let (st, u) = s.post("/api/v1/users", &t.owner, mk(email, "admin")).await;
        assert_eq!(st, StatusCode::CREATED, "{u}");
        let path = format!("/api/v1/users/{}", u["id"].as_str().unwrap());
        let maker = s.login("rollen", email, PASSWORD).await;
        let (st, k) = s
            .post(
                "/api/v1/apikeys",
                &maker,
                json!({"name": "integration", "scopes": ["users:read"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{k}");
        let key = Auth::Bearer(k["secret"].as_str().unwrap().to_owned());
        assert_eq!(s.get("/api/v1/users", &key).await.0, StatusCode::OK);
        let (st, action) = match how {
            "disable" => (
                s.call(
                    Method::PATCH,
                    &path,
                    &t.owner,
                    Some(json!({"status": "disabled"})),
                )
                .await
                .0,
                "user.update",
            ),
            _ => (
                s.call(Method::DELETE, &path, &t.owner, None).await.0,
                "user.delete",
            ),
        };
        assert!(st.is_success(), "{how}: {st}");
        assert_eq!(
            s.get("/api/v1/users", &key).await.0,
            StatusCode::UNAUTHORIZED,
            "{how}"
        );
        let e = crate::audit::events(&s, &t.owner, &format!("&action={action}")).await;
        let last = e.last().unwrap();
        assert_eq!(last["details"]["api_keys_revoked"], 1, "{how}: {last}");
    }
    // Invited user (no password) exists but cannot sign in.
    let (st, v) = s
        .post(
            "/api/v1/users",
            &admin,
            json!({"email": "invite@rollen.test", "display_name": "I", "role": "read_only"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["has_password"], false);
}

async fn password_policy_rules_and_tenant_strictening(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "beleid").await;
    let create = |pw: &str, n: usize| json!({"email": format!("u{n}@beleid.test"), "display_name": "U", "role": "member", "password": pw});
    let cases = [
        ("Kort1!", "password_too_short"),
        ("geenhoofdletter1!", "password_missing_uppercase"),
        ("GEENKLEINE1!", "password_missing_lowercase"),
        ("GeenCijfer!!", "password_missing_digit"),
        ("GeenSpeciaal12", "password_missing_special"),
        ("P@ssw0rd", "password_common"),
    ];
    for (i, (pw, want)) in cases.iter().enumerate() {
        let (st, v) = s.post("/api/v1/users", &t.owner, create(pw, i)).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, *want),
            "{pw}: {v}"
        );
        assert_eq!(v["error"]["field"], "password");
        assert!(
            v["error"]["message"].as_str().unwrap().len() > 10,
            "message names the rule"
        );
    }
    let policy = |min: u32, special: bool| json!({"min_length": min, "require_upper": true, "require_lower": true, "require_digit": true, "require_special": special, "reject_common": true});
    // Weaker than the baseline: refused.
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/password-policy",
            &t.owner,
            Some(policy(6, true)),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy_weaker_than_baseline"
        )
    );
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/password-policy",
            &t.owner,
            Some(policy(12, false)),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "policy_weaker_than_baseline"
        )
    );
    // Stricter: accepted and enforced.
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/password-policy",
            &t.owner,
            Some(policy(16, true)),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .post("/api/v1/users", &t.owner, create(PASSWORD, 10))
        .await; // 15 chars
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "password_too_short"),
        "{v}"
    );
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.owner,
            create("Veel-Langer-Wachtw00rd!", 11),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, v) = s.get("/api/v1/settings/password-policy", &t.key).await;
    assert_eq!(v["min_length"], 16);
}

async fn suspended_tenant_is_locked_out_and_platform_api(b: Backend) {
    let s = Server::start(b).await;
    let a = tenant_fixture(&s, "platform-a").await;
    let b = tenant_fixture(&s, "platform-b").await;
    let platform = s.platform_key();
    // Tenant credentials never reach platform routes; the platform key does.
    assert_eq!(
        s.get("/api/v1/platform/tenants", &a.key).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/api/v1/platform/tenants", &a.owner).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, v) = s.get("/api/v1/platform/tenants", &platform).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (st, v) = s
        .post(
            "/api/v1/platform/tenants",
            &platform,
            json!({"slug": "nieuw", "name": "Nieuw BV"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s
        .post(
            "/api/v1/platform/tenants",
            &platform,
            json!({"slug": "nieuw", "name": "Dubbel"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "slug_taken"));
    // A platform key is not a tenant credential either.
    assert_eq!(
        s.get("/api/v1/users", &platform).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (st, v) = s
        .post(
            &format!("/api/v1/platform/tenants/{}/suspend", a.id),
            &platform,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"], "suspended");
    let (st, v) = s.get("/api/v1/users", &a.key).await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "tenant_suspended"));
    assert_eq!(s.get("/api/v1/me", &a.owner).await.0, StatusCode::FORBIDDEN);
    let (st, _) = s
        .post(
            "/api/v1/auth/login",
            &Auth::None,
            json!({"tenant": "platform-a", "email": "owner@platform-a.test", "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // The other tenant is untouched.
    assert_eq!(s.get("/api/v1/users", &b.key).await.0, StatusCode::OK);
    // Resume restores access.
    s.post(
        &format!("/api/v1/platform/tenants/{}/resume", a.id),
        &platform,
        json!({}),
    )
    .await;
    assert_eq!(s.get("/api/v1/users", &a.key).await.0, StatusCode::OK);
    // The CLI does the same.
    s.cli(&["tenant", "suspend", "--tenant", "platform-b"], None);
    assert_eq!(
        s.get("/api/v1/users", &b.key).await.0,
        StatusCode::FORBIDDEN
    );
}

async fn new_reader_key(s: &Server, owner: &Auth, name: &str) -> (String, Auth) {
    let (st, k) = s
        .post(
            "/api/v1/apikeys",
            owner,
            json!({"name": name, "scopes": ["users:read"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    (
        k["id"].as_str().unwrap().to_owned(),
        Auth::Bearer(k["secret"].as_str().unwrap().to_owned()),
    )
}

/// Another server process on the same database has just verified (and remembered) a key:
/// revoking or rotating the key, or suspending its tenant, through this process stops the key
/// there too by the time the call returns (the API-key cache waits out its lifetime).
async fn key_changes_hold_in_every_process_when_they_return(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "tweede").await;
    let other = s.sibling().await;
    let users = "/api/v1/users";

    let (id, key) = new_reader_key(&s, &t.owner, "revoked").await;
    assert_eq!(other.get_status(users, &key).await, StatusCode::OK);
    let path = format!("/api/v1/apikeys/{id}");
    let st = s.call(Method::DELETE, &path, &t.owner, None).await.0;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        other.get_status(users, &key).await,
        StatusCode::UNAUTHORIZED,
        "revoked key still accepted by the other process"
    );

    let (id, key) = new_reader_key(&s, &t.owner, "rotated").await;
    assert_eq!(other.get_status(users, &key).await, StatusCode::OK);
    let (st, v) = s
        .post(&format!("/api/v1/apikeys/{id}/rotate"), &t.owner, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        other.get_status(users, &key).await,
        StatusCode::UNAUTHORIZED,
        "old secret still accepted by the other process"
    );
    let rotated = Auth::Bearer(v["secret"].as_str().unwrap().to_owned());
    assert_eq!(other.get_status(users, &rotated).await, StatusCode::OK);

    let platform = s.platform_key();
    let (st, v) = s
        .post(
            &format!("/api/v1/platform/tenants/{}/suspend", t.id),
            &platform,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        other.get_status(users, &rotated).await,
        StatusCode::FORBIDDEN,
        "suspended tenant's key still accepted by the other process"
    );
}

/// `kluis user list|disable`, `kluis apikey list|revoke` against the running server's
/// database: what the console changes holds in the server at once, and lists are JSON arrays.
async fn the_console_lists_disables_and_revokes(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "console").await;
    let users: Value =
        serde_json::from_str(&s.cli(&["user", "list", "--tenant", "console", "--json"], None))
            .unwrap();
    let emails: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(emails.contains(&"member@console.test"), "{users}");
    assert!(emails.contains(&"owner@console.test"), "{users}");
    let table = s.cli(&["user", "list", "--tenant", "console"], None);
    assert!(
        table.contains("member@console.test\tmember\tactive"),
        "{table}"
    );

    // Disable the member (email in any case): its session stops working.
    assert_eq!(s.get("/api/v1/me", &t.member).await.0, StatusCode::OK);
    let u: Value = serde_json::from_str(&s.cli(
        &[
            "user",
            "disable",
            "--tenant",
            "console",
            "--email",
            "Member@Console.TEST",
            "--json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(u["status"], "disabled", "{u}");
    assert_eq!(
        s.get("/api/v1/me", &t.member).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (ok, _, err) = s.cli_raw(
        &[
            "user",
            "disable",
            "--tenant",
            "console",
            "--email",
            "nobody@console.test",
        ],
        None,
    );
    assert!(!ok && err.contains("no user"), "{err}");

    // Keys: listed without secrets; a revoked key stops at once.
    let keys = s.cli(&["apikey", "list", "--tenant", "console", "--json"], None);
    assert!(keys.contains(&t.key_id), "{keys}");
    assert!(!keys.contains(&t.key_secret), "a list never shows a secret");
    assert_eq!(s.get("/api/v1/users", &t.key).await.0, StatusCode::OK);
    s.cli(
        &["apikey", "revoke", "--tenant", "console", "--id", &t.key_id],
        None,
    );
    assert_eq!(
        s.get("/api/v1/users", &t.key).await.0,
        StatusCode::UNAUTHORIZED
    );
    let keys: Value =
        serde_json::from_str(&s.cli(&["apikey", "list", "--tenant", "console", "--json"], None))
            .unwrap();
    assert!(keys[0]["revoked_at"].is_string(), "{keys}");

    // Completions for the shells people use.
    for shell in ["bash", "zsh", "fish"] {
        let script = s.cli(&["completions", shell], None);
        assert!(
            script.contains("apikey") && script.contains("revoke"),
            "{shell}"
        );
    }
}
