//! The audit trail: every change and sign-in leaves exactly its event, in the same
//! transaction; tampering with the stored log is detected and the broken event named;
//! checkpoints and proofs verify offline with nothing but the verifier key.

use std::collections::BTreeSet;

use kluis_crypto::{checkpoint, merkle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, PASSWORD, Server, code, on_both, tenant_fixture};

on_both!(
    every_mutating_route_is_audited,
    failed_logins_are_audited_without_password,
    tampering_is_detected_and_named,
    retention_truncates_with_a_signed_marker
);

/// The audit action each mutating route must produce. A mutating route missing here fails
/// the test: new routes must declare their audit event.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/setup", "tenant.create"),
    ("POST", "/api/v1/auth/login", "auth.login"),
    ("POST", "/api/v1/auth/logout", "auth.logout"),
    ("POST", "/api/v1/auth/logout-all", "auth.logout_all"),
    ("POST", "/api/v1/me/password", "auth.password_change"),
    // Second factors, lockout and session control: exercised with their events by mfa::*.
    ("POST", "/api/v1/auth/mfa", "auth.login"),
    ("POST", "/api/v1/me/mfa/totp", "mfa.totp.enrol_start"),
    ("POST", "/api/v1/me/mfa/totp/confirm", "mfa.totp.enrol"),
    ("POST", "/api/v1/me/mfa/disable", "mfa.totp.disable"),
    (
        "POST",
        "/api/v1/me/mfa/recovery-codes",
        "mfa.recovery_codes.regenerate",
    ),
    ("DELETE", "/api/v1/me/sessions/{id}", "auth.session_revoke"),
    (
        "DELETE",
        "/api/v1/users/{id}/sessions/{session_id}",
        "auth.session_revoke",
    ),
    ("POST", "/api/v1/users/{id}/mfa/reset", "mfa.reset"),
    ("POST", "/api/v1/users/{id}/unlock", "auth.unlock"),
    ("PUT", "/api/v1/settings/mfa", "settings.mfa.update"),
    // Exercised with their events by mail::* (need the aiosmtpd test relay).
    (
        "POST",
        "/api/v1/auth/password-reset",
        "auth.password_reset.request",
    ),
    (
        "POST",
        "/api/v1/auth/password-reset/complete",
        "auth.password_reset.complete",
    ),
    (
        "POST",
        "/api/v1/auth/invitation/accept",
        "user.invite.accept",
    ),
    (
        "POST",
        "/api/v1/users/{id}/invitation",
        "user.invite.resend",
    ),
    ("PUT", "/api/v1/settings/locale", "settings.locale.update"),
    ("POST", "/api/v1/users", "user.create"),
    ("PATCH", "/api/v1/users/{id}", "user.update"),
    ("DELETE", "/api/v1/users/{id}", "user.delete"),
    ("POST", "/api/v1/apikeys", "apikey.create"),
    ("POST", "/api/v1/apikeys/{id}/rotate", "apikey.rotate"),
    ("DELETE", "/api/v1/apikeys/{id}", "apikey.revoke"),
    (
        "PUT",
        "/api/v1/settings/password-policy",
        "settings.password_policy.update",
    ),
    // Exercised by import::csv_import_end_to_end (with every record's own event).
    ("POST", "/api/v1/imports", "crm.import"),
    // Exercised by encryption::customer_key_revoke_and_regrant (needs SoftHSM2).
    ("PUT", "/api/v1/keys/customer-key", "keys.customer_key.set"),
    (
        "DELETE",
        "/api/v1/keys/customer-key",
        "keys.customer_key.remove",
    ),
    // CRM routes: exercised with their events by crm::contacts_and_companies_end_to_end.
    ("POST", "/api/v1/contacts", "contact.create"),
    ("PATCH", "/api/v1/contacts/{id}", "contact.update"),
    ("DELETE", "/api/v1/contacts/{id}", "contact.delete"),
    (
        "POST",
        "/api/v1/contacts/{id}/versions/{revision}/restore",
        "contact.restore_version",
    ),
    ("POST", "/api/v1/companies", "company.create"),
    ("PATCH", "/api/v1/companies/{id}", "company.update"),
    ("DELETE", "/api/v1/companies/{id}", "company.delete"),
    (
        "POST",
        "/api/v1/companies/{id}/versions/{revision}/restore",
        "company.restore_version",
    ),
    ("POST", "/api/v1/deals", "deal.create"),
    ("PATCH", "/api/v1/deals/{id}", "deal.update"),
    ("DELETE", "/api/v1/deals/{id}", "deal.delete"),
    (
        "POST",
        "/api/v1/deals/{id}/versions/{revision}/restore",
        "deal.restore_version",
    ),
    // Exercised with their events by crm::notes_and_tasks.
    ("POST", "/api/v1/notes", "note.create"),
    ("PATCH", "/api/v1/notes/{id}", "note.update"),
    ("DELETE", "/api/v1/notes/{id}", "note.delete"),
    (
        "POST",
        "/api/v1/notes/{id}/versions/{revision}/restore",
        "note.restore_version",
    ),
    ("POST", "/api/v1/tasks", "task.create"),
    ("PATCH", "/api/v1/tasks/{id}", "task.update"),
    ("DELETE", "/api/v1/tasks/{id}", "task.delete"),
    (
        "POST",
        "/api/v1/tasks/{id}/versions/{revision}/restore",
        "task.restore_version",
    ),
    // Exercised with their events by crm::custom_fields_and_values.
    ("POST", "/api/v1/custom-fields", "custom_field.create"),
    ("PATCH", "/api/v1/custom-fields/{id}", "custom_field.update"),
    (
        "DELETE",
        "/api/v1/custom-fields/{id}",
        "custom_field.delete",
    ),
    (
        "POST",
        "/api/v1/custom-fields/{id}/restore",
        "custom_field.restore",
    ),
    ("POST", "/api/v1/custom-values", "custom_value.create"),
    ("PUT", "/api/v1/custom-values/{key}", "custom_value.update"),
    (
        "DELETE",
        "/api/v1/custom-values/{key}",
        "custom_value.delete",
    ),
    (
        "POST",
        "/api/v1/custom-values/{key}/restore",
        "custom_value.restore",
    ),
    // Exercised with their events by permissions::record_scope_holds_on_every_route_and_page
    // and permissions::field_rules_hold_in_every_output (unmask).
    ("POST", "/api/v1/roles", "role.create"),
    ("PATCH", "/api/v1/roles/{id}", "role.update"),
    ("DELETE", "/api/v1/roles/{id}", "role.delete"),
    ("PUT", "/api/v1/users/{id}/custom-role", "user.custom_role"),
    ("POST", "/api/v1/teams", "team.create"),
    ("PATCH", "/api/v1/teams/{id}", "team.update"),
    ("DELETE", "/api/v1/teams/{id}", "team.delete"),
    (
        "PUT",
        "/api/v1/teams/{id}/members/{user_id}",
        "team.member_add",
    ),
    (
        "DELETE",
        "/api/v1/teams/{id}/members/{user_id}",
        "team.member_remove",
    ),
    ("POST", "/api/v1/records/{id}/unmask", "contact.unmask"),
    // Exercised with their events by crm::tags_on_records.
    ("POST", "/api/v1/tags", "tag.create"),
    ("PATCH", "/api/v1/tags/{id}", "tag.update"),
    ("DELETE", "/api/v1/tags/{id}", "tag.delete"),
    ("POST", "/api/v1/tags/{id}/restore", "tag.restore"),
    // Exercised with their events by crm::tickets.
    ("POST", "/api/v1/tickets", "ticket.create"),
    ("PATCH", "/api/v1/tickets/{id}", "ticket.update"),
    ("DELETE", "/api/v1/tickets/{id}", "ticket.delete"),
    (
        "POST",
        "/api/v1/tickets/{id}/versions/{revision}/restore",
        "ticket.restore_version",
    ),
    // Exercised with their events by crm::deals_and_pipelines.
    ("POST", "/api/v1/pipelines", "pipeline.create"),
    ("PUT", "/api/v1/pipelines/{id}", "pipeline.update"),
    ("DELETE", "/api/v1/pipelines/{id}", "pipeline.delete"),
    (
        "POST",
        "/api/v1/trash/{id}/restore",
        "contact.restore / company.restore",
    ),
    (
        "DELETE",
        "/api/v1/trash/{id}",
        "contact.purge / company.purge",
    ),
    // Exercised by crm::sensitive_data_guard.
    (
        "PUT",
        "/api/v1/settings/sensitive-data",
        "settings.sensitive_data.update",
    ),
    // Exercised with its event by retention_pages::trash_retention_is_set_on_the_settings_page.
    (
        "PUT",
        "/api/v1/settings/trash-retention",
        "settings.trash_retention.update",
    ),
    // Exercised with their events by sso::sso_login_links_and_creates_users and
    // sso::sso_required_blocks_passwords.
    ("PUT", "/api/v1/settings/sso", "settings.sso.update"),
    ("DELETE", "/api/v1/settings/sso", "settings.sso.delete"),
    ("PUT", "/api/v1/users/{id}/break-glass", "user.break_glass"),
    (
        "DELETE",
        "/api/v1/users/{id}/break-glass",
        "user.break_glass",
    ),
    ("POST", "/api/v1/platform/tenants", "tenant.create"),
    (
        "POST",
        "/api/v1/platform/tenants/{id}/suspend",
        "tenant.suspend",
    ),
    (
        "POST",
        "/api/v1/platform/tenants/{id}/resume",
        "tenant.resume",
    ),
    // Exercised with their events by ratelimit::, allowlist:: and status:: (issue 18).
    (
        "PUT",
        "/api/v1/platform/tenants/{id}/rate-limits",
        "tenant.rate_limits.update",
    ),
    (
        "PUT",
        "/api/v1/settings/ip-allowlist",
        "settings.ip_allowlist.update",
    ),
    (
        "POST",
        "/api/v1/platform/status/notices",
        "status.notice.post",
    ),
    (
        "POST",
        "/api/v1/platform/status/notices/{id}/resolve",
        "status.notice.resolve",
    ),
    // Passkeys: exercised with their events by passkeys::*. A start only stores the ceremony
    // state (no event); its finish is audited.
    (
        "POST",
        "/api/v1/me/passkeys/register/start",
        "(none: ceremony)",
    ),
    (
        "POST",
        "/api/v1/me/passkeys/register/finish",
        "passkey.register",
    ),
    ("DELETE", "/api/v1/me/passkeys/{id}", "passkey.delete"),
    ("POST", "/api/v1/auth/mfa/passkey/start", "(none: ceremony)"),
    ("POST", "/api/v1/auth/mfa/passkey/finish", "auth.login"),
    ("POST", "/api/v1/auth/passkey/start", "(none: ceremony)"),
    ("POST", "/api/v1/auth/passkey/finish", "auth.login"),
    (
        "DELETE",
        "/api/v1/users/{id}/passkeys/{passkey_id}",
        "passkey.delete",
    ),
    // Files: exercised with their events by files::* (upload, download, rename, replace,
    // delete, restore, purge; infected uploads are `file.quarantine`).
    ("POST", "/api/v1/contacts/{id}/files", "file.upload"),
    ("POST", "/api/v1/companies/{id}/files", "file.upload"),
    ("POST", "/api/v1/deals/{id}/files", "file.upload"),
    ("POST", "/api/v1/tickets/{id}/files", "file.upload"),
    ("POST", "/api/v1/notes/{id}/files", "file.upload"),
    ("PATCH", "/api/v1/files/{id}", "file.rename"),
    ("DELETE", "/api/v1/files/{id}", "file.delete"),
    ("PUT", "/api/v1/files/{id}/content", "file.replace"),
    ("POST", "/api/v1/files/{id}/restore", "file.restore"),
    ("POST", "/api/v1/files/{id}/purge", "file.purge"),
    // Data-subject requests: exercised with their events by privacy::* (an erasure also
    // writes `<type>.purge` per record and redacts the events about the subject).
    ("POST", "/api/v1/privacy/requests", "privacy.request.create"),
    (
        "POST",
        "/api/v1/privacy/requests/{id}/export",
        "privacy.export",
    ),
    (
        "POST",
        "/api/v1/privacy/requests/{id}/erase",
        "privacy.erase",
    ),
    // Exercised with their events by privacy::retention_policy_is_set_reported_and_audited.
    (
        "PUT",
        "/api/v1/settings/retention",
        "settings.retention.update",
    ),
    (
        "POST",
        "/api/v1/settings/retention/dry-run",
        "retention.dry_run",
    ),
    // Incident register: exercised with their events by privacy::incident_register_*.
    ("POST", "/api/v1/platform/incidents", "incident.record"),
    (
        "POST",
        "/api/v1/platform/incidents/{id}/notify-customers",
        "incident.notify_customers",
    ),
    (
        "POST",
        "/api/v1/platform/incidents/{id}/authority-notified",
        "incident.authority_notified",
    ),
    (
        "POST",
        "/api/v1/platform/incidents/{id}/close",
        "incident.close",
    ),
    // SCIM admin routes: exercised with their events by scim::*.
    ("POST", "/api/v1/scim/token", "scim.token.create"),
    ("DELETE", "/api/v1/scim/token", "scim.token.revoke"),
    ("PUT", "/api/v1/scim/settings", "scim.settings.update"),
    // Exercised with their events by saml::* (need pysaml2 and xmlsec1).
    ("PUT", "/api/v1/settings/sso/saml", "settings.sso.update"),
    ("POST", "/sso/saml/{tenant}/acs", "auth.login"),
    // Support access: exercised with their events by support_access::* (the operator's
    // sign-in and sign-out in the platform log, the rest in the tenant's).
    ("POST", "/api/v1/operator/sessions", "operator.sign_in"),
    (
        "DELETE",
        "/api/v1/operator/sessions/current",
        "operator.sign_out",
    ),
    ("POST", "/api/v1/support-access/requests", "support.request"),
    (
        "POST",
        "/api/v1/support-access/requests/{id}/approve",
        "support.approve",
    ),
    (
        "POST",
        "/api/v1/support-access/requests/{id}/refuse",
        "support.refuse",
    ),
    ("POST", "/api/v1/support-access/grants", "support.grant"),
    (
        "POST",
        "/api/v1/support-access/grants/{id}/revoke",
        "support.revoke",
    ),
];

