//! The dashboard in real headless Chromium (Debian `chromium`, driven by `playwright-core` in
//! `web/e2e/dashboard.mjs`) against a real hub, Postgres, delegate and target process started
//! here. The browser signs in, writes a template (fixing a validation error the hub reports at
//! its line), runs it and watches probe checks arrive, aborts a second run, and visits every
//! page; screenshots go to `target/web-e2e/`. A second script (`web/e2e/schedules.mjs`) creates
//! a schedule with the cron helper and follows its fires (`target/web-e2e-schedules/`); a third
//! (`web/e2e/report.mjs`) opens a run's report from the run view (screenshots in the test's
//! temporary directory).
//! Afterwards the API must agree with what the browser saw.
use faultline_e2e::{bin, Target, World};
use serde_json::json;
use std::{path::PathBuf, process::Stdio, time::Duration};
use tokio::process::Command;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// Checks that the dashboard is built into this hub and Chromium is there, and returns an empty
/// screenshot directory `target/<shots>/`.
async fn browser_ready(w: &World, shots: &str) -> PathBuf {
    assert_browser(w).await;
    let dir = bin("faultline")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(shots);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Checks that the dashboard is built into this hub and Chromium is there.
async fn assert_browser(w: &World) {
    let web = web_dir();
    assert!(
        web.join("dist/index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
        "build the dashboard first: cd web && npm ci && npm run build (scripts/test.sh does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").is_file(),
        "install Debian's chromium (.ci/run does)"
    );
    // The hub under test serves the dashboard built into its binary: it must be this build.
    let served = w
        .api
        .http
        .get(format!("{}/", w.hub.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        served,
        std::fs::read_to_string(web.join("dist/index.html")).unwrap(),
        "the hub embeds another build of the dashboard: run `cargo build -p faultline` after `npm run build`"
    );
}

/// Runs a browser script of `web/e2e/` with `env` and the hub's address and administrator, and
/// fails unless it prints `<name> e2e: PASSED` within 5 minutes.
async fn run_browser_script(
    w: &World,
    script: &str,
    name: &str,
    env: &[(&str, String)],
    shots: &std::path::Path,
) {
    let (email, password) = w.hub.admin_login.clone().unwrap();
    let mut cmd = Command::new("node");
    cmd.current_dir(web_dir())
        .arg(script)
        .env("HUB_URL", &w.hub.url)
        .env("ADMIN_EMAIL", &email)
        .env("ADMIN_PASSWORD", &password)
        .env("SHOTS", shots)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the browser test finishes within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains(&format!("{name} e2e: PASSED")),
        "the browser test failed (screenshots in {}):\n{stderr}",
        shots.display()
    );
}

#[tokio::test]
async fn dashboard_end_to_end_in_chromium() {
    let w = World::new().await.unwrap();
    let (email, _) = w.hub.admin_login.clone().unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _delegate = w
        .delegate("web-e2e-delegate", &["env=web"], &[])
        .await
        .unwrap();
    let shots = browser_ready(&w, "web-e2e").await;
    run_browser_script(
        &w,
        "e2e/dashboard.mjs",
        "dashboard",
        &[
            ("TARGET_URL", target.url()),
            ("TARGET_PIDFILE", target.pid_file.display().to_string()),
            ("DELEGATE_NAME", "web-e2e-delegate".into()),
        ],
        &shots,
    )
    .await;

    // What the browser did, seen through the API.
    let d = w
        .api
        .gql(
            "{ templates(project: \"default\") { name version labels } \
               runs(project: \"default\") { status resilienceScore probeTally { total } createdBy } \
               halt(project: \"default\") { halted } }",
            json!({}),
        )
        .await
        .unwrap();
    let t = &d["templates"][0];
    assert_eq!(t["name"], "web-e2e", "{d}");
    assert_eq!(t["version"], 2, "saved twice from the editor: {d}");
    assert_eq!(t["labels"]["tier"], "web", "{d}");
    let runs = d["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{d}");
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses[0], "ABORTED", "newest run was aborted: {d}");
    assert!(
        ["PASSED", "FAILED"].contains(&statuses[1]),
        "first run finished: {d}"
    );
    assert!(runs[1]["resilienceScore"].is_number(), "{d}");
    assert!(runs[1]["probeTally"]["total"].as_i64().unwrap() > 10, "{d}");
    assert_eq!(runs[0]["createdBy"], format!("user:{email}"), "{d}");
    assert_eq!(d["halt"]["halted"], false, "the halt was lifted: {d}");
    let shots_taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(
        shots_taken >= 12,
        "a screenshot of each page: {shots_taken}"
    );
}

