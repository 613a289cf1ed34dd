//! Store tests, run on SQLite and on a real PostgreSQL started by kluis-testkit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kluis_store::rows::{NewApiKey, NewSession, NewUser, UserPatch};
use kluis_store::{Engine, Store, TENANT_TABLES, TenantId, UserId};
use kluis_types::Role;

struct Backend {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    owner_url: Option<String>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("kluis.db"))
        .await
        .unwrap();
    Backend {
        store,
        _dir: Some(dir),
        owner_url: None,
    }
}

async fn postgres(max: u32) -> Option<Backend> {
    let cluster = kluis_testkit::pg_cluster()?;
    let db = cluster.create_database();
    let store = Store::open_postgres(&db.app_url, Some(&db.owner_url), max)
        .await
        .unwrap();
    Some(Backend {
        store,
        _dir: None,
        owner_url: Some(db.owner_url),
    })
}

/// The fixture of `on_both!`: a store on a fresh database of each engine.
async fn backend(engine: kluis_testkit::Engine) -> Option<Backend> {
    match engine {
        kluis_testkit::Engine::Sqlite => Some(sqlite().await),
        kluis_testkit::Engine::Postgres => postgres(4).await,
    }
}

macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        kluis_testkit::on_both!(fixture = crate::backend; $($name),+);
    };
}

async fn tenant(store: &Store, slug: &str) -> TenantId {
    let id = TenantId::new();
    let mut p = store.platform().await.unwrap();
    p.insert_tenant(id, slug, slug, 1).await.unwrap();
    p.commit().await.unwrap();
    id
}

