//! Record tables: `/contacts`, `/companies`, `/deals`, `/tickets` and `/tasks/all`, one
//! handler over the object type. The state of a table (search, filters, columns, sort, page)
//! is its query string, so a view is a link: it can be bookmarked, shared and saved. Reads go
//! through `list_records` (the same service, filters, audit as `GET /api/v1/<type>s`); bulk
//! actions through `update_record` / `delete_record` one record at a time, each with the
//! revision it was read at, after a confirmation page; the CSV through `export_records`.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use kluis_core::crm::{IfMatch, ObjectType, Record, RecordInput, RecordQuery, TagId};
use kluis_core::{Permission, RecordId, RequestContext, UserId};
use serde_json::Value;

use super::format;
use super::i18n::{Lang, Text};
use super::tables_text::{self as tx, TablesText, field_label};
use super::{Nav, Notice, PageUser, form_page_user, page_user, render, see_other};
use crate::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new().route("/search", get(search));
    for t in TYPES {
        let path = list_path(t);
        r = r
            .route(
                path,
                get(
                    move |State(s): State<AppState>,
                          headers: HeaderMap,
                          Ctx(c): Ctx,
                          RawQuery(q): RawQuery| async move {
                        list(s, headers, c, t, q).await
                    },
                ),
            )
            .route(
                &format!("{path}/export.csv"),
                get(
                    move |State(s): State<AppState>,
                          headers: HeaderMap,
                          Ctx(c): Ctx,
                          RawQuery(q): RawQuery| async move {
                        export(s, headers, c, t, q).await
                    },
                ),
            )
            .route(
                &format!("{path}/bulk"),
                post(
                    move |State(s): State<AppState>,
                          headers: HeaderMap,
                          Ctx(c): Ctx,
                          Form(f): Form<Vec<(String, String)>>| async move {
                        bulk(s, headers, c, t, f).await
                    },
                ),
            )
            .route(
                &format!("{path}/views"),
                post(
                    move |State(s): State<AppState>,
                          headers: HeaderMap,
                          Ctx(c): Ctx,
                          Form(f): Form<ViewForm>| async move {
                        save_view(s, headers, c, t, f).await
                    },
                ),
            )
            .route(
                &format!("{path}/views/delete"),
                post(
                    move |State(s): State<AppState>,
                          headers: HeaderMap,
                          Ctx(c): Ctx,
                          Form(f): Form<ViewForm>| async move {
                        delete_view(s, headers, c, t, f).await
                    },
                ),
            );
    }
    r
}

const TYPES: [ObjectType; 5] = [
    ObjectType::Contact,
    ObjectType::Company,
    ObjectType::Deal,
    ObjectType::Ticket,
    ObjectType::Task,
];

/// Where a type's table is.
pub fn list_path(t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contact => "/contacts",
        ObjectType::Company => "/companies",
        ObjectType::Deal => "/deals",
        ObjectType::Ticket => "/tickets",
        ObjectType::Task => "/tasks/all",
        ObjectType::Note => "/notes",
    }
}

/// Where a record's page is (`/<type>s/{id}`).
pub fn record_path(t: ObjectType, id: RecordId) -> String {
    let base = match t {
        ObjectType::Contact => "/contacts",
        ObjectType::Company => "/companies",
        ObjectType::Deal => "/deals",
        ObjectType::Ticket => "/tickets",
        ObjectType::Task => "/tasks",
        ObjectType::Note => "/notes",
    };
    format!("{base}/{id}")
}

fn type_title(x: &TablesText, t: ObjectType) -> &'static str {
    match t {
        ObjectType::Contact => x.contacts,
        ObjectType::Company => x.companies,
        ObjectType::Deal => x.deals,
        ObjectType::Ticket => x.tickets,
        ObjectType::Task | ObjectType::Note => x.tasks,
    }
}

/// The state of a table, as in its query string.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub q: String,
    pub cols: Vec<String>,
    pub sort: String,
    pub owner: String,
    pub tag: String,
    pub stage: String,
    pub outcome: String,
    pub priority: String,
    pub created_from: String,
    pub created_to: String,
    pub close_from: String,
    pub close_to: String,
    pub due_from: String,
    pub due_to: String,
    pub done: String,
    pub limit: u32,
    pub cursor: Option<String>,
}

