//! SCIM 2.0 (RFC 7643 resources, RFC 7644 protocol) user and group provisioning, so that an
//! identity provider (Entra ID, Okta) creates, updates and deprovisions a tenant's users and
//! maps its groups to Kluis roles.
//!
//! No maintained Rust crate covers the server side, so the protocol pieces are here: the
//! resource documents (plain `serde_json`, validated field by field on the way in), the filter
//! and PATCH-path grammar ([`filter`], over an allow-list of attributes) and PATCH ([`patch`]).
//! The services are in [`service`]; they take an [`crate::Actor`] that only a SCIM token yields
//! (`Principal::Scim`, permission `ScimProvision`).

pub mod filter;
pub mod patch;
pub mod service;

use serde_json::{Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RT_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Largest page a list returns (`count` is capped to it).
pub const MAX_RESULTS: usize = 200;

/// What this server supports, honestly: PATCH and filters yes; bulk, sorting, ETags
/// (If-Match) and password changes no.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/kluis/kluis#scim-provisioning",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "The tenant's SCIM token: Authorization: Bearer kluisscim_...",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")}
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    [("User", "/Users", USER_SCHEMA), ("Group", "/Groups", GROUP_SCHEMA)]
        .into_iter()
        .map(|(name, endpoint, schema)| {
            json!({
                "schemas": [RT_SCHEMA],
                "id": name,
                "name": name,
                "endpoint": endpoint,
                "description": name,
                "schema": schema,
                "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")}
            })
        })
        .collect()
}

fn attribute(name: &str, ty: &str, required: bool, mutability: &str, case_exact: bool) -> Value {
    json!({
        "name": name, "type": ty, "multiValued": false, "description": name,
        "required": required, "caseExact": case_exact, "mutability": mutability,
        "returned": "default", "uniqueness": "none"
    })
}

/// The attributes this server stores, and nothing more: the conformance checker and the IdPs
/// read this to know what to send.
pub fn schemas(base: &str) -> Vec<Value> {
    let mut user_name = attribute("userName", "string", true, "readWrite", false);
    user_name["uniqueness"] = json!("server");
    let mut name = attribute("name", "complex", false, "readWrite", false);
    name["subAttributes"] = json!([
        attribute("formatted", "string", false, "readWrite", false),
        attribute("familyName", "string", false, "readWrite", false),
        attribute("givenName", "string", false, "readWrite", false),
    ]);
    // `emails` is required here: a Kluis user needs an address (unless `userName` is one).
    let mut emails = attribute("emails", "complex", true, "readWrite", false);
    emails["multiValued"] = json!(true);
    let mut email_type = attribute("type", "string", false, "readWrite", false);
    email_type["canonicalValues"] = json!(["work", "home", "other"]);
    emails["subAttributes"] = json!([
        attribute("value", "string", true, "readWrite", false),
        email_type,
        attribute("primary", "boolean", false, "readWrite", false),
    ]);
    let user = json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": [
            user_name,
            name,
            attribute("displayName", "string", false, "readWrite", false),
            emails,
            // Every Kluis user is active or not: never unassigned (absent in a POST = true).
            attribute("active", "boolean", true, "readWrite", false),
            attribute("externalId", "string", false, "readWrite", true),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}")}
    });
    let mut members = attribute("members", "complex", false, "readWrite", false);
    members["multiValued"] = json!(true);
    let mut member_ref = attribute("$ref", "reference", false, "immutable", true);
    member_ref["referenceTypes"] = json!(["User"]);
    let mut member_type = attribute("type", "string", false, "readOnly", false);
    member_type["canonicalValues"] = json!(["User"]);
    members["subAttributes"] = json!([
        attribute("value", "string", false, "immutable", true),
        member_ref,
        member_type,
    ]);
    let group = json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "Group",
        "attributes": [
            attribute("displayName", "string", true, "readWrite", false),
            members,
            attribute("externalId", "string", false, "readWrite", true),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}")}
    });
    vec![user, group]
}

/// A list response over already-selected resources.
pub fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// Paging and projection parameters of a list or `.search` (RFC 7644 §3.4.2.4, §3.4.2.5).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// A `POST .search` body.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    #[serde(default)]
    pub attributes: Vec<String>,
    #[serde(default)]
    pub excluded_attributes: Vec<String>,
}

