//! RFC 7644 §3.5.2 PATCH, applied to the writable SCIM representation of a resource (a JSON
//! object); the result is then validated like a PUT body. Accepts what Entra ID sends:
//! capitalised `"Replace"`/`"Add"`/`"Remove"`, a path-less `replace` with an object, and a
//! `remove` of `members` with a `value` list (removes just those members).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::filter::{self, PatchPath, Resource};
use crate::{Error, ErrorKind, Result};

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Bound on the work one request may ask for.
const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct PatchRequest {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub operations: Vec<PatchOperation>,
}

#[derive(Debug, Deserialize)]
pub struct PatchOperation {
    pub op: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

fn bad(code: &'static str, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadRequest, code, msg)
}

fn get_key(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Applies the operations to `doc` in order; all or nothing (the caller stores only the result).
pub fn apply(resource: Resource, doc: &mut Value, req: PatchRequest) -> Result<()> {
    if !req.schemas.iter().any(|s| s == PATCH_SCHEMA) {
        return Err(bad("invalidSyntax", "schemas must contain the PatchOp URN"));
    }
    if req.operations.is_empty() || req.operations.len() > MAX_OPERATIONS {
        return Err(bad("invalidSyntax", "give 1 to 1000 operations"));
    }
    for o in req.operations {
        let op = match o.op.to_ascii_lowercase().as_str() {
            "add" => Op::Add,
            "replace" => Op::Replace,
            "remove" => Op::Remove,
            _ => return Err(bad("invalidSyntax", "op must be add, replace or remove")),
        };
        match o.path.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => {
                if let Some(path) = filter::parse_path(resource, p)? {
                    apply_path(doc, op, &path, o.value)?;
                }
            }
            None => {
                if op == Op::Remove {
                    return Err(bad("noTarget", "remove needs a path"));
                }
                let Some(Value::Object(values)) = o.value else {
                    return Err(bad(
                        "invalidValue",
                        "without a path, value must be an object",
                    ));
                };
                for (k, v) in values {
                    // Keys may themselves be paths (`name.givenName`) or schema URNs.
                    if let Some(path) = filter::parse_path(resource, &k)? {
                        apply_path(doc, op, &path, Some(v))?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn root(doc: &mut Value) -> Result<&mut Map<String, Value>> {
    doc.as_object_mut()
        .ok_or_else(|| Error::internal("resource is not an object"))
}

fn as_items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => vec![other],
    }
}

fn apply_path(doc: &mut Value, op: Op, path: &PatchPath, value: Option<Value>) -> Result<()> {
    let name = path.attr.name;
    let obj = root(doc)?;
    let key = get_key(obj, name).unwrap_or_else(|| name.to_owned());
    if op != Op::Remove && value.is_none() {
        return Err(bad("invalidValue", "add and replace need a value"));
    }
    if let Some(f) = &path.filter {
        let items = obj
            .entry(key.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(items) = items else {
            return Err(bad("invalidPath", "not a multi-valued attribute"));
        };
        let matching: Vec<usize> = (0..items.len())
            .filter(|i| f.matches_element(&items[*i]))
            .collect();
        match (op, path.sub) {
            (Op::Remove, None) => {
                let mut i = 0;
                items.retain(|_| {
                    i += 1;
                    !matching.contains(&(i - 1))
                });
            }
            (Op::Remove, Some(sub)) => {
                for i in matching {
                    if let Some(o) = items[i].as_object_mut()
                        && let Some(k) = get_key(o, sub)
                    {
                        o.remove(&k);
                    }
                }
            }
            (_, sub) => {
                let value = value.unwrap_or(Value::Null);
                if matching.is_empty() {
                    // Entra ID: `emails[type eq "work"].value` on a user without a work email.
                    let mut el = f.element_template().ok_or_else(|| {
                        bad("noTarget", "no value matches the filter of the path")
                    })?;
                    match (sub, value) {
                        (Some(s), v) => {
                            el.insert(s.to_owned(), v);
                        }
                        (None, Value::Object(m)) => el.extend(m),
                        (None, _) => return Err(bad("invalidValue", "value must be an object")),
                    }
                    items.push(Value::Object(el));
                } else {
                    for i in matching {
                        match (sub, &value) {
                            (Some(s), v) => {
                                if let Some(o) = items[i].as_object_mut() {
                                    let k = get_key(o, s).unwrap_or_else(|| s.to_owned());
                                    o.insert(k, v.clone());
                                }
                            }
                            (None, Value::Object(m)) => {
                                if let Some(o) = items[i].as_object_mut() {
                                    for (k, v) in m {
                                        o.insert(k.clone(), v.clone());
                                    }
                                }
                            }
                            (None, _) => {
                                return Err(bad("invalidValue", "value must be an object"));
                            }
                        }
                    }
                }
            }
        }
        if items.is_empty() {
            obj.remove(&key);
        }
        return Ok(());
    }
    match (op, path.sub) {
        (Op::Remove, None) => {
            // Entra ID removes group members with `path: members` and a list of values.
            if path.attr.multi
                && let Some(v) = value.filter(|v| !v.is_null())
            {
                let gone: Vec<Value> = as_items(v)
                    .into_iter()
                    .filter_map(|i| i.get("value").cloned())
                    .collect();
                if let Some(Value::Array(items)) = obj.get_mut(&key) {
                    items.retain(|i| !i.get("value").is_some_and(|x| gone.contains(x)));
                    if items.is_empty() {
                        obj.remove(&key);
                    }
                }
            } else {
                obj.remove(&key);
            }
        }
        (Op::Remove, Some(sub)) => match obj.get_mut(&key) {
            Some(Value::Object(o)) => {
                if let Some(k) = get_key(o, sub) {
                    o.remove(&k);
                }
            }
            Some(Value::Array(items)) => {
                for i in items {
                    if let Some(o) = i.as_object_mut()
                        && let Some(k) = get_key(o, sub)
                    {
                        o.remove(&k);
                    }
                }
            }
            _ => {}
        },
        (op, None) => {
            let value = value.unwrap_or(Value::Null);
            if path.attr.multi {
                let new = as_items(value);
                if op == Op::Add {
                    let cur = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(items) = cur {
                        for v in new {
                            if !items.contains(&v) {
                                items.push(v);
                            }
                        }
                    } else {
                        *cur = Value::Array(new);
                    }
                } else {
                    obj.insert(key, Value::Array(new));
                }
            } else if path.attr.complex {
                // Sub-attributes given replace theirs; the others stay (RFC 7644 §3.5.2.3).
                let Value::Object(m) = value else {
                    return Err(bad("invalidValue", "value must be an object"));
                };
                let cur = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                if let Some(o) = cur.as_object_mut() {
                    for (k, v) in m {
                        let k = get_key(o, &k).unwrap_or(k);
                        o.insert(k, v);
                    }
                }
            } else {
                obj.insert(key, value);
            }
        }
        (_, Some(sub)) => {
            let value = value.unwrap_or(Value::Null);
            let cur = obj.entry(key).or_insert_with(|| {
                if path.attr.multi {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                }
            });
            match cur {
                Value::Object(o) => {
                    let k = get_key(o, sub).unwrap_or_else(|| sub.to_owned());
                    o.insert(k, value);
                }
                Value::Array(items) => {
                    for i in items {
                        if let Some(o) = i.as_object_mut() {
                            let k = get_key(o, sub).unwrap_or_else(|| sub.to_owned());
                            o.insert(k, value.clone());
                        }
                    }
                }
                _ => return Err(bad("invalidPath", "not a complex attribute")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(doc: Value, ops: Value) -> Value {
        let mut doc = doc;
        let req: PatchRequest =
            serde_json::from_value(json!({"schemas": [PATCH_SCHEMA], "Operations": ops})).unwrap();
        let resource = if doc.get("members").is_some() || doc.get("userName").is_none() {
            Resource::Group
        } else {
            Resource::User
        };
        apply(resource, &mut doc, req).unwrap();
        doc
    }

    #[test]
    fn entra_user_operations() {
        let doc = json!({"userName": "a@x.nl", "active": true,
            "emails": [{"type": "work", "value": "a@x.nl", "primary": true}]});
        let out = patch(
            doc.clone(),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x.nl"},
                {"op": "Replace", "path": "name.givenName", "value": "Bea"},
                {"op": "Add", "path": "displayName", "value": "Bea X"},
                {"op": "Replace", "path": "active", "value": "False"}
            ]),
        );
        assert_eq!(out["emails"][0]["value"], "b@x.nl");
        assert_eq!(out["name"]["givenName"], "Bea");
        assert_eq!(out["displayName"], "Bea X");
        assert_eq!(out["active"], "False");
        let out = patch(
            doc,
            json!([{"op": "replace", "value": {"active": false, "name.familyName": "Y"}}]),
        );
        assert_eq!(out["active"], false);
        assert_eq!(out["name"]["familyName"], "Y");
    }

    #[test]
    fn work_email_is_created_when_missing() {
        let out = patch(
            json!({"userName": "a@x.nl"}),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "a@x.nl"}]),
        );
        assert_eq!(out["emails"], json!([{"type": "work", "value": "a@x.nl"}]));
    }

    #[test]
    fn entra_group_member_operations() {
        let doc = json!({"displayName": "G", "members": []});
        let out = patch(
            doc,
            json!([{"op": "Add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}, {"value": "u3"}]}]),
        );
        assert_eq!(out["members"].as_array().unwrap().len(), 3);
        let out = patch(
            out,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}]}]),
        );
        assert_eq!(out["members"], json!([{"value": "u2"}, {"value": "u3"}]));
        let out = patch(
            out,
            json!([{"op": "remove", "path": "members[value eq \"u2\"]"}]),
        );
        assert_eq!(out["members"], json!([{"value": "u3"}]));
        let out = patch(
            out,
            json!([{"op": "Replace", "path": "displayName", "value": "H"}]),
        );
        assert_eq!(out["displayName"], "H");
    }

    #[test]
    fn refuses_bad_operations() {
        let mut doc = json!({"userName": "a"});
        for ops in [
            json!([{"op": "move", "path": "userName", "value": "x"}]),
            json!([{"op": "remove"}]),
            json!([{"op": "replace", "value": "x"}]),
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            json!([]),
        ] {
            let req: PatchRequest =
                serde_json::from_value(json!({"schemas": [PATCH_SCHEMA], "Operations": ops}))
                    .unwrap();
            assert!(apply(Resource::User, &mut doc, req).is_err());
        }
    }
}
