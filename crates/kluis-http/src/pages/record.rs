//! The record page of every object type (`/contacts/{id}`, `/companies/{id}`, `/deals/{id}`,
//! `/tickets/{id}`, `/tasks/{id}`, `/notes/{id}`), the create pages, "my tasks" and the trash.
//!
//! Every action is one call of the core service the JSON API calls (same permission checks,
//! throttling and audit events); read-only users see no forms, and a forged post is refused by
//! the service. Edits are optimistic like the API's `If-Match`: the edit form carries the
//! revision the page showed and the values it showed, only the values the person changed are
//! sent, and a record changed meanwhile is never overwritten: when someone else changed one of
//! the same values, the page shows both (yours and the stored one) and offers to apply yours on
//! the new revision; when they changed other values only, yours are applied on top.

mod files;
mod text;
mod view;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use kluis_core::audit::AuditQuery;
use kluis_core::crm::tags::TagInput;
use kluis_core::crm::{IfMatch, ObjectType, Record, RecordInput, RecordQuery, TagId};
use kluis_core::users::User;
use kluis_core::{Actor, ErrorKind, Permission, RecordId, RequestContext};
use serde::Deserialize;
use serde_json::Value;

use super::i18n::{Lang, Text};
use super::{Nav, Notice, PageUser, form_page_user, page_user, render, see_other};
use crate::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use text::RecText;
use view::{Catalogue, FieldView, Opt, Spec};

/// Record pages exist for these paths.
const ALL: [&str; 6] = [
    "contacts",
    "companies",
    "deals",
    "tickets",
    "tasks",
    "notes",
];
/// Create pages exist for these.
const CREATABLE: [&str; 4] = ["contacts", "companies", "deals", "tickets"];

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/tasks", get(my_tasks))
        .route("/tasks/{id}/done", post(task_done))
        .route("/trash", get(trash_page))
        .route("/trash/{id}/restore", post(trash_restore));
    for p in CREATABLE {
        r = r.route(&format!("/{p}/new"), get(new_page).post(new_submit));
    }
    for p in ALL {
        r = r
            .route(&format!("/{p}/{{id}}"), get(record_page))
            .route(&format!("/{p}/{{id}}/edit"), post(edit))
            .route(&format!("/{p}/{{id}}/links"), post(links))
            .route(&format!("/{p}/{{id}}/tags"), post(tags))
            .route(&format!("/{p}/{{id}}/note"), post(add_note))
            .route(&format!("/{p}/{{id}}/task"), post(add_task))
            .route(
                &format!("/{p}/{{id}}/restore-version"),
                post(restore_version),
            )
            .route(&format!("/{p}/{{id}}/trash"), post(trash));
    }
    for p in ["contacts", "companies", "deals", "tickets", "notes"] {
        r = r
            // Streamed into the file service, which enforces the file size limit.
            .route(
                &format!("/{p}/{{id}}/files"),
                post(files::upload).layer(axum::extract::DefaultBodyLimit::disable()),
            )
            .route(&format!("/{p}/{{id}}/files/delete"), post(files::delete))
            .route(&format!("/{p}/{{id}}/files/restore"), post(files::restore));
    }
    r
}

// ---- shared pieces ---------------------------------------------------------------------

fn texts(headers: &HeaderMap) -> (Lang, &'static Text, &'static RecText) {
    let lang = Lang::of(headers);
    (lang, lang.text(), RecText::of(lang))
}

/// A submitted form as name/value pairs (multi-selects repeat a name).
type Pairs = Vec<(String, String)>;

fn get_field<'a>(form: &'a Pairs, name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The signed-in poster of a form (CSRF checked).
async fn poster(s: &AppState, headers: &HeaderMap, form: &Pairs) -> Result<PageUser, Response> {
    form_page_user(s, headers, get_field(form, "csrf")).await
}

fn record_type(uri: &Uri) -> ObjectType {
    view::type_of_path(uri.path()).unwrap_or(ObjectType::Contact)
}

/// A link to another record.
pub struct Link {
    pub id: String,
    pub href: String,
    pub label: String,
    pub kind: &'static str,
}

fn link(r: &RecText, rec: &Record) -> Link {
    Link {
        id: rec.id.to_string(),
        href: format!("{}/{}", view::plural(rec.object_type), rec.id),
        label: view::title(rec),
        kind: r.type_name(rec.object_type),
    }
}

#[derive(Template)]
#[template(path = "record_error.html")]
struct ErrorPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    title: &'static str,
    text: String,
    back: &'static str,
    back_label: &'static str,
}

/// A page in the app's frame for a refused or failed action.
fn error_page(headers: &HeaderMap, nav: Nav, e: &kluis_core::Error) -> Response {
    let (_, t, r) = texts(headers);
    let api = api_error(e);
    let (title, text) = match e.kind {
        ErrorKind::NotFound => (r.not_found_title, r.not_found_text.to_owned()),
        ErrorKind::Forbidden => (r.forbidden_title, r.forbidden_text.to_owned()),
        _ => (
            r.error_title,
            Notice::error(t, &api).map(|n| n.text).unwrap_or_default(),
        ),
    };
    let back = nav.path;
    render(
        api.status,
        &ErrorPage {
            t,
            nav,
            notice: None,
            title,
            text,
            back,
            back_label: r.back,
        },
    )
}

/// The HTTP status and message of a core error (the error itself stays with the caller).
fn api_error(e: &kluis_core::Error) -> ApiError {
    let mut copy = kluis_core::Error::new(e.kind, e.code, e.message.clone());
    copy.field.clone_from(&e.field);
    ApiError::from(copy)
}

fn not_found() -> kluis_core::Error {
    kluis_core::Error::not_found()
}

fn parse_id(raw: &str) -> Result<RecordId, kluis_core::Error> {
    raw.parse().map_err(|_| not_found())
}

fn done_notice(r: &RecText, done: Option<&str>) -> Option<Notice> {
    done.and_then(|d| r.done(d)).and_then(Notice::ok)
}

