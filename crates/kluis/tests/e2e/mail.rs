//! Outgoing email against a real SMTP server (aiosmtpd, started by kluis-testkit): password
//! reset by email, invitations, the outbox's retries, and that neither message bodies nor
//! link tokens show up in logs or, unsealed, in the database.

use std::time::Duration;

use kluis_testkit::smtp::{ReceivedMail, SmtpServer, free_port};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Auth, Backend, PASSWORD, Server, code, on_both, tenant_fixture};

on_both!(
    password_reset_by_email,
    invitation_accept_and_resend,
    outbox_retries_after_the_relay_was_down
);

const NEW_PASSWORD: &str = "Nieuw-Wachtwoord-77";
const WAIT: Duration = Duration::from_secs(30);
const RELAY_PASSWORD: &str = "Relay-Geheim-9!";

/// A server that sends email through `smtp` (STARTTLS, trusting the relay's certificate).
pub(crate) async fn server_with_mail(
    b: Backend,
    smtp: &SmtpServer,
    extra: &[(&str, &str)],
) -> Server {
    let ca = smtp.ca_file().display().to_string();
    let url = smtp.url();
    let mut env = vec![
        ("KLUIS_SMTP_URL", url.as_str()),
        ("KLUIS_MAIL_FROM", "Kluis <no-reply@kluis.test>"),
        ("KLUIS_SMTP_TIMEOUT_SECS", "5"),
    ];
    if url.starts_with("smtp://") {
        env.push(("KLUIS_SMTP_CA_FILE", ca.as_str()));
    }
    env.extend_from_slice(extra);
    Server::start_with(b, &env).await
}

/// The token in a link `.../<page>#<token>` of a message's text part.
fn link_token(m: &ReceivedMail, page: &str) -> String {
    let marker = format!("/{page}#");
    let at = m
        .text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} link in: {}", m.text));
    let token: String = m.text[at + marker.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(token.len() > 40, "short token {token:?}");
    assert!(
        m.html.contains(&format!("{marker}{token}")),
        "the HTML part has the same link"
    );
    token
}