async fn user(store: &Store, t: TenantId, email: &str) -> UserId {
    let id = UserId::new();
    let mut tx = store.tenant(t).begin().await.unwrap();
    tx.insert_user(&NewUser {
        id,
        // The store stores what it is given; sealing is the service layer's job.
        email_bidx: email.as_bytes(),
        email: email.as_bytes(),
        display_name: b"X",
        role: Role::Member,
        password_hash: None,
        now: 1,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

on_both!(tenant_scope_filters_every_query);
async fn tenant_scope_filters_every_query(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    let bt = tenant(s, "b").await;
    let ua = user(s, a, "x@a.test").await;
    let ub = user(s, bt, "x@b.test").await;

    let mut tx = s.tenant(a).begin().await.unwrap();
    assert!(tx.user(ua).await.unwrap().is_some());
    assert!(
        tx.user(ub).await.unwrap().is_none(),
        "B's user visible from A"
    );
    assert!(tx.user_by_email_index(b"x@b.test").await.unwrap().is_none());
    let list = tx.list_users(None, 100).await.unwrap();
    assert_eq!(list.iter().map(|u| u.id).collect::<Vec<_>>(), vec![ua]);
    assert!(
        !tx.update_user(
            ub,
            &UserPatch {
                role: Some(Role::Owner),
                ..Default::default()
            },
            2
        )
        .await
        .unwrap()
    );
    assert!(!tx.delete_user(ub).await.unwrap());
    tx.commit().await.unwrap();

    let mut tb = s.tenant(bt).begin().await.unwrap();
    let row = tb.user(ub).await.unwrap().unwrap();
    assert_eq!(row.role, Role::Member);
}

on_both!(unique_email_per_tenant_not_global);
async fn unique_email_per_tenant_not_global(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    let bt = tenant(s, "b").await;
    user(s, a, "same@x.test").await;
    user(s, bt, "same@x.test").await;
    let mut tx = s.tenant(a).begin().await.unwrap();
    let err = tx
        .insert_user(&NewUser {
            id: UserId::new(),
            email_bidx: "same@x.test".as_bytes(),
            email: "same@x.test".as_bytes(),
            display_name: "Y".as_bytes(),
            role: Role::Member,
            password_hash: None,
            now: 1,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, kluis_store::StoreError::Conflict(_)),
        "{err:?}"
    );
}

on_both!(rolled_back_tx_leaves_nothing);
async fn rolled_back_tx_leaves_nothing(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    {
        let mut tx = s.tenant(a).begin().await.unwrap();
        tx.insert_user(&NewUser {
            id: UserId::new(),
            email_bidx: "gone@a.test".as_bytes(),
            email: "gone@a.test".as_bytes(),
            display_name: "G".as_bytes(),
            role: Role::Member,
            password_hash: None,
            now: 1,
        })
        .await
        .unwrap();
        // dropped without commit
    }
    let mut tx = s.tenant(a).begin_read().await.unwrap();
    assert!(
        tx.user_by_email_index(b"gone@a.test")
            .await
            .unwrap()
            .is_none()
    );
}

on_both!(api_key_rotation_keeps_previous_secret);
async fn api_key_rotation_keeps_previous_secret(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    let u = user(s, a, "k@a.test").await;
    let id = kluis_store::ApiKeyId::new();
    let mut tx = s.tenant(a).begin().await.unwrap();
    tx.insert_api_key(&NewApiKey {
        id,
        name: "k",
        scopes: "[]",
        secret_hash: &[1; 32],
        created_by: Some(u),
        now: 1,
    })
    .await
    .unwrap();
    assert!(tx.rotate_api_key(id, &[2; 32], 100, 5).await.unwrap());
    let old = tx.api_key_by_secret_hash(&[1; 32]).await.unwrap().unwrap();
    assert!(old.via_previous);
    assert_eq!(old.key.previous_valid_until, Some(100));
    let new = tx.api_key_by_secret_hash(&[2; 32]).await.unwrap().unwrap();
    assert!(!new.via_previous);
    assert!(tx.revoke_api_key(id, 6).await.unwrap());
    assert!(tx.api_key_by_secret_hash(&[2; 32]).await.unwrap().is_none());
    tx.commit().await.unwrap();
}

on_both!(sessions_revoke_all_but_current);
async fn sessions_revoke_all_but_current(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    let u = user(s, a, "s@a.test").await;
    let mut tx = s.tenant(a).begin().await.unwrap();
    let mut ids = vec![];
    for i in 0..3u8 {
        let id = kluis_store::SessionId::new();
        tx.insert_session(&NewSession {
            id,
            user_id: u,
            token_hash: &[i; 32],
            csrf_hash: &[i; 32],
            ip: b"sealed-ip",
            user_agent: b"sealed-ua",
            now: 1,
            expires_at: 10,
            stage: "password",
        })
        .await
        .unwrap();
        ids.push(id);
    }
    assert_eq!(
        tx.revoke_user_sessions(u, Some(ids[0]), 2).await.unwrap(),
        2
    );
    assert!(tx.session_by_token_hash(&[0; 32]).await.unwrap().is_some());
    assert!(tx.session_by_token_hash(&[1; 32]).await.unwrap().is_none());
    tx.commit().await.unwrap();
}

#[test]
fn migrations_are_in_lockstep() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let list = |engine: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(engine))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        list("sqlite"),
        list("postgres"),
        "each migration must exist for both engines"
    );
}

/// On PostgreSQL: every tenant table has RLS enabled AND forced with a policy, its primary key
/// starts with tenant_id, and no table exists that is neither declared tenant nor platform.
#[tokio::test]
async fn postgres_catalog_every_tenant_table_has_forced_rls() {
    let Some(b) = postgres(2).await else { return };
    assert_eq!(b.store.engine(), Engine::Postgres);
    let owner = sqlx::PgPool::connect(b.owner_url.as_deref().unwrap())
        .await
        .unwrap();
    let tables: Vec<(String, bool, bool, i64)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert!(!tables.is_empty());
    for (name, enabled, forced, policies) in &tables {
        let is_tenant = TENANT_TABLES.contains(&name.as_str());
        assert!(
            is_tenant || kluis_store::PLATFORM_TABLES.contains(&name.as_str()),
            "table {name} is declared neither tenant nor platform table"
        );
        if is_tenant {
            assert!(
                *enabled && *forced && *policies > 0,
                "tenant table {name}: rls={enabled} forced={forced} policies={policies}"
            );
            let first_pk_col: String = sqlx::query_scalar(
                "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                 WHERE i.indrelid = $1::regclass AND i.indisprimary",
            )
            .bind(name)
            .fetch_one(&owner)
            .await
            .unwrap();
            assert_eq!(
                first_pk_col, "tenant_id",
                "primary key of {name} must start with tenant_id"
            );
        }
    }
}

