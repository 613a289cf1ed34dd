//! Record scope benchmark (issue 17): the contacts list page at record scope "own" and "team"
//! next to "all", for a signed-in member whose custom role sets the scope. Prints, does not
//! assert.
//!
//! `cargo bench -p kluis-core --bench scope`
//!
//! Environment: `KLUIS_BENCH_CONTACTS` (default 200,000; the figure is 1,000,000),
//! `KLUIS_BENCH_OWNERS` (default 20: contacts are spread round-robin over that many users, so
//! "own" reaches 1/20 of them), `KLUIS_BENCH_DIR`. The team is 4 of the owners (1/5 of the
//! contacts). Target (issue 17): p99 at "own" and "team" at most 1.2x the p99 at "all". Every
//! call is the real `Kluis::list_records` (role resolution, query, decryption, audit event).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use kluis_core::authz::{ObjectRights, RecordScope};
use kluis_core::bench_support as bs;
use kluis_core::crm::{ObjectType, RecordQuery};
use kluis_core::keys::KeyEncryptionKeys;
use kluis_core::roles::{CustomRoleAssignment, RoleInput, RolePatch, TeamInput};
use kluis_core::tenants::{NewTenantInput, PlatformActor};
use kluis_core::users::NewUserInput;
use kluis_core::{Actor, CoreConfig, Kluis, RequestContext, Role, Store};
use kluis_crypto::envelope::{Kek, LocalKms};

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn pcts(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let n = v.len().max(1);
    let pick = |q: f64| v[((n as f64 * q) as usize).min(n - 1)];
    (pick(0.50), pick(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn rules(scope: RecordScope) -> BTreeMap<ObjectType, ObjectRights> {
    let r = ObjectRights {
        read: true,
        create: true,
        update: true,
        delete: true,
        export: true,
        import: false,
        unmask: false,
        scope,
    };
    ObjectType::ALL.into_iter().map(|t| (t, r)).collect()
}

/// 300 first pages and 300 next pages of 50, oldest and newest first.
async fn pages(kluis: &Kluis, who: &Actor, ctx: &RequestContext) -> Result<Vec<Duration>> {
    let mut lat = Vec::new();
    for i in 0..300u64 {
        let q = RecordQuery {
            newest_first: i % 2 == 0,
            ..Default::default()
        };
        let t0 = Instant::now();
        let page = kluis
            .list_records(who, ctx, ObjectType::Contact, q.clone(), None, Some(50))
            .await?;
        lat.push(t0.elapsed());
        assert_eq!(page.items.len(), 50);
        let t0 = Instant::now();
        kluis
            .list_records(
                who,
                ctx,
                ObjectType::Contact,
                q,
                page.next_cursor.as_deref(),
                Some(50),
            )
            .await?;
        lat.push(t0.elapsed());
    }
    Ok(lat)
}

async fn run() -> Result<()> {
    let n = kluis_core::bench_support::env_u64("KLUIS_BENCH_CONTACTS", 200_000);
    let owners_n = kluis_core::bench_support::env_u64("KLUIS_BENCH_OWNERS", 20).max(5);
    let tmp = match std::env::var_os("KLUIS_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    println!(
        "Record scope benchmark: {n} contacts over {owners_n} owners (SQLite in {})",
        tmp.path().display()
    );
    let store = Store::open_sqlite(&tmp.path().join("scope.db")).await?;
    let kluis = Kluis::new(
        store,
        CoreConfig::default(),
        KeyEncryptionKeys::new(Arc::new(LocalKms::new(Kek::generate()?))),
    );
    kluis.ensure_platform_keys().await?;
    let ctx = RequestContext::default();
    let t = kluis
        .create_tenant(
            &PlatformActor::console(),
            &ctx,
            NewTenantInput {
                slug: "scope-bench".into(),
                name: "Scope bench".into(),
            },
        )
        .await?
        .id;
    let console = Actor::console(t);
    let mut owners = Vec::new();
    for i in 0..owners_n {
        let u = kluis
            .create_user(
                &console,
                &ctx,
                NewUserInput {
                    email: format!("rep{i}@scope-bench.test"),
                    display_name: format!("Rep {i}"),
                    role: Role::Member,
                    password: None,
                },
            )
            .await?;
        owners.push(u.id);
    }
    let start = Instant::now();
    bs::insert_contacts(&kluis, t, &owners, n, 20_000).await?;
    println!(
        "setup: {n} contacts sealed and indexed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let team = kluis
        .create_team(
            &console,
            &ctx,
            TeamInput {
                name: "Noord".into(),
            },
        )
        .await?;
    for u in &owners[..4] {
        kluis
            .set_team_member(&console, &ctx, team.id, *u, true)
            .await?;
    }
    let role = kluis
        .create_role(
            &console,
            &ctx,
            RoleInput {
                name: "Rep".into(),
                description: None,
                objects: rules(RecordScope::All),
                fields: Default::default(),
            },
        )
        .await?;
    let me = owners[0];
    kluis
        .assign_custom_role(
            &console,
            &ctx,
            me,
            CustomRoleAssignment {
                role_id: Some(role.id.parse()?),
            },
        )
        .await?;
    let member = bs::user_actor(t, me, Role::Member);

    // Rounds that alternate the scopes, so a burst of other load on the machine falls on
    // all three alike rather than on whichever scope ran then.
    let scopes = [RecordScope::All, RecordScope::Team, RecordScope::Own];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); scopes.len()];
    for round in 0..4 {
        for (k, scope) in scopes.iter().enumerate() {
            kluis
                .update_role(
                    &console,
                    &ctx,
                    &role.id,
                    RolePatch {
                        objects: Some(rules(*scope)),
                        ..Default::default()
                    },
                )
                .await?;
            let lat = pages(&kluis, &member, &ctx).await?;
            // The first round warms the page cache for each scope and is not counted.
            if round > 0 {
                samples[k].extend(lat);
            }
        }
    }
    let results: Vec<(RecordScope, Duration, Duration)> = scopes
        .iter()
        .zip(samples)
        .map(|(s, lat)| {
            let (p50, p99) = pcts(lat);
            (*s, p50, p99)
        })
        .collect();
    let (all_p50, all_p99) = (results[0].1, results[0].2);
    for (scope, p50, p99) in &results {
        let ratio = p99.as_secs_f64() / all_p99.as_secs_f64();
        println!(
            "list page (50 contacts, first and next pages, incl. role lookup and audit event) scope {:<4}: p50 {} ({:.2}x) p99 {} ({:.2}x of \"all\")  target p99 <= 1.2x: {}",
            format!("{scope:?}").to_lowercase(),
            ms(*p50),
            p50.as_secs_f64() / all_p50.as_secs_f64(),
            ms(*p99),
            ratio,
            if ratio <= 1.2 { "meets" } else { "MISSES" }
        );
    }
    Ok(())
}
