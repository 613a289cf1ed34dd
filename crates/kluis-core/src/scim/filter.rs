//! RFC 7644 §3.4.2.2 filters and §3.5.2 PATCH paths, parsed over an allow-list of attributes.
//!
//! A filter names only attributes of [`Resource::attribute`]; anything else (unknown
//! attributes, `gt`/`lt`, over-long or over-deep input) is refused with `invalidFilter`, so a
//! filter can never reach a column or value the allow-list does not name. Evaluation runs over
//! the opened SCIM representation of a resource (most attributes are sealed, so the database
//! cannot compare them); exact `userName`/`externalId` matches are narrowed by blind index first.

use serde_json::Value;

use crate::{Error, ErrorKind, Result};

/// Longest accepted filter or path, and deepest nesting.
const MAX_LEN: usize = 2000;
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

/// What the allow-list knows about an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrInfo {
    /// Canonical spelling.
    pub name: &'static str,
    pub multi: bool,
    pub complex: bool,
    pub case_exact: bool,
}

const fn attr(name: &'static str, multi: bool, complex: bool, case_exact: bool) -> AttrInfo {
    AttrInfo {
        name,
        multi,
        complex,
        case_exact,
    }
}

impl Resource {
    pub fn schema(self) -> &'static str {
        match self {
            Resource::User => super::USER_SCHEMA,
            Resource::Group => super::GROUP_SCHEMA,
        }
    }

    /// The allow-list of top-level attributes.
    pub fn attribute(self, name: &str) -> Option<AttrInfo> {
        const USER: &[AttrInfo] = &[
            attr("id", false, false, true),
            attr("externalId", false, false, true),
            attr("userName", false, false, false),
            attr("displayName", false, false, false),
            attr("active", false, false, false),
            attr("name", false, true, false),
            attr("emails", true, true, false),
        ];
        const GROUP: &[AttrInfo] = &[
            attr("id", false, false, true),
            attr("externalId", false, false, true),
            attr("displayName", false, false, false),
            attr("members", true, true, true),
        ];
        let list = match self {
            Resource::User => USER,
            Resource::Group => GROUP,
        };
        list.iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .copied()
    }

    /// The allow-list of sub-attributes of a complex attribute.
    pub fn sub_attribute(self, parent: &str, name: &str) -> Option<&'static str> {
        let subs: &[&'static str] = match (self, parent) {
            (Resource::User, "name") => &["givenName", "familyName", "formatted"],
            (Resource::User, "emails") => &["value", "type", "primary"],
            (Resource::Group, "members") => &["value", "type", "display", "$ref"],
            _ => &[],
        };
        subs.iter().find(|s| s.eq_ignore_ascii_case(name)).copied()
    }
}

/// `attr` or `attr.sub`, canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub attr: AttrInfo,
    pub sub: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, Value),
    /// `emails[type eq "work"]`: some element of a multi-valued attribute matches; the inner
    /// filter's paths are the element's sub-attributes.
    ValuePath(AttrInfo, Box<Filter>),
}

fn invalid_filter(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadRequest, "invalidFilter", msg)
}

fn invalid_path(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadRequest, "invalidPath", msg)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(serde_json::Number),
    LParen,
    RParen,
    LBracket,
    RBracket,
}

fn lex(input: &str) -> Result<Vec<Tok>> {
    if input.len() > MAX_LEN {
        return Err(invalid_filter("the filter is too long"));
    }
    let mut out = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '[' => {
                out.push(Tok::LBracket);
                i += 1;
            }
            ']' => {
                out.push(Tok::RBracket);
                i += 1;
            }
            '"' => {
                // A JSON string: let serde_json handle the escapes.
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(invalid_filter("unterminated string"));
                }
                i += 1;
                let raw: String = chars[start..i].iter().collect();
                let s: String = serde_json::from_str(&raw)
                    .map_err(|_| invalid_filter("invalid string literal"))?;
                out.push(Tok::Str(s));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || matches!(chars[i], '-' | '+' | '.' | 'e' | 'E'))
                {
                    i += 1;
                }
                let raw: String = chars[start..i].iter().collect();
                let n: serde_json::Number =
                    raw.parse().map_err(|_| invalid_filter("invalid number"))?;
                out.push(Tok::Num(n));
            }
            // `.value` right after `]` (`emails[type eq "work"].value eq ...`) lexes as a word.
            c if c.is_ascii_alphabetic() || c == '$' || c == '_' || c == '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || matches!(chars[i], '$' | '_' | '-' | '.' | ':'))
                {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            _ => return Err(invalid_filter("unexpected character in filter")),
        }
    }
    Ok(out)
}