impl View {
    pub fn parse(raw: Option<&str>) -> View {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or("")).unwrap_or_default();
        let mut v = View {
            limit: 50,
            ..View::default()
        };
        for (k, val) in pairs {
            let val = val.trim().to_owned();
            match k.as_str() {
                "q" => v.q = val.chars().take(200).collect(),
                "col" if v.cols.len() < 40 && !val.is_empty() && !v.cols.contains(&val) => {
                    v.cols.push(val)
                }
                "sort" => v.sort = val,
                "owner" => v.owner = val,
                "tag" => v.tag = val,
                "stage" => v.stage = val,
                "outcome" => v.outcome = val,
                "priority" => v.priority = val,
                "created_from" => v.created_from = val,
                "created_to" => v.created_to = val,
                "close_from" => v.close_from = val,
                "close_to" => v.close_to = val,
                "due_from" => v.due_from = val,
                "due_to" => v.due_to = val,
                "done" => v.done = val,
                "limit" => v.limit = val.parse().unwrap_or(50).clamp(10, 200),
                "cursor" if !val.is_empty() => v.cursor = Some(val),
                _ => {}
            }
        }
        v
    }

    /// The query string of this view (without the page cursor unless given).
    pub fn query_string(&self, cursor: Option<&str>) -> String {
        let mut p: Vec<(&str, &str)> = Vec::new();
        let limit = self.limit.to_string();
        for (k, v) in [
            ("q", &self.q),
            ("sort", &self.sort),
            ("owner", &self.owner),
            ("tag", &self.tag),
            ("stage", &self.stage),
            ("outcome", &self.outcome),
            ("priority", &self.priority),
            ("created_from", &self.created_from),
            ("created_to", &self.created_to),
            ("close_from", &self.close_from),
            ("close_to", &self.close_to),
            ("due_from", &self.due_from),
            ("due_to", &self.due_to),
            ("done", &self.done),
        ] {
            if !v.is_empty() {
                p.push((k, v));
            }
        }
        for c in &self.cols {
            p.push(("col", c));
        }
        if self.limit != 50 {
            p.push(("limit", &limit));
        }
        if let Some(c) = cursor {
            p.push(("cursor", c));
        }
        serde_urlencoded::to_string(p).unwrap_or_default()
    }

    /// The core query of this view; a malformed filter is an error naming it.
    fn to_query(
        &self,
        t: ObjectType,
        me: Option<UserId>,
    ) -> Result<RecordQuery, kluis_core::Error> {
        let uuid = |field: &str, v: &str| -> Result<Option<uuid::Uuid>, kluis_core::Error> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<uuid::Uuid>().map(Some).map_err(|_| {
                kluis_core::Error::validation(field, "invalid_id", "not a valid choice")
            })
        };
        let date = |field: &str, v: &str| -> Result<Option<String>, kluis_core::Error> {
            if v.is_empty() {
                return Ok(None);
            }
            day_ms(v).map(|_| Some(v.to_owned())).ok_or_else(|| {
                kluis_core::Error::validation(field, "invalid_date", "a date such as 2026-11-25")
            })
        };
        let owner_id = match self.owner.as_str() {
            "me" => me,
            o => uuid("owner", o)?.map(UserId),
        };
        let created_from = date("created_from", &self.created_from)?.and_then(|d| day_ms(&d));
        // Inclusive: until the end of that day.
        let created_to = date("created_to", &self.created_to)?
            .and_then(|d| day_ms(&d))
            .map(|ms| ms + 86_400_000);
        let staged = matches!(t, ObjectType::Deal | ObjectType::Ticket);
        let opt = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        Ok(RecordQuery {
            q: opt(&self.q),
            owner_id,
            tag_id: uuid("tag", &self.tag)?.map(TagId),
            stage_id: if staged {
                uuid("stage", &self.stage)?.map(kluis_core::crm::StageId)
            } else {
                None
            },
            outcome: if staged { opt(&self.outcome) } else { None },
            priority: if t == ObjectType::Ticket {
                opt(&self.priority)
            } else {
                None
            },
            created_from,
            created_to,
            close_from: if t == ObjectType::Deal {
                date("close_from", &self.close_from)?
            } else {
                None
            },
            close_to: if t == ObjectType::Deal {
                date("close_to", &self.close_to)?
            } else {
                None
            },
            due_from: if t == ObjectType::Task {
                date("due_from", &self.due_from)?
            } else {
                None
            },
            due_to: if t == ObjectType::Task {
                date("due_to", &self.due_to)?
            } else {
                None
            },
            done: match (t, self.done.as_str()) {
                (ObjectType::Task, "true") => Some(true),
                (ObjectType::Task, "false") => Some(false),
                _ => None,
            },
            newest_first: self.sort == "-created",
            ..RecordQuery::default()
        })
    }
}

/// Unix ms of a `YYYY-MM-DD` day at 00:00 UTC.
fn day_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i32 = s.get(0..4)?.parse().ok()?;
    let m: u8 = s.get(5..7)?.parse().ok()?;
    let d: u8 = s.get(8..10)?.parse().ok()?;
    let date = time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// A column of a table.
pub struct Col {
    pub key: String,
    pub label: String,
    pub checked: bool,
}