/// How the person who made a change is shown.
fn who(r: &RecText, users: &[User], label: &str) -> String {
    if let Some(id) = label.strip_prefix("user:") {
        return users.iter().find(|u| u.id.to_string() == id).map_or_else(
            || label.to_owned(),
            |u| {
                if u.display_name.is_empty() {
                    u.email.clone()
                } else {
                    u.display_name.clone()
                }
            },
        );
    }
    if label.starts_with("apikey:") {
        return r.api_key.to_owned();
    }
    if label == "system" || label == "console" {
        return r.system.to_owned();
    }
    label.to_owned()
}

async fn catalogue(
    s: &AppState,
    a: &Actor,
    ctx: &RequestContext,
    t: ObjectType,
) -> kluis_core::Result<Catalogue> {
    let custom = s.kluis.list_custom_fields(a, Some(t)).await?;
    let users = match s.kluis.list_users(a, ctx, None, Some(200)).await {
        Ok(p) => p.items,
        Err(e) if e.kind == ErrorKind::Forbidden => Vec::new(),
        Err(e) => return Err(e),
    };
    let pipelines = if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
        s.kluis.list_pipelines(a, t).await?
    } else {
        Vec::new()
    };
    Ok(Catalogue {
        custom,
        users,
        pipelines,
    })
}

/// A record of one of `kinds` with this id, if the caller may read it.
async fn find_any(s: &AppState, a: &Actor, id: RecordId, kinds: &[ObjectType]) -> Option<Record> {
    for k in kinds {
        if let Ok(rec) = s.kluis.get_record(a, *k, id).await {
            return Some(rec);
        }
    }
    None
}

async fn list(
    s: &AppState,
    a: &Actor,
    ctx: &RequestContext,
    t: ObjectType,
    q: RecordQuery,
    limit: u32,
) -> kluis_core::Result<Vec<Record>> {
    Ok(s.kluis
        .list_records(a, ctx, t, q, None, Some(limit))
        .await?
        .items)
}

fn options(recs: &[Record], skip: &[RecordId], with_type: Option<&RecText>) -> Vec<Opt> {
    recs.iter()
        .filter(|r| !skip.contains(&r.id))
        .map(|rec| Opt {
            value: rec.id.to_string(),
            label: match with_type {
                Some(r) => format!("{} · {}", r.type_name(rec.object_type), view::title(rec)),
                None => view::title(rec),
            },
            selected: false,
        })
        .collect()
}

// ---- the record page -------------------------------------------------------------------

/// A list of records linked to this one (a company's contacts, a contact's deals).
pub struct LinkList {
    pub id: &'static str,
    pub title: &'static str,
    pub items: Vec<Link>,
    /// A create page that links the new record to this one.
    pub new_href: String,
    pub new_label: &'static str,
    /// A company's contacts: linked and unlinked from here too (each contact's `company_id`).
    pub editable: bool,
    /// Records that can be added to the list.
    pub add_options: Vec<Opt>,
}

pub struct TagChip {
    pub id: String,
    pub name: String,
}

/// One entry of the timeline.
pub struct Item {
    sort: i128,
    pub at: String,
    pub when: String,
    /// CSS class and test hook: `note`, `task`, `change`, `created`, `event`.
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub who: String,
    pub title: String,
    pub href: String,
    pub lines: Vec<String>,
    /// An earlier revision this entry's state can be restored to (0: none).
    pub restore: i64,
    /// An open task: its id, for the "mark done" button (empty: none).
    pub done_id: String,
}

pub struct ConflictLine {
    pub label: String,
    pub yours: String,
    pub stored: String,
}

#[derive(Template)]
#[template(path = "record_page.html")]
struct RecordPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    r: &'static RecText,
    csrf: String,
    can_write: bool,
    type_name: &'static str,
    base: String,
    title: String,
    revision: i64,
    /// The revision the edit form is based on.
    form_revision: i64,
    created: String,
    updated: String,
    fields: Vec<FieldView>,
    conflict: Vec<ConflictLine>,
    conflict_by: String,
    /// Contacts: the company (link), and companies to choose from.
    show_company: bool,
    company: Option<Link>,
    company_options: Vec<Opt>,
    /// Deals and tickets: contacts; notes and tasks: the records they are about.
    show_links: bool,
    links_title: &'static str,
    links_add: &'static str,
    links: Vec<Link>,
    link_options: Vec<Opt>,
    lists: Vec<LinkList>,
    tags: Vec<TagChip>,
    tag_options: Vec<Opt>,
    /// Notes and tasks can be about contacts, companies and deals.
    can_annotate: bool,
    timeline: Vec<Item>,
    /// Contacts, companies, deals, tickets and notes: their files.
    files: Option<files::FilesView>,
}

/// What an edit that was not saved brings back to the page.
#[derive(Default)]
struct Unsaved {
    /// The submitted values by field name.
    values: HashMap<String, String>,
    /// The values the edit started from, and its revision: kept for a refused edit, so that
    /// saving it again still notices changes made meanwhile (none for a conflict, which shows
    /// the stored values and offers the new revision).
    origs: HashMap<String, String>,
    revision: Option<i64>,
    conflict: Vec<ConflictLine>,
    conflict_by: String,
    notice: Option<Notice>,
}

#[derive(Debug, Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn record_page(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let (lang, _, r) = texts(&headers);
    let unsaved = Unsaved {
        notice: done_notice(r, q.done.as_deref()).or_else(|| files::done(lang, q.done.as_deref())),
        ..Unsaved::default()
    };
    match parse_id(&id) {
        Ok(id) => show(&s, &c, &headers, &user, t, id, StatusCode::OK, unsaved).await,
        Err(e) => error_page(&headers, user.nav(view::plural(t)), &e),
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the page's inputs: who, which record, and what an unsaved edit brings back"
)]
async fn show(
    s: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    user: &PageUser,
    t: ObjectType,
    id: RecordId,
    status: StatusCode,
    unsaved: Unsaved,
) -> Response {
    let nav = user.nav(view::plural(t));
    match build(s, ctx, headers, user, t, id, unsaved).await {
        Ok(page) => render(status, &page),
        Err(e) => error_page(headers, nav, &e),
    }
}

