//! The fields of a record page as forms see them: one [`Spec`] per editable value (built-in
//! fields, custom fields, and the columns some types have: owner, stage, amount, due date...),
//! its value as a form string, how it reads, and how a submitted string becomes part of the
//! [`RecordInput`] the core's update service takes.

use kluis_core::crm::custom::{CustomField, CustomKind};
use kluis_core::crm::pipelines::Pipeline;
use kluis_core::crm::{ObjectType, PipelineId, Record, RecordInput, StageId};
use kluis_core::users::User;
use kluis_core::{Error, UserId};
use serde_json::Value;

use super::super::i18n::Lang;
use super::text::{self, RecText};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    LongText,
    Email,
    Tel,
    Url,
    /// Custom numbers.
    Number,
    /// Minor units shown as an amount (deal amount, custom currency fields).
    Money,
    Date,
    DateTime,
    Bool,
    Select,
    Multi,
}

/// One value a record form edits.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The form name: a built-in field (`first_name`), `custom.<key>`, or a column
    /// (`owner_id`, `stage_id`, `priority`, `amount`, `currency`, `close_date`, `due_date`,
    /// `done`).
    pub name: String,
    pub label: String,
    pub kind: Kind,
    /// Select options: (value, label).
    pub options: Vec<(String, String)>,
    pub required: bool,
    /// Custom currency fields: their currency.
    pub currency: Option<String>,
}

/// An option of a select or multi-select, as the template shows it.
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One field of a form, ready for the template.
pub struct FieldView {
    pub name: String,
    pub id: String,
    pub label: String,
    /// `text`, `email`, `tel`, `url`, `date`, `datetime-local`, `textarea`, `checkbox`,
    /// `select` or `multi`.
    pub input: &'static str,
    pub inputmode: &'static str,
    pub value: String,
    /// The stored value the page was rendered with (the edit form sends it back, so only
    /// values the person changed are sent to the service).
    pub orig: String,
    pub display: String,
    pub options: Vec<Opt>,
    pub checked: bool,
    pub required: bool,
}

/// What the specs of a type are built from.
pub struct Catalogue {
    pub custom: Vec<CustomField>,
    pub users: Vec<User>,
    pub pipelines: Vec<Pipeline>,
}

fn builtin_kind(name: &str) -> Kind {
    match name {
        "email" => Kind::Email,
        "phone" | "mobile" => Kind::Tel,
        "website" => Kind::Url,
        "description" | "body" => Kind::LongText,
        _ => Kind::Text,
    }
}

fn spec(name: &str, label: String, kind: Kind) -> Spec {
    Spec {
        name: name.to_owned(),
        label,
        kind,
        options: Vec::new(),
        required: false,
        currency: None,
    }
}

/// The editable values of a type, in the order the page shows them.
pub fn specs(r: &RecText, t: ObjectType, c: &Catalogue) -> Vec<Spec> {
    let mut out: Vec<Spec> = t
        .field_names()
        .into_iter()
        .map(|n| spec(n, r.label(n), builtin_kind(n)))
        .collect();
    if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
        let mut s = spec("stage_id", r.stage.to_owned(), Kind::Select);
        for p in &c.pipelines {
            for st in &p.stages {
                let label = if c.pipelines.len() > 1 {
                    format!("{} · {}", p.name, st.name)
                } else {
                    st.name.clone()
                };
                s.options.push((st.id.to_string(), label));
            }
        }
        out.push(s);
    }
    if t == ObjectType::Deal {
        out.push(spec("amount", r.amount.to_owned(), Kind::Money));
        out.push(spec("currency", r.currency.to_owned(), Kind::Text));
        out.push(spec("close_date", r.close_date.to_owned(), Kind::Date));
    }
    if t == ObjectType::Ticket {
        let mut s = spec("priority", r.priority.to_owned(), Kind::Select);
        s.options = ["low", "normal", "high", "urgent"]
            .into_iter()
            .map(|p| (p.to_owned(), r.priority(p).to_owned()))
            .collect();
        out.push(s);
    }
    if t == ObjectType::Task {
        out.push(spec("due_date", r.due_date.to_owned(), Kind::Date));
        out.push(spec("done", r.done.to_owned(), Kind::Bool));
    }
    let mut custom: Vec<&CustomField> = c
        .custom
        .iter()
        .filter(|f| f.object_type == t && f.deleted_at.is_none())
        .collect();
    custom.sort_by_key(|f| f.position);
    for f in custom {
        let kind = match f.kind {
            CustomKind::Text => Kind::Text,
            CustomKind::LongText => Kind::LongText,
            CustomKind::Number => Kind::Number,
            CustomKind::Currency => Kind::Money,
            CustomKind::Date => Kind::Date,
            CustomKind::Datetime => Kind::DateTime,
            CustomKind::Boolean => Kind::Bool,
            CustomKind::SingleSelect => Kind::Select,
            CustomKind::MultiSelect => Kind::Multi,
            CustomKind::Email => Kind::Email,
            CustomKind::Phone => Kind::Tel,
            CustomKind::Url => Kind::Url,
        };
        let mut s = spec(&format!("custom.{}", f.key), f.label.clone(), kind);
        s.options = f.options.iter().map(|o| (o.clone(), o.clone())).collect();
        s.required = f.required;
        s.currency = f.currency.clone();
        out.push(s);
    }
    let mut owner = spec("owner_id", r.owner.to_owned(), Kind::Select);
    owner.options.push((String::new(), r.nobody.to_owned()));
    for u in c.users.iter().filter(|u| u.status.is_active()) {
        let name = if u.display_name.is_empty() {
            u.email.clone()
        } else {
            u.display_name.clone()
        };
        owner.options.push((u.id.to_string(), name));
    }
    out.push(owner);
    out
}

