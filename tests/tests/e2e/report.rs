//! The run report (`GET /runs/{id}/report`, docs/run-report.md) of a real run: a real hub,
//! delegate and target process paused by the run. The HTML page has every section and the
//! latency plot (an SVG with the fault window shaded and every failed check marked), the PDF is
//! read back by the real `pdftotext` (Debian's poppler-utils), the CLI's `run show --report`
//! writes both, and the endpoint is authorised exactly like GraphQL's `run(id:)`.
use faultline_e2e::{bin, Api, Delegate, Target, World};
use serde_json::{json, Value};
use std::{path::Path, process::Stdio, time::Duration};

/// A probed target paused for 2 s after a 2 s baseline: checks fail while it is paused.
fn paused_template(name: &str, target: &Target) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata:\n  name: {name}\n  description: the web server survives a pause\n\
         hypothesis:\n  baseline: 2s\n  recoverWithin: 15s\n  probes:\n    - name: web-ok\n      \
         http: {{url: \"{}\", expect: {{status: 200}}}}\n      interval: 200ms\n      timeout: 500ms\n\
         steps:\n  - fault: process-pause\n    target: {{pidFile: {}}}\n    duration: 2s\n",
        target.url(),
        target.pid_file.display()
    )
}

/// A finished run of the paused template on a fresh delegate: the world, its target and
/// delegate (kept alive with it), and the run as the API reads it, with its latency sentences.
async fn finished_run(name: &str) -> (World, Target, Delegate, Value) {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let delegate = w.delegate("report-delegate", &[], &[]).await.unwrap();
    let tid = w
        .api
        .create_template(&paused_template(name, &target))
        .await
        .unwrap();
    let id = w.api.start_run(&tid, "report-delegate").await.unwrap();
    w.api
        .wait_status(&id, &["PASSED", "FAILED"], Duration::from_secs(90))
        .await
        .unwrap();
    let d = w
        .api
        .gql(
            "query($id: ID!) { run(id: $id) { id status resilienceScore recoveryMs createdBy \
               probeTally { passed failed total } latency { probe summary } template { name } } }",
            json!({"id": id}),
        )
        .await
        .unwrap();
    (w, target, delegate, d["run"].clone())
}

/// GET a report path with optional bearer token / cookie: (status, headers, body).
async fn get(
    api: &Api,
    path: &str,
    bearer: Option<&str>,
    cookie: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = api.http.get(format!("{}{path}", api.url));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `faultline run show ID --report FILE` with a project API token, as CI would.
async fn cli_report(w: &World, token: &str, id: &str, file: &Path) -> String {
    let o = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(bin("faultline"))
            .args(["run", "show", id, "--report"])
            .arg(file)
            .env("FAULTLINE_HUB", &w.hub.url)
            .env("FAULTLINE_HUB_CA", &w.hub.ca)
            .env("FAULTLINE_TOKEN", token)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("run show finishes")
    .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "run show --report: {stderr}");
    // The run itself on stdout, as without --report.
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        stdout.starts_with("id:") && stdout.contains("status:"),
        "{stdout}"
    );
    stderr
}