/// The columns a type offers: its fields, its custom fields and the record's own data.
fn available_columns(
    lang: Lang,
    x: &TablesText,
    t: ObjectType,
    custom: &[kluis_core::crm::custom::CustomField],
) -> Vec<(String, String)> {
    let mut cols: Vec<(String, String)> = t
        .field_names()
        .into_iter()
        .map(|f| (f.to_owned(), field_label(lang, f)))
        .collect();
    for c in custom.iter().filter(|c| c.object_type == t) {
        cols.push((format!("custom.{}", c.key), c.label.clone()));
    }
    let mut meta: Vec<(&str, &str)> = Vec::new();
    match t {
        ObjectType::Contact => meta.push(("company", x.company)),
        ObjectType::Deal => meta.extend([
            ("amount", x.amount),
            ("stage", x.stage),
            ("outcome", x.outcome),
            ("close_date", x.close_date),
        ]),
        ObjectType::Ticket => meta.extend([
            ("priority", x.priority),
            ("stage", x.stage),
            ("outcome", x.outcome),
        ]),
        ObjectType::Task => meta.extend([("due_date", x.due_date), ("done", x.done)]),
        _ => {}
    }
    meta.extend([
        ("owner", x.owner),
        ("tags", x.tags),
        ("created_at", x.created_at),
        ("updated_at", x.updated_at),
    ]);
    cols.extend(meta.into_iter().map(|(k, l)| (k.to_owned(), l.to_owned())));
    cols
}

fn default_columns(t: ObjectType) -> &'static [&'static str] {
    match t {
        ObjectType::Contact => &[
            "first_name",
            "last_name",
            "email",
            "phone",
            "company",
            "owner",
        ],
        ObjectType::Company => &["name", "domain", "city", "owner"],
        ObjectType::Deal => &["name", "amount", "stage", "close_date", "owner"],
        ObjectType::Ticket => &["subject", "priority", "stage", "owner"],
        ObjectType::Task | ObjectType::Note => &["title", "due_date", "done", "owner"],
    }
}

/// A record's name as people say it.
pub fn title_of(r: &Record) -> String {
    let f = |k: &str| {
        r.fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let s = match r.object_type {
        ObjectType::Contact => {
            let n = format!("{} {}", f("first_name"), f("last_name"));
            let n = n.trim().to_owned();
            if n.is_empty() { f("email") } else { n }
        }
        ObjectType::Company | ObjectType::Deal => f("name"),
        ObjectType::Ticket => f("subject"),
        ObjectType::Task => f("title"),
        ObjectType::Note => f("body").chars().take(60).collect(),
    };
    if s.is_empty() { r.id.to_string() } else { s }
}

/// What a table shows besides the records: names of users, tags, stages and companies.
#[derive(Default)]
struct Names {
    users: HashMap<UserId, String>,
    tags: HashMap<TagId, String>,
    stages: HashMap<kluis_core::crm::StageId, (String, String)>,
    companies: HashMap<RecordId, String>,
    /// Stages in pipeline order.
    stage_order: Vec<kluis_core::crm::StageId>,
}

pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn opts(items: &[(String, String)], selected: &str) -> Vec<Opt> {
    items
        .iter()
        .map(|(v, l)| Opt {
            value: v.clone(),
            label: l.clone(),
            selected: v == selected,
        })
        .collect()
}

pub struct Row {
    pub id: String,
    pub href: String,
    pub title: String,
    pub cells: Vec<String>,
}

fn value_text(lang: Lang, x: &TablesText, v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => (if *b { x.yes } else { x.no }).to_owned(),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| n.to_string(), |i| format::number(lang, i)),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|v| value_text(lang, x, v))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(_) => String::new(),
    }
}

fn outcome_text(x: &TablesText, o: &str) -> String {
    match o {
        "open" => x.open,
        "won" => x.won,
        "lost" => x.lost,
        "closed" => x.closed,
        other => other,
    }
    .to_owned()
}

fn priority_text(x: &TablesText, p: &str) -> String {
    match p {
        "low" => x.low,
        "normal" => x.normal,
        "high" => x.high,
        "urgent" => x.urgent,
        other => other,
    }
    .to_owned()
}

