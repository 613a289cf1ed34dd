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
    // No sign-in delays: the tests move the clock, and a real sleep would only slow them.
    let config = CoreConfig {
        login: kluis_core::lockout::LoginLimits {
            delay_base: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    let kluis = Kluis::with_clock(
        store,
        config,
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

/// The fixture of `on_both!`: a core on a fresh database of each engine.
async fn engine_fixture(engine: kluis_testkit::Engine) -> Option<Fixture> {
    match engine {
        kluis_testkit::Engine::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let store = kluis_core::Store::open_sqlite(&dir.path().join("k.db"))
                .await
                .unwrap();
            Some(fixture(store, Some(dir)).await)
        }
        kluis_testkit::Engine::Postgres => {
            let cluster = kluis_testkit::pg_cluster()?;
            let db = cluster.create_database();
            let store = kluis_core::Store::open_postgres(&db.app_url, Some(&db.owner_url), 4)
                .await
                .unwrap();
            Some(fixture(store, None).await)
        }
    }
}

macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        kluis_testkit::on_both!(fixture = crate::engine_fixture; $($name),+);
    };
}

on_both!(trash_is_restorable_until_retention_purges_it);
on_both!(a_tenants_own_trash_retention_is_honoured);
on_both!(version_restore_brings_back_exact_values);
on_both!(idempotency_keys_expire_after_a_day);
on_both!(reset_links_expire_are_limited_and_die_with_the_password);
on_both!(account_locked_email_is_localized);
on_both!(undeliverable_mail_fails_for_good);
on_both!(a_create_answers_exactly_what_a_read_returns);
on_both!(deleted_files_are_restorable_until_the_file_trash_purges_them);

/// A file body as the HTTP layer hands it over: a stream of byte chunks.
fn body(
    bytes: &[u8],
) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>> {
    let parts: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(10_000).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(parts)
}