impl From<SearchRequest> for ListParams {
    fn from(s: SearchRequest) -> Self {
        let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(","));
        ListParams {
            filter: s.filter,
            start_index: s.start_index,
            count: s.count,
            attributes: join(s.attributes),
            excluded_attributes: join(s.excluded_attributes),
        }
    }
}

/// `attributes` / `excludedAttributes` (top-level names, or `parent.sub`): `id`, `schemas` and
/// `meta` are always returned (RFC 7643 §7 "returned: always").
pub fn project(
    resource: filter::Resource,
    doc: Value,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Value {
    let Value::Object(mut obj) = doc else {
        return doc;
    };
    let names = |s: &str| -> Vec<(String, Option<String>)> {
        s.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                let lower = a.to_ascii_lowercase();
                let prefix = format!("{}:", resource.schema().to_ascii_lowercase());
                let a = lower.strip_prefix(&prefix).unwrap_or(&lower).to_owned();
                match a.split_once('.') {
                    Some((p, s)) => (p.to_owned(), Some(s.to_owned())),
                    None => (a, None),
                }
            })
            .collect()
    };
    let always = |k: &str| matches!(k, "id" | "schemas" | "meta");
    if let Some(attrs) = attributes.filter(|a| !a.trim().is_empty()) {
        let wanted = names(attrs);
        obj.retain(|k, v| {
            let kl = k.to_ascii_lowercase();
            if always(&kl) {
                return true;
            }
            let subs: Vec<&Option<String>> = wanted
                .iter()
                .filter(|(p, _)| *p == kl)
                .map(|(_, s)| s)
                .collect();
            if subs.is_empty() {
                return false;
            }
            if subs.iter().any(|s| s.is_none()) {
                return true;
            }
            let keep = |m: &mut serde_json::Map<String, Value>| {
                m.retain(|sk, _| {
                    subs.iter()
                        .any(|s| s.as_deref() == Some(&sk.to_ascii_lowercase()))
                });
            };
            match v {
                Value::Object(m) => keep(m),
                Value::Array(items) => items
                    .iter_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(keep),
                _ => {}
            }
            true
        });
    } else if let Some(ex) = excluded {
        for (p, sub) in names(ex) {
            if always(&p) {
                continue;
            }
            let Some(k) = obj.keys().find(|k| k.to_ascii_lowercase() == p).cloned() else {
                continue;
            };
            match sub {
                None => {
                    obj.remove(&k);
                }
                Some(s) => match obj.get_mut(&k) {
                    Some(Value::Object(m)) => m.retain(|sk, _| sk.to_ascii_lowercase() != s),
                    Some(Value::Array(items)) => {
                        for m in items.iter_mut().filter_map(Value::as_object_mut) {
                            m.retain(|sk, _| sk.to_ascii_lowercase() != s);
                        }
                    }
                    _ => {}
                },
            }
        }
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use crate::authz::RoleGrants;
    use crate::{Actor, ApiKeyId, Permission, Principal, Role, Scope, TenantId};

    #[test]
    fn only_the_scim_token_provisions_and_it_does_nothing_else() {
        for r in Role::ALL {
            assert!(!r.grants(Permission::ScimProvision), "{r:?}");
        }
        assert!(Role::Admin.grants(Permission::ScimManage));
        assert!(!Role::Manager.grants(Permission::ScimManage));
        for s in Scope::ALL {
            assert!(!s.grants(Permission::ScimProvision) && !s.grants(Permission::ScimManage));
        }
        let scim = Actor::new(
            TenantId::new(),
            Principal::Scim {
                token: uuid::Uuid::now_v7(),
            },
        );
        assert!(scim.require(Permission::ScimProvision).is_ok());
        for p in [
            Permission::UsersRead,
            Permission::UsersManage,
            Permission::OwnersManage,
            Permission::ApiKeysManage,
            Permission::ScimManage,
            Permission::CrmRead,
            Permission::AuditRead,
        ] {
            assert!(scim.require(p).is_err(), "{p:?}");
        }
        assert!(scim.require_user().is_err());
        assert!(scim.require_key_manager().is_err());
        let key = Actor::new(
            TenantId::new(),
            Principal::ApiKey {
                id: ApiKeyId::new(),
                scopes: Scope::ALL.to_vec(),
            },
        );
        assert!(key.require(Permission::ScimProvision).is_err());
    }
}