async fn build(
    s: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    user: &PageUser,
    t: ObjectType,
    id: RecordId,
    unsaved: Unsaved,
) -> kluis_core::Result<RecordPage> {
    let (lang, tt, r) = texts(headers);
    let a = &user.actor;
    let rec = s.kluis.get_record(a, t, id).await?;
    let cat = catalogue(s, a, ctx, t).await?;
    let can_write = a.can(Permission::CrmWrite);
    let specs = view::specs(r, t, &cat);
    let deal_currency = rec.deal.as_ref().and_then(|d| d.currency.clone());
    let fields: Vec<FieldView> = specs
        .iter()
        .map(|sp| {
            let stored = view::value_of(lang, sp, &rec);
            let orig = unsaved.origs.get(&sp.name).cloned().unwrap_or(stored);
            let value = unsaved
                .values
                .get(&sp.name)
                .cloned()
                .unwrap_or_else(|| orig.clone());
            view::field_view(r, sp, value, orig, deal_currency.as_deref())
        })
        .collect();
    let base = format!("{}/{}", view::plural(t), id);

    // Linked records.
    let mut company = None;
    let mut company_options = Vec::new();
    let mut links = Vec::new();
    let mut link_options = Vec::new();
    let mut lists = Vec::new();
    match t {
        ObjectType::Contact => {
            if let Some(cid) = rec.company_id {
                company = find_any(s, a, cid, &[ObjectType::Company])
                    .await
                    .map(|c| link(r, &c));
            }
            if can_write {
                let all = list(s, a, ctx, ObjectType::Company, RecordQuery::default(), 200).await?;
                company_options =
                    options(&all, &rec.company_id.into_iter().collect::<Vec<_>>(), None);
            }
            for (kind, title, id_) in [
                (ObjectType::Deal, r.deals, "deals"),
                (ObjectType::Ticket, r.tickets, "tickets"),
            ] {
                let q = RecordQuery {
                    contact_id: Some(id),
                    ..RecordQuery::default()
                };
                let items = list(s, a, ctx, kind, q, 50).await?;
                lists.push(LinkList {
                    id: id_,
                    title,
                    items: items.iter().map(|x| link(r, x)).collect(),
                    new_href: format!("{}/new?contact_id={id}", view::plural(kind)),
                    new_label: if kind == ObjectType::Deal {
                        r.new_deal
                    } else {
                        r.new_ticket
                    },
                    editable: false,
                    add_options: Vec::new(),
                });
            }
        }
        ObjectType::Company => {
            let q = RecordQuery {
                company_id: Some(id),
                ..RecordQuery::default()
            };
            let items = list(s, a, ctx, ObjectType::Contact, q, 100).await?;
            let add_options = if can_write {
                let all = list(s, a, ctx, ObjectType::Contact, RecordQuery::default(), 200).await?;
                let linked: Vec<RecordId> = items.iter().map(|x| x.id).collect();
                options(&all, &linked, None)
            } else {
                Vec::new()
            };
            lists.push(LinkList {
                id: "contacts",
                title: r.contacts,
                items: items.iter().map(|x| link(r, x)).collect(),
                new_href: format!("/contacts/new?company_id={id}"),
                new_label: r.new_contact,
                editable: true,
                add_options,
            });
        }
        ObjectType::Deal | ObjectType::Ticket => {
            let ids = rec.contact_ids.clone().unwrap_or_default();
            for cid in ids.iter().take(100) {
                if let Some(c) = find_any(s, a, *cid, &[ObjectType::Contact]).await {
                    links.push(link(r, &c));
                }
            }
            if can_write {
                let all = list(s, a, ctx, ObjectType::Contact, RecordQuery::default(), 200).await?;
                link_options = options(&all, &ids, None);
            }
        }
        ObjectType::Note | ObjectType::Task => {
            let kinds = [ObjectType::Contact, ObjectType::Company, ObjectType::Deal];
            let ids = rec.related_ids.clone().unwrap_or_default();
            for rid in ids.iter().take(100) {
                if let Some(x) = find_any(s, a, *rid, &kinds).await {
                    links.push(link(r, &x));
                }
            }
            if can_write {
                for k in kinds {
                    let all = list(s, a, ctx, k, RecordQuery::default(), 100).await?;
                    link_options.extend(options(&all, &ids, Some(r)));
                }
            }
        }
    }

    // Tags.
    let all_tags = s.kluis.list_tags(a).await?;
    let live: Vec<_> = all_tags.iter().filter(|t| t.deleted_at.is_none()).collect();
    let tags = live
        .iter()
        .filter(|t| rec.tag_ids.contains(&t.id))
        .map(|t| TagChip {
            id: t.id.to_string(),
            name: t.name.clone(),
        })
        .collect();
    let tag_options = live
        .iter()
        .filter(|t| !rec.tag_ids.contains(&t.id))
        .map(|t| Opt {
            value: t.id.to_string(),
            label: t.name.clone(),
            selected: false,
        })
        .collect();

    let can_annotate = matches!(
        t,
        ObjectType::Contact | ObjectType::Company | ObjectType::Deal
    );
    let timeline = timeline(s, ctx, headers, a, &rec, &specs, &cat.users, can_annotate).await?;
    let files = files::view(s, a, lang, t, id).await?;

    Ok(RecordPage {
        t: tt,
        nav: user.nav(view::plural(t)),
        notice: unsaved.notice,
        r,
        csrf: user.csrf.clone(),
        can_write,
        type_name: r.type_name(t),
        title: view::title(&rec),
        revision: rec.revision,
        form_revision: unsaved.revision.unwrap_or(rec.revision),
        created: format!(
            "{} {} {}",
            r.datetime(&rec.created_at),
            r.by,
            who(r, &cat.users, &rec.created_by)
        ),
        updated: format!(
            "{} {} {}",
            r.datetime(&rec.updated_at),
            r.by,
            who(r, &cat.users, &rec.updated_by)
        ),
        fields,
        conflict: unsaved.conflict,
        conflict_by: unsaved.conflict_by,
        show_company: t == ObjectType::Contact,
        company,
        company_options,
        show_links: !matches!(t, ObjectType::Contact | ObjectType::Company),
        links_title: if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
            r.contacts
        } else {
            r.related
        },
        links_add: if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
            r.add_contact
        } else {
            r.add_related
        },
        links,
        link_options,
        lists,
        tags,
        tag_options,
        can_annotate,
        timeline,
        base,
        files,
    })
}

