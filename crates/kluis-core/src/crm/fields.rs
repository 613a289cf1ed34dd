//! The built-in field sets of CRM objects and their validation. Every value a record holds is
//! personal data until proven otherwise, so all of them are sealed; fields marked `lookup` also
//! get a blind index of their normalised value for exact-match search and duplicate detection.

use serde_json::{Map, Value};

use super::custom::{self, Schema};
use kluis_types::Phone;

use crate::{Error, Result, validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One line, at most `max` characters.
    Text,
    /// Multi-line free text.
    LongText,
    Email,
    /// Normalised to E.164 for lookups; stored as entered.
    Phone,
    /// http(s) URL.
    Url,
    /// ISO 3166-1 alpha-2, upper case.
    Country,
    /// A domain name, lower case (company websites, dedupe of companies).
    Domain,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub max: usize,
    /// Blind-indexed for exact match (`?email=`), named by this lookup key.
    pub lookup: bool,
}

const fn f(name: &'static str, kind: Kind, max: usize) -> Field {
    Field {
        name,
        kind,
        max,
        lookup: false,
    }
}

const fn l(name: &'static str, kind: Kind, max: usize) -> Field {
    Field {
        name,
        kind,
        max,
        lookup: true,
    }
}

pub(crate) const CONTACT: &[Field] = &[
    f("first_name", Kind::Text, 100),
    f("last_name", Kind::Text, 100),
    l("email", Kind::Email, 254),
    l("phone", Kind::Phone, 40),
    l("mobile", Kind::Phone, 40),
    f("job_title", Kind::Text, 100),
    f("street", Kind::Text, 200),
    f("postal_code", Kind::Text, 20),
    f("city", Kind::Text, 100),
    f("country", Kind::Country, 2),
    f("website", Kind::Url, 500),
    f("description", Kind::LongText, 10_000),
];

pub(crate) const DEAL: &[Field] = &[
    f("name", Kind::Text, 200),
    f("description", Kind::LongText, 10_000),
    f("lost_reason", Kind::Text, 500),
];

pub(crate) const TICKET: &[Field] = &[
    f("subject", Kind::Text, 200),
    f("description", Kind::LongText, 50_000),
];

pub(crate) const NOTE: &[Field] = &[f("body", Kind::LongText, 50_000)];

pub(crate) const TASK: &[Field] = &[
    f("title", Kind::Text, 200),
    f("description", Kind::LongText, 10_000),
];

pub(crate) const COMPANY: &[Field] = &[
    f("name", Kind::Text, 200),
    l("domain", Kind::Domain, 253),
    f("website", Kind::Url, 500),
    l("email", Kind::Email, 254),
    l("phone", Kind::Phone, 40),
    f("street", Kind::Text, 200),
    f("postal_code", Kind::Text, 20),
    f("city", Kind::Text, 100),
    f("country", Kind::Country, 2),
    f("industry", Kind::Text, 100),
    f("kvk_number", Kind::Text, 8),
    f("vat_number", Kind::Text, 20),
    f("description", Kind::LongText, 10_000),
];

fn invalid(field: &str, code: &'static str, message: &str) -> Error {
    Error::validation(&format!("fields.{field}"), code, message)
}

/// Validates and normalises one value. Errors name the field, never the value.
pub(crate) fn check_one(spec: &Field, v: &str) -> Result<String> {
    let name = spec.name;
    let v = match spec.kind {
        Kind::LongText => v.trim_end().to_owned(),
        _ => v.trim().to_owned(),
    };
    if v.chars().count() > spec.max {
        return Err(invalid(
            name,
            "too_long",
            &format!("at most {} characters", spec.max),
        ));
    }
    let bad_control = match spec.kind {
        Kind::LongText => v
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r'),
        _ => v.chars().any(char::is_control),
    };
    if bad_control {
        return Err(invalid(
            name,
            "invalid_characters",
            "contains control characters",
        ));
    }
    Ok(match spec.kind {
        Kind::Text | Kind::LongText => v,
        Kind::Email => validate::email(&format!("fields.{name}"), &v)?.into_string(),
        Kind::Phone => {
            Phone::parse(&v).map_err(|_| {
                invalid(
                    name,
                    "invalid_phone",
                    "not a phone number: use +<country code><number> or a Dutch number",
                )
            })?;
            v
        }
        Kind::Url => {
            let lower = v.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("https://")
                .or_else(|| lower.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
                return Err(invalid(
                    name,
                    "invalid_url",
                    "must be an http:// or https:// URL",
                ));
            }
            v
        }
        Kind::Country => {
            let c = v.to_ascii_uppercase();
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(invalid(
                    name,
                    "invalid_country",
                    "must be an ISO 3166-1 alpha-2 code such as NL",
                ));
            }
            c
        }
        Kind::Domain => {
            let d = v.to_ascii_lowercase();
            let ok = d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !d.contains("..")
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(invalid(
                    name,
                    "invalid_domain",
                    "must be a domain name such as example.nl",
                ));
            }
            d
        }
    })
}