async fn api_token(w: &World, project: &str, role: &str) -> String {
    let d = w
        .api
        .gql(
            "mutation($p: String!, $r: Role!) { createApiToken(project: $p, name: \"report\", role: $r) { secret } }",
            json!({"p": project, "r": role}),
        )
        .await
        .unwrap();
    d["createApiToken"]["secret"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn html_report_of_a_finished_run_has_the_plot_and_every_section() {
    let (w, _target, _delegate, run) = finished_run("report-html").await;
    let id = run["id"].as_str().unwrap();
    let failed = run["probeTally"]["failed"].as_i64().unwrap();
    assert!(failed > 0, "checks fail while the target is paused: {run}");

    let (status, headers, body) =
        get(&w.api, &format!("/runs/{id}/report"), Some(&w.token), None).await;
    let page = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "private, no-store");
    // Nothing may load or run in it: the page's own CSP, and nothing in it that would.
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    assert!(headers["server-timing"]
        .to_str()
        .unwrap()
        .contains("render;dur="));

    for section in [
        "verdict",
        "hypothesis",
        "plot",
        "latency",
        "probes",
        "timeline",
        "failures",
        "provenance",
    ] {
        assert!(
            page.contains(&format!("<section id=\"{section}\"")),
            "section {section}"
        );
    }
    // The verdict, the hub's score, the recovery.
    let verdict = run["status"].as_str().unwrap();
    assert!(
        page.contains(&format!("data-testid=\"verdict\">{verdict}<")),
        "{verdict}"
    );
    let score = format!("{:.1}", run["resilienceScore"].as_f64().unwrap());
    assert!(
        page.contains(&format!("data-testid=\"score\">{score}<")),
        "score {score}"
    );
    // The plot: an SVG with the pause's window shaded and each failed check marked.
    let svg = &page[page.find("<svg").expect("an inline SVG")..page.find("</svg>").unwrap()];
    assert!(
        svg.contains(&format!("data-failures=\"{failed}\"")),
        "{failed} failures"
    );
    assert_eq!(
        svg.matches("data-testid=\"fault-band\" data-step=\"0\"")
            .count(),
        1
    );
    assert_eq!(svg.matches("data-testid=\"baseline-band\"").count(), 1);
    let dots = svg.matches("data-testid=\"failed-check\"").count() as i64;
    assert!(
        dots >= 1 && dots <= failed,
        "{dots} dots for {failed} failures"
    );
    assert!(svg.contains("<polyline data-probe=\"web-ok\""));
    // The method's timeline, the statistics sentence, the tables, the provenance.
    assert!(page.contains("Applied process-pause (steps[0])"));
    assert!(page.contains("Reverted process-pause (steps[0])"));
    for l in run["latency"].as_array().unwrap() {
        assert!(
            page.contains(&escaped(l["summary"].as_str().unwrap())),
            "{l}"
        );
    }
    assert!(page.contains("data-testid=\"latency-sentence\""));
    assert!(page.contains("<tr data-probe=\"web-ok\">"));
    assert!(page.contains("the web server survives a pause"));
    assert!(page.contains("data-testid=\"template\">report-html version 1"));
    let by = run["createdBy"]
        .as_str()
        .unwrap()
        .trim_start_matches("user:");
    assert!(
        page.contains(&format!("data-testid=\"started-by\">{by}<")),
        "{by}"
    );

    // The dashboard's 8-character prefix names it too; the CLI saves the same document.
    let (status, _, by_prefix) = get(
        &w.api,
        &format!("/runs/{}/report", &id[..8]),
        Some(&w.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(by_prefix).unwrap().contains(id));
    let token = api_token(&w, "default", "VIEWER").await;
    let file = w.path("report.html");
    let said = cli_report(&w, &token, &id[..8], &file).await;
    assert!(said.contains("wrote the HTML report"), "{said}");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.starts_with("<!doctype html>") && saved.contains("data-testid=\"fault-band\""));
}

#[tokio::test]
async fn pdf_report_text_holds_the_verdict_and_the_score() {
    assert!(
        Path::new("/usr/bin/pdftotext").is_file(),
        "install Debian's poppler-utils (.ci/run does)"
    );
    let (w, _target, _delegate, run) = finished_run("report-pdf").await;
    let id = run["id"].as_str().unwrap();
    let (status, headers, pdf) = get(
        &w.api,
        &format!("/runs/{id}/report?format=pdf"),
        Some(&w.token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"faultline-run-{}.pdf\"", &id[..8]).as_str()
    );
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");

    let token = api_token(&w, "default", "VIEWER").await;
    let file = w.path("run.pdf");
    let said = cli_report(&w, &token, id, &file).await;
    assert!(said.contains("wrote the PDF report"), "{said}");
    for (what, bytes) in [
        ("served", pdf.clone()),
        ("saved by the CLI", std::fs::read(&file).unwrap()),
    ] {
        let f = w.path(&format!("check-{}.pdf", what.len()));
        std::fs::write(&f, &bytes).unwrap();
        let o = std::process::Command::new("pdftotext")
            .args(["-layout"])
            .arg(&f)
            .arg("-")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{what}: pdftotext: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8_lossy(&o.stdout);
        let verdict = run["status"].as_str().unwrap();
        let score = format!("{:.1}", run["resilienceScore"].as_f64().unwrap());
        assert!(
            text.contains(verdict),
            "{what}: verdict {verdict} in:\n{text}"
        );
        assert!(text.contains(&score), "{what}: score {score} in:\n{text}");
        for expected in [
            "Hypothesis",
            "Probe latency",
            "Latency statistics",
            "Timeline of the method",
            "Applied process-pause (steps[0])",
            "web-ok",
            "report-pdf v1",
        ] {
            assert!(text.contains(expected), "{what}: {expected:?} in:\n{text}");
        }
        // The plot's axis is text too.
        assert!(text.contains("seconds since the run started"), "{what}");
        let info = std::process::Command::new("pdfinfo")
            .arg(&f)
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains("Page size:") && info.contains("595.28 x 841.89"),
            "A4: {info}"
        );
    }
}

