//! The command probe running real programs.
use faultline_delegate::probes::{Check, Probes};
use faultline_spec::probes::Probe;
use std::time::{Duration, Instant};

async fn check(command: serde_json::Value, timeout: &str) -> Check {
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "cmd", "command": command, "timeout": timeout,
    }))
    .unwrap();
    Probes::new().unwrap().check(&probe).await
}

#[tokio::test]
async fn exit_codes() {
    let c = check(serde_json::json!({"run": ["true"]}), "5s").await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with("exit 0 in "), "{}", c.detail);

    let c = check(serde_json::json!({"run": ["false"]}), "5s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, "exit 1, expected 0");

    let c = check(
        serde_json::json!({"run": ["false"], "expect": {"exitCode": 1}}),
        "5s",
    )
    .await;
    assert!(c.ok, "{c:?}");
    assert!(c.detail.starts_with("exit 1 in "), "{}", c.detail);

    let c = check(
        serde_json::json!({"run": ["sh", "-c", "exit 3"], "expect": {"exitCode": 2}}),
        "5s",
    )
    .await;
    assert!(!c.ok);
    assert_eq!(c.detail, "exit 3, expected 2");
}

#[tokio::test]
async fn stdout_contains_regex_and_equals() {
    let run = serde_json::json!(["printf", "status: ready\nversion 1.4\n"]);
    let ok = |expect: serde_json::Value| serde_json::json!({"run": run, "expect": expect});
    for expect in [
        serde_json::json!({"stdoutContains": "ready"}),
        serde_json::json!({"stdoutRegex": r"version \d+\.\d+"}),
        serde_json::json!({"stdoutEquals": "status: ready\nversion 1.4"}),
    ] {
        let c = check(ok(expect.clone()), "5s").await;
        assert!(c.ok, "{expect}: {c:?}");
    }
    let c = check(ok(serde_json::json!({"stdoutContains": "down"})), "5s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, r#"exit 0, stdout does not contain "down""#);
    let c = check(ok(serde_json::json!({"stdoutRegex": r"^version"})), "5s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, "exit 0, stdout does not match /^version/");
    let c = check(
        ok(serde_json::json!({"stdoutEquals": "status: ready"})),
        "5s",
    )
    .await;
    assert!(!c.ok);
    assert_eq!(
        c.detail,
        r#"exit 0, stdout is "status: ready\nversion 1.4", expected "status: ready""#
    );
}

#[tokio::test]
async fn env_workdir_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let c = check(
        serde_json::json!({
            "run": ["sh", "-c", "echo \"$PROBE_GREETING from $(pwd)\""],
            "env": {"PROBE_GREETING": "hello"},
            "workdir": dir.path(),
            "expect": {"stdoutEquals": format!("hello from {}", dir.path().display())},
        }),
        "5s",
    )
    .await;
    assert!(c.ok, "{c:?}");

    // A failure shows what the program said on stderr.
    let c = check(serde_json::json!({"run": ["ls", "/no/such/dir"]}), "5s").await;
    assert!(!c.ok);
    assert!(
        c.detail.starts_with("exit 2, expected 0; stderr: "),
        "{}",
        c.detail
    );
    assert!(c.detail.contains("/no/such/dir"), "{}", c.detail);

    let c = check(
        serde_json::json!({"run": ["true"], "workdir": "/no/such/dir"}),
        "5s",
    )
    .await;
    assert!(!c.ok);
    assert_eq!(c.detail, r#"workdir "/no/such/dir" is not a directory"#);
}

#[tokio::test]
async fn shell_mode() {
    let c = check(
        serde_json::json!({
            "shell": "echo one | tr a-z A-Z; test \"$MODE\" = shell",
            "env": {"MODE": "shell"},
            "expect": {"stdoutEquals": "ONE"},
        }),
        "5s",
    )
    .await;
    assert!(c.ok, "{c:?}");
    // A child left in the background holds stdout open; the check ends with the shell.
    let secs = format!("8.{}", std::process::id());
    let c = check(
        serde_json::json!({
            "shell": format!("sleep {secs} & echo started"),
            "expect": {"stdoutEquals": "started"},
        }),
        "2s",
    )
    .await;
    assert!(c.ok, "{c:?}");
    assert!(c.latency_ms < 1000.0, "{c:?}");
    for pid in pids("sleep", &secs) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    // No shell without `shell`: the pipe is just an argument.
    let c = check(
        serde_json::json!({"run": ["echo", "one", "|", "tr"], "expect": {"stdoutEquals": "one | tr"}}),
        "5s",
    )
    .await;
    assert!(c.ok, "{c:?}");
}

#[tokio::test]
async fn a_timeout_kills_the_program_and_its_children() {
    // A sleep time no other process on the machine uses, to find ours in /proc.
    let secs = format!("9.{}", std::process::id());
    let started = Instant::now();
    // The shell starts a child; both must die when the check times out.
    let c = check(
        serde_json::json!({"shell": format!("sleep {secs}; echo never")}),
        "300ms",
    )
    .await;
    let took = started.elapsed();
    assert!(!c.ok);
    assert_eq!(c.detail, "timed out after 300ms");
    assert!(c.latency_ms >= 290.0, "{c:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    let c = check(serde_json::json!({"run": ["sleep", secs]}), "200ms").await;
    assert_eq!(c.detail, "timed out after 200ms");
    crate::helpers::wait_until(Duration::from_secs(5), || pids("sleep", &secs).is_empty());
}

/// Live (not zombie) processes that run exactly `program arg`.
fn pids(program: &str, arg: &str) -> Vec<i32> {
    let want = format!("{program}\0{arg}\0").into_bytes();
    let live = |dir: &std::path::Path| {
        std::fs::read(dir.join("cmdline")).is_ok_and(|c| c == want)
            && std::fs::read_to_string(dir.join("stat")).is_ok_and(|s| {
                s.rsplit_once(") ")
                    .is_some_and(|(_, r)| !r.starts_with('Z'))
            })
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| live(&e.path()))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_missing_program_is_named() {
    let c = check(
        serde_json::json!({"run": ["no-such-program-xyz", "--help"]}),
        "5s",
    )
    .await;
    assert!(!c.ok);
    assert_eq!(c.detail, r#"program "no-such-program-xyz" not found"#);
}