pub(crate) async fn events(s: &Server, auth: &Auth, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (st, v) = s
            .get(
                &format!("/api/v1/audit/events?limit=200{query}{cursor}"),
                auth,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        out.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

async fn check(s: &Server, auth: &Auth, action: &str, object: Option<String>) -> Value {
    let e = last_action(s, auth, action)
        .await
        .unwrap_or_else(|| panic!("no {action} event"));
    assert_eq!(e["outcome"], "success");
    if let Some(o) = object {
        assert_eq!(e["object_id"], o, "{action}: {e}");
    }
    assert_eq!(e["details"]["ip"], "127.0.0.1", "{action}: {e}");
    e
}

async fn last_action(s: &Server, auth: &Auth, action: &str) -> Option<Value> {
    events(s, auth, &format!("&action={action}")).await.pop()
}

async fn every_mutating_route_is_audited(b: Backend) {
    let s = Server::start(b).await;
    // Coverage: every mutating route of the OpenAPI document has an expected event.
    let (_, doc) = s.get("/api/v1/openapi.json", &Auth::None).await;
    let mut routes = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_uppercase();
            if matches!(m.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
                routes.insert((m, path.clone()));
            }
        }
    }
    let declared: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        routes, declared,
        "mutating routes and their expected audit events differ"
    );

    let t = tenant_fixture(&s, "audit").await;
    let owner = &t.owner;
    let (_, u) = s
        .post(
            "/api/v1/users",
            owner,
            json!({"email": "nieuw@audit.test", "display_name": "Nieuw", "role": "member"}),
        )
        .await;
    let uid = u["id"].as_str().unwrap().to_owned();
    let e = check(&s, owner, "user.create", Some(uid.clone())).await;
    assert_eq!(e["actor"], format!("user:{}", t.owner_id));
    s.call(
        Method::PATCH,
        &format!("/api/v1/users/{uid}"),
        owner,
        Some(json!({"display_name": "Hernoemd", "role": "read_only"})),
    )
    .await;
    let e = check(&s, owner, "user.update", Some(uid.clone())).await;
    assert_eq!(
        e["details"]["changed"]["display_name"],
        json!({"old": "Nieuw", "new": "Hernoemd"})
    );
    assert_eq!(
        e["details"]["changed"]["role"],
        json!({"old": "member", "new": "read_only"})
    );
    s.call(Method::DELETE, &format!("/api/v1/users/{uid}"), owner, None)
        .await;
    check(&s, owner, "user.delete", Some(uid)).await;
    let (_, k) = s
        .post(
            "/api/v1/apikeys",
            owner,
            json!({"name": "sync", "scopes": ["users:read"]}),
        )
        .await;
    let kid = k["id"].as_str().unwrap().to_owned();
    check(&s, owner, "apikey.create", Some(kid.clone())).await;
    s.get(&format!("/api/v1/apikeys/{kid}"), owner).await;
    check(&s, owner, "apikey.view", Some(kid.clone())).await;
    s.post(&format!("/api/v1/apikeys/{kid}/rotate"), owner, json!({}))
        .await;
    check(&s, owner, "apikey.rotate", Some(kid.clone())).await;
    s.call(
        Method::DELETE,
        &format!("/api/v1/apikeys/{kid}"),
        owner,
        None,
    )
    .await;
    check(&s, owner, "apikey.revoke", Some(kid)).await;
    let policy = json!({"min_length": 12, "require_upper": true, "require_lower": true, "require_digit": true, "require_special": true, "reject_common": true});
    s.call(
        Method::PUT,
        "/api/v1/settings/password-policy",
        owner,
        Some(policy),
    )
    .await;
    let e = check(&s, owner, "settings.password_policy.update", None).await;
    assert_eq!(e["details"]["new"]["min_length"], 12);
    let second = s.login("audit", "member@audit.test", PASSWORD).await;
    check(&s, owner, "auth.login", Some(t.member_id.clone())).await;
    s.post(
        "/api/v1/me/password",
        &second,
        json!({"current_password": PASSWORD, "new_password": "Een-Nieuw-Wachtw00rd!"}),
    )
    .await;
    check(&s, owner, "auth.password_change", Some(t.member_id.clone())).await;
    s.post("/api/v1/auth/logout", &second, json!({})).await;
    check(&s, owner, "auth.logout", None).await;
    s.post("/api/v1/auth/logout-all", &t.member, json!({}))
        .await;
    // The member's other session was revoked by the password change: logout-all is refused (401)
    // and therefore writes nothing. Do it with a live session.
    let third = s
        .login("audit", "member@audit.test", "Een-Nieuw-Wachtw00rd!")
        .await;
    s.post("/api/v1/auth/logout-all", &third, json!({})).await;
    check(&s, owner, "auth.logout_all", Some(t.member_id.clone())).await;
    // Bulk reads are counted.
    s.get("/api/v1/users", &t.key).await;
    let e = check(&s, owner, "user.list", None).await;
    assert_eq!(e["actor"], format!("apikey:{}", t.key_id));
    assert!(e["details"]["count"].as_u64().unwrap() >= 2);

    // Platform actions land in the platform log.
    let platform = s.platform_key();
    let (_, nt) = s
        .post(
            "/api/v1/platform/tenants",
            &platform,
            json!({"slug": "nieuw-bv", "name": "Nieuw BV"}),
        )
        .await;
    let ntid = nt["id"].as_str().unwrap().to_owned();
    s.post(
        &format!("/api/v1/platform/tenants/{ntid}/suspend"),
        &platform,
        json!({}),
    )
    .await;
    s.post(
        &format!("/api/v1/platform/tenants/{ntid}/resume"),
        &platform,
        json!({}),
    )
    .await;
    let log = s.cli(&["audit", "events", "--tenant", "platform"], None);
    let actions: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for want in [
        "tenant.create",
        "tenant.suspend",
        "tenant.resume",
        "platform_key.create",
    ] {
        assert!(
            actions
                .iter()
                .any(|e| e["action"] == want && e["object_id"].is_string()),
            "platform log lacks {want}: {log}"
        );
    }
    let by_key = actions
        .iter()
        .find(|e| e["action"] == "tenant.suspend")
        .unwrap();
    assert!(
        by_key["actor"]
            .as_str()
            .unwrap()
            .starts_with("platform-key:"),
        "{by_key}"
    );

    // "Who had access to this account, from where, and when": one query.
    let logins = events(
        &s,
        owner,
        &format!("&action=auth.login&object_id={}", t.member_id),
    )
    .await;
    assert!(
        logins.len() >= 2
            && logins
                .iter()
                .all(|e| e["details"]["ip"] == "127.0.0.1" && e["at"].is_string())
    );
    // Reading the log requires the permission; members cannot.
    let (st, _) = s.get("/api/v1/audit/events", &third).await;
    assert!(st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN);
    let member = s
        .login("audit", "member@audit.test", "Een-Nieuw-Wachtw00rd!")
        .await;
    assert_eq!(
        s.get("/api/v1/audit/events", &member).await.0,
        StatusCode::FORBIDDEN
    );
    // Nothing in the product can edit or delete events: there is no such route (checked above,
    // every mutating route is listed) and the database refuses it (checked in the tamper test).
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/audit/events", owner, None)
        .await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    // The structured log carries events without personal data.
    let logs = s.logs();
    assert!(
        logs.contains("\"action\":\"user.create\""),
        "audit events go to the log stream"
    );
    assert!(!logs.contains("nieuw@audit.test") && !logs.contains("Hernoemd"));
    // Every route above left records and users in the state their newest events vouch for
    // (state verification finds nothing to report after real use).
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--state"], None);
    assert!(ok && !out.contains("BROKEN"), "{out}{err}");
}