fn sort_key(rfc3339: &str) -> i128 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp_nanos)
        .unwrap_or_default()
}

/// The form values of a version's deal columns (from their JSON form).
fn deal_values(lang: Lang, deal: &Value) -> Vec<(&'static str, String)> {
    let s = |k: &str| deal.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    vec![
        ("stage_id", s("stage_id")),
        ("priority", s("priority")),
        (
            "amount",
            deal.get("amount_minor")
                .and_then(Value::as_i64)
                .map(|m| text::amount(lang, m))
                .unwrap_or_default(),
        ),
        ("currency", s("currency")),
        ("close_date", s("close_date")),
    ]
}

#[expect(
    clippy::too_many_arguments,
    reason = "the timeline draws on the record, its fields and the people who changed it"
)]
async fn timeline(
    s: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    a: &Actor,
    rec: &Record,
    specs: &[Spec],
    users: &[User],
    annotated: bool,
) -> kluis_core::Result<Vec<Item>> {
    let (lang, _, r) = texts(headers);
    let t = rec.object_type;
    let mut items = Vec::new();
    let spec_of = |name: &str| specs.iter().find(|sp| sp.name == name);
    let show_value = |name: &str, v: Option<&Value>, currency: Option<&str>| -> String {
        let shown = match spec_of(name) {
            Some(sp) => {
                let raw = view::json_value(lang, sp, v);
                view::display(r, sp, &raw, currency)
            }
            None => v
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default(),
        };
        if shown.is_empty() {
            "—".to_owned()
        } else {
            shown
        }
    };
    let label_of = |name: &str| spec_of(name).map_or_else(|| r.label(name), |sp| sp.label.clone());

    // Field changes, from the version history (newest first).
    let versions = s.kluis.record_versions(a, ctx, t, rec.id).await?;
    for (i, v) in versions.iter().enumerate() {
        let older = versions.get(i + 1);
        let currency = rec.deal.as_ref().and_then(|d| d.currency.clone());
        let mut lines = Vec::new();
        let (kind, kind_label) = match older {
            Some(o) => {
                let mut keys: Vec<&String> = o.fields.keys().chain(v.fields.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let (old, new) = (o.fields.get(k), v.fields.get(k));
                    if old != new {
                        lines.push(format!(
                            "{}: {} → {}",
                            label_of(k),
                            show_value(k, old, currency.as_deref()),
                            show_value(k, new, currency.as_deref())
                        ));
                    }
                }
                if let (Some(od), Some(nd)) = (&o.deal, &v.deal) {
                    let od = deal_values(lang, &serde_json::to_value(od).unwrap_or_default());
                    let nd = deal_values(lang, &serde_json::to_value(nd).unwrap_or_default());
                    for ((k, ov), (_, nv)) in od.iter().zip(nd.iter()) {
                        if ov != nv {
                            let d = |x: &str| match spec_of(k) {
                                Some(sp) if !x.is_empty() => {
                                    view::display(r, sp, x, currency.as_deref())
                                }
                                _ if x.is_empty() => "—".to_owned(),
                                _ => x.to_owned(),
                            };
                            lines.push(format!("{}: {} → {}", label_of(k), d(ov), d(nv)));
                        }
                    }
                }
                ("change", r.kind_change)
            }
            None => ("created", r.kind_created),
        };
        items.push(Item {
            sort: sort_key(&v.changed_at),
            when: r.datetime(&v.changed_at),
            at: v.changed_at.clone(),
            kind,
            kind_label,
            who: who(r, users, &v.changed_by),
            title: format!("{} {}", r.revision, v.revision),
            href: String::new(),
            lines,
            restore: if v.current { 0 } else { v.revision },
            done_id: String::new(),
        });
    }

    // Notes and tasks about the record.
    if annotated {
        for k in [ObjectType::Note, ObjectType::Task] {
            let q = RecordQuery {
                related_id: Some(rec.id),
                newest_first: true,
                ..RecordQuery::default()
            };
            for n in list(s, a, ctx, k, q, 50).await? {
                let mut lines = Vec::new();
                let mut done_id = String::new();
                if k == ObjectType::Note {
                    lines.push(
                        n.fields
                            .get("body")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    );
                } else if let Some(task) = &n.task {
                    let mut l = if task.done {
                        r.done.to_owned()
                    } else {
                        r.open.to_owned()
                    };
                    if let Some(d) = &task.due_date {
                        l = format!("{l} · {}: {}", r.due_date, r.date(d));
                    }
                    lines.push(l);
                    if !task.done {
                        done_id = n.id.to_string();
                    }
                }
                items.push(Item {
                    sort: sort_key(&n.created_at),
                    when: r.datetime(&n.created_at),
                    at: n.created_at.clone(),
                    kind: if k == ObjectType::Note {
                        "note"
                    } else {
                        "task"
                    },
                    kind_label: if k == ObjectType::Note {
                        r.kind_note
                    } else {
                        r.kind_task
                    },
                    who: who(r, users, &n.created_by),
                    title: if k == ObjectType::Task {
                        view::title(&n)
                    } else {
                        String::new()
                    },
                    href: format!("{}/{}", view::plural(k), n.id),
                    lines,
                    restore: 0,
                    done_id,
                });
            }
        }
    }

    // The record's audit events (for those who may read the audit trail); creates and updates
    // are already shown, with their values, as the changes above.
    if a.can(Permission::AuditRead) {
        let q = AuditQuery {
            object_id: Some(rec.id.to_string()),
            limit: Some(200),
            ..AuditQuery::default()
        };
        let events = s.kluis.audit_events(a, ctx, &q).await?;
        for e in events.items {
            if e.action.ends_with(".create") || e.action.ends_with(".update") {
                continue;
            }
            items.push(Item {
                sort: sort_key(&e.at),
                when: r.datetime(&e.at),
                at: e.at.clone(),
                kind: "event",
                kind_label: r.kind_event,
                who: who(r, users, &e.actor),
                title: e.action.clone(),
                href: String::new(),
                lines: if e.outcome == "success" {
                    Vec::new()
                } else {
                    vec![e.outcome.clone()]
                },
                restore: 0,
                done_id: String::new(),
            });
        }
    }
    items.sort_by_key(|i| std::cmp::Reverse(i.sort));
    Ok(items)
}