/// Strips the resource's core schema URN (`urn:...:core:2.0:User:userName` -> `userName`).
fn strip_urn(resource: Resource, word: &str) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let prefix = format!("{}:", resource.schema().to_ascii_lowercase());
    if lower.starts_with(&prefix) {
        return Some(word[prefix.len()..].to_owned());
    }
    if lower.starts_with("urn:") {
        return None;
    }
    Some(word.to_owned())
}

/// Resolves `attr` / `attr.sub` against the allow-list. `parent` is set inside `[...]`.
fn resolve(resource: Resource, word: &str, parent: Option<AttrInfo>) -> Result<AttrPath> {
    let word = strip_urn(resource, word)
        .ok_or_else(|| invalid_filter("filtering on this schema is not supported"))?;
    if let Some(p) = parent {
        if word.contains('.') {
            return Err(invalid_filter("nested sub-attributes are not supported"));
        }
        let sub = resource
            .sub_attribute(p.name, &word)
            .ok_or_else(|| invalid_filter(format!("`{word}` is not a filterable attribute")))?;
        return Ok(AttrPath {
            attr: p,
            sub: Some(sub),
        });
    }
    let (a, sub) = match word.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (word.as_str(), None),
    };
    let attr = resource
        .attribute(a)
        .ok_or_else(|| invalid_filter(format!("`{a}` is not a filterable attribute")))?;
    let sub =
        match sub {
            None => None,
            Some(s) => Some(resource.sub_attribute(attr.name, s).ok_or_else(|| {
                invalid_filter(format!("`{a}.{s}` is not a filterable attribute"))
            })?),
        };
    Ok(AttrPath { attr, sub })
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    resource: Resource,
    depth: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(invalid_filter("the filter is nested too deeply"));
        }
        Ok(())
    }

    fn or(&mut self, parent: Option<AttrInfo>) -> Result<Filter> {
        self.enter()?;
        let mut left = self.and(parent)?;
        while is_kw(self.peek(), "or") {
            self.pos += 1;
            let right = self.and(parent)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self, parent: Option<AttrInfo>) -> Result<Filter> {
        let mut left = self.unary(parent)?;
        while is_kw(self.peek(), "and") {
            self.pos += 1;
            let right = self.unary(parent)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, parent: Option<AttrInfo>) -> Result<Filter> {
        if is_kw(self.peek(), "not") && self.toks.get(self.pos + 1) == Some(&Tok::LParen) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.group(parent)?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            return self.group(parent);
        }
        self.attr_exp(parent)
    }

    fn group(&mut self, parent: Option<AttrInfo>) -> Result<Filter> {
        self.next(); // (
        let f = self.or(parent)?;
        if self.next() != Some(Tok::RParen) {
            return Err(invalid_filter("missing `)`"));
        }
        Ok(f)
    }

    fn attr_exp(&mut self, parent: Option<AttrInfo>) -> Result<Filter> {
        let Some(Tok::Word(word)) = self.next() else {
            return Err(invalid_filter("expected an attribute name"));
        };
        if self.peek() == Some(&Tok::LBracket) {
            if parent.is_some() {
                return Err(invalid_filter("nested value filters are not supported"));
            }
            self.pos += 1;
            let path = resolve(self.resource, &word, None)?;
            if !path.attr.multi || path.sub.is_some() {
                return Err(invalid_filter(format!(
                    "`{word}` is not a multi-valued attribute"
                )));
            }
            self.enter()?;
            let inner = self.or(Some(path.attr))?;
            self.depth -= 1;
            if self.next() != Some(Tok::RBracket) {
                return Err(invalid_filter("missing `]`"));
            }
            // `attr[filter].sub op value`: some element matches the filter and the comparison.
            if let Some(Tok::Word(w)) = self.peek()
                && let Some(sub) = w.strip_prefix('.')
            {
                let sub = sub.to_owned();
                self.pos += 1;
                let Filter::Compare(p, op, v) =
                    self.comparison(resolve(self.resource, &sub, Some(path.attr))?)?
                else {
                    return Err(invalid_filter(
                        "expected a comparison after the value filter",
                    ));
                };
                let both = Filter::And(Box::new(inner), Box::new(Filter::Compare(p, op, v)));
                return Ok(Filter::ValuePath(path.attr, Box::new(both)));
            }
            return Ok(Filter::ValuePath(path.attr, Box::new(inner)));
        }
        if word.starts_with('.') {
            return Err(invalid_filter("expected an attribute name"));
        }
        let path = resolve(self.resource, &word, parent)?;
        self.comparison(path)
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter> {
        let Some(Tok::Word(op)) = self.next() else {
            return Err(invalid_filter("expected an operator"));
        };
        let op = match op.to_ascii_lowercase().as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" | "ge" | "lt" | "le" => {
                return Err(invalid_filter("ordering comparisons are not supported"));
            }
            _ => return Err(invalid_filter("unknown operator")),
        };
        let value = match self.next() {
            Some(Tok::Str(s)) => Value::String(s),
            Some(Tok::Num(n)) => Value::Number(n),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
            _ => return Err(invalid_filter("expected a comparison value")),
        };
        if !matches!(value, Value::String(_)) && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Err(invalid_filter("co, sw and ew compare strings only"));
        }
        Ok(Filter::Compare(path, op, value))
    }
}