fn cell(
    lang: Lang,
    x: &TablesText,
    names: &Names,
    custom: &[kluis_core::crm::custom::CustomField],
    r: &Record,
    key: &str,
) -> String {
    match key {
        "owner" => r
            .owner_id
            .and_then(|o| names.users.get(&o).cloned())
            .unwrap_or_default(),
        "tags" => r
            .tag_ids
            .iter()
            .filter_map(|t| names.tags.get(t).cloned())
            .collect::<Vec<_>>()
            .join(", "),
        "created_at" => format::datetime(lang, &r.created_at),
        "updated_at" => format::datetime(lang, &r.updated_at),
        "company" => r
            .company_id
            .and_then(|c| names.companies.get(&c).cloned())
            .unwrap_or_default(),
        "amount" => r
            .deal
            .as_ref()
            .and_then(|d| {
                d.amount_minor
                    .map(|a| format::money(lang, a, d.currency.as_deref().unwrap_or("EUR")))
            })
            .unwrap_or_default(),
        "stage" => r
            .deal
            .as_ref()
            .and_then(|d| d.stage_id)
            .and_then(|s| names.stages.get(&s).map(|(n, _)| n.clone()))
            .unwrap_or_default(),
        "outcome" => r
            .outcome
            .as_deref()
            .map(|o| outcome_text(x, o))
            .unwrap_or_default(),
        "close_date" => r
            .deal
            .as_ref()
            .and_then(|d| d.close_date.as_deref())
            .map(|d| format::date(lang, d))
            .unwrap_or_default(),
        "priority" => r
            .deal
            .as_ref()
            .and_then(|d| d.priority.as_deref())
            .map(|p| priority_text(x, p))
            .unwrap_or_default(),
        "due_date" => r
            .task
            .as_ref()
            .and_then(|t| t.due_date.as_deref())
            .map(|d| format::date(lang, d))
            .unwrap_or_default(),
        "done" => r
            .task
            .as_ref()
            .map(|t| (if t.done { x.yes } else { x.no }).to_owned())
            .unwrap_or_default(),
        k => {
            let Some(v) = r.fields.get(k) else {
                return String::new();
            };
            if let Some(c) = k
                .strip_prefix("custom.")
                .and_then(|ck| custom.iter().find(|c| c.key == ck))
            {
                use kluis_core::crm::custom::CustomKind;
                match (&c.kind, v) {
                    (CustomKind::Currency, Value::Number(n)) if n.is_i64() => {
                        return format::money(
                            lang,
                            n.as_i64().unwrap_or_default(),
                            c.currency.as_deref().unwrap_or("EUR"),
                        );
                    }
                    (CustomKind::Date, Value::String(s)) => return format::date(lang, s),
                    (CustomKind::Datetime, Value::String(s)) => return format::datetime(lang, s),
                    _ => {}
                }
            }
            value_text(lang, x, v)
        }
    }
}

#[derive(Template)]
#[template(path = "tables_list.html")]
struct ListPage {
    t: &'static Text,
    x: &'static TablesText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    title: &'static str,
    path: &'static str,
    view: View,
    columns: Vec<Col>,
    chosen: Vec<Col>,
    rows: Vec<Row>,
    next_href: Option<String>,
    first_href: Option<String>,
    back: String,
    export_href: Option<String>,
    can_write: bool,
    owners: Vec<Opt>,
    tags: Vec<Opt>,
    stages: Vec<Opt>,
    outcomes: Vec<Opt>,
    priorities: Vec<Opt>,
    bulk_owners: Vec<Opt>,
    bulk_tags: Vec<Opt>,
    views: Vec<ViewLink>,
    can_share: bool,
    staged: bool,
    is_deal: bool,
    is_ticket: bool,
    is_task: bool,
}

#[derive(serde::Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
    n: Option<u32>,
    failed: Option<u32>,
}

fn done_notice(x: &TablesText, raw: Option<&str>) -> Option<Notice> {
    let d: DoneQuery = serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
        .ok()
        .map(|pairs| {
            let mut d = DoneQuery::default();
            for (k, v) in pairs {
                match k.as_str() {
                    "ok" => d.done = Some(v),
                    "n" => d.n = v.parse().ok(),
                    "failed" => d.failed = v.parse().ok(),
                    _ => {}
                }
            }
            d
        })
        .unwrap_or_default();
    match d.done.as_deref() {
        Some("bulk") => {
            let mut text = format!("{}: {}", x.bulk_done, d.n.unwrap_or(0));
            if let Some(f) = d.failed.filter(|f| *f > 0) {
                text.push_str(&format!("; {f} {}", x.bulk_failed));
            }
            Notice::ok(&text)
        }
        Some("view_saved") => Notice::ok(x.view_saved),
        Some("view_deleted") => Notice::ok(x.view_deleted),
        _ => None,
    }
}

/// Users, tags, stages and custom fields of the organisation (what filters and cells name).
async fn load_names(
    s: &AppState,
    user: &PageUser,
    ctx: &RequestContext,
    t: ObjectType,
) -> Result<
    (
        Names,
        Vec<kluis_core::crm::custom::CustomField>,
        Vec<(String, String)>,
    ),
    kluis_core::Error,
> {
    let mut names = Names::default();
    let users = s
        .kluis
        .list_users(&user.actor, ctx, None, Some(200))
        .await?;
    let mut owner_list = Vec::new();
    for u in users.items {
        if u.status.is_active() {
            owner_list.push((u.id.to_string(), u.display_name.clone()));
        }
        names.users.insert(u.id, u.display_name);
    }
    for tag in s.kluis.list_tags(&user.actor).await? {
        names.tags.insert(tag.id, tag.name);
    }
    if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
        for p in s.kluis.list_pipelines(&user.actor, t).await? {
            for st in p.stages {
                names.stage_order.push(st.id);
                names
                    .stages
                    .insert(st.id, (format!("{} · {}", p.name, st.name), st.outcome));
            }
        }
    }
    let custom = s.kluis.list_custom_fields(&user.actor, Some(t)).await?;
    Ok((names, custom, owner_list))
}