async fn failed_logins_are_audited_without_password(b: Backend) {
    let s = Server::start(b).await;
    let t = tenant_fixture(&s, "mislukt").await;
    let wrong = "Fout-Wachtwoord-123!";
    for (tenant, email, reason) in [
        ("mislukt", "owner@mislukt.test", "wrong_password"),
        ("mislukt", "niemand@mislukt.test", "unknown_user"),
    ] {
        let (st, _) = s
            .post(
                "/api/v1/auth/login",
                &Auth::None,
                json!({"tenant": tenant, "email": email, "password": wrong}),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let e = events(&s, &t.owner, "&action=auth.login")
            .await
            .into_iter()
            .rev()
            .find(|e| e["outcome"] == "failure")
            .unwrap();
        assert_eq!(e["details"]["reason"], reason, "{e}");
        assert_eq!(e["details"]["ip"], "127.0.0.1");
        assert_eq!(e["details"]["email"], email);
        assert!(
            !e.to_string().contains(wrong),
            "the attempted password must never be logged"
        );
    }
    // Filter by IP (a blind index: IPs are sealed).
    assert!(
        events(&s, &t.owner, "&ip=127.0.0.1&action=auth.login")
            .await
            .len()
            >= 3
    );
    assert!(events(&s, &t.owner, "&ip=10.9.9.9").await.is_empty());
    // Unknown organisation: the platform log has it.
    s.post(
        "/api/v1/auth/login",
        &Auth::None,
        json!({"tenant": "bestaat-niet", "email": "x@y.test", "password": wrong}),
    )
    .await;
    let log = s.cli(
        &[
            "audit",
            "events",
            "--tenant",
            "platform",
            "--action",
            "auth.login",
        ],
        None,
    );
    assert!(
        log.contains("unknown_organisation") && !log.contains(wrong),
        "{log}"
    );
    assert!(!s.logs().contains(wrong));
    assert!(!crate::secrets::contains(
        &s.database_dump().await,
        wrong.as_bytes()
    ));
}

/// A change and its event commit together or not at all: a failure injected right after both
/// were written leaves neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_and_event_are_one_transaction() {
    // The failpoint fires after the policy row AND its audit event were written, just before
    // commit (debug builds only).
    let s = Server::start_with(
        Backend::Sqlite,
        &[(
            "KLUIS_FAILPOINT",
            "after-audit:settings.password_policy.update",
        )],
    )
    .await;
    let t = tenant_fixture(&s, "atomair").await;
    let policy = json!({"min_length": 20, "require_upper": true, "require_lower": true, "require_digit": true, "require_special": true, "reject_common": true});
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/password-policy",
            &t.owner,
            Some(policy),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal")
    );
    let (_, p) = s.get("/api/v1/settings/password-policy", &t.owner).await;
    assert_eq!(
        p["min_length"], 8,
        "the change was committed without its event"
    );
    let all = events(&s, &t.owner, "").await;
    assert!(
        all.iter()
            .all(|e| e["action"] != "settings.password_policy.update"),
        "the event was committed without its change"
    );
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as i64).collect::<Vec<_>>(),
        "sequence numbers stay contiguous"
    );
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "atomair"], None);
    assert!(ok, "{out}{err}");
}