/// On PostgreSQL, RLS hides B's rows from a query with no tenant filter inside A's
/// transaction, and a pooled connection reused right after A carries no trace of A.
#[tokio::test]
async fn postgres_rls_and_pooled_connection_reuse() {
    let Some(b) = postgres(1).await else { return };
    let s = &b.store;
    let a = tenant(s, "a").await;
    let bt = tenant(s, "b").await;
    user(s, a, "1@a.test").await;
    user(s, bt, "1@b.test").await;
    user(s, bt, "2@b.test").await;

    let mut tx = s.tenant(a).begin().await.unwrap();
    assert_eq!(
        tx.count_rows_unfiltered("users").await.unwrap(),
        1,
        "RLS must hide B's rows"
    );
    assert_eq!(
        tx.current_tenant_setting().await.unwrap(),
        Some(a.to_string())
    );
    tx.commit().await.unwrap();

    // max_connections = 1: the same physical connection serves the next transactions.
    let mut p = s.platform().await.unwrap();
    let leftover = p.current_tenant_setting().await.unwrap();
    assert!(
        leftover.as_deref().unwrap_or("").is_empty(),
        "tenant setting leaked: {leftover:?}"
    );
    assert_eq!(
        p.count_rows_unfiltered("users").await.unwrap(),
        0,
        "no tenant set -> no rows"
    );
    p.commit().await.unwrap();

    let mut tb = s.tenant(bt).begin_read().await.unwrap();
    assert_eq!(tb.count_rows_unfiltered("users").await.unwrap(), 2);
    assert_eq!(
        tb.current_tenant_setting().await.unwrap(),
        Some(bt.to_string())
    );
}

/// The store refuses an application role that owns the tables (it could disable RLS).
#[tokio::test]
async fn postgres_refuses_owner_as_app_role() {
    let Some(cluster) = kluis_testkit::pg_cluster() else {
        return;
    };
    let db = cluster.create_database();
    let err = Store::open_postgres(&db.owner_url, Some(&db.owner_url), 2)
        .await
        .err()
        .expect("must refuse");
    assert!(
        matches!(err, kluis_store::StoreError::UnsafeConfig(_)),
        "{err:?}"
    );
}

on_both!(sealed_counts_are_reserved_in_blocks_at_commit);
async fn sealed_counts_are_reserved_in_blocks_at_commit(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    let mut tx = s.tenant(a).begin().await.unwrap();
    tx.insert_tenant_key("data", 1, b"wrapped", "k", 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let count = || async {
        let mut tx = s.tenant(a).begin_read().await.unwrap();
        tx.tenant_keys().await.unwrap()[0].sealed_count
    };
    let reserve = kluis_store::SEAL_RESERVE;
    {
        let mut tx = s.tenant(a).begin().await.unwrap();
        tx.add_sealed_count(1, 100).await.unwrap();
        // dropped: rolled back, nothing counted and nothing reserved
    }
    assert_eq!(count().await, 0);
    // A count is written with a reserved block; seals within the block write nothing.
    let mut tx = s.tenant(a).begin().await.unwrap();
    tx.add_sealed_count(1, 2).await.unwrap();
    tx.add_sealed_count(1, 3).await.unwrap(); // from this transaction's reservation
    tx.commit().await.unwrap();
    assert_eq!(count().await, 2 + reserve);
    let mut tx = s.tenant(a).begin().await.unwrap();
    tx.add_sealed_count(1, reserve - 3).await.unwrap(); // the rest of the block
    tx.commit().await.unwrap();
    assert_eq!(count().await, 2 + reserve);
    {
        let mut tx = s.tenant(a).begin().await.unwrap();
        tx.add_sealed_count(1, 5).await.unwrap();
        // dropped: its count and reservation were never written
    }
    let mut tx = s.tenant(a).begin().await.unwrap();
    tx.add_sealed_count(1, 1).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count().await, 2 + reserve + 1 + reserve);
    // Never below the seals made (2 + 3 + reserve - 3 + 1).
    assert!(count().await >= reserve + 3);
}