/// Parses a `filter` query parameter.
pub fn parse(resource: Resource, input: &str) -> Result<Filter> {
    let mut p = Parser {
        toks: lex(input)?,
        pos: 0,
        resource,
        depth: 0,
    };
    if p.toks.is_empty() {
        return Err(invalid_filter("the filter is empty"));
    }
    let f = p.or(None)?;
    if p.pos != p.toks.len() {
        return Err(invalid_filter("unexpected input after the filter"));
    }
    Ok(f)
}

/// A PATCH target: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub`. `None` for an
/// attribute outside the allow-list (ignored, like unknown attributes in a POST body).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrInfo,
    pub filter: Option<Filter>,
    pub sub: Option<&'static str>,
}

pub fn parse_path(resource: Resource, input: &str) -> Result<Option<PatchPath>> {
    let input = input.trim();
    if input.is_empty() || input.len() > MAX_LEN {
        return Err(invalid_path("invalid path"));
    }
    let (head, filter, tail) = match input.find('[') {
        Some(open) => {
            let close = input
                .rfind(']')
                .filter(|c| *c > open)
                .ok_or_else(|| invalid_path("missing `]`"))?;
            let tail = &input[close + 1..];
            let tail = if tail.is_empty() {
                None
            } else {
                Some(
                    tail.strip_prefix('.')
                        .ok_or_else(|| invalid_path("invalid path after `]`"))?,
                )
            };
            (&input[..open], Some(&input[open + 1..close]), tail)
        }
        None => (input, None, None),
    };
    let Some(head) = strip_urn(resource, head) else {
        // Another schema's attribute (e.g. the enterprise extension): not stored.
        return Ok(None);
    };
    let (a, sub) = match head.split_once('.') {
        Some((a, s)) if filter.is_none() => (a.to_owned(), Some(s.to_owned())),
        Some(_) => return Err(invalid_path("invalid path")),
        None => (head.clone(), tail.map(str::to_owned)),
    };
    if a.is_empty()
        || !a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        return Err(invalid_path("invalid attribute name in path"));
    }
    let Some(attr) = resource.attribute(&a) else {
        return Ok(None);
    };
    let sub = match sub {
        None => None,
        Some(s) => match resource.sub_attribute(attr.name, &s) {
            Some(s) => Some(s),
            None if attr.complex => return Ok(None),
            None => return Err(invalid_path("this attribute has no sub-attributes")),
        },
    };
    let filter = match filter {
        None => None,
        Some(f) => {
            if !attr.multi {
                return Err(invalid_path(
                    "a value filter needs a multi-valued attribute",
                ));
            }
            let mut p = Parser {
                toks: lex(f).map_err(|e| invalid_path(e.message))?,
                pos: 0,
                resource,
                depth: 0,
            };
            let parsed = p.or(Some(attr)).map_err(|e| invalid_path(e.message))?;
            if p.pos != p.toks.len() {
                return Err(invalid_path("unexpected input in the value filter"));
            }
            Some(parsed)
        }
    };
    Ok(Some(PatchPath { attr, filter, sub }))
}

