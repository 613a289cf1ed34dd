//! `/dashboard`: pipeline value by stage, deals won per month, open tickets by priority and
//! tasks due, as server-rendered SVG bar charts (no script), each with a title, a description
//! and the same figures as a table.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kluis_core::crm::{ObjectType, Record, RecordQuery};
use kluis_core::{Permission, RequestContext};

use super::super::errors::{forbidden_page, service_error_page};
use super::super::i18n::{Lang, Text};
use super::super::{Nav, Notice, PageUser, page_user, render};
use super::text::{self, BText};
use super::{all_records, money, today};
use crate::AppState;
use crate::auth::Ctx;

/// Chart geometry (SVG user units).
const WIDTH: i64 = 640;
const LABEL_W: i64 = 190;
const VALUE_W: i64 = 130;
const ROW_H: i64 = 30;
const BAR_H: i64 = 20;

pub struct Bar {
    pub label: String,
    /// The figure as shown (formatted money or a count).
    pub value: String,
    pub width: i64,
    pub y: i64,
    pub text_y: i64,
}

pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub desc: &'static str,
    pub label_head: &'static str,
    pub value_head: &'static str,
    pub height: i64,
    pub label_x: i64,
    pub bar_x: i64,
    pub value_x: i64,
    pub bars: Vec<Bar>,
    pub note: Option<String>,
}

fn chart(
    id: &'static str,
    title: String,
    desc: &'static str,
    heads: (&'static str, &'static str),
    rows: Vec<(String, i64, String)>,
) -> Chart {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let span = WIDTH - LABEL_W - VALUE_W;
    let bars = rows
        .into_iter()
        .enumerate()
        .map(|(i, (label, v, value))| {
            let y = i as i64 * ROW_H + 5;
            Bar {
                label,
                value,
                width: if v <= 0 { 0 } else { (v * span / max).max(2) },
                y,
                text_y: y + BAR_H - 5,
            }
        })
        .collect::<Vec<_>>();
    Chart {
        id,
        title,
        desc,
        label_head: heads.0,
        value_head: heads.1,
        height: (bars.len() as i64 * ROW_H + 10).max(40),
        label_x: LABEL_W - 8,
        bar_x: LABEL_W,
        value_x: WIDTH - VALUE_W + 8,
        bars,
        note: None,
    }
}

#[derive(Template)]
#[template(path = "boards_dashboard.html")]
struct DashboardPage {
    t: &'static Text,
    b: &'static BText,
    nav: Nav,
    notice: Option<Notice>,
    charts: Vec<Chart>,
    width: i64,
}