async fn events(s: &Server, auth: &Auth, action: &str) -> Vec<Value> {
    let (st, v) = s
        .get(
            &format!("/api/v1/audit/events?limit=200&action={action}"),
            auth,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

/// Asks for a reset link: (status, response header names, body, time to answer).
async fn ask_reset(s: &Server, body: Value) -> (StatusCode, Vec<String>, Value, Duration) {
    let started = std::time::Instant::now();
    let (st, h, v) = s
        .call_with(
            Method::POST,
            "/api/v1/auth/password-reset",
            &Auth::None,
            &[],
            Some(body),
        )
        .await;
    let took = started.elapsed();
    let mut names: Vec<String> = h
        .iter()
        .filter(|(k, _)| *k != "date")
        .map(|(k, v)| {
            if *k == "x-request-id" {
                k.to_string()
            } else {
                format!("{k}: {}", v.to_str().unwrap_or_default())
            }
        })
        .collect();
    names.sort();
    (st, names, v, took)
}

/// Neither the secret part of a token nor a line of a message body may appear in the
/// server's output or (unsealed) anywhere in the database.
async fn assert_not_leaked(s: &Server, secrets: &[&str]) {
    let logs = s.logs();
    let db = s.database_dump().await;
    for secret in secrets {
        assert!(!logs.contains(secret), "server output contains {secret:?}");
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "database holds {secret:?} in plaintext"
        );
    }
}

async fn password_reset_by_email(b: Backend) {
    let Some(smtp) = SmtpServer::start(true) else {
        return;
    };
    let s = server_with_mail(b, &smtp, &[]).await;
    let t = tenant_fixture(&s, "herstel").await;

    // Unknown account and known account: the same answer.
    let ask = |email: &str| json!({"organisation": "herstel", "email": email});
    let unknown = ask_reset(&s, ask("niemand@herstel.test")).await;
    let unknown_org = ask_reset(
        &s,
        json!({"organisation": "bestaat-niet", "email": "member@herstel.test"}),
    )
    .await;
    let known = ask_reset(&s, ask("member@herstel.test")).await;
    assert_eq!(known.0, StatusCode::ACCEPTED);
    // Same status, same headers, same body; the timings are printed, not asserted (the work
    // happens after the answer, so they cannot depend on the account).
    let seen = |r: &(StatusCode, Vec<String>, Value, Duration)| (r.0, r.1.clone(), r.2.clone());
    assert_eq!(seen(&unknown), seen(&known));
    assert_eq!(seen(&unknown_org), seen(&known));
    eprintln!(
        "password-reset answer times: unknown account {:?}, unknown organisation {:?}, existing account {:?}",
        unknown.3, unknown_org.3, known.3
    );

    let mails = smtp.wait_for(1, WAIT);
    // The refusals are audited; once both are there, no other email can still be coming.
    for _ in 0..100 {
        let refused = events(&s, &t.owner, "auth.password_reset.request")
            .await
            .iter()
            .filter(|e| e["outcome"] == "failure")
            .count();
        if refused >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails_now = smtp.messages();
    assert_eq!(
        mails_now.len(),
        1,
        "only the existing account gets an email"
    );
    let m = &mails[0];
    assert_eq!(m.rcpt_tos, vec!["member@herstel.test".to_owned()]);
    assert!(m.tls, "the relay session used STARTTLS");
    assert_eq!(m.subject, "Reset your Kluis password");
    assert!(m.text.contains("30 minutes"), "{}", m.text);
    let token = link_token(m, "reset");
    assert!(
        m.text
            .contains(&format!("https://localhost:{}/reset#", s.port))
    );

    let reqs = events(&s, &t.owner, "auth.password_reset.request").await;
    assert!(
        reqs.iter()
            .any(|e| e["outcome"] == "success" && e["object_id"] == t.member_id.as_str())
    );
    assert!(
        reqs.iter()
            .any(|e| e["outcome"] == "failure" && e["details"]["reason"] == "unknown_user")
    );

    // The page that reads the fragment exists, in both languages, under the strict CSP.
    let res = s
        .client
        .get(s.url("/reset"))
        .header("accept-language", "nl-NL,nl;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("Kies een nieuw wachtwoord") && page.contains("/assets/account-link.js"));
    let page = s
        .client
        .get(s.url("/reset"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Choose a new password"));
    let (st, _) = s.get("/assets/account-link.js", &Auth::None).await;
    assert_eq!(st, StatusCode::OK);

    // The same secret under another organisation's id is nothing there (and uses nothing up).
    let other: Value = serde_json::from_str(&s.cli(
        &[
            "tenant", "create", "--slug", "ander", "--name", "Ander BV", "--json",
        ],
        None,
    ))
    .unwrap();
    let swapped = format!(
        "{}.{}",
        other["id"].as_str().unwrap().replace('-', ""),
        token.split('.').nth(1).unwrap()
    );
    let (st, v) = s
        .post(
            "/api/v1/auth/password-reset/complete",
            &Auth::None,
            json!({"token": swapped, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::GONE, "{v}");

    // A weak password is refused with the policy's error, and the link still works after.
    let complete = |tok: &str, pw: &str| json!({"token": tok, "new_password": pw});
    let (st, v) = s
        .post(
            "/api/v1/auth/password-reset/complete",
            &Auth::None,
            complete(&token, "kort"),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(code(&v), "password_too_short");
    assert_eq!(v["error"]["field"], "new_password");

    let (st, v) = s
        .post(
            "/api/v1/auth/password-reset/complete",
            &Auth::None,
            complete(&token, NEW_PASSWORD),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    // Once only.
    let (st, v) = s
        .post(
            "/api/v1/auth/password-reset/complete",
            &Auth::None,
            complete(&token, "Nog-Een-Ander-88"),
        )
        .await;
    assert_eq!(st, StatusCode::GONE, "{v}");
    assert_eq!(code(&v), "reset_link_invalid");
    // A forged token (right tenant, random secret) is refused the same way.
    let forged = format!("{}.{}", token.split('.').next().unwrap(), "A".repeat(43));
    let (st, _) = s
        .post(
            "/api/v1/auth/password-reset/complete",
            &Auth::None,
            complete(&forged, NEW_PASSWORD),
        )
        .await;
    assert_eq!(st, StatusCode::GONE);

    // The member's old session is gone; the old password no longer works; the new one does.
    let (st, _) = s.get("/api/v1/me", &t.member).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"tenant": "herstel", "email": "member@herstel.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let fresh = s
        .login("herstel", "member@herstel.test", NEW_PASSWORD)
        .await;
    let (st, me) = s.get("/api/v1/me", &fresh).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["email"], "member@herstel.test");

    let done = events(&s, &t.owner, "auth.password_reset.complete").await;
    let ok: Vec<_> = done.iter().filter(|e| e["outcome"] == "success").collect();
    assert_eq!(ok.len(), 1, "{done:?}");
    assert_eq!(ok[0]["object_id"], t.member_id.as_str());
    assert!(ok[0]["details"]["sessions_revoked"].as_i64().unwrap() >= 1);
    assert!(done.iter().any(|e| e["outcome"] == "failure"));

    // The sender recorded the delivery.
    let sent = events(&s, &t.owner, "mail.send").await;
    assert!(
        sent.iter()
            .any(|e| e["outcome"] == "success" && e["details"]["kind"] == "password_reset")
    );

    // Nothing of the message or its token in logs or, unsealed, in the database.
    let secret = token.split('.').nth(1).unwrap();
    assert_not_leaked(
        &s,
        &[
            secret,
            "Someone asked to reset the password",
            "Reset your Kluis password",
        ],
    )
    .await;
}

async fn invitation_accept_and_resend(b: Backend) {
    // This relay also wants a login (after STARTTLS); the password comes from a file.
    let Some(smtp) = SmtpServer::start_with_login("kluis-relay", RELAY_PASSWORD) else {
        return;
    };
    let pw_file = smtp.password_file().display().to_string();
    let s = server_with_mail(
        b,
        &smtp,
        &[
            ("KLUIS_SMTP_USERNAME", "kluis-relay"),
            ("KLUIS_SMTP_PASSWORD_FILE", pw_file.as_str()),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "uitnodiging").await;
    // The organisation writes Dutch.
    let (st, v) = s
        .call(
            Method::PUT,
            "/api/v1/settings/locale",
            &t.owner,
            Some(json!({"locale": "nl"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (st, u) = s
        .post(
            "/api/v1/users",
            &t.owner,
            json!({"email": "nieuw@uitnodiging.test", "display_name": "Nieuwe Collega", "role": "member"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{u}");
    assert_eq!(u["has_password"], false);
    let uid = u["id"].as_str().unwrap().to_owned();
    let first = smtp.wait_for(1, WAIT)[0].clone();
    assert_eq!(first.rcpt_tos, vec!["nieuw@uitnodiging.test".to_owned()]);
    assert!(first.tls && first.authenticated, "STARTTLS, then AUTH");
    assert!(first.subject.contains("uitgenodigd"), "{}", first.subject);
    assert!(
        first.text.contains("Hallo Nieuwe Collega") && first.text.contains("72 uur"),
        "{}",
        first.text
    );
    let token1 = link_token(&first, "invite");

    // Not yet accepted: no sign-in.
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"tenant": "uitnodiging", "email": "nieuw@uitnodiging.test", "password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Only user managers may resend; resending replaces the first link.
    let resend = format!("/api/v1/users/{uid}/invitation");
    let (st, _) = s.post(&resend, &t.member, json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = s.post(&resend, &t.owner, json!({})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let second = smtp.wait_for(2, WAIT)[1].clone();
    let token2 = link_token(&second, "invite");
    assert_ne!(token1, token2);

    let accept = |tok: &str, pw: &str| json!({"token": tok, "password": pw});
    let (st, v) = s
        .post(
            "/api/v1/auth/invitation/accept",
            &Auth::None,
            accept(&token1, NEW_PASSWORD),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::GONE,
        "the first link died with the resend: {v}"
    );
    assert_eq!(code(&v), "invitation_link_invalid");
    // A reset token is no invitation token (and the other way round).
    let (st, _) = s
        .post(
            "/api/v1/auth/password-reset/complete",
            &Auth::None,
            json!({"token": token2, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::GONE);
    let (st, v) = s
        .post(
            "/api/v1/auth/invitation/accept",
            &Auth::None,
            accept(&token2, "zwak"),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "password");
    let (st, v) = s
        .post(
            "/api/v1/auth/invitation/accept",
            &Auth::None,
            accept(&token2, NEW_PASSWORD),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, _) = s
        .post(
            "/api/v1/auth/invitation/accept",
            &Auth::None,
            accept(&token2, NEW_PASSWORD),
        )
        .await;
    assert_eq!(st, StatusCode::GONE);

    let me = s
        .login("uitnodiging", "nieuw@uitnodiging.test", NEW_PASSWORD)
        .await;
    let (st, v) = s.get("/api/v1/me", &me).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["has_password"], true);
    let (st, v) = s.post(&resend, &t.owner, json!({})).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(code(&v), "invitation_accepted");

    // The page, and the audit trail.
    let page = s
        .client
        .get(s.url("/invite"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Accept your invitation"));
    let created = events(&s, &t.owner, "user.create").await;
    assert!(
        created
            .iter()
            .any(|e| e["object_id"] == uid.as_str() && e["details"]["invitation_emailed"] == true)
    );
    let resent = events(&s, &t.owner, "user.invite.resend").await;
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0]["object_id"], uid.as_str());
    assert_eq!(resent[0]["actor"], format!("user:{}", t.owner_id));
    let accepted = events(&s, &t.owner, "user.invite.accept").await;
    assert!(
        accepted
            .iter()
            .any(|e| e["outcome"] == "success" && e["object_id"] == uid.as_str())
    );
    assert_eq!(
        events(&s, &t.owner, "settings.locale.update").await.len(),
        1
    );

    for tok in [&token1, &token2] {
        let secret = tok.split('.').nth(1).unwrap().to_owned();
        assert_not_leaked(&s, &[&secret]).await;
    }
    assert_not_leaked(
        &s,
        &["Je bent uitgenodigd voor", "Nieuwe Collega", RELAY_PASSWORD],
    )
    .await;
}

async fn outbox_retries_after_the_relay_was_down(b: Backend) {
    // Check for aiosmtpd first (skips loudly without it).
    let Some(mut probe) = SmtpServer::start(false) else {
        return;
    };
    probe.stop();
    // The relay's port is known but nothing listens there yet.
    let port = free_port();
    let url = format!("smtp+plain://127.0.0.1:{port}");
    let s = Server::start_with(
        b,
        &[
            ("KLUIS_SMTP_URL", url.as_str()),
            ("KLUIS_MAIL_FROM", "no-reply@kluis.test"),
            ("KLUIS_MAIL_RETRY_INITIAL_SECS", "1"),
            ("KLUIS_SMTP_TIMEOUT_SECS", "5"),
        ],
    )
    .await;
    let t = tenant_fixture(&s, "later").await;
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.owner,
            json!({"email": "geduld@later.test", "display_name": "Geduld", "role": "member"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // Wait until the first attempt has failed (logged as a retry, without the message).
    let deadline = std::time::Instant::now() + WAIT;
    while !s.logs().contains("will retry") {
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt logged:\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(events(&s, &t.owner, "mail.send").await.is_empty());

    let smtp = SmtpServer::start_on(port, false).expect("aiosmtpd was there a moment ago");
    let m = smtp.wait_for(1, WAIT)[0].clone();
    assert_eq!(m.rcpt_tos, vec!["geduld@later.test".to_owned()]);
    assert!(!m.tls, "plain text to the loopback relay, as configured");
    let token = link_token(&m, "invite");

    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = events(&s, &t.owner, "mail.send").await;
        if !sent.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["outcome"], "success");
    assert!(
        sent[0]["details"]["attempts"].as_i64().unwrap() >= 2,
        "{sent:?}"
    );
    assert_not_leaked(&s, &[token.split('.').nth(1).unwrap()]).await;
}

/// Without email settings: the reset request answers exactly as with them, resending an
/// invitation says why it cannot, and inviting still works (the operator sets a password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_mail_configured() {
    let s = Server::start(Backend::Sqlite).await;
    let t = tenant_fixture(&s, "stil").await;
    let (st, v) = s
        .post(
            "/api/v1/auth/password-reset",
            &Auth::None,
            json!({"organisation": "stil", "email": "member@stil.test"}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("if this organisation")
    );
    let (st, u) = s
        .post(
            "/api/v1/users",
            &t.owner,
            json!({"email": "later@stil.test", "display_name": "Later", "role": "member"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .post(
            &format!("/api/v1/users/{}/invitation", u["id"].as_str().unwrap()),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(code(&v), "mail_not_configured");
    // The refused reset request is in the audit trail with its reason.
    let mut reasons = Vec::new();
    for _ in 0..50 {
        reasons = events(&s, &t.owner, "auth.password_reset.request").await;
        if !reasons.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reasons[0]["details"]["reason"], "mail_not_configured");
}