/// Schedules from the dashboard (`web/e2e/schedules.mjs`): created from a template's page with
/// the cron helper, a fired run seen in the history and opened, then paused from the list.
/// Afterwards the API must agree: paused, and runs started by it.
#[tokio::test]
async fn dashboard_schedules_in_chromium() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _delegate = w
        .delegate("web-sched-delegate", &["env=web"], &[])
        .await
        .unwrap();
    let tid = w
        .api
        .create_template(&faultline_e2e::pause_template(
            "sched-e2e",
            &target,
            "500ms",
        ))
        .await
        .unwrap();
    let shots = browser_ready(&w, "web-e2e-schedules").await;
    run_browser_script(
        &w,
        "e2e/schedules.mjs",
        "schedules",
        &[
            ("DELEGATE_NAME", "web-sched-delegate".into()),
            ("TEMPLATE_NAME", "sched-e2e".into()),
            ("TEMPLATE_ID", tid.clone()),
        ],
        &shots,
    )
    .await;

    // What the browser did, seen through the API.
    let d = w
        .api
        .gql(
            "{ schedules(project: \"default\") { id name cron timezone delegate enabled nextFireAt template { id } \
                 fires { outcome runId } } }",
            json!({}),
        )
        .await
        .unwrap();
    let s = &d["schedules"][0];
    assert_eq!(d["schedules"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(s["name"], "every-2s", "{d}");
    assert_eq!(s["cron"], "*/2 * * * * *", "{d}");
    assert_eq!(s["timezone"], "Asia/Tokyo", "{d}");
    assert_eq!(s["delegate"], "web-sched-delegate", "{d}");
    assert_eq!(s["template"]["id"], tid.as_str(), "{d}");
    assert_eq!(s["enabled"], false, "paused from the list: {d}");
    assert!(s["nextFireAt"].is_null(), "{d}");
    let started: Vec<&str> = s["fires"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "STARTED")
        .map(|f| f["runId"].as_str().unwrap())
        .collect();
    assert!(!started.is_empty(), "{d}");
    let r = w
        .api
        .gql(
            "query($s: ID) { runs(scheduleId: $s) { id createdBy schedule { name } } }",
            json!({"s": s["id"]}),
        )
        .await
        .unwrap();
    let runs = r["runs"].as_array().unwrap();
    assert!(runs.len() >= started.len(), "{r}");
    for run in runs {
        assert_eq!(run["createdBy"], "schedule:every-2s", "{r}");
        assert_eq!(run["schedule"]["name"], "every-2s", "{r}");
    }
    assert!(std::fs::read_dir(&shots).unwrap().count() >= 6);
}

/// The run report from the run view (`web/e2e/report.mjs`): "Report" opens the hub's report of
/// a finished run in a new tab, showing its verdict and score, screenshotted into this test's
/// temporary directory; it reads the same without JavaScript and prints; "PDF" downloads it.
#[tokio::test]
async fn dashboard_opens_the_run_report_in_chromium() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _delegate = w
        .delegate("web-report-delegate", &["env=web"], &[])
        .await
        .unwrap();
    let tid = w
        .api
        .create_template(&faultline_e2e::pause_template("report-e2e", &target, "1s"))
        .await
        .unwrap();
    let id = w.api.start_run(&tid, "web-report-delegate").await.unwrap();
    let run = w
        .api
        .wait_status(&id, &["PASSED", "FAILED"], Duration::from_secs(90))
        .await
        .unwrap();
    assert_browser(&w).await;
    let shots = w.path("report-shots");
    run_browser_script(
        &w,
        "e2e/report.mjs",
        "report",
        &[
            ("RUN_ID", id.clone()),
            ("RUN_STATUS", run["status"].as_str().unwrap().to_string()),
            (
                "RUN_SCORE",
                format!("{:.1}", run["resilienceScore"].as_f64().unwrap()),
            ),
        ],
        &shots,
    )
    .await;
    let png = std::fs::read(shots.join("report.png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot of the report"
    );
    for pdf in ["downloaded.pdf", "report-printed.pdf"] {
        assert!(std::fs::read(shots.join(pdf))
            .unwrap()
            .starts_with(b"%PDF-"));
    }
}

/// The hub's side of the dashboard: files with cache headers and gzip, deep links answered with
/// the app, missing assets and API prefixes never answered with it.
#[tokio::test]
async fn the_hub_serves_the_dashboard_with_cache_headers_and_deep_links() {
    let web = web_dir();
    let index = std::fs::read_to_string(web.join("dist/index.html"))
        .expect("build the dashboard first: cd web && npm run build (scripts/test.sh does)");
    let w = World::new().await.unwrap();
    let http = &w.api.http;
    let get = |path: &str| http.get(format!("{}{path}", w.hub.url)).send();

    let root = get("/").await.unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.headers()["cache-control"], "no-cache");
    assert!(root.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(root.text().await.unwrap(), index);

    // A deep link is the app itself; the browser routes it.
    for deep in [
        "/p/default/runs/0b6c3f0e-0000-4000-8000-000000000000",
        "/login",
        "/p/x/templates/new",
    ] {
        let r = get(deep).await.unwrap();
        assert_eq!(r.status(), 200, "{deep}");
        assert_eq!(r.text().await.unwrap(), index, "{deep}");
    }

    // Every asset index.html names is served as immutable, compressed when asked.
    let assets: Vec<&str> = index
        .split('"')
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    assert!(!assets.is_empty(), "{index}");
    for a in &assets {
        let r = http
            .get(format!("{}{a}", w.hub.url))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{a}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{a}"
        );
        assert_eq!(r.headers()["content-encoding"], "gzip", "{a}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.contains("javascript") || ct.contains("css"), "{a}: {ct}");
    }

    // What is not there is a 404, not the app.
    for missing in ["/assets/nope-123.js", "/auth/nope", "/graphql/nope"] {
        let r = get(missing).await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
    let post = http
        .post(format!("{}/p/default/runs", w.hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);

    // GraphiQL: a page of the hub's own, every file it names served by the hub (from the
    // dashboard build), and a CSP that allows no other origin.
    let page = get("/graphql").await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self';") && !csp.contains("http"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    let files: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with("/graphiql/"))
        .collect();
    assert!(files.len() >= 5, "{html}");
    assert!(
        !html.contains("//unpkg") && !html.contains("https://"),
        "{html}"
    );
    for f in files {
        let r = get(f).await.unwrap();
        assert_eq!(r.status(), 200, "{f}");
        assert!(r.bytes().await.unwrap().len() > 100, "{f}");
    }

    // The signed-out probe the app makes first is not an error.
    let s: serde_json::Value = get("/auth/session").await.unwrap().json().await.unwrap();
    assert_eq!(s, json!({"session": null}));
}

/// The API the dashboard needs beyond the rest: live validation with positions, run filters,
/// template labels, a delegate's active runs.
#[tokio::test]
async fn dashboard_queries_validate_filter_and_count() {
    let w = World::new().await.unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    let _d = w.delegate("edge-web", &["env=web"], &[]).await.unwrap();

    // validateTemplate: every problem with its line and column; nothing stored.
    let bad = faultline_e2e::pause_template("v", &target, "1s")
        .replace("interval: 200ms", "interval: 1ms")
        .replace("recoverWithin: 15s", "recoverWithin: soon");
    let d = w
        .api
        .gql(
            "query($y: String!) { validateTemplate(yaml: $y) { line column field message hint } }",
            json!({"y": bad}),
        )
        .await
        .unwrap();
    let problems = d["validateTemplate"].as_array().unwrap();
    assert!(!problems.is_empty(), "{d}");
    let line_of = |needle: &str| bad.lines().position(|l| l.contains(needle)).unwrap() as i64 + 1;
    let first = &problems[0];
    assert!(
        first["line"].as_i64().is_some() && first["column"].as_i64().is_some(),
        "{d}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p["line"] == line_of("interval: 1ms")
                || p["line"] == line_of("recoverWithin: soon")),
        "a problem sits on a bad line: {d}"
    );
    let ok = faultline_e2e::pause_template("v", &target, "1s");
    let d = w
        .api
        .gql(
            "query($y: String!) { validateTemplate(yaml: $y) { message } }",
            json!({"y": ok}),
        )
        .await
        .unwrap();
    assert_eq!(d["validateTemplate"], json!([]));
    let d = w.api.gql("{ templates { id } }", json!({})).await.unwrap();
    assert_eq!(d["templates"], json!([]), "validation stores nothing");

    // Labels and description come from the template's metadata.
    let labelled = ok.replace(
        "metadata:\n  name: v\n",
        "metadata:\n  name: v\n  description: pauses the target\n  labels: {tier: web, team: sre}\n",
    );
    let tid = w.api.create_template(&labelled).await.unwrap();
    let other = w
        .api
        .create_template(&faultline_e2e::pause_template("w", &target, "1s"))
        .await
        .unwrap();
    let d = w
        .api
        .gql(
            "query($id: ID!) { template(id: $id) { labels description } }",
            json!({"id": tid}),
        )
        .await
        .unwrap();
    assert_eq!(
        d["template"]["labels"],
        json!({"team": "sre", "tier": "web"})
    );
    assert_eq!(d["template"]["description"], "pauses the target");

    // A long run is active on the delegate while it lasts.
    let long = w
        .api
        .create_template(&faultline_e2e::pause_template("long", &target, "30s"))
        .await
        .unwrap();
    let live = w.api.start_run(&long, "edge-web").await.unwrap();
    w.api
        .wait_status(&live, &["RUNNING"], Duration::from_secs(30))
        .await
        .unwrap();
    let active = |d: &serde_json::Value| d["delegates"][0]["activeRuns"].clone();
    let d = w
        .api
        .gql("{ delegates { name activeRuns } }", json!({}))
        .await
        .unwrap();
    assert_eq!(active(&d), 1, "{d}");
    let first = w.api.start_run(&tid, "edge-web").await.unwrap();
    w.api
        .gql(
            "mutation($id: ID!) { abortRun(id: $id) { id } }",
            json!({"id": live}),
        )
        .await
        .unwrap();
    w.api
        .wait_status(&live, &["ABORTED"], Duration::from_secs(30))
        .await
        .unwrap();
    w.api
        .wait_status(&first, faultline_e2e::TERMINAL, Duration::from_secs(60))
        .await
        .unwrap();
    let second = w.api.start_run(&other, "edge-web").await.unwrap();
    w.api
        .wait_status(&second, faultline_e2e::TERMINAL, Duration::from_secs(60))
        .await
        .unwrap();
    let d = w
        .api
        .gql("{ delegates { name activeRuns } }", json!({}))
        .await
        .unwrap();
    assert_eq!(active(&d), 0, "{d}");

    // Filters: by template, status, delegate name or id, and time.
    let ids = |d: &serde_json::Value| -> Vec<String> {
        d["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let q = "query($t: ID, $s: [RunStatus!], $d: String, $since: DateTime, $until: DateTime) { \
             runs(templateId: $t, status: $s, delegate: $d, since: $since, until: $until) { id } }";
    let all = w.api.gql(q, json!({})).await.unwrap();
    assert_eq!(ids(&all), vec![second.clone(), first.clone(), live.clone()]);
    let by_t = w.api.gql(q, json!({"t": tid})).await.unwrap();
    assert_eq!(ids(&by_t), vec![first.clone()]);
    let aborted = w.api.gql(q, json!({"s": ["ABORTED"]})).await.unwrap();
    assert_eq!(ids(&aborted), vec![live.clone()]);
    let d = w.api.gql("{ delegates { id } }", json!({})).await.unwrap();
    let did = d["delegates"][0]["id"].as_str().unwrap().to_owned();
    for name in ["edge-web", did.as_str()] {
        let r = w.api.gql(q, json!({"d": name})).await.unwrap();
        assert_eq!(ids(&r).len(), 3, "{name}");
    }
    let none = w.api.gql(q, json!({"d": "nobody"})).await.unwrap();
    assert_eq!(ids(&none), Vec::<String>::new());
    let future = w
        .api
        .gql(q, json!({"since": "2999-01-01T00:00:00Z"}))
        .await
        .unwrap();
    assert_eq!(ids(&future), Vec::<String>::new());
    let past = w
        .api
        .gql(q, json!({"until": "2000-01-01T00:00:00Z"}))
        .await
        .unwrap();
    assert_eq!(ids(&past), Vec::<String>::new());
    let bad_id = w.api.try_gql(q, json!({"t": "not-an-id"})).await.unwrap();
    let err = bad_id.unwrap_err();
    assert!(err.to_string().contains("templateId"), "{err}");
}
