//! Service-level tests that need control over time (an injectable clock), on SQLite and on a
//! real PostgreSQL started by kluis-testkit. HTTP-level behaviour is tested in crates/kluis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use kluis_core::crm::{IfMatch, ObjectType, RecordInput, RecordQuery};
use kluis_core::keys::KeyEncryptionKeys;
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::{Actor, CoreConfig, ErrorKind, Kluis, ManualClock, RequestContext, Store};
use kluis_crypto::envelope::{Kek, LocalKms};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;

struct Fixture {
    kluis: Kluis,
    clock: Arc<ManualClock>,
    actor: Actor,
    _dir: Option<tempfile::TempDir>,
}

async fn fixture(store: Store, dir: Option<tempfile::TempDir>) -> Fixture {
    let clock = Arc::new(ManualClock::new(1_790_000_000_000));
    let kluis = Kluis::with_clock(
        store,
        CoreConfig::default(),
        KeyEncryptionKeys::new(Arc::new(LocalKms::new(Kek::generate().unwrap()))),
        clock.clone(),
    );
    kluis.ensure_platform_keys().await.unwrap();
    let t = kluis
        .create_tenant(
            &PlatformActor::console(),
            &RequestContext::default(),
            NewTenantInput {
                slug: "tijd".into(),
                name: "Tijd".into(),
            },
        )
        .await
        .unwrap();
    Fixture {
        kluis,
        clock,
        actor: Actor::console(t.id),
        _dir: dir,
    }
}

macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let store = kluis_core::Store::open_sqlite(&dir.path().join("k.db"))
                    .await
                    .unwrap();
                super::$name(super::fixture(store, Some(dir)).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(cluster) = kluis_testkit::pg_cluster() else {
                    return;
                };
                let db = cluster.create_database();
                let store = kluis_core::Store::open_postgres(&db.app_url, Some(&db.owner_url), 4)
                    .await
                    .unwrap();
                super::$name(super::fixture(store, None).await).await;
            }
        }
    };
}

on_both!(trash_is_restorable_until_retention_purges_it);
on_both!(version_restore_brings_back_exact_values);
on_both!(idempotency_keys_expire_after_a_day);

fn input(v: Value) -> RecordInput {
    serde_json::from_value(v).unwrap()
}