// ---- editing ---------------------------------------------------------------------------

async fn edit(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let nav = || user.nav(view::plural(t));
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return error_page(&headers, nav(), &e),
    };
    let (lang, _, r) = texts(&headers);
    let a = &user.actor;
    let cat = match catalogue(&s, a, &c, t).await {
        Ok(cat) => cat,
        Err(e) => return error_page(&headers, nav(), &e),
    };
    let specs = view::specs(r, t, &cat);
    let revision: i64 = get_field(&form, "revision").parse().unwrap_or(-1);

    // Only what the person changed: a value differing from the one the page showed.
    let mut changed: Vec<(&Spec, String, String)> = Vec::new();
    for sp in &specs {
        let Some(orig) = form
            .iter()
            .find(|(k, _)| *k == format!("o:{}", sp.name))
            .map(|(_, v)| v.clone())
        else {
            continue;
        };
        let new = view::submitted(sp, &form, Some(&orig));
        if !view::same(&orig, &new) {
            changed.push((sp, orig, new));
        }
    }
    let base = format!("{}/{}", view::plural(t), id);
    if changed.is_empty() {
        // Nothing to save, but answer as the service would have: a record this tenant does
        // not have is a 404, and who may not write gets a 403, never a "saved".
        let may = match s.kluis.get_record(a, t, id).await {
            Ok(_) => a.require(Permission::CrmWrite),
            Err(e) => Err(e),
        };
        if let Err(e) = may {
            return error_page(&headers, nav(), &e);
        }
        return see_other(&format!("{base}?done=saved"), HeaderMap::new());
    }
    let mut input = RecordInput::default();
    for (sp, _, new) in &changed {
        if let Err(e) = view::apply(sp, new, &cat.pipelines, &mut input) {
            return unsaved_page(&s, &c, &headers, &user, t, id, revision, &changed, &e).await;
        }
    }
    let first = s
        .kluis
        .update_record(
            a,
            &c,
            t,
            id,
            &IfMatch::Revisions(vec![revision]),
            input.clone(),
        )
        .await;
    let e = match first {
        Ok(_) => return see_other(&format!("{base}?done=saved"), HeaderMap::new()),
        Err(e) => e,
    };
    if e.kind != ErrorKind::PreconditionFailed {
        return unsaved_page(&s, &c, &headers, &user, t, id, revision, &changed, &e).await;
    }
    // Changed since the page was shown: by whom, and which values?
    let current = match s.kluis.get_record(a, t, id).await {
        Ok(rec) => rec,
        Err(e) => return error_page(&headers, nav(), &e),
    };
    let clashes: Vec<ConflictLine> = changed
        .iter()
        .filter_map(|(sp, orig, new)| {
            let stored = view::value_of(lang, sp, &current);
            if view::same(&stored, orig) || view::same(&stored, new) {
                return None;
            }
            let cur = current.deal.as_ref().and_then(|d| d.currency.as_deref());
            let shown = |v: &str| {
                let d = view::display(r, sp, v, cur);
                if d.is_empty() { "—".to_owned() } else { d }
            };
            Some(ConflictLine {
                label: sp.label.clone(),
                yours: shown(new),
                stored: shown(&stored),
            })
        })
        .collect();
    if clashes.is_empty() {
        // Others changed other values only: the person's changes apply on top, on the
        // revision just read (and are refused again if it moves on meanwhile).
        let again = s
            .kluis
            .update_record(
                a,
                &c,
                t,
                id,
                &IfMatch::Revisions(vec![current.revision]),
                input,
            )
            .await;
        return match again {
            Ok(_) => see_other(&format!("{base}?done=saved"), HeaderMap::new()),
            Err(e) => {
                unsaved_page(
                    &s,
                    &c,
                    &headers,
                    &user,
                    t,
                    id,
                    current.revision,
                    &changed,
                    &e,
                )
                .await
            }
        };
    }
    let unsaved = Unsaved {
        values: changed
            .iter()
            .map(|(sp, _, new)| (sp.name.clone(), new.clone()))
            .collect(),
        conflict_by: format!(
            "{} {} · {} {}",
            r.datetime(&current.updated_at),
            r.by,
            who(r, &cat.users, &current.updated_by),
            format_args!("({} {})", r.revision, current.revision),
        ),
        conflict: clashes,
        notice: Some(Notice {
            kind: "error",
            text: r.conflict_title.to_owned(),
        }),
        ..Unsaved::default()
    };
    show(
        &s,
        &c,
        &headers,
        &user,
        t,
        id,
        StatusCode::CONFLICT,
        unsaved,
    )
    .await
}

/// The record page again after a refused edit: the person's values kept in the form, the
/// reason on top (a refused permission or a missing record is a page of its own).
#[expect(
    clippy::too_many_arguments,
    reason = "the page's inputs plus what was refused and why"
)]
async fn unsaved_page(
    s: &AppState,
    c: &RequestContext,
    headers: &HeaderMap,
    user: &PageUser,
    t: ObjectType,
    id: RecordId,
    revision: i64,
    changed: &[(&Spec, String, String)],
    e: &kluis_core::Error,
) -> Response {
    if matches!(e.kind, ErrorKind::Forbidden | ErrorKind::NotFound) {
        return error_page(headers, user.nav(view::plural(t)), e);
    }
    let (_, tt, _) = texts(headers);
    let api = api_error(e);
    let unsaved = Unsaved {
        values: changed
            .iter()
            .map(|(sp, _, new)| (sp.name.clone(), new.clone()))
            .collect(),
        origs: changed
            .iter()
            .map(|(sp, orig, _)| (sp.name.clone(), orig.clone()))
            .collect(),
        revision: Some(revision),
        notice: Notice::error(tt, &api),
        ..Unsaved::default()
    };
    show(s, c, headers, user, t, id, api.status, unsaved).await
}

/// After a one-step action on a record: back to its page, or the reason it failed.
fn after(
    headers: &HeaderMap,
    user: &PageUser,
    t: ObjectType,
    result: kluis_core::Result<String>,
) -> Response {
    match result {
        Ok(to) => see_other(&to, HeaderMap::new()),
        Err(e) => error_page(headers, user.nav(view::plural(t)), &e),
    }
}