/// `YYYY-MM-DDTHH:MM` (what a datetime-local input holds) of an RFC 3339 time, in UTC.
fn local_minutes(rfc3339: &str) -> String {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// The form value of a spec in a record (empty when unset).
pub fn value_of(lang: Lang, s: &Spec, rec: &Record) -> String {
    let deal = rec.deal.as_ref();
    match s.name.as_str() {
        "owner_id" => return rec.owner_id.map(|u| u.to_string()).unwrap_or_default(),
        "stage_id" if deal.is_some() => {
            return deal
                .and_then(|d| d.stage_id)
                .map(|v| v.to_string())
                .unwrap_or_default();
        }
        "priority" if rec.object_type == ObjectType::Ticket => {
            return deal.and_then(|d| d.priority.clone()).unwrap_or_default();
        }
        "amount" if rec.object_type == ObjectType::Deal => {
            return deal
                .and_then(|d| d.amount_minor)
                .map(|m| text::amount(lang, m))
                .unwrap_or_default();
        }
        "currency" if rec.object_type == ObjectType::Deal => {
            return deal.and_then(|d| d.currency.clone()).unwrap_or_default();
        }
        "close_date" if rec.object_type == ObjectType::Deal => {
            return deal.and_then(|d| d.close_date.clone()).unwrap_or_default();
        }
        "due_date" if rec.object_type == ObjectType::Task => {
            return rec
                .task
                .as_ref()
                .and_then(|t| t.due_date.clone())
                .unwrap_or_default();
        }
        "done" if rec.object_type == ObjectType::Task => {
            return rec.task.as_ref().is_some_and(|t| t.done).to_string();
        }
        _ => {}
    }
    json_value(lang, s, rec.fields.get(&s.name))
}

/// The form value of a stored field value.
pub fn json_value(lang: Lang, s: &Spec, v: Option<&Value>) -> String {
    let Some(v) = v else { return String::new() };
    match (s.kind, v) {
        (Kind::Money, Value::Number(n)) => n
            .as_i64()
            .map(|m| text::amount(lang, m))
            .unwrap_or_default(),
        (Kind::Bool, Value::Bool(b)) => b.to_string(),
        (Kind::DateTime, Value::String(t)) => local_minutes(t),
        (Kind::Multi, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        (_, Value::String(t)) => t.clone(),
        (_, Value::Number(n)) => n.to_string(),
        (_, other) => other.to_string(),
    }
}

/// How a form value reads on the page.
pub fn display(r: &RecText, s: &Spec, value: &str, deal_currency: Option<&str>) -> String {
    if value.is_empty() {
        return String::new();
    }
    match s.kind {
        Kind::Select => s
            .options
            .iter()
            .find(|(v, _)| v == value)
            .map_or_else(|| value.to_owned(), |(_, l)| l.clone()),
        Kind::Multi => value.split('\n').collect::<Vec<_>>().join(", "),
        Kind::Bool => if value == "true" { r.yes } else { r.no }.to_owned(),
        Kind::Date => r.date(value),
        Kind::DateTime => format!(
            "{} {}",
            r.date(value.get(..10).unwrap_or(value)),
            value.get(11..).unwrap_or("")
        ),
        Kind::Money => {
            let currency = s.currency.as_deref().or(deal_currency).unwrap_or("EUR");
            text::parse_amount(value).map_or_else(|| value.to_owned(), |m| r.money(m, currency))
        }
        _ => value.to_owned(),
    }
}

/// The template's view of a spec holding `value` (stored value `orig`).
pub fn field_view(
    r: &RecText,
    s: &Spec,
    value: String,
    orig: String,
    deal_currency: Option<&str>,
) -> FieldView {
    let input = match s.kind {
        Kind::Text | Kind::Number | Kind::Money => "text",
        Kind::LongText => "textarea",
        Kind::Email => "email",
        Kind::Tel => "tel",
        Kind::Url => "url",
        Kind::Date => "date",
        Kind::DateTime => "datetime-local",
        Kind::Bool => "checkbox",
        Kind::Select => "select",
        Kind::Multi => "multi",
    };
    let inputmode = match s.kind {
        Kind::Number | Kind::Money => "decimal",
        _ => "",
    };
    let chosen: Vec<&str> = value.split('\n').collect();
    let mut options: Vec<Opt> = s
        .options
        .iter()
        .map(|(v, l)| Opt {
            selected: if s.kind == Kind::Multi {
                chosen.contains(&v.as_str())
            } else {
                *v == value
            },
            value: v.clone(),
            label: l.clone(),
        })
        .collect();
    // A select always offers "nothing chosen yet" when no option is selected.
    if s.kind == Kind::Select && !options.iter().any(|o| o.selected) {
        options.insert(
            0,
            Opt {
                value: String::new(),
                label: r.choose.to_owned(),
                selected: true,
            },
        );
    }
    FieldView {
        id: format!("f-{}", s.name.replace('.', "-")),
        name: s.name.clone(),
        label: s.label.clone(),
        input,
        inputmode,
        display: display(r, s, &value, deal_currency),
        checked: value == "true",
        value,
        orig,
        options,
        required: s.required,
    }
}

/// The submitted form value of a spec (`f:<name>` fields); None when the form did not hold it.
pub fn submitted(s: &Spec, form: &[(String, String)], orig: Option<&str>) -> String {
    let key = format!("f:{}", s.name);
    let all: Vec<&str> = form
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
        .collect();
    match s.kind {
        Kind::Bool => {
            if all.contains(&"true") {
                "true".to_owned()
            } else if orig.is_some_and(str::is_empty) {
                // Never set and left unticked: still unset.
                String::new()
            } else {
                "false".to_owned()
            }
        }
        Kind::Multi => s
            .options
            .iter()
            .filter(|(v, _)| all.contains(&v.as_str()))
            .map(|(v, _)| v.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => all.first().map(|v| (*v).to_owned()).unwrap_or_default(),
    }
}

/// Equal as a person would see them: line endings and surrounding blanks do not count.
pub fn same(a: &str, b: &str) -> bool {
    a.replace("\r\n", "\n").trim() == b.replace("\r\n", "\n").trim()
}

fn bad(s: &Spec, code: &'static str, message: &str) -> Error {
    Error::validation(&format!("fields.{}", s.name), code, message)
}

/// Adds a submitted value to the service's input. Empty clears.
pub fn apply(
    s: &Spec,
    value: &str,
    pipelines: &[Pipeline],
    input: &mut RecordInput,
) -> Result<(), Error> {
    let value = value.replace("\r\n", "\n");
    let v = value.trim();
    let empty = v.is_empty();
    match s.name.as_str() {
        "owner_id" => {
            input.owner_id = Some(if empty {
                None
            } else {
                Some(
                    v.parse::<UserId>()
                        .map_err(|_| bad(s, "unknown_user", "no such user"))?,
                )
            });
            return Ok(());
        }
        "stage_id" => {
            if empty {
                return Ok(());
            }
            let stage: StageId = v
                .parse()
                .map_err(|_| bad(s, "unknown_stage", "no such stage"))?;
            let pipeline: Option<PipelineId> = pipelines
                .iter()
                .find(|p| p.stages.iter().any(|st| st.id == stage))
                .map(|p| p.id);
            input.pipeline_id = pipeline;
            input.stage_id = Some(stage);
            return Ok(());
        }
        "priority" => {
            if !empty {
                input.priority = Some(v.to_owned());
            }
            return Ok(());
        }
        "amount" => {
            input.amount_minor = Some(if empty {
                None
            } else {
                Some(
                    text::parse_amount(v)
                        .ok_or_else(|| bad(s, "invalid_amount", "not an amount, e.g. 1234,50"))?,
                )
            });
            return Ok(());
        }
        "currency" => {
            if !empty {
                input.currency = Some(v.to_owned());
            }
            return Ok(());
        }
        "close_date" => {
            input.close_date = Some((!empty).then(|| v.to_owned()));
            return Ok(());
        }
        "due_date" => {
            input.due_date = Some((!empty).then(|| v.to_owned()));
            return Ok(());
        }
        "done" => {
            input.done = Some(v == "true");
            return Ok(());
        }
        _ => {}
    }
    let json = if empty {
        Value::Null
    } else {
        match s.kind {
            Kind::Number => {
                let n: f64 = v
                    .replace(',', ".")
                    .parse()
                    .map_err(|_| bad(s, "invalid_number", "not a number"))?;
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(|| bad(s, "invalid_number", "not a number"))?
            }
            Kind::Money => Value::from(
                text::parse_amount(v)
                    .ok_or_else(|| bad(s, "invalid_amount", "not an amount, e.g. 1234,50"))?,
            ),
            Kind::Bool => Value::Bool(v == "true"),
            Kind::DateTime => {
                let full = if v.len() == 16 {
                    format!("{v}:00Z")
                } else if v.len() == 19 {
                    format!("{v}Z")
                } else {
                    v.to_owned()
                };
                Value::String(full)
            }
            Kind::Multi => Value::Array(
                v.split('\n')
                    .filter(|o| !o.is_empty())
                    .map(|o| Value::String(o.to_owned()))
                    .collect(),
            ),
            _ => Value::String(value.clone()),
        }
    };
    input.fields.insert(s.name.clone(), json);
    Ok(())
}

/// The name a record goes by on pages and in links.
pub fn title(rec: &Record) -> String {
    let f = |k: &str| {
        rec.fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let t = match rec.object_type {
        ObjectType::Contact => {
            let name = format!("{} {}", f("first_name"), f("last_name"));
            let name = name.trim().to_owned();
            if name.is_empty() { f("email") } else { name }
        }
        ObjectType::Company | ObjectType::Deal => f("name"),
        ObjectType::Ticket => f("subject"),
        ObjectType::Task => f("title"),
        ObjectType::Note => {
            let b = f("body");
            let short: String = b.chars().take(60).collect();
            if short.len() < b.len() {
                format!("{short}…")
            } else {
                short
            }
        }
    };
    if t.is_empty() { "—".to_owned() } else { t }
}

/// The URL path of a type's records (`/contacts`).
pub fn plural(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contact => "/contacts",
        ObjectType::Company => "/companies",
        ObjectType::Deal => "/deals",
        ObjectType::Ticket => "/tickets",
        ObjectType::Note => "/notes",
        ObjectType::Task => "/tasks",
    }
}

/// The type of a URL path's first segment.
pub fn type_of_path(path: &str) -> Option<ObjectType> {
    let first = path.trim_start_matches('/').split('/').next()?;
    ObjectType::ALL
        .into_iter()
        .find(|t| plural(*t).trim_start_matches('/') == first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_types() {
        assert_eq!(type_of_path("/contacts/x/edit"), Some(ObjectType::Contact));
        assert_eq!(type_of_path("/companies/x"), Some(ObjectType::Company));
        assert_eq!(type_of_path("/tasks/x"), Some(ObjectType::Task));
        assert_eq!(type_of_path("/nope/x"), None);
    }

    #[test]
    fn unticked_boxes_and_multi_selects() {
        let mut s = spec("custom.vip", "VIP".into(), Kind::Bool);
        assert_eq!(submitted(&s, &[], Some("")), "");
        assert_eq!(submitted(&s, &[], Some("true")), "false");
        let form = vec![("f:custom.vip".to_owned(), "true".to_owned())];
        assert_eq!(submitted(&s, &form, Some("")), "true");
        s.kind = Kind::Multi;
        s.name = "custom.x".into();
        s.options = vec![("a".into(), "a".into()), ("b".into(), "b".into())];
        let form = vec![
            ("f:custom.x".to_owned(), "b".to_owned()),
            ("f:custom.x".to_owned(), "a".to_owned()),
        ];
        assert_eq!(submitted(&s, &form, Some("")), "a\nb");
        assert!(same("a\r\nb ", "a\nb"));
    }
}