#[tokio::test]
async fn the_report_is_authorised_like_the_run() {
    let (w, _target, _delegate, run) = finished_run("report-auth").await;
    let id = run["id"].as_str().unwrap();
    let path = format!("/runs/{id}/report");
    let code = |body: &[u8]| -> String {
        serde_json::from_slice::<Value>(body).unwrap()["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // No credential, or a bad one: 401.
    let (status, _, body) = get(&w.api, &path, None, None).await;
    assert_eq!((status, code(&body).as_str()), (401, "UNAUTHENTICATED"));
    let (status, _, _) = get(&w.api, &path, Some("fl_not-a-token"), None).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(&w.api, &format!("{path}?format=docx"), None, None).await;
    assert_eq!(status, 401, "nothing is said before the caller is known");

    // An API token of the run's project, any role: 200, by id and by prefix.
    let viewer = api_token(&w, "default", "VIEWER").await;
    for p in [
        path.clone(),
        format!("/runs/{}/report?format=pdf", &id[..8]),
    ] {
        let (status, _, _) = get(&w.api, &p, Some(&viewer), None).await;
        assert_eq!(status, 200, "{p}");
    }

    // Another project's user and token: the run does not exist for them, as in GraphQL.
    w.api
        .gql(
            "mutation { createProject(name: \"other\") { id } }",
            json!({}),
        )
        .await
        .unwrap();
    w.api
        .gql(
            "mutation { createUser(email: \"eve@example.com\", password: \"a long test password\") { user { id } } }",
            json!({}),
        )
        .await
        .unwrap();
    w.api
        .gql(
            "mutation { setMember(project: \"other\", email: \"eve@example.com\", role: OWNER) { role } }",
            json!({}),
        )
        .await
        .unwrap();
    let eve = w
        .hub
        .login("eve@example.com", "a long test password")
        .await
        .unwrap();
    let eve_api = w.hub.client(&eve).unwrap();
    let gql = eve_api
        .try_gql("query($id: ID!) { run(id: $id) { id } }", json!({"id": id}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(gql.extensions["code"], "NOT_FOUND", "{gql}");
    let other_token = api_token(&w, "other", "OWNER").await;
    for (who, token) in [
        ("eve", eve.as_str()),
        ("other's token", other_token.as_str()),
    ] {
        for p in [path.clone(), format!("/runs/{}/report", &id[..8])] {
            let (status, _, body) = get(&w.api, &p, Some(token), None).await;
            assert_eq!(
                (status, code(&body).as_str()),
                (404, "NOT_FOUND"),
                "{who} {p}"
            );
        }
    }

    // A browser's session cookie, as the dashboard's Report link sends it.
    let resp = w
        .api
        .http
        .post(format!("{}/auth/login", w.hub.url))
        .json(&json!({"email": "eve@example.com", "password": "a long test password"}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (status, _, _) = get(&w.api, &path, None, Some(&cookie)).await;
    assert_eq!(status, 404, "eve's cookie sees no run of another project");
    w.api
        .gql(
            "mutation { setMember(project: \"default\", email: \"eve@example.com\", role: VIEWER) { role } }",
            json!({}),
        )
        .await
        .unwrap();
    let (status, headers, _) = get(&w.api, &path, None, Some(&cookie)).await;
    assert_eq!(status, 200, "a viewer of the project reads it");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    // A bad format, a bad id, a run that does not exist.
    for (p, want, c) in [
        (format!("{path}?format=docx"), 400, "BAD_USER_INPUT"),
        ("/runs/xyz/report".to_string(), 400, "BAD_USER_INPUT"),
        (
            format!("/runs/{}/report", uuid::Uuid::new_v4()),
            404,
            "NOT_FOUND",
        ),
    ] {
        let (status, _, body) = get(&w.api, &p, Some(&viewer), None).await;
        assert_eq!((status, code(&body).as_str()), (want, c), "{p}");
    }
}