/// Add or remove a linked record: a contact's company, a deal's or ticket's contacts, the
/// records a note or task is about. Computed on the record as it is now and written with its
/// revision, so a concurrent change is never lost.
async fn links(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let result = async {
        let id = parse_id(&id)?;
        let a = &user.actor;
        let rec = s.kluis.get_record(a, t, id).await?;
        let target: Option<RecordId> = get_field(&form, "target").parse().ok();
        let add = get_field(&form, "action") == "add";
        let mut input = RecordInput::default();
        match t {
            ObjectType::Contact => {
                if add && target.is_none() {
                    return Err(kluis_core::Error::validation(
                        "target",
                        "required",
                        "choose a company",
                    ));
                }
                input.company_id = Some(if add { target } else { None });
            }
            ObjectType::Company => {
                // The link lives on the contact: change the contact, on its current revision.
                let Some(target) = target else {
                    return Err(kluis_core::Error::validation(
                        "target",
                        "required",
                        "choose a contact",
                    ));
                };
                let contact = s.kluis.get_record(a, ObjectType::Contact, target).await?;
                if !add && contact.company_id != Some(id) {
                    return Err(not_found());
                }
                let change = RecordInput {
                    company_id: Some(add.then_some(id)),
                    ..RecordInput::default()
                };
                s.kluis
                    .update_record(
                        a,
                        &c,
                        ObjectType::Contact,
                        target,
                        &IfMatch::Revisions(vec![contact.revision]),
                        change,
                    )
                    .await?;
                return Ok(format!("/companies/{id}?done=saved"));
            }
            _ => {
                let mut ids = if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
                    rec.contact_ids.clone()
                } else {
                    rec.related_ids.clone()
                }
                .unwrap_or_default();
                let Some(target) = target else {
                    return Err(kluis_core::Error::validation(
                        "target",
                        "required",
                        "choose a record",
                    ));
                };
                if add {
                    if !ids.contains(&target) {
                        ids.push(target);
                    }
                } else {
                    ids.retain(|x| *x != target);
                }
                if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
                    input.contact_ids = Some(ids);
                } else {
                    input.related_ids = Some(ids);
                }
            }
        }
        s.kluis
            .update_record(a, &c, t, id, &IfMatch::Revisions(vec![rec.revision]), input)
            .await?;
        Ok(format!("{}/{id}?done=saved", view::plural(t)))
    }
    .await;
    after(&headers, &user, t, result)
}

/// Add a tag (an existing one, or a new one by name) or remove one.
async fn tags(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let result = async {
        let id = parse_id(&id)?;
        let a = &user.actor;
        let rec = s.kluis.get_record(a, t, id).await?;
        let mut ids = rec.tag_ids.clone();
        let new_name = get_field(&form, "new_tag").trim().to_owned();
        let chosen: Option<TagId> = get_field(&form, "tag").parse().ok();
        if get_field(&form, "action") == "remove" {
            ids.retain(|x| Some(*x) != chosen);
        } else {
            let tag = if new_name.is_empty() {
                chosen.ok_or_else(|| {
                    kluis_core::Error::validation("tag", "required", "choose a tag")
                })?
            } else {
                let existing = s.kluis.list_tags(a).await?.into_iter().find(|t| {
                    t.deleted_at.is_none() && t.name.to_lowercase() == new_name.to_lowercase()
                });
                match existing {
                    Some(t) => t.id,
                    None => {
                        s.kluis
                            .create_tag(
                                a,
                                &c,
                                TagInput {
                                    name: new_name,
                                    color: None,
                                },
                            )
                            .await?
                            .id
                    }
                }
            };
            if !ids.contains(&tag) {
                ids.push(tag);
            }
        }
        let input = RecordInput {
            tag_ids: Some(ids),
            ..RecordInput::default()
        };
        s.kluis
            .update_record(a, &c, t, id, &IfMatch::Revisions(vec![rec.revision]), input)
            .await?;
        Ok(format!("{}/{id}?done=saved", view::plural(t)))
    }
    .await;
    after(&headers, &user, t, result)
}

/// A note or task about this record.
async fn annotate(
    s: &AppState,
    c: &RequestContext,
    user: &PageUser,
    t: ObjectType,
    id: &str,
    kind: ObjectType,
    form: &Pairs,
) -> kluis_core::Result<String> {
    let id = parse_id(id)?;
    // The record must be readable (a 404 for other tenants' ids before anything is written).
    s.kluis.get_record(&user.actor, t, id).await?;
    let mut input = RecordInput {
        related_ids: Some(vec![id]),
        ..RecordInput::default()
    };
    if kind == ObjectType::Note {
        input.fields.insert(
            "body".into(),
            Value::String(get_field(form, "body").to_owned()),
        );
    } else {
        input.fields.insert(
            "title".into(),
            Value::String(get_field(form, "title").to_owned()),
        );
        let due = get_field(form, "due_date").trim();
        if !due.is_empty() {
            input.due_date = Some(Some(due.to_owned()));
        }
    }
    s.kluis
        .create_record(&user.actor, c, kind, input, None)
        .await?;
    Ok(format!(
        "{}/{id}?done={}",
        view::plural(t),
        if kind == ObjectType::Note {
            "note"
        } else {
            "task"
        }
    ))
}

async fn add_note(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let result = annotate(&s, &c, &user, t, &id, ObjectType::Note, &form).await;
    after(&headers, &user, t, result)
}

async fn add_task(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let result = annotate(&s, &c, &user, t, &id, ObjectType::Task, &form).await;
    after(&headers, &user, t, result)
}

/// Make an earlier version current again (the core keeps every version in between).
async fn restore_version(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let (_, tt, _) = texts(&headers);
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return error_page(&headers, user.nav(view::plural(t)), &e),
    };
    let version: i64 = get_field(&form, "version").parse().unwrap_or(-1);
    let current: i64 = get_field(&form, "revision").parse().unwrap_or(-1);
    let result = s
        .kluis
        .restore_record_version(
            &user.actor,
            &c,
            t,
            id,
            version,
            &IfMatch::Revisions(vec![current]),
        )
        .await;
    match result {
        Ok(_) => see_other(
            &format!("{}/{id}?done=version", view::plural(t)),
            HeaderMap::new(),
        ),
        Err(e) if matches!(e.kind, ErrorKind::Forbidden | ErrorKind::NotFound) => {
            error_page(&headers, user.nav(view::plural(t)), &e)
        }
        Err(e) => {
            let api = ApiError::from(e);
            let unsaved = Unsaved {
                notice: Notice::error(tt, &api),
                ..Unsaved::default()
            };
            show(&s, &c, &headers, &user, t, id, api.status, unsaved).await
        }
    }
}

