//! GitOps (issue 17), end to end with real hubs and a real Postgres: `faultline template sync`
//! of a directory with new, changed, unchanged, removed and invalid files (archiving with
//! `--prune`, never deleting), a second sync reporting everything unchanged, archived
//! templates refusing `startRun` and failing their schedules' fires with the reason; the hub's
//! own sync from a real git repository (a local bare repository over `file://`), a new commit
//! picked up by `syncNow` and by the interval, and two replicas never syncing one project at once.
use crate::cli::{api_token, client};
use faultline_e2e::{Hub, HubOpts, World};
use serde_json::{json, Value};
use std::path::Path;
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
    let o = client(w, token, &args).await;
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
    let o = client(
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

const SCHEDULES: &str = "query { schedules(project: \"default\") { name cron timezone delegate concurrency jitterMs enabled gitManaged template { name } } }";

async fn schedules(w: &World) -> Vec<Value> {
    w.api.gql(SCHEDULES, json!({})).await.unwrap()["schedules"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn schedules_declared_in_files_follow_their_templates() {
    let w = World::new().await.unwrap();
    let token = api_token(&w).await;
    let dir = w.path("exp");
    std::fs::create_dir_all(&dir).unwrap();
    let with = |cron: &str, extra: &str| {
        format!(
            "{}schedule:\n  cron: \"{cron}\"\n  timezone: Europe/Berlin\n  delegate: env=staging\n  concurrency: queue\n  jitter: 30s\n{extra}",
            tpl("nightly", "1s")
        )
    };
    std::fs::write(dir.join("n.yaml"), with("0 3 * * *", "")).unwrap();
    let (code, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        r["schedules"],
        json!([{"name": "nightly", "template": "nightly", "action": "created"}])
    );
    let s = schedules(&w).await;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        s[0],
        json!({"name": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Berlin", "delegate": "env=staging",
               "concurrency": "QUEUE", "jitterMs": 30000, "enabled": true, "gitManaged": true,
               "template": {"name": "nightly"}})
    );
    // Unchanged: nothing reported.
    let (_, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(r["schedules"], json!([]), "{r}");

    // A bad cron, an unknown field: the file is invalid, located, and changes nothing.
    std::fs::write(dir.join("n.yaml"), with("61 3 * * *", "")).unwrap();
    let (code, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(code, 1, "{r}");
    let inv = &r["invalid"][0];
    assert!(
        inv["message"]
            .as_str()
            .unwrap()
            .starts_with("schedule.cron"),
        "{r}"
    );
    assert!(
        inv["line"].as_u64().unwrap() > 10,
        "located in the file: {r}"
    );
    std::fs::write(dir.join("n.yaml"), with("0 4 * * *", "  every: day\n")).unwrap();
    let (code, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(code, 1, "{r}");
    let inv = &r["invalid"][0];
    assert!(inv["message"].as_str().unwrap().contains("every"), "{r}");
    assert!(inv["line"].is_number() && inv["column"].is_number(), "{r}");
    assert_eq!(schedules(&w).await[0]["cron"], "0 3 * * *");

    // Changed, then paused when the block is removed, then restored.
    std::fs::write(dir.join("n.yaml"), with("0 4 * * *", "  enabled: true\n")).unwrap();
    let (code, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["schedules"][0]["action"], "updated", "{r}");
    assert_eq!(schedules(&w).await[0]["cron"], "0 4 * * *");
    std::fs::write(dir.join("n.yaml"), tpl("nightly", "1s")).unwrap();
    let (_, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(r["schedules"][0]["action"], "paused", "{r}");
    assert_eq!(schedules(&w).await[0]["enabled"], false);
    std::fs::write(dir.join("n.yaml"), with("0 4 * * *", "")).unwrap();
    let (_, r) = sync_json(&w, &token, &dir, &[]).await;
    assert_eq!(r["schedules"][0]["action"], "updated", "{r}");
    assert_eq!(schedules(&w).await[0]["enabled"], true);

    // The template archived: its schedule is paused with it.
    std::fs::remove_file(dir.join("n.yaml")).unwrap();
    let (_, r) = sync_json(&w, &token, &dir, &["--prune"]).await;
    assert_eq!(names(&r, "archived"), ["nightly"], "{r}");
    assert_eq!(r["schedules"][0]["action"], "paused", "{r}");
    assert_eq!(schedules(&w).await[0]["enabled"], false);
}

const GIT_FLAGS: [&str; 4] = ["--git-protocols", "file", "--git-poll", "200ms"];

fn hub_opts() -> HubOpts {
    HubOpts {
        extra: GIT_FLAGS.iter().map(|s| s.to_string()).collect(),
        ..HubOpts::default()
    }
}

/// `git ARGS` in `dir` (no user configuration), returning stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let o = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A bare repository (`repo.git`) and a work tree pushing to it; returns (url, work tree).
fn repository(root: &Path) -> (String, std::path::PathBuf) {
    let bare = root.join("repo.git");
    let work = root.join("work");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::create_dir_all(work.join("experiments")).unwrap();
    git(&bare, &["init", "--bare", "--quiet"]);
    git(&work, &["init", "--quiet"]);
    (format!("file://{}", bare.display()), work)
}

/// Commits everything in the work tree and pushes it; returns the commit.
fn commit(work: &Path, message: &str) -> String {
    git(work, &["add", "-A"]);
    git(work, &["commit", "--quiet", "-m", message]);
    let url = format!(
        "file://{}",
        work.parent().unwrap().join("repo.git").display()
    );
    git(work, &["push", "--quiet", &url, "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"])
}

const STATUS: &str = "query { gitSync(project: \"default\", limit: 500) { repository { url branch path source nextSyncAt } \
    last { replica commit ok error startedAt finishedAt report { created { name path } updated { name } unchanged { name } archived { name } invalid { text } } } \
    lastCommit history { replica startedAt finishedAt ok commit } } }";

async fn status(api: &faultline_e2e::Api) -> Value {
    api.gql(STATUS, json!({})).await.unwrap()["gitSync"].clone()
}

/// Waits until the last sync is of `commit`.
async fn wait_commit(api: &faultline_e2e::Api, commit: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let st = status(api).await;
        if st["last"]["commit"] == commit {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "commit {commit} not synced: {st:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const BIND: &str = "mutation($u: String!, $i: String!, $p: String!) { bindGitRepository(project: \"default\", url: $u, branch: \"main\", path: $p, interval: $i) { repository { url } } }";

#[tokio::test]
async fn the_hub_syncs_a_bound_repository_on_sync_now_and_on_its_interval() {
    let w = World::with_hub(hub_opts()).await.unwrap();
    let (url, work) = repository(&w.path("git"));
    let exp = work.join("experiments");
    std::fs::write(exp.join("a.yaml"), tpl("alpha", "1s")).unwrap();
    std::fs::write(exp.join("b.yaml"), tpl("beta", "1s")).unwrap();
    std::fs::write(work.join("outside.yaml"), tpl("outside", "1s")).unwrap();
    let c1 = commit(&work, "first");

    // Refused bindings: a scheme the hub does not allow, a credential without a directory.
    let e = w
        .api
        .try_gql(
            BIND,
            json!({"u": "https://git.example/a.git", "i": "1h", "p": ""}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.message.contains("not allowed"), "{e:?}");
    let e = w
        .api
        .try_gql(
            "mutation { bindGitRepository(url: \"file:///x\", credential: \"key\") { lastCommit } }",
            json!({}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.message.contains("--git-credentials-dir"), "{e:?}");

    // Bound: the first sync is due at once.
    w.api
        .gql(BIND, json!({"u": url, "i": "1h", "p": "experiments"}))
        .await
        .unwrap();
    let st = wait_commit(&w.api, &c1, Duration::from_secs(20)).await;
    assert_eq!(st["last"]["ok"], true, "{st:#}");
    let created: Vec<&str> = st["last"]["report"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["alpha", "beta"], "only the bound path: {st:#}");
    let ts = templates(&w).await;
    let alpha = ts.iter().find(|t| t["name"] == "alpha").unwrap();
    assert_eq!(alpha["gitCommit"], c1.as_str(), "{alpha}");
    assert_eq!(alpha["gitPath"], "a.yaml", "{alpha}");
    assert_eq!(alpha["gitManaged"], true, "{alpha}");

    // A run shows the commit of its version.
    let _d = w.delegate("git-1", &[], &[]).await.unwrap();
    let run = w
        .api
        .gql(
            "mutation { startRun(template: \"alpha\", project: \"default\", delegate: \"git-1\", dryRun: true) { id gitCommit template { gitCommit } } }",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(run["startRun"]["gitCommit"], c1.as_str(), "{run}");
    assert_eq!(
        run["startRun"]["template"]["gitCommit"],
        c1.as_str(),
        "{run}"
    );

    // A new commit: alpha changed, beta removed, an invalid file. syncNow picks it up; the
    // invalid file is an error on the status, not a silent stale copy.
    std::fs::write(exp.join("a.yaml"), tpl("alpha", "2s")).unwrap();
    std::fs::remove_file(exp.join("b.yaml")).unwrap();
    std::fs::write(
        exp.join("bad.yaml"),
        tpl("bad", "1s").replace("duration: 1s", "duration: soon"),
    )
    .unwrap();
    let c2 = commit(&work, "second");
    let now = w
        .api
        .gql(
            "mutation { syncNow(project: \"default\") { last { commit } } }",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(now["syncNow"]["last"]["commit"], c2.as_str(), "{now}");
    let st = status(&w.api).await;
    assert_eq!(st["last"]["ok"], false, "{st:#}");
    let err = st["last"]["error"].as_str().unwrap();
    assert!(err.contains("bad.yaml:"), "{err}");
    assert!(err.contains("steps[0].duration"), "{err}");
    assert_eq!(
        st["last"]["report"]["updated"][0]["name"], "alpha",
        "{st:#}"
    );
    assert_eq!(
        st["last"]["report"]["archived"][0]["name"], "beta",
        "{st:#}"
    );
    let ts = templates(&w).await;
    let alpha = ts.iter().find(|t| t["name"] == "alpha").unwrap();
    assert_eq!(
        (alpha["version"].clone(), alpha["gitCommit"].clone()),
        (json!(2), json!(c2))
    );
    let versions = w
        .api
        .gql(
            "query($id: ID!) { template(id: $id) { versions { version gitCommit gitPath } } }",
            json!({"id": alpha["id"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        versions["template"]["versions"],
        json!([{"version": 2, "gitCommit": c2, "gitPath": "a.yaml"}, {"version": 1, "gitCommit": c1, "gitPath": "a.yaml"}])
    );

    // On the interval, without syncNow.
    w.api
        .gql(BIND, json!({"u": url, "i": "1s", "p": "experiments"}))
        .await
        .unwrap();
    std::fs::remove_file(exp.join("bad.yaml")).unwrap();
    std::fs::write(exp.join("c.yaml"), tpl("gamma", "1s")).unwrap();
    let c3 = commit(&work, "third");
    let st = wait_commit(&w.api, &c3, Duration::from_secs(20)).await;
    assert_eq!(st["last"]["ok"], true, "{st:#}");

    // An unreachable repository: the error is on the status, the templates stay.
    w.api
        .gql(
            BIND,
            json!({"u": format!("{url}-gone"), "i": "1h", "p": "experiments"}),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = status(&w.api).await;
        if st["last"]["ok"] == false && st["last"]["commit"].is_null() {
            let err = st["last"]["error"].as_str().unwrap();
            assert!(err.contains("git clone failed"), "{err}");
            assert_eq!(st["lastCommit"], c3.as_str(), "{st:#}");
            break;
        }
        assert!(Instant::now() < deadline, "no failed sync: {st:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(templates(&w)
        .await
        .iter()
        .any(|t| t["name"] == "gamma" && t["archivedAt"].is_null()));
}

#[tokio::test]
async fn two_replicas_never_sync_one_project_at_once() {
    let w = World::with_hub(hub_opts()).await.unwrap();
    let (url, work) = repository(&w.path("git"));
    for i in 0..20 {
        std::fs::write(
            work.join("experiments").join(format!("t{i}.yaml")),
            tpl(&format!("t{i}"), "1s"),
        )
        .unwrap();
    }
    commit(&work, "first");
    let b = Hub::start(&w.db, &w.path("hub-b"), hub_opts())
        .await
        .unwrap();
    let api_b = b.client(&w.token).unwrap();
    w.api
        .gql(BIND, json!({"u": url, "i": "1s", "p": "experiments"}))
        .await
        .unwrap();
    // Both replicas' loops, and syncNow on both at once, over and over.
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        let q = "mutation { syncNow(project: \"default\") { lastCommit } }";
        let (x, y) = tokio::join!(w.api.gql(q, json!({})), api_b.gql(q, json!({})));
        x.unwrap();
        y.unwrap();
    }
    let st = status(&w.api).await;
    let mut h: Vec<(String, String, String)> = st["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["startedAt"].as_str().unwrap().to_string(),
                a["finishedAt"].as_str().unwrap().to_string(),
                a["replica"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(h.len() >= 5, "{st:#}");
    h.sort();
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    for pair in h.windows(2) {
        assert!(
            parse(&pair[1].0) >= parse(&pair[0].1),
            "syncs overlap: {pair:?}"
        );
    }
    let replicas: std::collections::BTreeSet<&str> = h.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(replicas.len(), 2, "both replicas synced: {h:?}");
}

#[tokio::test]
async fn credentials_are_file_names_in_the_hubs_directory_and_their_errors_are_shown() {
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("chaos-token"), "s3cret-token-value\n").unwrap();
    std::fs::write(creds.path().join("deploy-key"), "not a key\n").unwrap();
    let mut opts = hub_opts();
    opts.extra[1] = "file,ssh".into();
    opts.extra.push("--git-credentials-dir".into());
    opts.extra.push(creds.path().to_str().unwrap().into());
    let w = World::with_hub(opts).await.unwrap();
    let (url, work) = repository(&w.path("git"));
    std::fs::write(work.join("experiments/a.yaml"), tpl("alpha", "1s")).unwrap();
    let c1 = commit(&work, "first");
    const BIND_CRED: &str = "mutation($u: String!, $c: String!) { bindGitRepository(url: $u, path: \"experiments\", interval: \"1h\", credential: $c, credentialKind: HTTPS_TOKEN) { repository { credential } } }";
    for bad in ["../chaos-token", "nope", ".hidden"] {
        let e = w
            .api
            .try_gql(BIND_CRED, json!({"u": url, "c": bad}))
            .await
            .unwrap()
            .unwrap_err();
        assert!(e.message.contains("credential"), "{bad}: {e:?}");
    }
    let b = w
        .api
        .gql(BIND_CRED, json!({"u": url, "c": "chaos-token"}))
        .await
        .unwrap();
    assert_eq!(
        b["bindGitRepository"]["repository"]["credential"],
        "chaos-token"
    );
    let st = wait_commit(&w.api, &c1, Duration::from_secs(20)).await;
    assert_eq!(st["last"]["ok"], true, "{st:#}");

    // The file gone: the next sync fails and says why; the templates stay.
    std::fs::remove_file(creds.path().join("chaos-token")).unwrap();
    let now = w
        .api
        .gql(
            "mutation { syncNow { last { ok error commit } } }",
            json!({}),
        )
        .await
        .unwrap();
    let last = &now["syncNow"]["last"];
    assert_eq!(last["ok"], false, "{now}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("cannot read the credential file"),
        "{now}"
    );
    assert_eq!(templates(&w).await.len(), 1);

    // An SSH repository that cannot be reached with the deploy key: the error is git's (through
    // ssh in batch mode, no prompt), on the status, within the time limit.
    let port = faultline_e2e::free_port().unwrap();
    w.api
        .gql(
            "mutation($u: String!) { bindGitRepository(url: $u, interval: \"1h\", credential: \"deploy-key\", credentialKind: SSH_KEY) { lastCommit } }",
            json!({"u": format!("ssh://git@127.0.0.1:{port}/chaos.git")}),
        )
        .await
        .unwrap();
    let now = w
        .api
        .gql("mutation { syncNow { last { ok error } } }", json!({}))
        .await
        .unwrap();
    let err = now["syncNow"]["last"]["error"].as_str().unwrap_or_default();
    assert!(err.contains("git clone failed"), "{now}");
    assert!(err.contains("127.0.0.1"), "{now}");
    let log = std::fs::read_to_string(w.hub.data_dir.join("hub-0.log")).unwrap();
    assert!(log.contains("git sync"), "the hub logs its syncs");
    assert!(
        !log.contains("s3cret-token-value"),
        "the token is never logged"
    );
}
