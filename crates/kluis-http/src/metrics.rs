//! Prometheus metrics: per-route request counts and latency histograms from a middleware, and
//! the installation's operational state (audit checkpoint lag, key ages, lockouts, email,
//! backups, database pool) read at scrape time. Served at `/metrics` behind a platform key.
//!
//! Labels are bounded by construction: the route is axum's matched path template (never the
//! raw path, which carries ids), methods outside the standard set are `other`, and the
//! installation's state is exported as sums and maxima, never per organisation.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;
use crate::auth::PlatformAuthed;
use crate::error::{ApiError, ApiResult};

/// Latency buckets in seconds: the API's targets sit at 5 ms (p99), pages at 100 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the process-wide Prometheus recorder (once per process; `kluis serve` calls it).
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("kluis_http_request_duration_seconds".into()),
            LATENCY_BUCKETS,
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    describe();
    Ok(handle)
}

/// HELP lines: every series says what it counts (promtool's linter insists, rightly).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "kluis_http_requests_total",
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        "kluis_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method and route template, handler and middleware included."
    );
    describe_counter!(
        "kluis_rate_limited_total",
        "API requests refused by a rate limit, by policy."
    );
    describe_counter!(
        "kluis_lockouts_total",
        "Accounts locked after too many failed sign-ins."
    );
    describe_counter!("kluis_job_runs_total", "Runs of background jobs, by job.");
    describe_gauge!(
        "kluis_job_last_run_timestamp_seconds",
        Unit::Seconds,
        "When a background job last ran (unix time)."
    );
    describe_gauge!("kluis_tenants", "Organisations on this installation.");
    describe_gauge!(
        "kluis_audit_unsigned_events",
        "Audit events not yet covered by a signed checkpoint, over all logs."
    );
    describe_gauge!(
        "kluis_audit_checkpoint_age_seconds",
        Unit::Seconds,
        "Age of the oldest latest-checkpoint among audit logs with unsigned events (0: all signed)."
    );
    describe_gauge!(
        "kluis_audit_logs_without_checkpoint",
        "Audit logs with events and no signed checkpoint yet."
    );
    describe_gauge!(
        "kluis_data_key_age_seconds_max",
        Unit::Seconds,
        "Age of the oldest active data key."
    );
    describe_gauge!(
        "kluis_logs_without_data_key",
        "Logs without an active data key (shredded or never provisioned)."
    );
    describe_gauge!("kluis_locked_accounts", "Accounts locked out right now.");
    describe_gauge!(
        "kluis_mail_outbox",
        "Emails waiting (pending) or given up on (failed)."
    );
    describe_gauge!(
        "kluis_db_pool_connections",
        "Database pool connections, idle or in use."
    );
    describe_gauge!(
        "kluis_backup_configured",
        "1 when this process runs the backup schedule."
    );
    describe_gauge!(
        "kluis_backup_age_seconds",
        Unit::Seconds,
        "Age of the latest shipped backup."
    );
    describe_gauge!(
        "kluis_backup_drill_ok",
        "1 when the latest restore drill passed, 0 when it failed."
    );
    describe_gauge!("kluis_build_info", "The running version (always 1).");
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request by method, route template and status.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    counter!("kluis_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!("kluis_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Prometheus text exposition of this process's metrics and the installation's state.
#[utoipa::path(get, path = "/metrics", tag = "platform",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn scrape(
    State(s): State<AppState>,
    PlatformAuthed(p): PlatformAuthed,
) -> ApiResult<Response> {
    let Some(handle) = s.metrics.as_ref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics_disabled",
            "metrics are not collected by this process",
        ));
    };
    let o = s.kluis.ops_snapshot(&p).await?;
    gauge!("kluis_tenants").set(o.tenants as f64);
    gauge!("kluis_audit_unsigned_events").set(o.audit_unsigned_events as f64);
    gauge!("kluis_audit_checkpoint_age_seconds").set(o.audit_checkpoint_age_secs);
    gauge!("kluis_audit_logs_without_checkpoint").set(o.audit_logs_without_checkpoint as f64);
    gauge!("kluis_data_key_age_seconds_max").set(o.data_key_age_secs_max);
    gauge!("kluis_logs_without_data_key").set(o.logs_without_data_key as f64);
    gauge!("kluis_locked_accounts").set(o.locked_accounts as f64);
    gauge!("kluis_mail_outbox", "status" => "pending").set(o.mail_pending as f64);
    gauge!("kluis_mail_outbox", "status" => "failed").set(o.mail_failed as f64);
    gauge!("kluis_db_pool_connections", "state" => "idle").set(f64::from(o.pool_idle));
    gauge!("kluis_db_pool_connections", "state" => "in_use")
        .set(f64::from(o.pool_connections.saturating_sub(o.pool_idle)));
    let b = s.kluis.backup_status(&p);
    gauge!("kluis_backup_configured").set(if b.configured { 1.0 } else { 0.0 });
    if let Some(age) = b.last_backup_age_secs {
        gauge!("kluis_backup_age_seconds").set(age as f64);
    }
    if let Some(ok) = b.last_drill_ok {
        gauge!("kluis_backup_drill_ok").set(if ok { 1.0 } else { 0.0 });
    }
    gauge!("kluis_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Makes sure the counters exist (at zero) before their first event, so alert rules on
    // their rates see a series from the start.
    counter!("kluis_lockouts_total").increment(0);
    for policy in ["burst", "tenant", "daily"] {
        counter!("kluis_rate_limited_total", "policy" => policy).increment(0);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}