/// The file trash keeps a deleted file restorable for 90 days (the default) and purges it,
/// every version and its sealed blobs, after that; an organisation's own trash retention wins.
async fn deleted_files_are_restorable_until_the_file_trash_purges_them(f: Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = kluis_core::files::FilesConfig::new(dir.path());
    cfg.clamd = None;
    let k = f.kluis.clone().with_files(cfg).unwrap();
    let (a, ctx) = (&f.actor, RequestContext::default());
    let r = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            input(json!({"fields": {"email": "bestand@prullenbak.test"}})),
            None,
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for name in ["een.txt", "twee.txt"] {
        let info = k
            .upload_file(
                a,
                &ctx,
                ObjectType::Contact,
                r.id,
                name,
                body(&[b'x'; 70_000]),
            )
            .await
            .unwrap();
        assert_eq!(info.status, "unscanned");
        ids.push(info.id);
    }
    k.replace_file(a, &ctx, ids[0], body(b"tweede versie"))
        .await
        .unwrap();
    let stored = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != "tmp")
            .map(|e| std::fs::read_dir(e.path()).unwrap().count())
            .sum::<usize>()
    };
    assert_eq!(stored(dir.path()), 3);

    // Day 0: both deleted. Day 89: restore #1; nothing purged yet.
    for id in &ids {
        k.delete_file(a, &ctx, *id).await.unwrap();
    }
    f.clock.advance(89 * DAY);
    assert_eq!(k.purge_expired_files(a.tenant()).await.unwrap(), 0);
    k.restore_file(a, &ctx, ids[1]).await.unwrap();
    // Day 91: #0 (both versions) purged for good; #1 is live.
    f.clock.advance(2 * DAY);
    assert_eq!(k.purge_expired_files(a.tenant()).await.unwrap(), 1);
    let e = k.restore_file(a, &ctx, ids[0]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        k.file_info(a, ids[0]).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    let mut d = k.download_file(a, &ctx, ids[1], None).await.unwrap();
    let mut got = Vec::new();
    while let Some(c) = d.next_chunk().await.unwrap() {
        got.extend(c);
    }
    assert_eq!(got, vec![b'x'; 70_000]);
    assert_eq!(
        stored(dir.path()),
        1,
        "the purged file's sealed blobs are gone"
    );

    // The organisation's own trash retention (5 days) applies to files too.
    k.set_trash_retention_setting(
        a,
        &ctx,
        kluis_core::settings::TrashRetentionDoc { days: Some(5) },
    )
    .await
    .unwrap();
    k.delete_file(a, &ctx, ids[1]).await.unwrap();
    f.clock.advance(4 * DAY);
    assert_eq!(k.purge_expired_files(a.tenant()).await.unwrap(), 0);
    f.clock.advance(2 * DAY);
    assert_eq!(k.purge_expired_files(a.tenant()).await.unwrap(), 1);
    assert_eq!(stored(dir.path()), 0);
    // Both purges are the system's, in the audit trail.
    let purges = k
        .audit_events(
            a,
            &ctx,
            &kluis_core::audit::AuditQuery {
                action: Some("file.purge".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let purged: Vec<_> = purges
        .items
        .iter()
        .map(|e| (e.actor.as_str(), e.object_id.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        purged,
        vec![
            ("system", ids[0].to_string()),
            ("system", ids[1].to_string())
        ]
    );

    // A record purged from the trash takes its files (rows and sealed blobs) with it.
    let last = k
        .upload_file(
            a,
            &ctx,
            ObjectType::Contact,
            r.id,
            "drie.txt",
            body(b"drie"),
        )
        .await
        .unwrap();
    assert_eq!(stored(dir.path()), 1);
    k.delete_record(a, &ctx, ObjectType::Contact, r.id, &IfMatch::Missing)
        .await
        .unwrap();
    k.purge_from_trash(a, &ctx, r.id).await.unwrap();
    assert_eq!(stored(dir.path()), 0);
    assert_eq!(
        k.file_info(a, last.id).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
}

fn input(v: Value) -> RecordInput {
    serde_json::from_value(v).unwrap()
}

/// A create answers from what it prepared (no read-back): that answer must be what a read of
/// the stored record returns, for every type, with links and tags given out of order and twice.
async fn a_create_answers_exactly_what_a_read_returns(f: Fixture) {
    let (k, a, ctx) = (&f.kluis, &f.actor, RequestContext::default());
    let mut tags = Vec::new();
    for name in ["warm", "koud", "vip"] {
        let t = k
            .create_tag(
                a,
                &ctx,
                kluis_core::crm::tags::TagInput {
                    name: name.into(),
                    color: None,
                },
            )
            .await
            .unwrap();
        tags.push(t.id);
    }
    let mut rev_tags = tags.clone();
    rev_tags.reverse();
    rev_tags.push(tags[2]);
    let create = |t: ObjectType, v: Value| {
        let k = k.clone();
        let a = a.clone();
        let ctx = ctx.clone();
        async move {
            let made = k.create_record(&a, &ctx, t, input(v), None).await.unwrap();
            let read = k.get_record(&a, t, made.id).await.unwrap();
            assert_eq!(
                serde_json::to_value(&made).unwrap(),
                serde_json::to_value(&read).unwrap(),
                "{t:?}"
            );
            made
        }
    };
    let company = create(
        ObjectType::Company,
        json!({"fields": {"name": "Acme BV", "domain": "acme.nl"}, "tag_ids": rev_tags}),
    )
    .await;
    let mut contacts = Vec::new();
    for i in 0..3 {
        let c = create(
            ObjectType::Contact,
            json!({"fields": {"first_name": "Jan", "last_name": format!("Janssen {i}"),
                    "email": format!("Jan.Janssen{i}@Acme.NL"), "phone": "020 123 4567"},
                   "company_id": company.id, "tag_ids": rev_tags}),
        )
        .await;
        contacts.push(c.id);
    }
    let mut linked = contacts.clone();
    linked.reverse();
    linked.push(contacts[0]);
    let deal = create(
        ObjectType::Deal,
        json!({"fields": {"name": "Licenties 2027"}, "amount_minor": 123450,
               "close_date": "2027-01-31", "contact_ids": linked, "tag_ids": rev_tags}),
    )
    .await;
    assert!(
        deal.outcome.is_some(),
        "a deal answers with its stage's outcome"
    );
    create(
        ObjectType::Ticket,
        json!({"fields": {"subject": "Factuur klopt niet"}, "priority": "high",
               "contact_ids": linked}),
    )
    .await;
    create(
        ObjectType::Note,
        json!({"fields": {"body": "Gebeld"}, "related_ids": [deal.id, company.id, contacts[1]]}),
    )
    .await;
    create(
        ObjectType::Task,
        json!({"fields": {"title": "Offerte sturen"}, "due_date": "2027-01-15",
               "related_ids": [deal.id]}),
    )
    .await;
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

/// A tenant's own trash retention (settings) wins over the server's default in the purge job;
/// it is bounded to 1..=365 days and audited (the permission is checked in the e2e tests).
async fn a_tenants_own_trash_retention_is_honoured(f: Fixture) {
    use kluis_core::settings::TrashRetentionDoc;
    let (k, a, ctx) = (&f.kluis, &f.actor, RequestContext::default());
    assert_eq!(
        k.trash_retention_setting(a).await.unwrap(),
        TrashRetentionDoc { days: None },
        "the server's default until set"
    );
    for bad in [0, 366, 1000] {
        let e = k
            .set_trash_retention_setting(a, &ctx, TrashRetentionDoc { days: Some(bad) })
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation, "{bad} days");
    }
    k.set_trash_retention_setting(a, &ctx, TrashRetentionDoc { days: Some(7) })
        .await
        .unwrap();
    assert_eq!(k.trash_retention_setting(a).await.unwrap().days, Some(7));
    let mut ids = Vec::new();
    for i in 0..2 {
        let r = k
            .create_record(
                a,
                &ctx,
                ObjectType::Contact,
                input(json!({"fields": {"email": format!("r{i}@bewaar.test")}})),
                None,
            )
            .await
            .unwrap();
        ids.push(r.id);
    }
    k.delete_record(a, &ctx, ObjectType::Contact, ids[0], &IfMatch::Missing)
        .await
        .unwrap();
    // Day 6: within the tenant's 7 days (and the server's 30): nothing goes.
    f.clock.advance(6 * DAY);
    assert_eq!(
        k.purge_expired_trash(a.tenant(), 30 * DAY).await.unwrap(),
        0
    );
    k.delete_record(a, &ctx, ObjectType::Contact, ids[1], &IfMatch::Missing)
        .await
        .unwrap();
    // Day 8: #0 is past the tenant's 7 days, though well inside the server's 30.
    f.clock.advance(2 * DAY);
    assert_eq!(
        k.purge_expired_trash(a.tenant(), 30 * DAY).await.unwrap(),
        1
    );
    let trash = k.list_trash(a, &ctx, None, None, None).await.unwrap();
    assert_eq!(
        trash.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    // Back to the server's default: #1 (deleted on day 6) now waits for 30 days.
    k.set_trash_retention_setting(a, &ctx, TrashRetentionDoc { days: None })
        .await
        .unwrap();
    f.clock.advance(10 * DAY);
    assert_eq!(
        k.purge_expired_trash(a.tenant(), 30 * DAY).await.unwrap(),
        0
    );
    let ev = k
        .audit_events(
            a,
            &ctx,
            &kluis_core::audit::AuditQuery {
                action: Some("settings.trash_retention.update".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ev.items.len(), 2, "both changes audited");
    let changes: Vec<_> = ev
        .items
        .iter()
        .map(|e| json!({"old": e.details["old"], "new": e.details["new"]}))
        .collect();
    assert!(
        changes.contains(&json!({"old": null, "new": 7})),
        "{changes:?}"
    );
    assert!(
        changes.contains(&json!({"old": 7, "new": null})),
        "{changes:?}"
    );
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
    let idem = Idempotency::new("sleutel-1").unwrap();
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
    // The same key with another body is refused, not replayed (the core binds the key to the
    // operation and its input; no HTTP method or path is involved).
    let e = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            input(json!({"fields": {"first_name": "Anders"}})),
            Some(&idem),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "idempotency_key_reused");
    // After a day (not purged yet): the key is free and creates a new record.
    f.clock.advance(2 * 3600 * 1000);
    let later = k
        .create_record(a, &ctx, ObjectType::Contact, input(body), Some(&idem))
        .await
        .unwrap();
    assert_ne!(later.id, first.id);
}

// ---- email: password reset links and the lockout notice, against a real SMTP server ----

use kluis_core::account_links::{
    PasswordResetCompletion, PasswordResetRequest, ResetRequestOutcome,
};
use kluis_core::mail::{MailConfig, Mailer};
use kluis_core::users::{NewUserInput, UserUpdate};
use kluis_testkit::smtp::{ReceivedMail, SmtpServer};

const PASSWORD: &str = "Vlinder-Kast42!";

/// The fixture's Kluis with a mailer sending to `smtp` (plain text to the loopback relay).
fn with_mail(f: &Fixture, smtp: &SmtpServer) -> Kluis {
    let cfg = MailConfig {
        smtp_url: smtp.url(),
        username: None,
        password: None,
        from: "Kluis <no-reply@kluis.test>".into(),
        public_url: "https://crm.kluis.test".into(),
        extra_ca_pem: None,
        retry_initial: std::time::Duration::from_secs(1),
        max_attempts: 3,
        timeout: std::time::Duration::from_secs(5),
        sweep_interval: std::time::Duration::from_secs(60),
    };
    f.kluis.clone().with_mailer(Mailer::new(cfg).unwrap())
}

async fn member(k: &Kluis, a: &Actor, email: &str) -> kluis_core::UserId {
    k.create_user(
        a,
        &RequestContext::default(),
        NewUserInput {
            email: email.into(),
            display_name: "Lid".into(),
            role: kluis_core::Role::Member,
            password: Some(PASSWORD.into()),
        },
    )
    .await
    .unwrap()
    .id
}

fn token_of(m: &ReceivedMail) -> String {
    let at = m.text.find("/reset#").expect("reset link") + "/reset#".len();
    m.text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect()
}

async fn reset_links_expire_are_limited_and_die_with_the_password(f: Fixture) {
    let Some(smtp) = SmtpServer::start(false) else {
        return;
    };
    let k = with_mail(&f, &smtp);
    let ctx = RequestContext::default();
    member(&k, &f.actor, "lid@tijd.test").await;
    let ask = PasswordResetRequest {
        organisation: "tijd".into(),
        email: "LID@tijd.test ".into(),
    };
    for _ in 0..3 {
        assert_eq!(
            k.handle_password_reset_request(&ask, &ctx).await.unwrap(),
            ResetRequestOutcome::Sent
        );
    }
    // At most three live links per user: a fourth request sends nothing.
    assert_eq!(
        k.handle_password_reset_request(&ask, &ctx).await.unwrap(),
        ResetRequestOutcome::Refused("too_many_live_links")
    );
    assert_eq!(k.send_due_mail().await.unwrap(), 3);
    let mails = smtp.wait_for(3, std::time::Duration::from_secs(20));
    assert_eq!(mails.len(), 3);
    assert!(
        mails
            .iter()
            .all(|m| m.text.contains("https://crm.kluis.test/reset#"))
    );
    let expired = token_of(&mails[0]);

    // 30 minutes and a second later the link is dead (and no longer counts as live).
    f.clock.advance(30 * 60 * 1000 + 1000);
    let complete = |token: &str| PasswordResetCompletion {
        token: token.into(),
        new_password: "Nieuw-Wachtwoord-77".into(),
    };
    let e = k
        .complete_password_reset(complete(&expired), &ctx)
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Gone, "reset_link_invalid"));

    for _ in 0..2 {
        assert_eq!(
            k.handle_password_reset_request(&ask, &ctx).await.unwrap(),
            ResetRequestOutcome::Sent
        );
    }
    assert_eq!(k.send_due_mail().await.unwrap(), 2);
    let mails = smtp.wait_for(5, std::time::Duration::from_secs(20));
    let (a, b) = (token_of(&mails[3]), token_of(&mails[4]));
    k.complete_password_reset(complete(&a), &ctx).await.unwrap();
    // The other live link went with the password change.
    let e = k
        .complete_password_reset(complete(&b), &ctx)
        .await
        .unwrap_err();
    assert_eq!(e.code, "reset_link_invalid");
    // Unknown accounts: refused, nothing queued.
    let unknown = PasswordResetRequest {
        organisation: "tijd".into(),
        email: "niemand@tijd.test".into(),
    };
    assert_eq!(
        k.handle_password_reset_request(&unknown, &ctx)
            .await
            .unwrap(),
        ResetRequestOutcome::Refused("unknown_user")
    );
    assert_eq!(k.send_due_mail().await.unwrap(), 0);

    // Sent messages keep no content (the sealed message held a link secret).
    let mut r = k
        .store()
        .tenant(f.actor.tenant())
        .begin_read()
        .await
        .unwrap();
    let outbox = r.outbox_status().await.unwrap();
    drop(r);
    assert_eq!(outbox.len(), 5);
    assert!(
        outbox
            .iter()
            .all(|(st, n, len)| st == "sent" && *n == 1 && *len == 0),
        "{outbox:?}"
    );
    // Housekeeping: a month later the bookkeeping and the expired links go too.
    f.clock.advance(31 * DAY);
    let gone = k
        .purge_mail_leftovers(
            f.actor.tenant(),
            std::time::Duration::from_secs(30 * 86_400),
        )
        .await
        .unwrap();
    assert_eq!(
        gone, 5,
        "the five finished messages (the links died with the password change)"
    );
    let mut r = k
        .store()
        .tenant(f.actor.tenant())
        .begin_read()
        .await
        .unwrap();
    assert!(r.outbox_status().await.unwrap().is_empty());
}

async fn account_locked_email_is_localized(f: Fixture) {
    let tenant = f.actor.tenant();
    let a = member(&f.kluis, &f.actor, "a@tijd.test").await;
    // Without a mailer there is nothing to do.
    assert!(!f.kluis.notify_account_locked(tenant, a, 0).await.unwrap());
    let Some(smtp) = SmtpServer::start(false) else {
        return;
    };
    let k = with_mail(&f, &smtp);
    let nl = member(&k, &f.actor, "b@tijd.test").await;
    k.update_user(
        &f.actor,
        &RequestContext::default(),
        nl,
        serde_json::from_value::<UserUpdate>(json!({"locale": "nl"})).unwrap(),
    )
    .await
    .unwrap();
    let until = 1_790_000_900_000; // 2026-09-21 14:28:20 UTC
    assert!(k.notify_account_locked(tenant, a, until).await.unwrap());
    assert!(k.notify_account_locked(tenant, nl, until).await.unwrap());
    assert_eq!(k.send_due_mail().await.unwrap(), 2);
    let mails = smtp.wait_for(2, std::time::Duration::from_secs(20));
    let en = mails
        .iter()
        .find(|m| m.rcpt_tos == ["a@tijd.test"])
        .unwrap();
    let du = mails
        .iter()
        .find(|m| m.rcpt_tos == ["b@tijd.test"])
        .unwrap();
    assert_eq!(en.subject, "Your Kluis account was locked");
    assert_eq!(du.subject, "Je Kluis-account is geblokkeerd");
    let when = "2026-09-21 14:28";
    assert!(en.text.contains(when), "{} lacks {when}", en.text);
    assert!(du.text.contains(when) && du.text.contains("https://crm.kluis.test/reset"));
    assert!(du.html.contains("geblokkeerd"));

    // A real lockout queues the notice with the lock: five wrong passwords, one email.
    for _ in 0..5 {
        let e = k
            .login(
                kluis_core::sessions::LoginInput {
                    tenant: "tijd".into(),
                    email: "a@tijd.test".into(),
                    password: "Verkeerd-Wachtwoord-9!".into(),
                },
                &RequestContext::default(),
            )
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, "invalid_credentials");
    }
    assert_eq!(k.send_due_mail().await.unwrap(), 1);
    let mails = smtp.wait_for(3, std::time::Duration::from_secs(20));
    let locked: Vec<_> = mails
        .iter()
        .filter(|m| m.rcpt_tos == ["a@tijd.test"])
        .collect();
    assert_eq!(locked.len(), 2, "the direct notice and the lockout's");
    assert!(
        locked
            .iter()
            .all(|m| m.subject == "Your Kluis account was locked")
    );
}

async fn mail_events(k: &Kluis, a: &Actor) -> Vec<kluis_core::audit::AuditEvent> {
    k.audit_events(
        a,
        &RequestContext::default(),
        &kluis_core::audit::AuditQuery {
            action: Some("mail.send".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .items
}

async fn undeliverable_mail_fails_for_good(f: Fixture) {
    let Some(mut smtp) = SmtpServer::start(false) else {
        return;
    };
    let k = with_mail(&f, &smtp);
    let tenant = f.actor.tenant();
    let outbox = || async {
        let mut r = k.store().tenant(tenant).begin_read().await.unwrap();
        r.outbox_status().await.unwrap()
    };

    // A permanent refusal (550): failed at once, content gone, the reason without the
    // relay's text (which quotes the address).
    let refused = member(&k, &f.actor, "weiger@tijd.test").await;
    k.notify_account_locked(tenant, refused, 0).await.unwrap();
    assert_eq!(k.send_due_mail().await.unwrap(), 0);
    assert_eq!(outbox().await, vec![("failed".to_owned(), 1, 0)]);
    let ev = mail_events(&k, &f.actor).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].outcome, "failure");
    assert_eq!(ev[0].details["reason"], "rejected permanently (550)");
    assert!(!ev[0].details.to_string().contains("weiger@"));

    // The relay is gone: retried with backoff (1 s, 2 s), failed after the third attempt.
    smtp.stop();
    let down = member(&k, &f.actor, "geduld@tijd.test").await;
    k.notify_account_locked(tenant, down, 0).await.unwrap();
    assert_eq!(k.send_due_mail().await.unwrap(), 0);
    assert_eq!(outbox().await[1].0, "pending");
    assert_eq!(outbox().await[1].1, 1);
    // Not due yet: nothing happens.
    f.clock.advance(500);
    k.send_due_mail().await.unwrap();
    assert_eq!(outbox().await[1].1, 1);
    f.clock.advance(600);
    k.send_due_mail().await.unwrap();
    assert_eq!(outbox().await[1].1, 2);
    f.clock.advance(2100);
    k.send_due_mail().await.unwrap();
    let last = outbox().await[1].clone();
    assert_eq!(last, ("failed".to_owned(), 3, 0));
    let ev = mail_events(&k, &f.actor).await;
    assert_eq!(ev.len(), 2);
    assert!(
        ev.iter()
            .any(|e| e.details["reason"] == "connection failed" && e.details["attempts"] == 3),
        "{ev:?}"
    );
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

on_both!(daily_budget_caps_guesses_per_account);

/// All sign-in failures of the tenant's log (every page).
async fn login_failures(k: &Kluis, a: &Actor) -> Vec<kluis_core::audit::AuditEvent> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = k
            .audit_events(
                a,
                &RequestContext::default(),
                &kluis_core::audit::AuditQuery {
                    action: Some("auth.login".into()),
                    cursor: cursor.clone(),
                    limit: Some(200),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        out.extend(page.items.into_iter().filter(|e| e.outcome == "failure"));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// A patient attacker waits out every 15-minute lockout and uses a new address for every
/// guess, for a whole day: only `daily_max_failures` (50) guesses are ever checked against the
/// password; the rest are refused unchecked. The next day the budget is back, and the owner
/// can sign in again once the attacker stops.
async fn daily_budget_caps_guesses_per_account(f: Fixture) {
    use kluis_core::sessions::LoginInput;
    use kluis_core::users::NewUserInput;
    use kluis_core::{Clock, Role};

    let password = "Vlinder-Kast42!";
    f.kluis
        .create_user(
            &f.actor,
            &RequestContext::default(),
            NewUserInput {
                email: "doelwit@tijd.test".into(),
                display_name: "Doelwit".into(),
                role: Role::Member,
                password: Some(password.into()),
            },
        )
        .await
        .unwrap();
    let guess = |pw: &str| LoginInput {
        tenant: "tijd".into(),
        email: "doelwit@tijd.test".into(),
        password: pw.into(),
    };
    let start = f.clock.now_ms();
    let mut sent = 0u32;
    // Five guesses, then wait out the 15-minute lock, around the clock.
    while f.clock.now_ms() - start < DAY - 16 * 60 * 1000 {
        for _ in 0..5 {
            let ctx = RequestContext {
                ip: format!("198.51.{}.{}", sent / 250, sent % 250),
                ..Default::default()
            };
            let e = f
                .kluis
                .login(guess(&format!("Gok-{sent}-Wachtwoord!")), &ctx)
                .await
                .err()
                .unwrap();
            assert_eq!(e.code, "invalid_credentials");
            sent += 1;
        }
        f.clock.advance(15 * 60 * 1000 + 1);
    }
    let failures = login_failures(&f.kluis, &f.actor).await;
    assert_eq!(failures.len(), sent as usize);
    let checked = failures
        .iter()
        .filter(|e| e.details["reason"] == "wrong_password")
        .count();
    let refused = failures
        .iter()
        .filter(|e| e.details["reason"] == "locked")
        .count();
    assert!(sent >= 450, "the attacker sent {sent}");
    assert_eq!(checked, 50, "guesses checked in a day");
    assert_eq!(checked + refused, sent as usize);
    // Even the right password is refused while the day's budget is spent...
    let ctx = RequestContext::default();
    assert!(f.kluis.login(guess(password), &ctx).await.is_err());
    // ... and works once the 24 hours since the first failure are over.
    f.clock.advance(16 * 60 * 1000);
    f.kluis.login(guess(password), &ctx).await.unwrap();
}

/// **Architecture Invariant: inside `kluis-core`, only `src/db.rs` names `kluis-store`.** Use
/// cases are written against the seam, so a storage change touches one file of the core.
/// (`kluis_testkit::layering`'s own test plants a violation and sees it reported.)
#[test]
fn only_the_seam_names_the_store() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = kluis_testkit::layering::files_naming(&src, "kluis_store", &["db.rs"]);
    assert!(
        found.is_empty(),
        "these core files name kluis_store; go through crate::db instead: {found:?}"
    );
}

/// The HTTP layer reaches data only through the core's services, never the store itself.
#[test]
fn the_http_layer_never_names_the_store() {
    let http = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kluis-http/src");
    let found = kluis_testkit::layering::files_naming(&http, "kluis_store", &[]);
    assert!(found.is_empty(), "kluis-http names kluis_store: {found:?}");
    let found = kluis_testkit::layering::files_naming(&http, "sqlx", &[]);
    assert!(found.is_empty(), "kluis-http names sqlx: {found:?}");
}

// ---- support access -----------------------------------------------------------------------

on_both!(support_grants_expire_are_watched_and_owners_are_told);

/// A signed-in operator from `kluis operator create`'s output (password and TOTP).
async fn operator_session(
    k: &Kluis,
    clock: &ManualClock,
    created: &kluis_core::support::OperatorCreated,
) -> (String, kluis_core::support::Operator) {
    use kluis_core::Clock;
    let secret = kluis_crypto::totp::secret_from_base32(&created.totp_secret).unwrap();
    let now = u64::try_from(clock.now_ms() / 1000).unwrap();
    let code = kluis_crypto::totp::code_at(&secret, now).unwrap();
    let signin = kluis_core::support::OperatorSignIn {
        email: created.email.clone(),
        password: created.password.clone(),
        code: code.clone(),
    };
    // A wrong password with the right code, then the right pair; the same code never twice.
    let wrong = kluis_core::support::OperatorSignIn {
        password: "Niet-Het-Wachtwoord-1".into(),
        ..signin.clone()
    };
    let ctx = RequestContext::default();
    assert_eq!(
        k.operator_sign_in(&ctx, &wrong).await.err().unwrap().kind,
        ErrorKind::Unauthenticated
    );
    let s = k.operator_sign_in(&ctx, &signin).await.unwrap();
    assert_eq!(
        k.operator_sign_in(&ctx, &signin).await.err().unwrap().kind,
        ErrorKind::Unauthenticated,
        "a TOTP code is accepted once"
    );
    let op = k.authenticate_operator(&s.token).await.unwrap();
    (s.token, op)
}

/// Grants end on time (injectable clock), the watching rules fire (outside office hours, many
/// grants, a burst of requests), and the owners get an email at the request, the grant, the
/// first use and each alert.
async fn support_grants_expire_are_watched_and_owners_are_told(f: Fixture) {
    use kluis_core::support::{SupportAccessLevel, SupportGrantInput, SupportRequestInput};
    let smtp = SmtpServer::start(false);
    let k = match &smtp {
        Some(s) => with_mail(&f, s),
        None => f.kluis.clone(),
    };
    let (a, ctx) = (&f.actor, RequestContext::default());
    k.create_user(
        a,
        &ctx,
        NewUserInput {
            email: "eigenaar@tijd.test".into(),
            display_name: "Eigenaar".into(),
            role: kluis_core::Role::Owner,
            password: Some(PASSWORD.into()),
        },
    )
    .await
    .unwrap();
    let created = k
        .create_operator(&PlatformActor::console(), &ctx, "ops@kluis.test", "Ops")
        .await
        .unwrap();
    let (token, op) = operator_session(&k, &f.clock, &created).await;
    let req = k
        .request_support_access(
            &op,
            &ctx,
            &SupportRequestInput {
                tenant: "tijd".into(),
                reason: "ticket 4711: import fails".into(),
                access: SupportAccessLevel::Read,
                hours: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(req.status, "requested");
    let use_it = |grant: String| {
        let (k, token) = (k.clone(), token.clone());
        async move {
            k.authenticate_support(
                &token,
                &grant,
                &RequestContext::default(),
                "GET",
                "/api/v1/contacts",
            )
            .await
        }
    };
    // Not approved yet: nothing opens.
    assert_eq!(
        use_it(req.id.to_string()).await.err().unwrap().code,
        "support_grant_invalid"
    );
    let g = k.approve_support_request(a, &ctx, req.id).await.unwrap();
    assert_eq!(g.status, "active");
    let actor = use_it(g.id.to_string()).await.unwrap();
    assert_eq!(actor.tenant(), a.tenant());
    assert_eq!(actor.support_grant(), Some(g.id));
    // Monday 2026-09-21 16:13 in Amsterdam: office hours, no alert yet.
    f.clock.advance(3_600_000 - 1);
    use_it(g.id.to_string()).await.unwrap();
    f.clock.advance(1);
    assert_eq!(
        use_it(g.id.to_string()).await.err().unwrap().code,
        "support_grant_invalid",
        "a one-hour grant ends one hour after approval"
    );
    assert_eq!(
        k.get_support_grant(a, g.id).await.unwrap().status,
        "expired"
    );

    // Saturday: a grant given on the owner's initiative; its first use is outside office hours.
    f.clock.advance(5 * DAY);
    let (token, _) = operator_session(&k, &f.clock, &created).await;
    let give = |hours| SupportGrantInput {
        operator: "ops@kluis.test".into(),
        reason: "migration help, ticket 4712".into(),
        access: SupportAccessLevel::Write,
        hours,
    };
    let weekend = k.grant_support_access(a, &ctx, &give(2)).await.unwrap();
    k.authenticate_support(
        &token,
        &weekend.id.to_string(),
        &ctx,
        "GET",
        "/api/v1/deals",
    )
    .await
    .unwrap();
    // A burst: more than 120 requests within one minute under one grant.
    for _ in 0..121 {
        k.authenticate_support(
            &token,
            &weekend.id.to_string(),
            &ctx,
            "GET",
            "/api/v1/deals",
        )
        .await
        .unwrap();
    }
    // More than five grants to one operator within a day.
    for _ in 0..4 {
        k.grant_support_access(a, &ctx, &give(1)).await.unwrap();
    }
    let tenant = f.actor.tenant();
    let alerts = |rule: &'static str| {
        let k = k.clone();
        async move {
            k.audit_events(
                &Actor::console(tenant),
                &RequestContext::default(),
                &kluis_core::audit::AuditQuery {
                    action: Some("support.alert".into()),
                    limit: Some(100),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.details["rule"] == rule)
            .count()
        }
    };
    assert_eq!(alerts("outside_office_hours").await, 1);
    assert_eq!(alerts("bulk_reads").await, 1);
    assert_eq!(alerts("many_grants").await, 0, "five grants are not many");
    k.grant_support_access(a, &ctx, &give(1)).await.unwrap();
    assert_eq!(
        alerts("many_grants").await,
        1,
        "the sixth grant in a day is"
    );
    // Revoked: the next request is refused.
    k.revoke_support_grant(a, &ctx, weekend.id).await.unwrap();
    assert_eq!(
        k.authenticate_support(&token, &weekend.id.to_string(), &ctx, "GET", "/")
            .await
            .err()
            .unwrap()
            .code,
        "support_grant_invalid"
    );
    // The activity of the weekend grant: its requests, from the audit log.
    let activity = k.support_grant_activity(a, weekend.id).await.unwrap();
    assert_eq!(
        activity
            .iter()
            .filter(|e| e.action == "support.access")
            .count(),
        122
    );
    assert!(
        activity
            .iter()
            .all(|e| e.actor == format!("support:{}:{}", op.id, weekend.id))
    );

    let Some(smtp) = smtp else {
        return;
    };
    k.send_due_mail().await.unwrap();
    // Request, approval, first use; weekend grant, its first use, two alerts; five more
    // grants and the many-grants alert: 13 emails to the one owner.
    let mails = smtp.wait_for(13, std::time::Duration::from_secs(30));
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    let count = |s: &str| subjects.iter().filter(|x| **x == s).count();
    assert_eq!(count("Kluis support asks for access"), 1, "{subjects:?}");
    assert_eq!(
        count("Support access to your organisation was granted"),
        7,
        "{subjects:?}"
    );
    assert_eq!(
        count("Kluis support is now working in your organisation"),
        2
    );
    assert_eq!(count("Unusual support access to your organisation"), 3);
    assert!(mails.iter().all(|m| m.rcpt_tos == ["eigenaar@tijd.test"]));
    assert!(mails[0].text.contains("ticket 4711"));
}

// ---- retention policies (issue 19) ----------------------------------------------------

on_both!(retention_deletes_inactive_contacts_on_time_after_a_dry_run);
on_both!(retention_anonymises_and_expires_audit_events_after_its_years);

/// `f`'s core with audit signing (audit expiry truncates up to a signed checkpoint).
fn with_signing(f: &Fixture, dir: &std::path::Path) -> Kluis {
    f.kluis
        .clone()
        .with_audit_signing(kluis_core::audit::AuditSigning {
            signer: kluis_crypto::checkpoint::CheckpointSigner::generate("test").unwrap(),
            dir: dir.to_owned(),
        })
}

/// How far the clock must move from now to `years` calendar years after `from`, plus `ms`.
fn until_years_after(f: &Fixture, from: i64, years: i32, ms: i64) -> i64 {
    use kluis_core::Clock;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(from) * 1_000_000).unwrap();
    let day = t.day().min(t.month().length(t.year() + years));
    let target =
        t.replace_date(time::Date::from_calendar_date(t.year() + years, t.month(), day).unwrap());
    (target.unix_timestamp_nanos() / 1_000_000) as i64 + ms - f.clock.now_ms()
}

async fn retention_deletes_inactive_contacts_on_time_after_a_dry_run(f: Fixture) {
    use kluis_core::Clock;
    use kluis_core::crm::retention::RetentionPolicyDoc;
    let dir = tempfile::tempdir().unwrap();
    let k = &with_signing(&f, dir.path());
    let (a, ctx) = (&f.actor, RequestContext::default());
    let contact = |email: &str| input(json!({"fields": {"email": email}}));
    let t0 = f.clock.now_ms();
    let old = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            contact("oud@bewaar.test"),
            None,
        )
        .await
        .unwrap();
    let linked = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            contact("gekoppeld@bewaar.test"),
            None,
        )
        .await
        .unwrap();
    let note = k
        .create_record(
            a,
            &ctx,
            ObjectType::Note,
            input(json!({"fields": {"body": "Gesprek"}, "related_ids": [linked.id]})),
            None,
        )
        .await
        .unwrap();
    // A year on: the note about `linked` changes (activity for that person), a new contact.
    f.clock.advance(365 * DAY);
    let t1 = f.clock.now_ms();
    k.update_record(
        a,
        &ctx,
        ObjectType::Note,
        note.id,
        &IfMatch::Any,
        input(json!({"fields": {"body": "Tweede gesprek"}})),
    )
    .await
    .unwrap();
    let young = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            contact("jong@bewaar.test"),
            None,
        )
        .await
        .unwrap();
    let policy = RetentionPolicyDoc {
        contact_inactive_years: Some(2),
        contact_action: "delete".into(),
        audit_years: 6,
    };
    k.set_retention_policy(a, &ctx, policy.clone())
        .await
        .unwrap();

    // Three years on, but the policy has no dry run yet: the first pass only reports.
    f.clock.advance(until_years_after(&f, t0, 3, 0));
    let r = k.run_retention(a.tenant(), 0).await.unwrap();
    assert!(r.dry_run);
    assert_eq!(r.contacts, vec![old.id]);
    k.get_record(a, ObjectType::Contact, old.id).await.unwrap();
    let status = k.retention_status(a).await.unwrap();
    assert_eq!(status.dry_run.as_ref(), Some(&r));
    assert!(status.last_run.is_none());
    // A changed policy needs a new report: setting it again clears it.
    k.set_retention_policy(a, &ctx, policy.clone())
        .await
        .unwrap();
    assert!(k.retention_status(a).await.unwrap().dry_run.is_none());

    // The new report, then the run: `old` (inactive since t0, three years) goes.
    let r = k.run_retention(a.tenant(), 0).await.unwrap();
    assert!(r.dry_run);
    let r = k.run_retention(a.tenant(), 0).await.unwrap();
    assert!(!r.dry_run);
    assert_eq!(r.contacts, vec![old.id], "inactive for three years");
    let e = k
        .get_record(a, ObjectType::Contact, old.id)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    // `linked` (note changed at t1) and `young` (created at t1) are due two years after t1:
    // not a millisecond before.
    f.clock.advance(until_years_after(&f, t1, 2, 0));
    let r = k.run_retention(a.tenant(), 0).await.unwrap();
    assert!(r.contacts.is_empty(), "{r:?}");
    for id in [linked.id, young.id] {
        k.get_record(a, ObjectType::Contact, id).await.unwrap();
    }
    f.clock.advance(1);
    let r = k.run_retention(a.tenant(), 0).await.unwrap();
    let mut due = vec![linked.id, young.id];
    due.sort();
    assert_eq!(r.contacts, due);
    for id in due {
        let e = k.get_record(a, ObjectType::Contact, id).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }
    // Notes are not contacts: the note stays. Each deletion is audited as retention's.
    k.get_record(a, ObjectType::Note, note.id).await.unwrap();
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
    assert_eq!(ev.items.len(), 3);
    assert!(
        ev.items
            .iter()
            .all(|e| e.actor == "retention" && e.details["reason"] == "retention")
    );
    assert_eq!(
        k.retention_status(a)
            .await
            .unwrap()
            .last_run
            .unwrap()
            .contacts
            .len(),
        2
    );
    let report = k.verify_log(a.tenant()).await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
}

async fn retention_anonymises_and_expires_audit_events_after_its_years(f: Fixture) {
    use kluis_core::crm::retention::RetentionPolicyDoc;
    let dir = tempfile::tempdir().unwrap();
    let k = &with_signing(&f, dir.path());
    let (a, ctx) = (&f.actor, RequestContext::default());
    let t0 = {
        use kluis_core::Clock;
        f.clock.now_ms()
    };
    let c = k
        .create_record(
            a,
            &ctx,
            ObjectType::Contact,
            input(json!({"fields": {"first_name": "Anne", "email": "anne@anoniem.test"}})),
            None,
        )
        .await
        .unwrap();
    k.update_record(
        a,
        &ctx,
        ObjectType::Contact,
        c.id,
        &IfMatch::Any,
        input(json!({"fields": {"last_name": "Anoniem"}})),
    )
    .await
    .unwrap();
    k.checkpoint_log(a.tenant()).await.unwrap();
    let events_at_start = k.verify_log(a.tenant()).await.unwrap().events;
    k.set_retention_policy(
        a,
        &ctx,
        RetentionPolicyDoc {
            contact_inactive_years: Some(1),
            contact_action: "anonymise".into(),
            audit_years: 2,
        },
    )
    .await
    .unwrap();
    assert!(k.run_retention(a.tenant(), 0).await.unwrap().dry_run);
    // A year and a millisecond later: the contact is emptied, its versions gone; nothing of
    // the audit trail is old enough yet.
    f.clock.advance(until_years_after(&f, t0, 1, 1));
    k.checkpoint_log(a.tenant()).await.unwrap();
    let r = k.run_retention(a.tenant(), 0).await.unwrap();
    assert!(!r.dry_run);
    assert_eq!(r.contacts, vec![c.id]);
    assert_eq!(r.audit_events, 0);
    let rec = k.get_record(a, ObjectType::Contact, c.id).await.unwrap();
    assert!(rec.fields.is_empty(), "{:?}", rec.fields);
    let versions = k
        .record_versions(a, &ctx, ObjectType::Contact, c.id)
        .await
        .unwrap();
    assert_eq!(versions.len(), 1, "only the current, empty state");
    let found = k
        .list_records(
            a,
            &ctx,
            ObjectType::Contact,
            RecordQuery {
                email: Some("anne@anoniem.test".into()),
                ..Default::default()
            },
            None,
            None,
        )
        .await
        .unwrap();
    assert!(found.items.is_empty());
    // Emptied contacts are not anonymised again.
    f.clock.advance(until_years_after(&f, t0, 2, 0) - 1);
    k.checkpoint_log(a.tenant()).await.unwrap();
    let r = k.run_retention(a.tenant(), 0).await.unwrap();
    assert!(r.contacts.is_empty());
    assert_eq!(r.audit_events, 0, "events of t0 are not two years old yet");
    // Two years after t0 and a millisecond: the events from t0 expire (up to the last
    // signed checkpoint), the log still verifies.
    f.clock.advance(2);
    k.checkpoint_log(a.tenant()).await.unwrap();
    let r = k.run_retention(a.tenant(), 0).await.unwrap();
    assert!(r.audit_events >= events_at_start, "{r:?}");
    let report = k.verify_log(a.tenant()).await.unwrap();
    assert!(report.first_broken.is_none(), "{report:?}");
    let state = k.verify_state(a.tenant(), None).await.unwrap();
    assert!(state.problems.is_empty(), "{:?}", state.problems);
}
