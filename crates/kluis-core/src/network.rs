//! Per-organisation IP allowlist: CIDR blocks (IPv4 and IPv6) from which the organisation's
//! people may sign in and from which its sessions and API keys are accepted. An empty list
//! allows every address. Saving a list that leaves out the saver's own address is refused, so
//! an admin cannot lock themselves (and everyone with them) out by mistake.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::authz::{Actor, Permission};
use crate::{Error, ErrorKind, Kluis, RequestContext, Result, TenantId};

/// Entries a list may hold.
pub const MAX_ENTRIES: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpAllowlistDoc {
    /// CIDR blocks (`192.0.2.0/24`, `2001:db8::/32`) or single addresses; empty: any address.
    pub cidrs: Vec<String>,
}

/// Allowlists as recently read, per organisation; as fresh as the API-key cache, so a change
/// holds in every process within `api_key_cache_ttl`.
#[derive(Default)]
pub struct AllowlistCache(Mutex<HashMap<TenantId, (Instant, Allowlist)>>);

type Allowlist = Arc<Vec<IpNet>>;

fn parse(cidrs: &[String]) -> Result<Vec<IpNet>> {
    if cidrs.len() > MAX_ENTRIES {
        return Err(Error::validation(
            "cidrs",
            "too_many_entries",
            format!("at most {MAX_ENTRIES} entries"),
        ));
    }
    cidrs
        .iter()
        .map(|c| {
            let c = c.trim();
            c.parse::<IpNet>()
                .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    Error::validation(
                        "cidrs",
                        "invalid_cidr",
                        format!("`{c}` is not an IP address or CIDR block"),
                    )
                })
        })
        .collect()
}

/// The peer address as the list sees it (IPv4-mapped IPv6 as IPv4).
fn client_ip(ip: &str) -> Option<IpAddr> {
    ip.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

fn allows(list: &[IpNet], ip: &str) -> bool {
    list.is_empty() || client_ip(ip).is_some_and(|a| list.iter().any(|n| n.contains(&a)))
}

fn not_allowed() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "ip_not_allowed",
        "your organisation does not allow access from this network address",
    )
}

async fn stored(tx: &mut crate::db::TenantTx) -> Result<Vec<IpNet>> {
    match tx.ip_allowlist().await? {
        Some(json) => {
            let cidrs: Vec<String> = serde_json::from_str(&json)
                .map_err(|_| Error::internal("stored IP allowlist is unreadable"))?;
            parse(&cidrs)
        }
        None => Ok(Vec::new()),
    }
}

impl Kluis {
    /// Refuses `ip` when `tenant` keeps an allowlist that does not hold it
    /// (`403 ip_not_allowed`). Called at every sign-in and for every session and API-key
    /// request.
    pub async fn check_network(&self, tenant: TenantId, ip: &str) -> Result<()> {
        let ttl = self.config.api_key_cache_ttl;
        let cached = self
            .allowlists
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, l)| l.clone());
        let list = match cached {
            Some(l) => l,
            None => {
                let mut tx = self.store.tenant(tenant).begin_read().await?;
                let l = Arc::new(stored(&mut tx).await?);
                tx.commit().await?;
                if !ttl.is_zero() {
                    self.allowlists
                        .0
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(tenant, (Instant::now(), l.clone()));
                }
                l
            }
        };
        if allows(&list, ip) {
            Ok(())
        } else {
            Err(not_allowed())
        }
    }

    pub async fn ip_allowlist(&self, actor: &Actor) -> Result<IpAllowlistDoc> {
        actor.require(Permission::SettingsRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let list = stored(&mut tx).await?;
        Ok(IpAllowlistDoc {
            cidrs: list.iter().map(ToString::to_string).collect(),
        })
    }

    /// Saves the allowlist (normalised: `10.1.2.3/8` becomes `10.0.0.0/8`). Refused when the
    /// list is not empty and leaves out the caller's own address.
    pub async fn set_ip_allowlist(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        doc: IpAllowlistDoc,
    ) -> Result<IpAllowlistDoc> {
        actor.require(Permission::SettingsManage)?;
        let list = parse(&doc.cidrs)?;
        if !allows(&list, &ctx.ip) {
            return Err(Error::validation(
                "cidrs",
                "allowlist_excludes_you",
                "the list leaves out the address you are using now; add it, or you would be locked out",
            ));
        }
        let cidrs: Vec<String> = list.iter().map(ToString::to_string).collect();
        let json = (!cidrs.is_empty())
            .then(|| serde_json::to_string(&cidrs))
            .transpose()
            .map_err(|_| Error::internal("serialise allowlist"))?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let before: Vec<String> = stored(&mut tx)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        let policy = crate::settings::effective_policy(&mut tx).await?;
        let policy =
            serde_json::to_string(&policy).map_err(|_| Error::internal("serialise policy"))?;
        tx.put_ip_allowlist(json.as_deref(), &policy, self.now())
            .await?;
        let keys = self.keys(&mut tx).await?;
        let ev =
            crate::audit::Event::ok("settings.ip_allowlist.update", "settings", "ip_allowlist")
                .with(serde_json::json!({"old": before, "new": cidrs}));
        self.audit(&mut tx, &keys, &crate::audit::actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        self.allowlists
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&actor.tenant());
        Ok(IpAllowlistDoc { cidrs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_v4_v6_and_mapped_addresses() {
        let l = parse(&[
            "192.0.2.7/24".into(),
            "2001:db8::/32".into(),
            "10.9.8.7".into(),
        ])
        .unwrap();
        assert_eq!(l[0].to_string(), "192.0.2.0/24", "normalised");
        assert!(allows(&l, "192.0.2.200"));
        assert!(allows(&l, "::ffff:192.0.2.1"), "IPv4-mapped IPv6");
        assert!(allows(&l, "2001:db8:1::5"));
        assert!(allows(&l, "10.9.8.7"));
        assert!(!allows(&l, "10.9.8.6"));
        assert!(!allows(&l, "192.0.3.1"));
        assert!(!allows(&l, "2001:db9::1"));
        assert!(!allows(&l, ""), "no peer address: refused");
        assert!(allows(&[], "203.0.113.1"), "empty list: any address");
        assert_eq!(parse(&["nope".into()]).unwrap_err().code, "invalid_cidr");
        assert_eq!(
            parse(&vec!["10.0.0.1".to_owned(); 101]).unwrap_err().code,
            "too_many_entries"
        );
    }
}