/// The SQLite migration that creates the head-advancing insert trigger (its last statement).
pub(crate) const SQLITE_ADVANCE_HEAD_TRIGGER: &str =
    include_str!("../../../kluis-store/migrations/sqlite/0008_audit_write_path.sql");

pub(crate) fn sql(s: &Server, stmt: &str) {
    try_sql(s, stmt).unwrap();
}

/// Runs SQL directly against the database, as an attacker with database access would.
pub(crate) fn try_sql(s: &Server, stmt: &str) -> Result<(), String> {
    match &s.backend {
        Backend::Sqlite => {
            let out = std::process::Command::new("python3")
                .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", s.sqlite_path().to_str().unwrap(), stmt])
                .output()
                .unwrap();
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        }
        Backend::Postgres { .. } => kluis_testkit::pg_cluster()
            .unwrap()
            .superuser_query(&s.pg_database_name(), stmt)
            .map(drop)
            .map_err(|e| format!("{e:#}")),
    }
}

pub(crate) fn tenant_hex(s: &Server, slug: &str) -> String {
    let v: Value = serde_json::from_str(&s.cli(&["tenant", "list", "--json"], None)).unwrap();
    let id = v
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == slug)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    match s.backend {
        Backend::Sqlite => format!("x'{}'", id.replace('-', "")),
        Backend::Postgres { .. } => format!("'{id}'::uuid"),
    }
}