async fn list(
    s: AppState,
    headers: HeaderMap,
    ctx: RequestContext,
    t: ObjectType,
    raw: Option<String>,
) -> Response {
    let lang = Lang::of(&headers);
    let (texts, x) = (lang.text(), tx::text(lang));
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let view = View::parse(raw.as_deref());
    let (names, custom, owner_list) = match load_names(&s, &user, &ctx, t).await {
        Ok(v) => v,
        Err(e) => return error_page(texts, x, &user, list_path(t), ApiError::from(e)),
    };
    let mut notice = done_notice(x, raw.as_deref());
    let mut status = StatusCode::OK;
    let page = match view.to_query(t, user.actor.user_id()) {
        Ok(q) => s
            .kluis
            .list_records(
                &user.actor,
                &ctx,
                t,
                q,
                view.cursor.as_deref(),
                Some(view.limit),
            )
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    let page = match page {
        Ok(p) => p,
        Err(e) if e.status == StatusCode::FORBIDDEN => {
            return error_page(texts, x, &user, list_path(t), e);
        }
        Err(e) => {
            status = e.status;
            notice = Notice::error(texts, &e);
            kluis_core::Page {
                items: Vec::new(),
                next_cursor: None,
            }
        }
    };
    let mut names = names;
    if t == ObjectType::Contact {
        for r in &page.items {
            if let Some(c) = r.company_id
                && !names.companies.contains_key(&c)
                && let Ok(co) = s
                    .kluis
                    .get_record(&user.actor, ObjectType::Company, c)
                    .await
            {
                names.companies.insert(c, title_of(&co));
            }
        }
    }
    let available = available_columns(lang, x, t, &custom);
    let chosen_keys: Vec<String> = {
        let picked: Vec<String> = view
            .cols
            .iter()
            .filter(|c| available.iter().any(|(k, _)| k == *c))
            .cloned()
            .collect();
        if picked.is_empty() {
            default_columns(t).iter().map(|s| (*s).to_owned()).collect()
        } else {
            picked
        }
    };
    let columns: Vec<Col> = available
        .iter()
        .map(|(k, l)| Col {
            key: k.clone(),
            label: l.clone(),
            checked: chosen_keys.contains(k),
        })
        .collect();
    let chosen: Vec<Col> = chosen_keys
        .iter()
        .filter_map(|k| available.iter().find(|(ak, _)| ak == k))
        .map(|(k, l)| Col {
            key: k.clone(),
            label: l.clone(),
            checked: true,
        })
        .collect();
    let rows = page
        .items
        .iter()
        .map(|r| Row {
            id: r.id.to_string(),
            href: record_path(t, r.id),
            title: title_of(r),
            cells: chosen
                .iter()
                .map(|c| cell(lang, x, &names, &custom, r, &c.key))
                .collect(),
        })
        .collect();
    let path = list_path(t);
    let qs = view.query_string(None);
    let with = |qs: String| {
        if qs.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{qs}")
        }
    };
    let tag_list: Vec<(String, String)> = {
        let mut v: Vec<_> = names
            .tags
            .iter()
            .map(|(id, n)| (id.to_string(), n.clone()))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    };
    let stage_list: Vec<(String, String)> = names
        .stage_order
        .iter()
        .filter_map(|id| {
            names
                .stages
                .get(id)
                .map(|(n, _)| (id.to_string(), n.clone()))
        })
        .collect();
    let mut owner_filter = vec![
        (String::new(), x.anyone.to_owned()),
        ("me".to_owned(), x.me.to_owned()),
    ];
    owner_filter.extend(owner_list.iter().cloned());
    let mut tag_filter = vec![(String::new(), x.all.to_owned())];
    tag_filter.extend(tag_list.iter().cloned());
    let mut stage_filter = vec![(String::new(), x.all.to_owned())];
    stage_filter.extend(stage_list);
    let outcome_list: Vec<(String, String)> = match t {
        ObjectType::Deal => vec![
            (String::new(), x.all.to_owned()),
            ("open".into(), x.open.into()),
            ("won".into(), x.won.into()),
            ("lost".into(), x.lost.into()),
        ],
        ObjectType::Ticket => vec![
            (String::new(), x.all.to_owned()),
            ("open".into(), x.open.into()),
            ("closed".into(), x.closed.into()),
        ],
        _ => Vec::new(),
    };
    let priority_list: Vec<(String, String)> = vec![
        (String::new(), x.all.to_owned()),
        ("low".into(), x.low.into()),
        ("normal".into(), x.normal.into()),
        ("high".into(), x.high.into()),
        ("urgent".into(), x.urgent.into()),
    ];
    let admin = user.actor.can(Permission::SettingsManage);
    let views = s
        .kluis
        .list_saved_views(&user.actor, t)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|v| ViewLink {
            id: v.id.to_string(),
            href: with(v.query.clone()),
            deletable: v.mine || (v.shared && admin),
            current: v.query == qs,
            name: v.name,
            shared: v.shared,
        })
        .collect();
    let mut bulk_owner_list = vec![(String::new(), x.nobody.to_owned())];
    bulk_owner_list.extend(owner_list.iter().cloned());
    let page_view = ListPage {
        t: texts,
        x,
        nav: user.nav(path),
        notice,
        csrf: user.csrf.clone(),
        title: type_title(x, t),
        path,
        next_href: page
            .next_cursor
            .as_deref()
            .map(|c| with(view.query_string(Some(c)))),
        first_href: view.cursor.is_some().then(|| with(qs.clone())),
        back: qs.clone(),
        export_href: user.actor.can(Permission::CrmExport).then(|| {
            format!(
                "{path}/export.csv{}",
                if qs.is_empty() {
                    String::new()
                } else {
                    format!("?{qs}")
                }
            )
        }),
        can_write: user.actor.can(Permission::CrmWrite),
        owners: opts(&owner_filter, &view.owner),
        tags: opts(&tag_filter, &view.tag),
        stages: opts(&stage_filter, &view.stage),
        outcomes: opts(&outcome_list, &view.outcome),
        priorities: opts(&priority_list, &view.priority),
        bulk_owners: opts(&bulk_owner_list, ""),
        bulk_tags: opts(&tag_list, ""),
        views,
        can_share: user.actor.can(Permission::CrmWrite),
        staged: matches!(t, ObjectType::Deal | ObjectType::Ticket),
        is_deal: t == ObjectType::Deal,
        is_ticket: t == ObjectType::Ticket,
        is_task: t == ObjectType::Task,
        columns,
        chosen,
        rows,
        view,
    };
    render(status, &page_view)
}

