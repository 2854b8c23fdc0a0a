//! `faultline-bench-gitops`: how long a sync of `--templates` templates takes (docs/gitops.md).
//! `faultline template sync` of a directory (all new, then all unchanged, then 10 % changed and
//! 10 % removed with `--prune`), each timed from the command's start to its exit; then the
//! hub's own sync of the same files from a bare repository over `file://`, from the binding to
//! the sync recorded (clone + apply), and its `git_syncs` duration.
//!
//! Build first: `cargo build --workspace --bins`, then run
//! `target/debug/faultline-bench-gitops --templates 500`. Uses `FAULTLINE_TEST_PG` if set,
//! else starts a private PostgreSQL.
use anyhow::{ensure, Context, Result};
use faultline_e2e::arg;
use faultline_e2e::{bin, HubOpts, World};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

fn template(i: usize, duration: &str) -> String {
    faultline_e2e::template(
        &format!("bench-{i:04}"),
        "http://127.0.0.1:9/",
        "process-pause",
        "{pidFile: /tmp/none.pid}",
        "{}",
        duration,
    )
}

async fn sync(w: &World, token: &str, dir: &Path, prune: bool) -> Result<(Duration, Value)> {
    let mut c = tokio::process::Command::new(bin("faultline"));
    c.args([
        "template",
        "sync",
        dir.to_str().context("utf-8 path")?,
        "--json",
    ])
    .env("FAULTLINE_HUB", &w.hub.url)
    .env("FAULTLINE_HUB_CA", &w.hub.ca)
    .env("FAULTLINE_TOKEN", token)
    .env("FAULTLINE_PROJECT", "default");
    if prune {
        c.arg("--prune");
    }
    let t = Instant::now();
    let o = c.output().await?;
    let took = t.elapsed();
    ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Ok((took, serde_json::from_slice(&o.stdout)?))
}

fn count(r: &Value, k: &str) -> usize {
    r[k].as_array().map(Vec::len).unwrap_or_default()
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let o = std::process::Command::new("git")
        .args(["-c", "user.name=b", "-c", "user.email=b@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()?;
    ensure!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let n = arg("--templates", 500);
    let pg = faultline_e2e::private_pg_unless_set().await?;
    let w = World::with_hub(HubOpts {
        extra: ["--git-protocols", "file", "--git-poll", "100ms"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..HubOpts::default()
    })
    .await?;
    let token = w
        .api
        .gql(
            "mutation { createApiToken(project: \"default\", name: \"bench\", role: EDITOR) { secret } }",
            json!({}),
        )
        .await?["createApiToken"]["secret"]
        .as_str()
        .context("token")?
        .to_string();
    let dir = w.path("experiments");
    std::fs::create_dir_all(&dir)?;
    for i in 0..n {
        std::fs::write(dir.join(format!("t{i:04}.yaml")), template(i, "1s"))?;
    }
    let bytes: u64 = std::fs::read_dir(&dir)?
        .map(|e| {
            e.map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .unwrap_or(0)
        })
        .sum();
    println!(
        "faultline-bench-gitops ({n} templates, {} KiB of YAML)",
        bytes >> 10
    );

    let (t, r) = sync(&w, &token, &dir, false).await?;
    ensure!(count(&r, "created") == n, "{r}");
    println!(
        "cli sync, all new:        {:>7.0} ms",
        t.as_secs_f64() * 1e3
    );
    let (t, r) = sync(&w, &token, &dir, false).await?;
    ensure!(count(&r, "unchanged") == n, "{r}");
    println!(
        "cli sync, all unchanged:  {:>7.0} ms",
        t.as_secs_f64() * 1e3
    );
    let tenth = n / 10;
    for i in 0..tenth {
        std::fs::write(dir.join(format!("t{i:04}.yaml")), template(i, "2s"))?;
        std::fs::remove_file(dir.join(format!("t{:04}.yaml", n - 1 - i)))?;
    }
    let (t, r) = sync(&w, &token, &dir, true).await?;
    ensure!(
        count(&r, "updated") == tenth && count(&r, "archived") == tenth,
        "{r}"
    );
    println!(
        "cli sync, {tenth} changed + {tenth} archived: {:>7.0} ms",
        t.as_secs_f64() * 1e3
    );

    // The hub's own sync: a fresh project-wide source, so all are adopted and versioned.
    let work = w.path("work");
    let bare = w.path("repo.git");
    std::fs::create_dir_all(work.join("experiments"))?;
    std::fs::create_dir_all(&bare)?;
    git(&bare, &["init", "--bare", "--quiet"])?;
    git(&work, &["init", "--quiet"])?;
    for i in 0..n {
        std::fs::write(
            work.join("experiments").join(format!("t{i:04}.yaml")),
            template(i, "3s"),
        )?;
    }
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "--quiet", "-m", "bench"])?;
    let url = format!("file://{}", bare.display());
    git(&work, &["push", "--quiet", &url, "HEAD:main"])?;
    let t = Instant::now();
    w.api
        .gql(
            "mutation($u: String!) { bindGitRepository(url: $u, path: \"experiments\", interval: \"1h\") { lastCommit } }",
            json!({"u": url}),
        )
        .await?;
    let st = loop {
        let st = w
            .api
            .gql(
                "query { gitSync { last { ok startedAt finishedAt report { updated { name } created { name } } } } }",
                json!({}),
            )
            .await?;
        if !st["gitSync"]["last"].is_null() {
            break st;
        }
        ensure!(t.elapsed() < Duration::from_secs(120), "no sync");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = t.elapsed();
    let last = &st["gitSync"]["last"];
    ensure!(last["ok"] == true, "{st}");
    let applied = count(&last["report"], "updated") + count(&last["report"], "created");
    ensure!(applied == n, "{st}");
    let parse = |k: &str| chrono::DateTime::parse_from_rfc3339(last[k].as_str().unwrap_or(""));
    let inside = (parse("finishedAt")? - parse("startedAt")?).num_milliseconds();
    println!(
        "hub git sync, {n} new versions: {:>7.0} ms from bind to recorded ({inside} ms lease to record: clone + apply)",
        took.as_secs_f64() * 1e3
    );
    drop(w);
    if let Some(mut pg) = pg {
        pg.0.stop(Duration::from_secs(30)).await?;
    }
    Ok(())
}