on_both!(min_decryption_version_states_and_pending_count);
async fn min_decryption_version_states_and_pending_count(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    let other = tenant(s, "b").await;
    let mut tx = s.tenant(a).begin().await.unwrap();
    for v in 1..=3 {
        tx.insert_tenant_key("data", v, b"wrapped", "k", 1)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // Sealed format: byte 0 format, bytes 1..5 key version (big-endian).
    let sealed = |v: u8| [1u8, 0, 0, 0, v, 42, 42];
    for (t, v) in [(a, 2u8), (a, 3), (other, 1)] {
        let mut tx = s.tenant(t).begin().await.unwrap();
        tx.insert_user(&NewUser {
            id: UserId::new(),
            email_bidx: &[v; 32],
            email: &sealed(v),
            display_name: &sealed(3),
            role: Role::Member,
            password_hash: None,
            now: 1,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let mut tx = s.tenant(a).begin().await.unwrap();
    // Only tenant a's records count: the version-2 one (b's version-1 record is not seen).
    assert_eq!(tx.count_records_not_under(3).await.unwrap(), 1);
    assert_eq!(tx.count_records_not_under(2).await.unwrap(), 2);
    assert_eq!(tx.set_min_decryption_version(3).await.unwrap(), 2);
    assert_eq!(tx.data_key_versions().await.unwrap(), (3, 3));
    let states: Vec<String> = tx
        .tenant_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.state)
        .collect();
    assert_eq!(states, ["disabled", "disabled", "active"]);
    // Lowering re-enables.
    tx.set_min_decryption_version(2).await.unwrap();
    assert_eq!(tx.data_key_versions().await.unwrap(), (3, 2));
    tx.commit().await.unwrap();
}

on_both!(reseal_is_a_tenant_scoped_compare_and_swap);
async fn reseal_is_a_tenant_scoped_compare_and_swap(b: Backend) {
    use kluis_store::rows::Reseal;
    let s = &b.store;
    let a = tenant(s, "a").await;
    let bt = tenant(s, "b").await;
    // More users than one statement takes (1000), to cover the chunking.
    let n = 1203usize;
    let mut tx = s.tenant(a).begin().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = UserId::new();
        let email = format!("u{i}@a.test");
        tx.insert_user(&NewUser {
            id,
            email_bidx: email.as_bytes(),
            email: email.as_bytes(),
            display_name: b"old",
            role: Role::Member,
            password_hash: None,
            now: 1,
        })
        .await
        .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    let other = user(s, bt, "u0@a.test").await;

    // Keyset pages walk every row once, in id order.
    let mut tx = s.tenant(a).begin_read().await.unwrap();
    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let page = tx.list_users(after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|r| r.id));
    }
    drop(tx);
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    // The second user changed since it was read: not overwritten. Another tenant's id is
    // not reachable.
    let mut tx = s.tenant(a).begin().await.unwrap();
    tx.update_user(
        ids[1],
        &UserPatch {
            display_name: Some(b"changed"),
            ..Default::default()
        },
        2,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let emails: Vec<String> = (0..n).map(|i| format!("u{i}@a.test")).collect();
    let mut reseals: Vec<Reseal<'_, UserId>> = ids
        .iter()
        .zip(&emails)
        .map(|(id, e)| Reseal {
            id: *id,
            old: [e.as_bytes(), b"old"],
            new: [b"new-email", b"new"],
        })
        .collect();
    reseals.push(Reseal {
        id: other,
        old: [b"u0@a.test", b"X"],
        new: [b"stolen", b"stolen"],
    });
    let mut tx = s.tenant(a).begin().await.unwrap();
    assert_eq!(tx.reseal_users(&reseals).await.unwrap(), n as u64 - 1);
    assert_eq!(tx.reseal_users(&[]).await.unwrap(), 0);
    tx.commit().await.unwrap();

    let mut tx = s.tenant(a).begin_read().await.unwrap();
    let first = tx.user(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (&first.email[..], &first.display_name[..]),
        (&b"new-email"[..], &b"new"[..])
    );
    let last = tx.user(ids[n - 1]).await.unwrap().unwrap();
    assert_eq!(&last.display_name[..], b"new");
    let changed = tx.user(ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (&changed.email[..], &changed.display_name[..]),
        (&b"u1@a.test"[..], &b"changed"[..])
    );
    drop(tx);
    let mut tx = s.tenant(bt).begin_read().await.unwrap();
    assert_eq!(
        &tx.user(other).await.unwrap().unwrap().email[..],
        b"u0@a.test"
    );
    drop(tx);

    // Sessions: the same statement shape on the other table.
    let u = ids[0];
    let mut tx = s.tenant(a).begin().await.unwrap();
    let sid = kluis_store::SessionId::new();
    tx.insert_session(&NewSession {
        id: sid,
        user_id: u,
        token_hash: &[9; 32],
        csrf_hash: &[9; 32],
        ip: b"ip1",
        user_agent: b"ua1",
        now: 1,
        expires_at: 10,
        stage: "password",
    })
    .await
    .unwrap();
    let stale = Reseal {
        id: sid,
        old: [&b"ip0"[..], &b"ua1"[..]],
        new: [&b"ip2"[..], &b"ua2"[..]],
    };
    assert_eq!(tx.reseal_sessions(&[stale]).await.unwrap(), 0);
    let fresh = Reseal {
        id: sid,
        old: [&b"ip1"[..], &b"ua1"[..]],
        new: [&b"ip2"[..], &b"ua2"[..]],
    };
    assert_eq!(tx.reseal_sessions(&[fresh]).await.unwrap(), 1);
    let rows = tx.sessions_batch(None, 10).await.unwrap();
    assert_eq!(
        (&rows[0].ip[..], &rows[0].user_agent[..]),
        (&b"ip2"[..], &b"ua2"[..])
    );
    assert!(tx.sessions_batch(Some(sid), 10).await.unwrap().is_empty());
    tx.commit().await.unwrap();
}

/// Snapshot of everything the hot read path returns for one tenant, as comparable strings.
async fn hot_reads(s: &Store, t: TenantId, mode: &str, u: UserId) -> Vec<String> {
    let mut tx = match mode {
        "read" => s.tenant(t).begin_read().await.unwrap(),
        "snapshot" => s.tenant(t).begin_snapshot().await.unwrap(),
        _ => s.tenant(t).begin().await.unwrap(),
    };
    struct Collect(Vec<String>);
    impl kluis_store::AuditVisitor for Collect {
        fn visit(&mut self, e: kluis_store::rows::AuditEventRef<'_>) -> bool {
            self.0.push(format!("{e:?}"));
            true
        }
    }
    let events = tx.scan_audit_events(0, Collect(Vec::new())).await.unwrap();
    vec![
        format!("{:?}", tx.user(u).await.unwrap()),
        format!("{:?}", tx.api_key_by_secret_hash(&[7; 32]).await.unwrap()),
        format!("{:?}", tx.api_key_by_secret_hash(&[8; 32]).await.unwrap()),
        format!("{:?}", tx.session_for_auth(&[9; 32]).await.unwrap()),
        format!("{:?}", tx.tenant_keys().await.unwrap()),
        format!("{:?}", tx.data_key_versions().await.unwrap()),
        format!("{:?}", tx.audit_size().await.unwrap()),
        format!("{:?}", tx.audit_truncation().await.unwrap()),
        format!("{:?}", events.0),
    ]
}

// The SQLite read path runs the hot reads through rusqlite (no thread hop): same rows as the
// sqlx path of a write transaction, and still nothing of another tenant.
on_both!(hot_reads_match_and_stay_scoped);
async fn hot_reads_match_and_stay_scoped(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    let other = tenant(s, "b").await;
    let u = user(s, a, "hot@a.test").await;
    let mut tx = s.tenant(a).begin().await.unwrap();
    let key = kluis_store::ApiKeyId::new();
    tx.insert_api_key(&NewApiKey {
        id: key,
        name: "k",
        scopes: "[\"users:read\"]",
        secret_hash: &[8; 32],
        created_by: Some(u),
        now: 1,
    })
    .await
    .unwrap();
    assert!(tx.rotate_api_key(key, &[7; 32], 100, 5).await.unwrap());
    tx.insert_session(&NewSession {
        id: kluis_store::SessionId::new(),
        user_id: u,
        token_hash: &[9; 32],
        csrf_hash: &[1; 32],
        ip: b"sealed-ip",
        user_agent: b"sealed-ua",
        now: 1,
        expires_at: 10,
        stage: "password",
    })
    .await
    .unwrap();
    tx.insert_tenant_key("data", 1, b"wrapped-d", "k", 1)
        .await
        .unwrap();
    tx.insert_tenant_key("index", 1, b"wrapped-i", "k", 1)
        .await
        .unwrap();
    for _ in 0..3 {
        let seq = tx.audit_next_seq().await.unwrap();
        tx.insert_audit_event(&kluis_store::rows::NewAuditEvent {
            seq,
            at: 10 + seq,
            actor: "console",
            action: "x.y",
            outcome: "success",
            object_type: (seq % 2 == 0).then_some("user"),
            object_id: None,
            ip_bidx: None,
            details: b"sealed",
            leaf_hash: &[seq as u8; 32],
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let via_read = hot_reads(s, a, "read", u).await;
    let via_write = hot_reads(s, a, "write", u).await;
    assert_eq!(via_read, via_write);
    assert_eq!(via_read, hot_reads(s, a, "snapshot", u).await);
    assert!(via_read[0].starts_with("Some("), "{via_read:?}");
    assert!(via_read[1].contains("via_previous: false"), "{via_read:?}");
    assert!(via_read[2].contains("via_previous: true"), "{via_read:?}");
    assert!(via_read[3].starts_with("Some("), "{via_read:?}");
    assert_eq!(via_read[6], "3");
    assert!(via_read[8].contains("seq: 2"), "{via_read:?}");
    // Another tenant's transaction sees none of it, on either path.
    for read in ["read", "snapshot", "write"] {
        let empty = hot_reads(s, other, read, u).await;
        assert_eq!(
            empty,
            [
                "None",
                "None",
                "None",
                "None",
                "[]",
                "(0, 0)",
                "0",
                "(0, None, None)",
                "[]"
            ],
            "read={read}"
        );
    }
}

async fn append(s: &Store, t: TenantId) -> Result<i64, kluis_store::StoreError> {
    let mut tx = s.tenant(t).begin().await.unwrap();
    let seq = tx.audit_next_seq().await.unwrap();
    tx.insert_audit_event(&kluis_store::rows::NewAuditEvent {
        seq,
        at: 1,
        actor: "console",
        action: "x.y",
        outcome: "success",
        object_type: None,
        object_id: None,
        ip_bidx: None,
        details: b"sealed",
        leaf_hash: &[0; 32],
    })
    .await?;
    tx.commit().await.unwrap();
    Ok(seq)
}

/// SQLite: a writer that caches the log head (two processes on one file here) is refused by
/// the insert trigger once another appended, stores nothing, and gets the right head next time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stale_audit_head_is_refused_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kluis.db");
    let one = Store::open_sqlite(&path).await.unwrap();
    let two = Store::open_sqlite(&path).await.unwrap();
    let t = tenant(&one, "a").await;
    assert_eq!(append(&one, t).await.unwrap(), 0);
    assert_eq!(append(&two, t).await.unwrap(), 1);
    assert!(matches!(
        append(&one, t).await,
        Err(kluis_store::StoreError::AuditHeadMoved)
    ));
    assert_eq!(append(&one, t).await.unwrap(), 2);
    assert!(matches!(
        append(&two, t).await,
        Err(kluis_store::StoreError::AuditHeadMoved)
    ));
    assert_eq!(append(&two, t).await.unwrap(), 3);
    let mut tx = one.tenant(t).begin_read().await.unwrap();
    assert_eq!(tx.audit_size().await.unwrap(), 4);
    // A number that is not the head is refused even inside one writer's transaction.
    let mut w = one.tenant(t).begin().await.unwrap();
    let err = w
        .insert_audit_event(&kluis_store::rows::NewAuditEvent {
            seq: 7,
            at: 1,
            actor: "console",
            action: "x.y",
            outcome: "success",
            object_type: None,
            object_id: None,
            ip_bidx: None,
            details: b"sealed",
            leaf_hash: &[0; 32],
        })
        .await;
    assert!(matches!(err, Err(kluis_store::StoreError::AuditHeadMoved)));
}

/// The table a keyset plan reads and how its cursor shows in the plan (SQLite, PostgreSQL).
fn keyset_target(name: &str) -> (&'static str, &'static str, &'static str) {
    match name {
        "audit_events" | "audit_events_by_actor" => ("audit_events", "seq>?", "seq >"),
        "audit_leaf_hashes" => ("audit_events", "seq>?", "seq >="),
        "users" => ("users", "id>?", "id >"),
        "sessions" => ("sessions", "id>?", "id >"),
        "api_keys" => ("api_keys", "id>?", "id >"),
        "record_fields" | "record_state" | "records" => ("crm_records", "id>?", "id >"),
        "records_desc" => ("crm_records", "id<?", "id <"),
        "versions" => (
            "crm_versions",
            "(record_id,revision)>(?,?)",
            "ROW(record_id, revision) > ROW(",
        ),
        "tenants" => ("tenants", "id>?", "id >"),
        other => panic!("no expectation for keyset plan {other}"),
    }
}

// Every keyset page seeks its index at the cursor and reads in index order: no full scan of
// the table and no temporary b-tree (sort), so a page costs the same at any size. The form
// `($2 IS NULL OR seq > $2)` failed this: SQLite walked the tenant's rows from the start.
on_both!(keyset_pages_seek_their_index);
async fn keyset_pages_seek_their_index(b: Backend) {
    let s = &b.store;
    let a = tenant(s, "a").await;
    let mut tx = s.tenant(a).begin_read().await.unwrap();
    let mut plans = tx.keyset_plans().await.unwrap();
    drop(tx);
    let mut p = s.platform().await.unwrap();
    plans.extend(p.keyset_plans().await.unwrap());
    drop(p);
    assert_eq!(plans.len(), 12, "every keyset page is explained");
    let pg = s.engine() == Engine::Postgres;
    for (name, plan) in &plans {
        let (table, sqlite_cursor, pg_cursor) = keyset_target(name);
        eprintln!("{name}:\n{plan}");
        let lines: Vec<&str> = plan.lines().map(str::trim).collect();
        if pg {
            assert!(
                !lines
                    .iter()
                    .any(|l| l.contains(&format!("Seq Scan on {table}"))),
                "{name}: full scan\n{plan}"
            );
            assert!(
                !lines
                    .iter()
                    .any(|l| l.starts_with("Sort") || l.starts_with("->  Sort")),
                "{name}: sorts\n{plan}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("Index Cond:") && l.contains(pg_cursor)),
                "{name}: the cursor is not an index condition\n{plan}"
            );
        } else {
            assert!(
                !lines
                    .iter()
                    .any(|l| l.starts_with(&format!("SCAN {table}"))),
                "{name}: full scan\n{plan}"
            );
            assert!(
                !lines.iter().any(|l| l.contains("TEMP B-TREE")),
                "{name}: sorts\n{plan}"
            );
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("SEARCH {table}"))
                    && l.contains(sqlite_cursor)),
                "{name}: the cursor is not sought\n{plan}"
            );
        }
    }
}