pub struct ViewLink {
    pub id: String,
    pub name: String,
    pub href: String,
    pub shared: bool,
    pub deletable: bool,
    pub current: bool,
}

#[derive(serde::Deserialize)]
struct ViewForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    shared: Option<String>,
    #[serde(default)]
    id: String,
}

/// Saves the table's current query string as a view, and shows it.
async fn save_view(
    s: AppState,
    headers: HeaderMap,
    ctx: RequestContext,
    t: ObjectType,
    f: ViewForm,
) -> Response {
    let lang = Lang::of(&headers);
    let (texts, x) = (lang.text(), tx::text(lang));
    let user = match form_page_user(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    // Never a page cursor: a view is the whole table.
    let query = View::parse(Some(&f.query)).query_string(None);
    let input = kluis_core::crm::views::SavedViewInput {
        name: f.name,
        query: query.clone(),
        shared: f.shared.is_some(),
    };
    match s.kluis.create_saved_view(&user.actor, &ctx, t, input).await {
        Ok(_) => {
            let path = list_path(t);
            let to = if query.is_empty() {
                format!("{path}?ok=view_saved")
            } else {
                format!("{path}?{query}&ok=view_saved")
            };
            see_other(&to, HeaderMap::new())
        }
        Err(e) => error_page(texts, x, &user, list_path(t), e.into()),
    }
}

async fn delete_view(
    s: AppState,
    headers: HeaderMap,
    ctx: RequestContext,
    t: ObjectType,
    f: ViewForm,
) -> Response {
    let lang = Lang::of(&headers);
    let (texts, x) = (lang.text(), tx::text(lang));
    let user = match form_page_user(&s, &headers, &f.csrf).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(id) = f.id.parse::<kluis_core::crm::SavedViewId>() else {
        let e = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such view");
        return error_page(texts, x, &user, list_path(t), e);
    };
    match s.kluis.delete_saved_view(&user.actor, &ctx, id).await {
        Ok(()) => see_other(
            &format!("{}?ok=view_deleted", list_path(t)),
            HeaderMap::new(),
        ),
        Err(e) => error_page(texts, x, &user, list_path(t), e.into()),
    }
}

#[derive(Template)]
#[template(path = "tables_message.html")]
struct MessagePage {
    t: &'static Text,
    x: &'static TablesText,
    nav: Nav,
    notice: Option<Notice>,
    back: String,
}

fn error_page(
    texts: &'static Text,
    x: &'static TablesText,
    user: &PageUser,
    path: &'static str,
    e: ApiError,
) -> Response {
    let notice = if e.status == StatusCode::FORBIDDEN {
        Some(Notice {
            kind: "error",
            text: x.forbidden.to_owned(),
        })
    } else {
        Notice::error(texts, &e)
    };
    render(
        e.status,
        &MessagePage {
            t: texts,
            x,
            nav: user.nav(path),
            notice,
            back: path.to_owned(),
        },
    )
}

async fn export(
    s: AppState,
    headers: HeaderMap,
    ctx: RequestContext,
    t: ObjectType,
    raw: Option<String>,
) -> Response {
    let lang = Lang::of(&headers);
    let (texts, x) = (lang.text(), tx::text(lang));
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let view = View::parse(raw.as_deref());
    let query = match view.to_query(t, user.actor.user_id()) {
        Ok(q) => q,
        Err(e) => return error_page(texts, x, &user, list_path(t), e.into()),
    };
    let export = match s
        .kluis
        .export_records(&user.actor, &ctx, t, query, "csv")
        .await
    {
        Ok(e) => e,
        Err(e) => return error_page(texts, x, &user, list_path(t), e.into()),
    };
    let name = list_path(t).trim_start_matches('/').replace('/', "-");
    // Someone working in Dutch opens the file in Dutch Excel: give it what that expects.
    let style = match lang {
        Lang::Nl => crate::export::CsvStyle::DUTCH_EXCEL,
        Lang::En => crate::export::CsvStyle::PLAIN,
    };
    crate::export::download(
        &name,
        crate::export::Format::Csv,
        crate::routes::records::record_csv_header(t, style),
        (s.kluis.clone(), export),
        |(kluis, mut export)| async move {
            let r = kluis.export_records_next(&mut export).await;
            (r, (kluis, export))
        },
        (crate::routes::records::record_csv, style),
    )
}

#[derive(Template)]
#[template(path = "tables_confirm.html")]
struct ConfirmPage {
    t: &'static Text,
    x: &'static TablesText,
    nav: Nav,
    notice: Option<Notice>,
    csrf: String,
    path: &'static str,
    action: String,
    question: &'static str,
    target: String,
    tag: String,
    owner: String,
    back: String,
    items: Vec<Row>,
}

/// At most this many records per bulk action.
const BULK_MAX: usize = 200;

/// Bulk actions: the first post shows what will happen; the post from that page (with
/// `confirm=yes`) does it, record by record through the same services as the API.
async fn bulk(
    s: AppState,
    headers: HeaderMap,
    ctx: RequestContext,
    t: ObjectType,
    form: Vec<(String, String)>,
) -> Response {
    let lang = Lang::of(&headers);
    let (texts, x) = (lang.text(), tx::text(lang));
    let get = |k: &str| {
        form.iter()
            .find(|(fk, _)| fk == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let user = match form_page_user(&s, &headers, &get("csrf")).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let path = list_path(t);
    let back = get("back");
    let back_href = |extra: &str| {
        let mut q = back.clone();
        if !extra.is_empty() {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(extra);
        }
        if q.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{q}")
        }
    };
    let ids: Vec<RecordId> = form
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse::<uuid::Uuid>().ok().map(RecordId))
        .take(BULK_MAX)
        .collect();
    let action = get("action");
    let (tag, owner) = (get("tag"), get("owner"));
    let tag_id = tag.parse::<uuid::Uuid>().ok().map(TagId);
    let owner_id = owner.parse::<uuid::Uuid>().ok().map(UserId);
    let valid = match action.as_str() {
        "tag" => tag_id.is_some(),
        "owner" => owner.is_empty() || owner_id.is_some(),
        "trash" => true,
        _ => false,
    };
    if ids.is_empty() || !valid {
        let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bulk_none", x.bulk_none);
        return error_page(texts, x, &user, path, e);
    }
    if get("confirm") != "yes" {
        // The confirmation: what will change, on which records.
        let mut items = Vec::new();
        for id in &ids {
            match s.kluis.get_record(&user.actor, t, *id).await {
                Ok(r) => items.push(Row {
                    id: r.id.to_string(),
                    href: record_path(t, r.id),
                    title: title_of(&r),
                    cells: Vec::new(),
                }),
                Err(e) if e.kind == kluis_core::ErrorKind::NotFound => {}
                Err(e) => return error_page(texts, x, &user, path, e.into()),
            }
        }
        let (question, target) = match action.as_str() {
            "tag" => {
                let name = s
                    .kluis
                    .list_tags(&user.actor)
                    .await
                    .ok()
                    .and_then(|ts| ts.into_iter().find(|g| Some(g.id) == tag_id))
                    .map(|g| g.name)
                    .unwrap_or_default();
                (x.confirm_tag, name)
            }
            "owner" => {
                let name = match owner_id {
                    Some(o) => s
                        .kluis
                        .get_user(&user.actor, o)
                        .await
                        .map(|u| u.display_name)
                        .unwrap_or_default(),
                    None => x.nobody.to_owned(),
                };
                (x.confirm_owner, name)
            }
            _ => (x.confirm_trash, String::new()),
        };
        return render(
            StatusCode::OK,
            &ConfirmPage {
                t: texts,
                x,
                nav: user.nav(path),
                notice: None,
                csrf: user.csrf.clone(),
                path,
                action,
                question,
                target,
                tag,
                owner,
                back,
                items,
            },
        );
    }
    let (mut changed, mut failed) = (0u32, 0u32);
    for id in ids {
        let rec = match s.kluis.get_record(&user.actor, t, id).await {
            Ok(r) => r,
            Err(e) if e.kind == kluis_core::ErrorKind::NotFound => {
                failed += 1;
                continue;
            }
            Err(e) => return error_page(texts, x, &user, path, e.into()),
        };
        let at = IfMatch::Revisions(vec![rec.revision]);
        let result = match action.as_str() {
            "tag" => {
                let Some(tag) = tag_id else { break };
                if rec.tag_ids.contains(&tag) {
                    changed += 1;
                    continue;
                }
                let mut tags = rec.tag_ids.clone();
                tags.push(tag);
                let input = RecordInput {
                    tag_ids: Some(tags),
                    ..RecordInput::default()
                };
                s.kluis
                    .update_record(&user.actor, &ctx, t, id, &at, input)
                    .await
                    .map(|_| ())
            }
            "owner" => {
                let input = RecordInput {
                    owner_id: Some(owner_id),
                    ..RecordInput::default()
                };
                s.kluis
                    .update_record(&user.actor, &ctx, t, id, &at, input)
                    .await
                    .map(|_| ())
            }
            _ => s.kluis.delete_record(&user.actor, &ctx, t, id, &at).await,
        };
        match result {
            Ok(()) => changed += 1,
            Err(e) if e.kind == kluis_core::ErrorKind::Forbidden => {
                return error_page(texts, x, &user, path, e.into());
            }
            Err(e) if e.kind == kluis_core::ErrorKind::Validation && changed == 0 => {
                return error_page(texts, x, &user, path, e.into());
            }
            Err(_) => failed += 1,
        }
    }
    see_other(
        &back_href(&format!("ok=bulk&n={changed}&failed={failed}")),
        HeaderMap::new(),
    )
}

#[derive(Template)]
#[template(path = "tables_search.html")]
struct SearchPage {
    t: &'static Text,
    x: &'static TablesText,
    nav: Nav,
    notice: Option<Notice>,
    q: String,
    groups: Vec<SearchGroup>,
}

pub struct SearchGroup {
    pub title: &'static str,
    pub more_href: String,
    pub rows: Vec<Row>,
    pub more: bool,
}

/// The global search box: the first matches of each type, each linking to its table.
async fn search(
    State(s): State<AppState>,
    headers: HeaderMap,
    Ctx(ctx): Ctx,
    RawQuery(raw): RawQuery,
) -> Response {
    let lang = Lang::of(&headers);
    let (texts, x) = (lang.text(), tx::text(lang));
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let view = View::parse(raw.as_deref());
    let mut groups = Vec::new();
    let mut notice = None;
    if !view.q.is_empty() {
        for t in [
            ObjectType::Contact,
            ObjectType::Company,
            ObjectType::Deal,
            ObjectType::Ticket,
            ObjectType::Task,
        ] {
            let q = RecordQuery {
                q: Some(view.q.clone()),
                ..RecordQuery::default()
            };
            match s
                .kluis
                .list_records(&user.actor, &ctx, t, q, None, Some(5))
                .await
            {
                Ok(p) => {
                    if p.items.is_empty() {
                        continue;
                    }
                    let qs =
                        serde_urlencoded::to_string([("q", view.q.as_str())]).unwrap_or_default();
                    groups.push(SearchGroup {
                        title: type_title(x, t),
                        more_href: format!("{}?{qs}", list_path(t)),
                        more: p.next_cursor.is_some(),
                        rows: p
                            .items
                            .iter()
                            .map(|r| Row {
                                id: r.id.to_string(),
                                href: record_path(t, r.id),
                                title: title_of(r),
                                cells: Vec::new(),
                            })
                            .collect(),
                    });
                }
                Err(e) => {
                    let e = ApiError::from(e);
                    if e.status == StatusCode::FORBIDDEN {
                        return error_page(texts, x, &user, "/search", e);
                    }
                    notice = Notice::error(texts, &e);
                    break;
                }
            }
        }
    }
    render(
        StatusCode::OK,
        &SearchPage {
            t: texts,
            x,
            nav: user.nav("/search"),
            notice,
            q: view.q,
            groups,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_round_trips_through_its_query_string() {
        let v = View::parse(Some(
            "q=jan+jans&col=email&col=owner&col=email&sort=-created&owner=me&limit=25&cursor=abc&x=1",
        ));
        assert_eq!(v.q, "jan jans");
        assert_eq!(v.cols, vec!["email", "owner"]);
        assert_eq!(v.limit, 25);
        assert_eq!(v.cursor.as_deref(), Some("abc"));
        let again = View::parse(Some(&v.query_string(None)));
        assert_eq!(again.q, v.q);
        assert_eq!(again.cols, v.cols);
        assert_eq!(again.sort, "-created");
        assert!(again.cursor.is_none());
        let q = v.to_query(ObjectType::Contact, None).unwrap();
        assert!(q.newest_first);
        assert_eq!(q.q.as_deref(), Some("jan jans"));
        assert!(
            View::parse(Some("tag=nope"))
                .to_query(ObjectType::Contact, None)
                .is_err()
        );
        let d = View::parse(Some("created_from=2026-11-25&created_to=2026-11-25"))
            .to_query(ObjectType::Contact, None)
            .unwrap();
        assert_eq!(d.created_to.unwrap() - d.created_from.unwrap(), 86_400_000);
    }
}