/// Move the record to the trash (with the revision the page showed).
async fn trash(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let result = async {
        let id = parse_id(&id)?;
        let m = match get_field(&form, "revision").parse::<i64>() {
            Ok(rev) => IfMatch::Revisions(vec![rev]),
            Err(_) => IfMatch::Missing,
        };
        s.kluis.delete_record(&user.actor, &c, t, id, &m).await?;
        Ok("/trash?done=trashed".to_owned())
    }
    .await;
    after(&headers, &user, t, result)
}

// ---- create pages ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "record_new.html")]
struct NewPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    r: &'static RecText,
    csrf: String,
    title: &'static str,
    action: String,
    fields: Vec<FieldView>,
    /// Contacts: a company to link; deals and tickets: a contact.
    link_label: &'static str,
    link_name: &'static str,
    link_options: Vec<Opt>,
}

#[derive(Debug, Deserialize, Default)]
pub struct NewQuery {
    company_id: Option<String>,
    contact_id: Option<String>,
}

#[expect(
    clippy::too_many_arguments,
    reason = "the page's inputs plus the values and link an unsaved create brings back"
)]
async fn new_form(
    s: &AppState,
    c: &RequestContext,
    headers: &HeaderMap,
    user: &PageUser,
    t: ObjectType,
    values: &HashMap<String, String>,
    link_to: Option<&str>,
    notice: Option<Notice>,
) -> kluis_core::Result<NewPage> {
    let (_, tt, r) = texts(headers);
    let a = &user.actor;
    let cat = catalogue(s, a, c, t).await?;
    let specs = view::specs(r, t, &cat);
    let fields = specs
        .iter()
        .filter(|sp| !matches!(sp.name.as_str(), "done"))
        .map(|sp| {
            let mut v = values.get(&sp.name).cloned().unwrap_or_default();
            if sp.name == "owner_id" && !values.contains_key("owner_id") {
                v = a.user_id().map(|u| u.to_string()).unwrap_or_default();
            }
            if sp.name == "currency" && v.is_empty() {
                "EUR".clone_into(&mut v);
            }
            view::field_view(r, sp, v, String::new(), None)
        })
        .collect();
    let (link_label, link_name, kind) = match t {
        ObjectType::Contact => (r.company, "company_id", Some(ObjectType::Company)),
        ObjectType::Deal | ObjectType::Ticket => {
            (r.contacts, "contact_id", Some(ObjectType::Contact))
        }
        _ => ("", "", None),
    };
    let mut link_options = vec![Opt {
        value: String::new(),
        label: r.none.trim_end_matches('.').to_owned(),
        selected: link_to.is_none(),
    }];
    if let Some(k) = kind {
        let all = list(s, a, c, k, RecordQuery::default(), 200).await?;
        let mut opts = options(&all, &[], None);
        for o in &mut opts {
            o.selected = Some(o.value.as_str()) == link_to;
        }
        link_options.extend(opts);
    }
    let title = match t {
        ObjectType::Contact => r.new_contact,
        ObjectType::Company => r.new_company,
        ObjectType::Deal => r.new_deal,
        _ => r.new_ticket,
    };
    Ok(NewPage {
        t: tt,
        nav: user.nav(view::plural(t)),
        notice,
        r,
        csrf: user.csrf.clone(),
        title,
        action: format!("{}/new", view::plural(t)),
        fields,
        link_label,
        link_name,
        link_options,
    })
}

async fn new_page(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<NewQuery>,
) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    if !user.actor.can(Permission::CrmWrite) {
        let e = kluis_core::Error::forbidden("read only");
        return error_page(&headers, user.nav(view::plural(t)), &e);
    }
    let link_to = q.company_id.as_deref().or(q.contact_id.as_deref());
    match new_form(&s, &c, &headers, &user, t, &HashMap::new(), link_to, None).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => error_page(&headers, user.nav(view::plural(t)), &e),
    }
}

async fn new_submit(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let t = record_type(&uri);
    let (_, tt, r) = texts(&headers);
    let a = &user.actor;
    let cat = match catalogue(&s, a, &c, t).await {
        Ok(cat) => cat,
        Err(e) => return error_page(&headers, user.nav(view::plural(t)), &e),
    };
    let specs = view::specs(r, t, &cat);
    let mut values = HashMap::new();
    let mut input = RecordInput::default();
    let mut failed = None;
    for sp in &specs {
        let v = view::submitted(sp, &form, Some(""));
        if v.trim().is_empty() {
            if sp.name == "owner_id" {
                input.owner_id = Some(None);
            }
            continue;
        }
        if let Err(e) = view::apply(sp, &v, &cat.pipelines, &mut input) {
            failed.get_or_insert(e);
        }
        values.insert(sp.name.clone(), v);
    }
    let link_to = match t {
        ObjectType::Contact => get_field(&form, "company_id"),
        _ => get_field(&form, "contact_id"),
    };
    let target: Option<RecordId> = link_to.parse().ok();
    match t {
        ObjectType::Contact => input.company_id = target.map(Some),
        ObjectType::Deal | ObjectType::Ticket => input.contact_ids = target.map(|x| vec![x]),
        _ => {}
    }
    let result = match failed {
        Some(e) => Err(e),
        None => s.kluis.create_record(a, &c, t, input, None).await,
    };
    match result {
        Ok(rec) => see_other(
            &format!("{}/{}?done=created", view::plural(t), rec.id),
            HeaderMap::new(),
        ),
        Err(e) if e.kind == ErrorKind::Forbidden => {
            error_page(&headers, user.nav(view::plural(t)), &e)
        }
        Err(e) => {
            let api = ApiError::from(e);
            let notice = Notice::error(tt, &api);
            let link = (!link_to.is_empty()).then_some(link_to);
            match new_form(&s, &c, &headers, &user, t, &values, link, notice).await {
                Ok(p) => render(api.status, &p),
                Err(e) => error_page(&headers, user.nav(view::plural(t)), &e),
            }
        }
    }
}

