//! The dashboard in real headless Chromium (Debian `chromium`, driven by `playwright-core` in
//! `web/e2e/dashboard.mjs`) against a real hub, Postgres, delegate and target process started
//! here. The browser signs in, writes a template (fixing a validation error the hub reports at
//! its line), runs it and watches probe checks arrive, aborts a second run, and visits every
//! page; screenshots go to `target/web-e2e/`. Afterwards the API must agree with what the
//! browser saw.
use faultline_e2e::{bin, Target, World};
use serde_json::json;
use std::{path::PathBuf, process::Stdio, time::Duration};
use tokio::process::Command;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

#[tokio::test]
async fn dashboard_end_to_end_in_chromium() {
    let web = web_dir();
    assert!(
        web.join("dist/index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
        "build the dashboard first: cd web && npm ci && npm run build (scripts/test.sh does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").is_file(),
        "install Debian's chromium (.ci/run does)"
    );
    let w = World::new().await.unwrap();
    let (email, password) = w.hub.admin_login.clone().unwrap();
    let target = Target::start(w.dir.path()).await.unwrap();
    target.wait_up(Duration::from_secs(10)).await.unwrap();
    let _delegate = w
        .delegate("web-e2e-delegate", &["env=web"], &[])
        .await
        .unwrap();
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
    let shots = bin("faultline")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("web-e2e");
    let _ = std::fs::remove_dir_all(&shots);

    let mut cmd = Command::new("node");
    cmd.current_dir(&web)
        .arg("e2e/dashboard.mjs")
        .env("HUB_URL", &w.hub.url)
        .env("ADMIN_EMAIL", &email)
        .env("ADMIN_PASSWORD", &password)
        .env("TARGET_URL", target.url())
        .env("TARGET_PIDFILE", &target.pid_file)
        .env("DELEGATE_NAME", "web-e2e-delegate")
        .env("SHOTS", &shots)
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
        out.status.success() && stdout.contains("dashboard e2e: PASSED"),
        "the browser test failed (screenshots in {}):\n{stderr}",
        shots.display()
    );

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
