//! The run report: `GET /runs/{id}/report` renders what a run proved as a document to share
//! with people who never open the dashboard: a self-contained HTML page (the default), or with
//! `?format=pdf` a PDF of the same content.
//!
//! Owns the endpoint (authorised exactly like GraphQL's `run(id:)`: the same credentials, the
//! same lookup [`crate::run_ids::readable`], so a run in a project the caller has no role in is
//! "not found"), gathering the run's data from the stores ([`load`]), and the rendering:
//! `model.rs` (what the report says), `plot.rs` (the latency plot's geometry), `html.rs` and
//! `pdf.rs` (the two media). It stores nothing and changes no run.
mod helvetica;
mod html;
pub mod model;
mod pdf;
pub mod plot;

use crate::{
    error::{ApiError, ApiResult},
    identity::{
        authn::{self, Credential},
        Principal,
    },
    perimeter::ClientIp,
    state::AppState,
};
use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use std::time::{Duration, Instant};

pub use model::{Input, Report};

/// Method events read for the timeline (a run has a few dozen; this bounds a pathological one).
const MAX_METHOD_EVENTS: i64 = 10_000;

/// The HTML page's own Content-Security-Policy: nothing may load or run, inline styles only.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The medium of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Html,
    Pdf,
}

impl Format {
    /// `?format=`: `html` (the default) or `pdf`.
    pub fn parse(s: Option<&str>) -> ApiResult<Format> {
        match s.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("html") => Ok(Format::Html),
            Some("pdf") => Ok(Format::Pdf),
            Some(other) => Err(ApiError::bad(
                "format",
                format!("{other:?} is not a report format (html or pdf)"),
            )),
        }
    }
}

/// A rendered report and what it cost.
pub struct Rendered {
    pub format: Format,
    pub body: Vec<u8>,
    /// The run's 8-character id, for the file name.
    pub short_id: String,
    /// Reading the run from Postgres.
    pub load: Duration,
    /// Building and rendering it.
    pub render: Duration,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/runs/{id}/report", get(report))
}

#[derive(serde::Deserialize)]
struct Params {
    format: Option<String>,
}

async fn report(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Who asks comes first: without a credential every answer is 401, as for GraphQL.
    let cred = Credential::from_headers(&headers);
    let p = authn::authenticate(&s, cred.as_ref(), Some(ip)).await?;
    let format = Format::parse(q.format.as_deref())?;
    Ok(respond(make(&s, &p, &id, format).await?))
}

/// The report of the run `id` (an id or a prefix) as `p` may read it.
#[tracing::instrument(skip_all, fields(run_id = %id, ?format, actor = %p.actor()))]
pub async fn make(s: &AppState, p: &Principal, id: &str, format: Format) -> ApiResult<Rendered> {
    let t = Instant::now();
    let run = crate::run_ids::readable(&s.pool, p, id, "id").await?;
    let input = load(s, run).await?;
    let load = t.elapsed();
    // CPU work (a run of many checks): off the request threads.
    let (body, short_id, render) = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let report = Report::build(input);
        let body = render(&report, format);
        (body, report.short_id(), t.elapsed())
    })
    .await
    .map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("failed to render the run report"))
    })?;
    tracing::debug!(bytes = body.len(), ?load, ?render, "run report rendered");
    Ok(Rendered {
        format,
        body,
        short_id,
        load,
        render,
    })
}

/// Everything the report shows about `run`, from the stores.
pub async fn load(s: &AppState, run: crate::runs::RunRow) -> ApiResult<Input> {
    let pool = &s.pool;
    let template = crate::templates::get(pool, Some(run.project_id), run.template_id).await?;
    let version = crate::templates::version(pool, run.template_id, run.template_version).await?;
    // The version's own text; one that no longer parses (the template language changed since)
    // leaves the report without its hypothesis, not without the run's data.
    let spec = match faultline_experiment::parse_template(&version.yaml) {
        Ok(spec) => Some(spec),
        Err(e) => {
            tracing::warn!(run_id = %run.id, error = %e, "run report without its template's hypothesis");
            None
        }
    };
    let delegate = match run.delegate_id {
        Some(id) => Some(crate::delegates::get(pool, id, s.fresh_secs()).await?.name),
        None => None,
    };
    let project = crate::db::project_name(pool, run.project_id).await?;
    let events = crate::runs::method_events(pool, run.id, MAX_METHOD_EVENTS).await?;
    let checks = crate::runs::timed_checks(pool, run.id).await?;
    Ok(Input {
        run,
        project,
        template: template.name,
        version,
        spec,
        delegate,
        events,
        checks,
        generated_at: chrono::Utc::now(),
    })
}

/// The report in `format`.
pub fn render(r: &Report, format: Format) -> Vec<u8> {
    match format {
        Format::Html => html::render(r).into_bytes(),
        Format::Pdf => pdf::render(r),
    }
}

/// The HTTP answer: the document with its type, file name, its own CSP (HTML), no caching (a
/// run still going changes), and `Server-Timing` (load and render, in ms).
fn respond(r: Rendered) -> Response {
    let (mime, disposition) = match r.format {
        Format::Html => ("text/html; charset=utf-8", "inline"),
        Format::Pdf => ("application/pdf", "attachment"),
    };
    let ext = match r.format {
        Format::Html => "html",
        Format::Pdf => "pdf",
    };
    let mut resp = r.body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"faultline-run-{}.{ext}\"",
        r.short_id
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if r.format == Format::Html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "load;dur={:.1}, render;dur={:.1}",
        r.load.as_secs_f64() * 1000.0,
        r.render.as_secs_f64() * 1000.0
    )) {
        h.insert("server-timing", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_naming_the_field() {
        assert_eq!(Format::parse(None).unwrap(), Format::Html);
        assert_eq!(Format::parse(Some("PDF")).unwrap(), Format::Pdf);
        let e = Format::parse(Some("docx")).unwrap_err().to_string();
        assert!(e.starts_with("format: "), "{e}");
    }
}