fn verify(s: &Server) -> (bool, String) {
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "knoei"], None);
    (ok, format!("{out}{err}"))
}

async fn tampering_is_detected_and_named(b: Backend) {
    let mut s = Server::start(b).await;
    let t = tenant_fixture(&s, "knoei").await;
    for i in 0..6 {
        s.post(
            "/api/v1/users",
            &t.owner,
            json!({"email": format!("u{i}@knoei.test"), "display_name": "U", "role": "member"}),
        )
        .await;
    }
    s.cli(&["audit", "checkpoint"], None);
    let (ok, out) = verify(&s);
    assert!(ok && out.contains("checkpoints verified"), "{out}");
    assert!(s.stop().success());
    let tid = tenant_hex(&s, "knoei");
    let is_pg = matches!(s.backend, Backend::Postgres { .. });
    // The attacker drops every trigger (on SQLite that includes the one that advances the head
    // counter on insert); `relock` puts that one back so the server can append again.
    let unlock = if is_pg {
        "ALTER TABLE audit_events DISABLE TRIGGER USER;"
    } else {
        "DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete; DROP TRIGGER IF EXISTS audit_events_advance_head;"
    };
    let relock = if is_pg {
        ""
    } else {
        SQLITE_ADVANCE_HEAD_TRIGGER
            .split_once("CREATE TRIGGER audit_events_advance_head")
            .map(|(_, t)| format!("CREATE TRIGGER audit_events_advance_head{t}"))
            .unwrap()
            .leak()
    };

    // The database itself refuses edits through the normal path (append-only trigger).
    let refused = try_sql(
        &s,
        &format!("UPDATE audit_events SET action = 'x' WHERE tenant_id = {tid} AND seq = 3;"),
    );
    assert!(
        refused.unwrap_err().contains("append-only"),
        "UPDATE on audit_events must be refused"
    );
    let refused = try_sql(
        &s,
        &format!("DELETE FROM audit_events WHERE tenant_id = {tid};"),
    );
    assert!(
        refused.unwrap_err().contains("append-only"),
        "DELETE on audit_events must be refused"
    );

    // Keep a pristine copy of the tables to restore between cases.
    // (On PostgreSQL in its own schema, so the server's migration grants do not trip over it.)
    let bk = if is_pg { "attacker." } else { "" };
    if is_pg {
        sql(&s, "CREATE SCHEMA attacker;");
    }
    sql(
        &s,
        &format!(
            "CREATE TABLE {bk}ae_backup AS SELECT * FROM audit_events; CREATE TABLE {bk}ah_backup AS SELECT * FROM audit_heads;"
        ),
    );
    let restore = format!(
        "{unlock} DELETE FROM audit_events; INSERT INTO audit_events SELECT * FROM {bk}ae_backup; DELETE FROM audit_heads; INSERT INTO audit_heads SELECT * FROM {bk}ah_backup; {relock}"
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "edit",
            format!(
                "UPDATE audit_events SET action = 'user.view' WHERE tenant_id = {tid} AND seq = 3;"
            ),
            "first broken event 3",
        ),
        (
            "edit details",
            format!(
                "UPDATE audit_events SET details = (SELECT details FROM audit_events WHERE tenant_id = {tid} AND seq = 2) WHERE tenant_id = {tid} AND seq = 4;"
            ),
            "first broken event 4",
        ),
        (
            "delete",
            format!("DELETE FROM audit_events WHERE tenant_id = {tid} AND seq = 2;"),
            "first broken event 2",
        ),
        (
            "reorder",
            format!(
                "UPDATE audit_events SET seq = -1 WHERE tenant_id = {tid} AND seq = 4; UPDATE audit_events SET seq = 4 WHERE tenant_id = {tid} AND seq = 5; UPDATE audit_events SET seq = 5 WHERE tenant_id = {tid} AND seq = -1;"
            ),
            "first broken event 4",
        ),
        (
            "insert",
            format!(
                "UPDATE audit_events SET seq = seq + 1000 WHERE tenant_id = {tid} AND seq >= 3; UPDATE audit_events SET seq = seq - 999 WHERE tenant_id = {tid} AND seq >= 1000; INSERT INTO audit_events SELECT tenant_id, 3, at, actor, action, outcome, object_type, object_id, ip_bidx, details, leaf_hash FROM {bk}ae_backup WHERE tenant_id = {tid} AND seq = 1; UPDATE audit_heads SET size = size + 1 WHERE tenant_id = {tid};"
            ),
            "first broken event 3",
        ),
        (
            "truncate",
            format!(
                "DELETE FROM audit_events WHERE tenant_id = {tid} AND seq >= 5; UPDATE audit_heads SET size = 5 WHERE tenant_id = {tid};"
            ),
            "truncated",
        ),
        (
            "drop tail",
            format!("DELETE FROM audit_events WHERE tenant_id = {tid} AND seq >= 5;"),
            "were deleted",
        ),
    ];
    for (name, attack, want) in cases {
        sql(&s, &format!("{unlock} {attack}"));
        let (ok, out) = verify(&s);
        assert!(
            !ok && out.contains(want),
            "{name}: expected `{want}`, got: {out}"
        );
        sql(&s, &restore);
        let (ok, out) = verify(&s);
        assert!(ok, "{name}: restore failed: {out}");
    }

    // A consistent rewrite: drop the last events (and fix the counter), then let real new
    // events take their place. Every row and leaf hash is valid, only the external signed
    // checkpoint shows that history changed.
    let (_, before) = (
        0,
        s.cli(&["audit", "events", "--tenant", "knoei"], None)
            .lines()
            .count(),
    );
    sql(
        &s,
        &format!(
            "{unlock} DELETE FROM audit_events WHERE tenant_id = {tid} AND seq >= {}; UPDATE audit_heads SET size = {} WHERE tenant_id = {tid}; {relock}",
            before - 2,
            before - 2
        ),
    );
    s.spawn().await;
    let owner = s.login("knoei", "owner@knoei.test", PASSWORD).await;
    let _ = owner;
    assert!(s.stop().success());
    let (ok, out) = verify(&s);
    assert!(
        !ok && (out.contains("rewritten") || out.contains("truncated")),
        "consistent rewrite must be caught by the checkpoints: {out}"
    );

    // A forged checkpoint file line is refused.
    sql(&s, &restore);
    let file = std::fs::read_dir(s.dir.path().join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let id = tid
                .trim_start_matches("x'")
                .trim_end_matches('\'')
                .trim_end_matches("'::uuid")
                .trim_start_matches('\'')
                .replace('-', "");
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .replace('-', "")
                .starts_with(&id)
                && !text.is_empty()
        })
        .expect("checkpoint file of the tenant");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("kluis.audit", "kluis.audiT", 1)).unwrap();
    let (ok, out) = verify(&s);
    assert!(!ok && out.contains("signature"), "{out}");
}