async fn trash_is_restorable_until_retention_purges_it(f: Fixture) {
    let (k, a, ctx) = (&f.kluis, &f.actor, RequestContext::default());
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = k
            .create_record(
                a,
                &ctx,
                ObjectType::Contact,
                input(json!({"fields": {"email": format!("p{i}@prullenbak.test")}})),
                None,
            )
            .await
            .unwrap();
        ids.push(r.id);
    }
    // Day 0: delete #0 and #1. Day 20: delete #2.
    for id in &ids[..2] {
        k.delete_record(a, &ctx, ObjectType::Contact, *id, &IfMatch::Missing)
            .await
            .unwrap();
    }
    f.clock.advance(20 * DAY);
    k.delete_record(a, &ctx, ObjectType::Contact, ids[2], &IfMatch::Missing)
        .await
        .unwrap();
    k.put_custom_value(
        a,
        &ctx,
        "oud",
        kluis_core::crm::custom::CustomValueInput {
            value: "weg".into(),
        },
        true,
    )
    .await
    .unwrap();
    k.set_custom_value_deleted(a, &ctx, "oud", true)
        .await
        .unwrap();
    // Day 25: #1 restored from the trash (inside the window).
    f.clock.advance(5 * DAY);
    k.restore_from_trash(a, &ctx, ids[1]).await.unwrap();
    // Day 29: nothing is old enough yet.
    f.clock.advance(4 * DAY);
    assert_eq!(
        k.purge_expired_trash(a.tenant(), 30 * DAY).await.unwrap(),
        0
    );
    // Day 31: #0 (deleted on day 0) is purged; #2 (day 20) stays; #1 is live.
    f.clock.advance(2 * DAY);
    assert_eq!(
        k.purge_expired_trash(a.tenant(), 30 * DAY).await.unwrap(),
        1
    );
    let trash = k.list_trash(a, &ctx, None, None, None).await.unwrap();
    let in_trash: Vec<_> = trash.items.iter().map(|r| r.id).collect();
    assert_eq!(in_trash, vec![ids[2]]);
    let e = k.restore_from_trash(a, &ctx, ids[0]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "purged for good");
    k.get_record(a, ObjectType::Contact, ids[1]).await.unwrap();
    // The purged email is free again; the purge is audited as the system's.
    k.create_record(
        a,
        &ctx,
        ObjectType::Contact,
        input(json!({"fields": {"email": "p0@prullenbak.test"}})),
        None,
    )
    .await
    .unwrap();
    let ev = k
        .audit_events(
            a,
            &ctx,
            &kluis_core::audit::AuditQuery {
                action: Some("contact.purge".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ev.items.len(), 1);
    assert_eq!(ev.items[0].actor, "system");
    assert_eq!(ev.items[0].details["reason"], "trash_retention");
    // Day 51: the custom value trashed on day 20 (and contact #2) are purged too.
    f.clock.advance(20 * DAY);
    k.purge_expired_trash(a.tenant(), 30 * DAY).await.unwrap();
    assert!(k.list_custom_values(a).await.unwrap().is_empty());
}

async fn version_restore_brings_back_exact_values(f: Fixture) {
    let (k, a, ctx) = (&f.kluis, &f.actor, RequestContext::default());
    let v1 = json!({"first_name": "Jan", "last_name": "de Boer", "email": "jan@versie.test", "city": "Gouda"});
    let r = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            input(json!({ "fields": v1 })),
            None,
        )
        .await
        .unwrap();
    let r2 = k
        .update_record(
            a,
            &ctx,
            ObjectType::Contact,
            r.id,
            &IfMatch::Revisions(vec![1]),
            input(json!({"fields": {"city": null, "last_name": "Visser", "phone": "06-12345678"}})),
        )
        .await
        .unwrap();
    assert_eq!(r2.revision, 2);
    // A stale writer (still at revision 1) is refused, and nothing changes.
    let e = k
        .update_record(
            a,
            &ctx,
            ObjectType::Contact,
            r.id,
            &IfMatch::Revisions(vec![1]),
            input(json!({"fields": {"first_name": "Overschreven"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::PreconditionFailed);
    let versions = k
        .record_versions(a, &ctx, ObjectType::Contact, r.id)
        .await
        .unwrap();
    assert_eq!(
        versions.iter().map(|v| v.revision).collect::<Vec<_>>(),
        [2, 1]
    );
    let r3 = k
        .restore_record_version(
            a,
            &ctx,
            ObjectType::Contact,
            r.id,
            1,
            &IfMatch::Revisions(vec![2]),
        )
        .await
        .unwrap();
    assert_eq!(r3.revision, 3);
    assert_eq!(
        Value::Object(r3.fields.clone()),
        v1,
        "exactly revision 1's values"
    );
    // Lookups follow the restored values: the phone of revision 2 no longer finds it.
    let found = k
        .list_records(
            a,
            &ctx,
            ObjectType::Contact,
            RecordQuery {
                phone: Some("+31612345678".into()),
                ..Default::default()
            },
            None,
            None,
        )
        .await
        .unwrap();
    assert!(found.items.is_empty());
}

async fn idempotency_keys_expire_after_a_day(f: Fixture) {
    use kluis_core::crm::Idempotency;
    let (k, a, ctx) = (&f.kluis, &f.actor, RequestContext::default());
    let body = json!({"fields": {"first_name": "Eens"}});
    let idem = Idempotency::new(
        "sleutel-1",
        "POST",
        "/api/v1/contacts",
        body.to_string().as_bytes(),
    )
    .unwrap();
    let first = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            input(body.clone()),
            Some(&idem),
        )
        .await
        .unwrap();
    // Within a day: the same record comes back.
    f.clock.advance(23 * 3600 * 1000);
    let again = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            input(body.clone()),
            Some(&idem),
        )
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    // After a day (not purged yet): the key is free and creates a new record.
    f.clock.advance(2 * 3600 * 1000);
    let later = k
        .create_record(a, &ctx, ObjectType::Contact, input(body), Some(&idem))
        .await
        .unwrap();
    assert_ne!(later.id, first.id);
}

on_both!(pending_sign_in_expires_and_lockout_ends);

/// With the clock under control: a pending sign-in (second factor due) lasts 5 minutes, and an
/// account lockout ends after `login_lockout_secs`.
async fn pending_sign_in_expires_and_lockout_ends(f: Fixture) {
    use kluis_core::sessions::{LoginInput, LoginStatus, SessionUse};
    use kluis_core::users::NewUserInput;
    use kluis_core::{Clock, Role, mfa::TotpCode};
    use kluis_crypto::totp;

    let ctx = RequestContext::default();
    let password = "Vlinder-Kast42!";
    f.kluis
        .create_user(
            &f.actor,
            &ctx,
            NewUserInput {
                email: "klok@tijd.test".into(),
                display_name: "Klok".into(),
                role: Role::Member,
                password: Some(password.into()),
            },
        )
        .await
        .unwrap();
    let login = |pw: &str| LoginInput {
        tenant: "tijd".into(),
        email: "klok@tijd.test".into(),
        password: pw.into(),
    };
    let out = f.kluis.login(login(password), &ctx).await.unwrap();
    assert_eq!(out.status, LoginStatus::Complete);
    let me = f
        .kluis
        .authenticate_session(&out.session_token, None, false)
        .await
        .unwrap();
    let enrolment = f.kluis.start_totp_enrolment(&me, &ctx).await.unwrap();
    let secret = totp::secret_from_base32(&enrolment.secret).unwrap();
    let code_now = |f: &Fixture| totp::code_at(&secret, f.clock.now_ms() as u64 / 1000).unwrap();
    f.kluis
        .confirm_totp_enrolment(&me, &ctx, TotpCode { code: code_now(&f) })
        .await
        .unwrap();

    let pending = f.kluis.login(login(password), &ctx).await.unwrap();
    assert_eq!(pending.status, LoginStatus::MfaRequired);
    let challenge = |token: String| {
        let k = f.kluis.clone();
        async move {
            k.authenticate_session_for(&token, None, false, SessionUse::Challenge)
                .await
        }
    };
    challenge(pending.session_token.clone()).await.unwrap();
    let err = f
        .kluis
        .authenticate_session(&pending.session_token, None, false)
        .await
        .unwrap_err();
    assert_eq!(err.code, "mfa_required");
    f.clock.advance(5 * 60 * 1000 + 1);
    let err = challenge(pending.session_token.clone()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthenticated);

    // Five wrong passwords lock the account; the right one is refused like a wrong one...
    for _ in 0..5 {
        let e = f
            .kluis
            .login(login("Fout-Wachtwoord-1!"), &ctx)
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, "invalid_credentials");
    }
    let e = f.kluis.login(login(password), &ctx).await.err().unwrap();
    assert_eq!(e.code, "invalid_credentials");
    // ... until the lock ends.
    f.clock.advance(15 * 60 * 1000);
    let out = f.kluis.login(login(password), &ctx).await.unwrap();
    assert_eq!(out.status, LoginStatus::MfaRequired);
}