pub async fn page(State(s): State<AppState>, Ctx(c): Ctx, headers: HeaderMap) -> Response {
    let user = match page_user(&s, &headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !user.actor.can(Permission::CrmRead) {
        return forbidden_page(&headers, Some(&user));
    }
    match charts(&s, &c, &headers, &user).await {
        Ok(charts) => {
            let lang = Lang::of(&headers);
            render(
                StatusCode::OK,
                &DashboardPage {
                    t: lang.text(),
                    b: text::of(lang),
                    nav: user.nav("/dashboard"),
                    notice: None,
                    charts,
                    width: WIDTH,
                },
            )
        }
        Err(e) => service_error_page(&headers, &user, e.into()),
    }
}

async fn charts(
    s: &AppState,
    c: &RequestContext,
    headers: &HeaderMap,
    user: &PageUser,
) -> kluis_core::Result<Vec<Chart>> {
    let lang = Lang::of(headers);
    let b = text::of(lang);
    let a = &user.actor;
    let mut out = Vec::new();
    let today = today();

    // Pipeline value by stage, one chart per deal pipeline, in its main currency.
    let pipelines = s.kluis.list_pipelines(a, ObjectType::Deal).await?;
    for p in &pipelines {
        let q = RecordQuery {
            pipeline_id: Some(p.id),
            ..RecordQuery::default()
        };
        let (deals, _) = all_records(s, a, c, ObjectType::Deal, q).await?;
        let mut per_currency: BTreeMap<String, usize> = BTreeMap::new();
        for d in deals.iter().filter_map(|r| r.deal.as_ref()) {
            if d.amount_minor.is_some() {
                *per_currency
                    .entry(d.currency.clone().unwrap_or_else(|| "EUR".into()))
                    .or_default() += 1;
            }
        }
        let main = per_currency
            .iter()
            .max_by_key(|(cur, n)| (**n, *cur == "EUR"))
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| "EUR".into());
        let rows = p
            .stages
            .iter()
            .map(|st| {
                let sum: i64 = deals
                    .iter()
                    .filter_map(|r| r.deal.as_ref())
                    .filter(|d| d.stage_id == Some(st.id))
                    .filter(|d| d.currency.as_deref().unwrap_or("EUR") == main)
                    .filter_map(|d| d.amount_minor)
                    .sum();
                (st.name.clone(), sum, money(lang, sum, &main))
            })
            .collect();
        let title = if pipelines.len() > 1 {
            format!("{}: {}", b.pipeline_value, p.name)
        } else {
            b.pipeline_value.to_owned()
        };
        let mut ch = chart(
            "pipeline-value",
            title,
            b.pipeline_value_desc,
            (b.stage, b.col_value),
            rows,
        );
        let others: Vec<&String> = per_currency.keys().filter(|c| **c != main).collect();
        if !others.is_empty() {
            ch.note = Some(format!(
                "{} {}",
                b.other_currencies,
                others
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push(ch);
    }

    // Deals won per month: the last twelve months, by close date (else last change).
    let won_q = RecordQuery {
        outcome: Some("won".into()),
        ..RecordQuery::default()
    };
    let (won, _) = all_records(s, a, c, ObjectType::Deal, won_q).await?;
    let months = last_months(&today, 12);
    let month_of = |r: &Record| {
        r.deal
            .as_ref()
            .and_then(|d| d.close_date.clone())
            .unwrap_or_else(|| r.updated_at.clone())
            .get(..7)
            .unwrap_or_default()
            .to_owned()
    };
    let rows = months
        .iter()
        .map(|m| {
            let n = won.iter().filter(|r| month_of(r) == *m).count() as i64;
            (month_label(lang, m), n, n.to_string())
        })
        .collect();
    out.push(chart(
        "won-per-month",
        b.won_per_month.to_owned(),
        b.won_per_month_desc,
        (b.month, b.col_count),
        rows,
    ));

    // Open tickets by priority.
    let open_q = RecordQuery {
        outcome: Some("open".into()),
        ..RecordQuery::default()
    };
    let (tickets, _) = all_records(s, a, c, ObjectType::Ticket, open_q).await?;
    let rows = ["urgent", "high", "normal", "low"]
        .iter()
        .map(|p| {
            let n = tickets
                .iter()
                .filter(|r| {
                    r.deal
                        .as_ref()
                        .and_then(|d| d.priority.as_deref())
                        .unwrap_or("normal")
                        == *p
                })
                .count() as i64;
            (b.priority_name(p).to_owned(), n, n.to_string())
        })
        .collect();
    out.push(chart(
        "open-tickets",
        b.open_tickets.to_owned(),
        b.open_tickets_desc,
        (b.priority, b.col_count),
        rows,
    ));

    // Open tasks by due date.
    let tasks_q = RecordQuery {
        done: Some(false),
        ..RecordQuery::default()
    };
    let (tasks, _) = all_records(s, a, c, ObjectType::Task, tasks_q).await?;
    let week = add_days(&today, 7);
    let mut buckets = [0i64; 5];
    for t in &tasks {
        let due = t.task.as_ref().and_then(|t| t.due_date.clone());
        let i = match due.as_deref() {
            None => 4,
            Some(d) if d < today.as_str() => 0,
            Some(d) if d == today => 1,
            Some(d) if d <= week.as_str() => 2,
            Some(_) => 3,
        };
        buckets[i] += 1;
    }
    let rows = [b.overdue, b.today, b.next_7_days, b.later, b.no_due_date]
        .iter()
        .zip(buckets)
        .map(|(l, n)| ((*l).to_owned(), n, n.to_string()))
        .collect();
    out.push(chart(
        "tasks-due",
        b.tasks_due.to_owned(),
        b.tasks_due_desc,
        (b.col_label, b.col_count),
        rows,
    ));
    Ok(out)
}

/// `YYYY-MM` of the `n` months up to and including the month of `today` (`YYYY-MM-DD`).
fn last_months(today: &str, n: i32) -> Vec<String> {
    let y: i32 = today.get(..4).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let m: i32 = today.get(5..7).and_then(|v| v.parse().ok()).unwrap_or(1);
    let now = y * 12 + (m - 1);
    (0..n)
        .rev()
        .map(|back| {
            let k = now - back;
            format!("{:04}-{:02}", k / 12, k % 12 + 1)
        })
        .collect()
}

fn month_label(lang: Lang, ym: &str) -> String {
    match (lang, ym.split_once('-')) {
        (Lang::Nl, Some((y, m))) => format!("{m}-{y}"),
        _ => ym.to_owned(),
    }
}

fn add_days(day: &str, days: i64) -> String {
    let part = |r: std::ops::Range<usize>| day.get(r).and_then(|v| v.parse::<i32>().ok());
    let parsed = match (part(0..4), part(5..7), part(8..10)) {
        (Some(y), Some(m), Some(d)) => u8::try_from(m)
            .ok()
            .and_then(|m| time::Month::try_from(m).ok())
            .and_then(|m| time::Date::from_calendar_date(y, m, u8::try_from(d).ok()?).ok()),
        _ => None,
    };
    parsed
        .and_then(|d| d.checked_add(time::Duration::days(days)))
        .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
        .unwrap_or_else(|| day.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_days() {
        assert_eq!(
            last_months("2026-02-10", 3),
            vec!["2025-12", "2026-01", "2026-02"]
        );
        assert_eq!(add_days("2026-12-29", 7), "2027-01-05");
        assert_eq!(month_label(Lang::Nl, "2026-11"), "11-2026");
    }

    #[test]
    fn bars_scale_to_the_largest() {
        let c = chart(
            "x",
            "t".into(),
            "d",
            ("a", "b"),
            vec![("a".into(), 10, "10".into()), ("b".into(), 5, "5".into())],
        );
        assert_eq!(c.bars[0].width, WIDTH - LABEL_W - VALUE_W);
        assert_eq!(c.bars[1].width, (WIDTH - LABEL_W - VALUE_W) / 2);
    }
}