/// Checkpoints from the API and proofs from the CLI verify with the public key alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_and_proofs_verify_offline() {
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "bewijs").await;
    s.cli(&["audit", "checkpoint"], None);
    for i in 0..5 {
        s.post(
            "/api/v1/users",
            &t.owner,
            json!({"email": format!("p{i}@bewijs.test"), "display_name": "P", "role": "member"}),
        )
        .await;
    }
    s.cli(&["audit", "checkpoint"], None);
    let (st, v) = s.get("/api/v1/audit/checkpoints", &t.owner).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let vkey = v["verifier_key"].as_str().unwrap();
    assert_eq!(vkey, s.cli(&["audit", "verifier-key"], None).trim());
    let verifier = checkpoint::CheckpointVerifier::from_vkey(vkey).unwrap();
    let cps: Vec<checkpoint::Checkpoint> = v["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| checkpoint::verify(n.as_str().unwrap(), &verifier).unwrap())
        .collect();
    // The server and every CLI command sign too (issue 26): at least these two.
    assert!(cps.len() >= 2, "{cps:?}");
    let (old, new) = (&cps[0], &cps[cps.len() - 1]);
    assert!(old.size < new.size);
    let hex32 = |v: &Value| -> [u8; 32] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    // Consistency between the two signed checkpoints.
    let p: Value = serde_json::from_str(&s.cli(
        &[
            "audit",
            "prove",
            "--tenant",
            "bewijs",
            "--from",
            &old.size.to_string(),
            "--to",
            &new.size.to_string(),
        ],
        None,
    ))
    .unwrap();
    let proof: Vec<[u8; 32]> = p["proof"].as_array().unwrap().iter().map(hex32).collect();
    merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).unwrap();
    // Inclusion of an event (the user.create of p3) in the newest checkpoint.
    let (_, evs) = s
        .get(
            "/api/v1/audit/events?action=user.create&limit=200",
            &t.owner,
        )
        .await;
    let e = evs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["details"]["email"] == "p3@bewijs.test")
        .unwrap()
        .clone();
    let seq = e["seq"].as_i64().unwrap();
    let p: Value = serde_json::from_str(&s.cli(
        &[
            "audit",
            "prove",
            "--tenant",
            "bewijs",
            "--seq",
            &seq.to_string(),
            "--to",
            &new.size.to_string(),
        ],
        None,
    ))
    .unwrap();
    let proof: Vec<[u8; 32]> = p["proof"].as_array().unwrap().iter().map(hex32).collect();
    let leaf = hex32(&e["leaf_hash"]);
    merkle::verify_inclusion(&leaf, seq as u64, new.size, &proof, &new.root).unwrap();
    // The standalone verifier (no server, no database) agrees, with the key pinned by the user.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cps.json"), v.to_string()).unwrap();
    std::fs::write(dir.path().join("proof.json"), p.to_string()).unwrap();
    let offline = |vkey: &str, proof: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kluis"));
        c.args([
            "audit",
            "verify-checkpoints",
            "--vkey",
            vkey,
            "--checkpoints",
        ])
        .arg(dir.path().join("cps.json"));
        if proof {
            c.arg("--proof").arg(dir.path().join("proof.json"));
        }
        c.output().unwrap()
    };
    let out = offline(vkey, true);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("is included in the signed checkpoint"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another key (an impostor server) is refused.
    let other = checkpoint::CheckpointSigner::generate("kluis-audit")
        .unwrap()
        .verifier()
        .to_vkey();
    assert!(!offline(&other, false).status.success());
    // A different event's hash does not verify at that position.
    let mut forged = leaf;
    forged[0] ^= 1;
    assert!(merkle::verify_inclusion(&forged, seq as u64, new.size, &proof, &new.root).is_err());
}