/// The normalised value a lookup field is indexed under.
pub(crate) fn lookup_key(spec: &Field, value: &str) -> Option<String> {
    match spec.kind {
        Kind::Phone => Phone::parse(value).ok().map(Phone::into_string),
        Kind::Email | Kind::Domain => Some(value.to_lowercase()),
        _ => Some(value.to_owned()),
    }
}

/// Applies `patch` (a JSON merge patch: null removes a field) to `current`, validating every
/// value written: built-in fields by their spec, `custom.<key>` by the custom field's kind.
/// Unknown fields and wrong types are refused.
pub(crate) fn apply(
    schema: &Schema,
    current: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    let mut out = current.clone();
    for (k, v) in patch {
        // The message teaches: it names the fields there are (names only, never values).
        let unknown = || {
            let mut names: Vec<String> = schema
                .t
                .fields()
                .iter()
                .map(|f| f.name.to_owned())
                .collect();
            names.extend(schema.custom.iter().map(|d| format!("custom.{}", d.key)));
            Error::validation(
                &format!("fields.{k}"),
                "unknown_field",
                format!(
                    "no such field on a {}; the fields are: {}",
                    schema.t.as_str(),
                    names.join(", ")
                ),
            )
        };
        if v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()) {
            if k.strip_prefix("custom.")
                .is_some_and(|c| !schema.custom.iter().any(|d| d.key == c))
                && !current.contains_key(k)
            {
                return Err(unknown());
            }
            if !k.starts_with("custom.") && !schema.t.fields().iter().any(|s| s.name == k) {
                return Err(unknown());
            }
            out.remove(k);
            continue;
        }
        if let Some(ck) = k.strip_prefix("custom.") {
            let def = schema
                .custom
                .iter()
                .find(|d| d.key == ck)
                .ok_or_else(unknown)?;
            out.insert(k.clone(), custom::check_value(def, v)?);
            continue;
        }
        let spec = schema
            .t
            .fields()
            .iter()
            .find(|s| s.name == k)
            .ok_or_else(unknown)?;
        match v {
            Value::String(s) => {
                out.insert(k.clone(), Value::String(check_one(spec, s)?));
            }
            _ => {
                return Err(invalid(k, "invalid_type", "must be a string or null"));
            }
        }
    }
    Ok(out)
}

/// Required custom fields must have a value.
pub(crate) fn check_custom_required(schema: &Schema, f: &Map<String, Value>) -> Result<()> {
    for d in schema.custom.iter().filter(|d| d.required) {
        if !f.contains_key(&format!("custom.{}", d.key)) {
            return Err(Error::validation(
                &format!("fields.custom.{}", d.key),
                "required",
                "this custom field is required",
            ));
        }
    }
    Ok(())
}

/// Fields that differ between two states, as `{field: {old, new}}`.
pub(crate) fn changes(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for k in old.keys().chain(new.keys()) {
        let (o, n) = (old.get(k), new.get(k));
        if o != n && !out.contains_key(k) {
            out.insert(
                k.clone(),
                serde_json::json!({"old": o.cloned().unwrap_or(Value::Null), "new": n.cloned().unwrap_or(Value::Null)}),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merge_patch_validates_and_removes() {
        let cur = obj(json!({"first_name": "Anna", "city": "Delft"}));
        let schema = Schema {
            t: super::super::ObjectType::Contact,
            custom: vec![],
        };
        let next = apply(
            &schema,
            &cur,
            &obj(json!({"city": null, "email": " Anna@Example.NL ", "country": "nl"})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(next),
            json!({"first_name": "Anna", "email": "anna@example.nl", "country": "NL"})
        );
        for (patch, code) in [
            (json!({"nickname": "x"}), "unknown_field"),
            (json!({"email": "not-an-email"}), "invalid_email"),
            (json!({"first_name": 5}), "invalid_type"),
            (json!({"website": "javascript:alert(1)"}), "invalid_url"),
            (json!({"country": "N1"}), "invalid_country"),
            (json!({"country": "NLD"}), "too_long"),
            (json!({"first_name": "a\u{0007}b"}), "invalid_characters"),
            (json!({"first_name": "x".repeat(101)}), "too_long"),
            (json!({"phone": "call me"}), "invalid_phone"),
        ] {
            let e = apply(&schema, &cur, &obj(patch.clone())).unwrap_err();
            assert_eq!(e.code, code, "{patch}");
            assert!(e.field.as_deref().unwrap().starts_with("fields."));
        }
    }

    #[test]
    fn changes_list_old_and_new() {
        let c = changes(
            &obj(json!({"a": "1", "b": "2"})),
            &obj(json!({"b": "3", "c": "4"})),
        );
        assert_eq!(
            Value::Object(c),
            json!({"a": {"old": "1", "new": null}, "b": {"old": "2", "new": "3"}, "c": {"old": null, "new": "4"}})
        );
    }
}