// ---- my tasks --------------------------------------------------------------------------

pub struct TaskLine {
    pub id: String,
    pub href: String,
    pub title: String,
    pub due: String,
}

pub struct TaskGroup {
    pub id: &'static str,
    pub title: &'static str,
    pub tasks: Vec<TaskLine>,
}

#[derive(Template)]
#[template(path = "record_tasks.html")]
struct TasksPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    r: &'static RecText,
    csrf: String,
    can_write: bool,
    groups: Vec<TaskGroup>,
    empty: bool,
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn my_tasks(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (_, tt, r) = texts(&headers);
    let a = &user.actor;
    let query = RecordQuery {
        owner_id: a.user_id(),
        done: Some(false),
        ..RecordQuery::default()
    };
    let tasks = match list(&s, a, &c, ObjectType::Task, query, 200).await {
        Ok(t) => t,
        Err(e) => return error_page(&headers, user.nav("/tasks"), &e),
    };
    let today = today();
    let mut groups = vec![
        TaskGroup {
            id: "overdue",
            title: r.overdue,
            tasks: Vec::new(),
        },
        TaskGroup {
            id: "today",
            title: r.today,
            tasks: Vec::new(),
        },
        TaskGroup {
            id: "upcoming",
            title: r.upcoming,
            tasks: Vec::new(),
        },
        TaskGroup {
            id: "undated",
            title: r.no_due_date,
            tasks: Vec::new(),
        },
    ];
    let mut tasks: Vec<(String, Record)> = tasks
        .into_iter()
        .map(|t| {
            (
                t.task
                    .as_ref()
                    .and_then(|x| x.due_date.clone())
                    .unwrap_or_default(),
                t,
            )
        })
        .collect();
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    for (due, task) in tasks {
        let g = if due.is_empty() {
            3
        } else if due < today {
            0
        } else if due == today {
            1
        } else {
            2
        };
        groups[g].tasks.push(TaskLine {
            id: task.id.to_string(),
            href: format!("/tasks/{}", task.id),
            title: view::title(&task),
            due: if due.is_empty() {
                String::new()
            } else {
                r.date(&due)
            },
        });
    }
    let empty = groups.iter().all(|g| g.tasks.is_empty());
    render(
        StatusCode::OK,
        &TasksPage {
            t: tt,
            nav: user.nav("/tasks"),
            notice: done_notice(r, q.done.as_deref()),
            r,
            csrf: user.csrf.clone(),
            can_write: a.can(Permission::CrmWrite),
            groups,
            empty,
        },
    )
}

/// Mark a task done (on its current revision: "done" changes nothing else).
async fn task_done(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = async {
        let id = parse_id(&id)?;
        let a = &user.actor;
        let rec = s.kluis.get_record(a, ObjectType::Task, id).await?;
        let input = RecordInput {
            done: Some(true),
            ..RecordInput::default()
        };
        s.kluis
            .update_record(
                a,
                &c,
                ObjectType::Task,
                id,
                &IfMatch::Revisions(vec![rec.revision]),
                input,
            )
            .await?;
        let next = super::local_path(Some(get_field(&form, "next")).filter(|n| !n.is_empty()));
        let next = if next == "/sign-in" { "/tasks" } else { next };
        let sep = if next.contains('?') { '&' } else { '?' };
        Ok(format!("{next}{sep}done=task_done"))
    }
    .await;
    after(&headers, &user, ObjectType::Task, result)
}

// ---- trash -----------------------------------------------------------------------------

pub struct TrashLine {
    pub id: String,
    pub type_name: &'static str,
    pub title: String,
    pub deleted_at: String,
    pub deleted_by: String,
}

#[derive(Template)]
#[template(path = "record_trash.html")]
struct TrashPage {
    t: &'static Text,
    nav: Nav,
    notice: Option<Notice>,
    r: &'static RecText,
    csrf: String,
    can_write: bool,
    items: Vec<TrashLine>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct TrashQuery {
    done: Option<String>,
    cursor: Option<String>,
}

async fn trash_page(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Query(q): Query<TrashQuery>,
) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (_, tt, r) = texts(&headers);
    let a = &user.actor;
    let loaded = async {
        let page = s
            .kluis
            .list_trash(a, &c, None, q.cursor.as_deref(), Some(100))
            .await?;
        let users = s
            .kluis
            .list_users(a, &c, None, Some(200))
            .await
            .map(|p| p.items)
            .unwrap_or_default();
        Ok::<_, kluis_core::Error>((page, users))
    }
    .await;
    let (page, users) = match loaded {
        Ok(v) => v,
        Err(e) => return error_page(&headers, user.nav("/trash"), &e),
    };
    let items = page
        .items
        .iter()
        .map(|rec| TrashLine {
            id: rec.id.to_string(),
            type_name: r.type_name(rec.object_type),
            title: view::title(rec),
            deleted_at: rec
                .deleted_at
                .as_deref()
                .map(|d| r.datetime(d))
                .unwrap_or_default(),
            deleted_by: rec
                .deleted_by
                .as_deref()
                .map(|d| who(r, &users, d))
                .unwrap_or_default(),
        })
        .collect();
    render(
        StatusCode::OK,
        &TrashPage {
            t: tt,
            nav: user.nav("/trash"),
            notice: done_notice(r, q.done.as_deref()),
            r,
            csrf: user.csrf.clone(),
            can_write: a.can(Permission::CrmWrite),
            items,
            next_cursor: page.next_cursor,
        },
    )
}

async fn trash_restore(
    State(s): State<AppState>,
    Ctx(c): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let user = match poster(&s, &headers, &form).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let result = async {
        let id = parse_id(&id)?;
        let rec = s.kluis.restore_from_trash(&user.actor, &c, id).await?;
        Ok(format!(
            "{}/{}?done=restored",
            view::plural(rec.object_type),
            rec.id
        ))
    }
    .await;
    match result {
        Ok(to) => see_other(&to, HeaderMap::new()),
        Err(e) => error_page(&headers, user.nav("/trash"), &e),
    }
}