/// Exports stream JSON Lines or CSV, are themselves recorded, and CSV cells that a spreadsheet
/// would execute are neutralised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_recorded_and_csv_is_safe() {
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "uitvoer").await;
    let Auth::Session { cookie, csrf } = &t.owner else {
        unreachable!()
    };
    // An attacker-chosen user agent ends up in the log.
    let res = s
        .client
        .post(s.url("/api/v1/users"))
        .header("cookie", format!("__Host-kluis_session={cookie}"))
        .header("x-csrf-token", csrf)
        .header("user-agent", "=HYPERLINK(\"http://evil.test\",\"klik\")")
        .json(&json!({"email": "x@uitvoer.test", "display_name": "X", "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let jsonl = s
        .client
        .get(s.url("/api/v1/audit/export?format=jsonl"))
        .header("cookie", format!("__Host-kluis_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(jsonl.status(), StatusCode::OK);
    assert_eq!(jsonl.headers()["content-type"], "application/x-ndjson");
    let body = jsonl.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|e| e["action"] == "user.create"));
    let seqs: Vec<i64> = lines.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (0..seqs.len() as i64).collect::<Vec<_>>());

    let csv = s
        .client
        .get(s.url("/api/v1/audit/export?format=csv&action=user.create"))
        .header("cookie", format!("__Host-kluis_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("seq,at,actor,action"), "{text}");
    assert!(
        text.contains("'=HYPERLINK"),
        "formula must be neutralised: {text}"
    );
    // No cell starts with a formula character (plain or quoted).
    for bad in [",=", ",\"=", ",+", ",\"+", ",@", ",\"@"] {
        assert!(
            !text.contains(bad),
            "cell starting with a formula character ({bad}): {text}"
        );
    }

    // Both exports are in the log, with their filters.
    let exports = events(&s, &t.owner, "&action=audit.export").await;
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[1]["details"]["filters"]["format"], "csv");
    assert_eq!(exports[1]["details"]["filters"]["action"], "user.create");
    // Members may not export.
    let (st, _) = s.get("/api/v1/audit/export", &t.member).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = s.get("/api/v1/audit/export?format=xml", &t.owner).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_format")
    );
}

/// The server signs checkpoints by itself: after N events (here 3) without waiting for the
/// time interval (here an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_signs_checkpoints_every_n_events() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("KLUIS_AUDIT_CHECKPOINT_EVERY_EVENTS", "3"),
            ("KLUIS_AUDIT_CHECKPOINT_INTERVAL_SECS", "3600"),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "vanzelf").await;
    for i in 0..3 {
        s.post(
            "/api/v1/users",
            &t.owner,
            json!({"email": format!("v{i}@vanzelf.test"), "display_name": "V", "role": "member"}),
        )
        .await;
    }
    let mut found = 0;
    for _ in 0..40 {
        let (_, v) = s.get("/api/v1/audit/checkpoints", &t.owner).await;
        found = v["checkpoints"].as_array().map_or(0, Vec::len);
        if found > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(found > 0, "no checkpoint signed after N events");
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "vanzelf"], None);
    assert!(ok && out.contains("checkpoints verified"), "{out}{err}");
}