// ---- evaluation ----------------------------------------------------------------------------

fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The values a path denotes in a resource (several for multi-valued attributes).
fn values_at<'a>(root: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let Some(v) = get_ci(root, path.attr.name) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .filter_map(|item| match path.sub {
            Some(s) => get_ci(item, s),
            // `emails eq "x"` compares the elements' `value`.
            None if path.attr.multi => get_ci(item, "value"),
            None => Some(item),
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn compare(actual: &Value, op: CompareOp, expected: &Value, case_exact: bool) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(e)) => {
            let (a, e) = if case_exact {
                (a.clone(), e.clone())
            } else {
                (a.to_lowercase(), e.to_lowercase())
            };
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
            }
        }
        (a, e) => match op {
            CompareOp::Eq => a == e,
            CompareOp::Ne => a != e,
            _ => false,
        },
    }
}

impl Filter {
    pub fn matches(&self, root: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(root) && b.matches(root),
            Filter::Or(a, b) => a.matches(root) || b.matches(root),
            Filter::Not(f) => !f.matches(root),
            Filter::Present(p) => values_at(root, p).iter().any(|v| match v {
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            }),
            Filter::Compare(p, op, expected) => {
                let vals = values_at(root, p);
                let case_exact = p.attr.case_exact && p.sub != Some("type");
                if vals.is_empty() {
                    // `ne` holds for an absent attribute; `eq null` too.
                    return matches!(op, CompareOp::Ne) && !expected.is_null()
                        || (matches!(op, CompareOp::Eq) && expected.is_null());
                }
                vals.iter().any(|v| compare(v, *op, expected, case_exact))
            }
            Filter::ValuePath(a, inner) => match get_ci(root, a.name) {
                Some(Value::Array(items)) => items.iter().any(|item| inner.matches_element(item)),
                _ => false,
            },
        }
    }

    /// Evaluates a value filter against one element of a multi-valued attribute.
    pub fn matches_element(&self, element: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches_element(element) && b.matches_element(element),
            Filter::Or(a, b) => a.matches_element(element) || b.matches_element(element),
            Filter::Not(f) => !f.matches_element(element),
            Filter::Present(p) => p
                .sub
                .and_then(|s| get_ci(element, s))
                .is_some_and(|v| !v.is_null()),
            Filter::Compare(p, op, expected) => {
                let Some(v) = p.sub.and_then(|s| get_ci(element, s)) else {
                    return matches!(op, CompareOp::Ne);
                };
                let case_exact = p.attr.case_exact && p.sub != Some("type");
                compare(v, *op, expected, case_exact)
            }
            Filter::ValuePath(..) => false,
        }
    }

    /// The value of `attr eq "v"` when the whole filter is that one comparison (or an `and`
    /// containing it): used to narrow a lookup by blind index before evaluating the rest.
    pub fn required_eq(&self, attr: &str) -> Option<&str> {
        match self {
            Filter::Compare(p, CompareOp::Eq, Value::String(v))
                if p.attr.name == attr && p.sub.is_none() =>
            {
                Some(v)
            }
            Filter::And(a, b) => a.required_eq(attr).or_else(|| b.required_eq(attr)),
            _ => None,
        }
    }

    /// `type eq "work"` (and `and`s of such): the sub-attribute values an element created
    /// for this filter must have (PATCH `emails[type eq "work"].value` on a user without one).
    pub fn element_template(&self) -> Option<serde_json::Map<String, Value>> {
        match self {
            Filter::Compare(p, CompareOp::Eq, v) => {
                let mut m = serde_json::Map::new();
                m.insert(p.sub?.to_owned(), v.clone());
                Some(m)
            }
            Filter::And(a, b) => {
                let mut m = a.element_template()?;
                m.extend(b.element_template()?);
                Some(m)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "Bjensen@Example.com",
            "externalId": "abc",
            "displayName": "Babs Jensen",
            "active": true,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                       {"value": "babs@jensen.org", "type": "home"}]
        })
    }

    fn m(f: &str) -> bool {
        parse(Resource::User, f).unwrap().matches(&user())
    }

    #[test]
    fn evaluates_the_supported_grammar() {
        assert!(m(r#"userName eq "bjensen@example.com""#)); // case-insensitive attribute
        assert!(m(r#"UserName Eq "BJENSEN@EXAMPLE.COM""#));
        assert!(!m(r#"externalId eq "ABC""#)); // case-exact
        assert!(m(r#"externalId eq "abc""#));
        assert!(m(
            r#"emails[type eq "work"].value eq "x" or emails[type eq "work"]"#
        ));
        assert!(m(
            r#"emails[type eq "work"].value eq "BJENSEN@example.com""#
        ));
        assert!(!m(
            r#"emails[type eq "home"].value eq "bjensen@example.com""#
        ));
        assert!(m(r#"emails[type eq "work" and value co "jensen"]"#));
        assert!(!m(r#"emails[type eq "other"]"#));
        assert!(m(
            r#"name.familyName sw "Jen" and not (displayName ew "x")"#
        ));
        assert!(m(r#"title pr"#.replace("title", "displayName").as_str()));
        assert!(m(r#"active eq true"#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com""#
        ));
        assert!(m(r#"emails co "jensen.org""#));
    }

    #[test]
    fn refuses_what_is_not_allowed() {
        for f in [
            r#"password eq "x""#,
            r#"userName gt "a""#,
            r#"userName eq"#,
            r#"userName eq "a" or"#,
            r#"(userName eq "a""#,
            r#"userName eq "a") or (1 eq 1"#,
            r#"userName eq "a"; DROP TABLE users"#,
            r#"userName eq 'a' or 1=1"#,
            r#"emails[value eq "x"][type eq "y"]"#,
            r#"name[givenName eq "x"]"#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#,
            r#"meta.created eq "x""#,
            "",
        ] {
            let e = parse(Resource::User, f).unwrap_err();
            assert_eq!(e.code, "invalidFilter", "{f}");
        }
        let deep = format!("{}userName pr{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(
            parse(Resource::User, &deep).unwrap_err().code,
            "invalidFilter"
        );
        assert_eq!(
            parse(Resource::Group, r#"userName eq "x""#)
                .unwrap_err()
                .code,
            "invalidFilter"
        );
    }

    #[test]
    fn parses_patch_paths() {
        let p = parse_path(Resource::User, r#"emails[type eq "work"].value"#)
            .unwrap()
            .unwrap();
        assert_eq!(p.attr.name, "emails");
        assert_eq!(p.sub, Some("value"));
        assert_eq!(
            p.filter.unwrap().element_template().unwrap()["type"],
            json!("work")
        );
        let p = parse_path(Resource::User, "name.givenName")
            .unwrap()
            .unwrap();
        assert_eq!((p.attr.name, p.sub), ("name", Some("givenName")));
        let p = parse_path(Resource::Group, r#"members[value eq "2819c223"]"#)
            .unwrap()
            .unwrap();
        assert!(p.filter.is_some());
        assert!(
            parse_path(
                Resource::User,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            )
            .unwrap()
            .is_none()
        );
        assert!(parse_path(Resource::User, "title").unwrap().is_none());
        assert_eq!(
            parse_path(Resource::User, "emails[type eq")
                .unwrap_err()
                .code,
            "invalidPath"
        );
    }

    #[test]
    fn required_eq_narrows_only_when_implied() {
        let f = parse(Resource::User, r#"userName eq "a" and active eq true"#).unwrap();
        assert_eq!(f.required_eq("userName"), Some("a"));
        let f = parse(Resource::User, r#"userName eq "a" or active eq true"#).unwrap();
        assert_eq!(f.required_eq("userName"), None);
    }
}