async fn retention_truncates_with_a_signed_marker(b: Backend) {
    // A long idle period, so that the last event stays unsigned until the process dies.
    let mut s = Server::start_with(
        b,
        &[
            ("KLUIS_AUDIT_CHECKPOINT_IDLE_SECS", "60"),
            ("KLUIS_AUDIT_CHECKPOINT_INTERVAL_SECS", "3600"),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "bewaar").await;
    for i in 0..4 {
        s.post(
            "/api/v1/users",
            &t.owner,
            json!({"email": format!("r{i}@bewaar.test"), "display_name": "R", "role": "member"}),
        )
        .await;
    }
    s.cli(&["audit", "checkpoint"], None);
    let covered = events(&s, &t.owner, "").await.len() as i64;
    // Later events, not covered by a checkpoint yet: they must survive expiry.
    s.post(
        "/api/v1/users",
        &t.owner,
        json!({"email": "laat@bewaar.test", "display_name": "L", "role": "member"}),
    )
    .await;
    // Killed: a clean stop would sign it.
    s.kill();
    // Retention 0 days: everything is "old", but only what a signed checkpoint covers may go.
    let out = s.cli(&["audit", "expire", "--days", "0"], None);
    assert!(out.contains("bewaar: events before"), "{out}");
    let out = s.cli(&["audit", "verify", "--tenant", "bewaar"], None);
    assert!(
        out.starts_with("ok"),
        "verification passes after expiry: {out}"
    );
    let remaining: Vec<Value> = s
        .cli(&["audit", "events", "--tenant", "bewaar"], None)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = remaining[0]["seq"].as_i64().unwrap();
    assert!(
        first >= covered - 1 && first > 0,
        "expired up to the checkpoint: first remaining {first}, covered {covered}"
    );
    assert!(
        remaining
            .iter()
            .any(|e| e["details"]["email"] == "laat@bewaar.test"),
        "uncovered events survive"
    );
    assert!(
        remaining.iter().any(|e| e["action"] == "audit.expire"),
        "expiry is itself recorded"
    );
    // New checkpoints continue from the marker, and verification still passes.
    s.cli(&["audit", "checkpoint"], None);
    let out = s.cli(&["audit", "verify", "--tenant", "bewaar"], None);
    assert!(out.starts_with("ok"), "{out}");
    // Below the marker the database now allows deletes; above it, still not.
    let tid = tenant_hex(&s, "bewaar");
    assert!(
        try_sql(
            &s,
            &format!("DELETE FROM audit_events WHERE tenant_id = {tid} AND seq = {first};")
        )
        .unwrap_err()
        .contains("append-only")
    );
    // Forging the truncation point (hiding more history) is detected: the marker is signed.
    let unlock = if matches!(s.backend, Backend::Postgres { .. }) {
        "ALTER TABLE audit_events DISABLE TRIGGER USER;"
    } else {
        "DROP TRIGGER IF EXISTS audit_events_no_delete;"
    };
    sql(
        &s,
        &format!(
            "{unlock} DELETE FROM audit_events WHERE tenant_id = {tid} AND seq = {first}; UPDATE audit_heads SET truncated_before = {} WHERE tenant_id = {tid};",
            first + 1
        ),
    );
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "bewaar"], None);
    assert!(!ok && out.contains("truncation marker"), "{out}{err}");
    // Proofs over an expired prefix are refused with a clear error.
    let (ok, _, err) = s.cli_raw(
        &[
            "audit",
            "prove",
            "--tenant",
            "bewaar",
            "--seq",
            &(first + 2).to_string(),
        ],
        None,
    );
    assert!(!ok && err.contains("proof_unavailable"), "{err}");
}
