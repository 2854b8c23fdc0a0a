//! The command probe running real programs.
use faultline_delegate::probes::Check;
use faultline_experiment::probes::Probe;
use std::time::{Duration, Instant};

async fn check(command: serde_json::Value, timeout: &str) -> Check {
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "cmd", "command": command, "timeout": timeout,
    }))
    .unwrap();
    crate::helpers::probes(&["command=*"]).check(&probe).await
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
async fn stdout_compares_as_a_value() {
    let printing = |out: &str, value: serde_json::Value| serde_json::json!({"run": ["printf", out], "expect": {"value": value}});
    for (out, value) in [
        ("42\n", serde_json::json!({"between": [0, 250]})),
        ("  249.5 \n", serde_json::json!({"op": "<", "value": 250})),
        ("250", serde_json::json!({"op": "<=", "value": 250})),
        ("7", serde_json::json!({"value": 7})),
        ("7", serde_json::json!({"op": "!=", "value": 8})),
        ("ready\n", serde_json::json!({"value": "ready"})),
        ("busy", serde_json::json!({"op": "!=", "value": "ready"})),
    ] {
        let c = check(printing(out, value.clone()), "5s").await;
        assert!(c.ok, "{out:?} {value}: {c:?}");
        assert!(c.detail.starts_with("exit 0 in "), "{}", c.detail);
    }
    for (out, value, detail) in [
        (
            "312\n",
            serde_json::json!({"between": [0, 250]}),
            "exit 0, stdout 312 is not between 0 and 250",
        ),
        (
            "312",
            serde_json::json!({"op": "<", "value": 250}),
            "exit 0, stdout 312 is not < 250",
        ),
        (
            "busy\n",
            serde_json::json!({"value": "ready"}),
            r#"exit 0, stdout "busy" is not == "ready""#,
        ),
        (
            "",
            serde_json::json!({"op": ">", "value": 0}),
            r#"exit 0, stdout "" is not a number"#,
        ),
    ] {
        let c = check(printing(out, value.clone()), "5s").await;
        assert!(!c.ok, "{out:?} {value}");
        assert_eq!(c.detail, detail);
    }
    // Long output is cut to 80 bytes in the detail, as stdoutEquals does.
    let long = "x".repeat(500);
    let c = check(
        printing(&long, serde_json::json!({"between": [0, 1]})),
        "5s",
    )
    .await;
    assert_eq!(
        c.detail,
        format!("exit 0, stdout \"{}…\" is not a number", "x".repeat(80))
    );
    // The exit code is still checked.
    let c = check(
        serde_json::json!({"run": ["sh", "-c", "echo 5; exit 2"], "expect": {"value": {"value": 5}}}),
        "5s",
    )
    .await;
    assert!(!c.ok);
    assert_eq!(c.detail, "exit 2, expected 0");
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

    // Output stays on the host: a failure names the expectation, not what the program said.
    let c = check(serde_json::json!({"run": ["ls", "/no/such/dir"]}), "5s").await;
    assert!(!c.ok);
    assert_eq!(c.detail, "exit 2, expected 0");
    assert_eq!(c.output, None);
    // Unless the probe asks to keep it: then both streams, capped, in the check's event.
    let c = check(
        serde_json::json!({"run": ["ls", "/no/such/dir"], "captureOutput": true}),
        "5s",
    )
    .await;
    assert_eq!(c.detail, "exit 2, expected 0");
    let out = c.output.expect("captured");
    assert!(
        out.starts_with("stderr:\n") && out.contains("/no/such/dir"),
        "{out}"
    );
    let c = check(
        serde_json::json!({"run": ["head", "-c", "100000", "/dev/zero"], "captureOutput": true}),
        "5s",
    )
    .await;
    assert!(c.ok, "{c:?}");
    let out = c.output.expect("captured");
    assert!(out.len() < 4200, "capped at 4 KiB: {}", out.len());

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
    assert_eq!(
        c.detail,
        r#"program "no-such-program-xyz" not found on /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"#
    );
}

async fn check_with(entries: &[&str], command: serde_json::Value) -> Check {
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "cmd", "command": command, "timeout": "5s",
    }))
    .unwrap();
    crate::helpers::probes(entries).check(&probe).await
}

/// No `command=` entry: nothing runs, and the refusal names the entry the operator would add.
#[tokio::test]
async fn no_program_runs_unless_the_allow_list_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let touch = serde_json::json!({"run": ["touch", marker]});
    for entries in [
        &[][..],
        &["command=/bin/true"][..],
        &["command=/tmp/touch"][..],
    ] {
        let c = check_with(entries, touch.clone()).await;
        assert!(!c.ok);
        assert_eq!(
            c.detail,
            "program touch may not run on this host: refused by this delegate's allow-list (needs --allow command=/usr/bin/touch)",
            "{entries:?}"
        );
        assert!(!marker.exists(), "nothing ran with {entries:?}");
    }
    let shell = serde_json::json!({"shell": format!("touch {}", marker.display())});
    let c = check_with(&["command=/usr/bin/touch"], shell).await;
    assert!(
        c.detail.contains("program /bin/sh may not run"),
        "{}",
        c.detail
    );
    assert!(!marker.exists());
    // A relative path is not looked up anywhere.
    let c = check_with(&["command=*"], serde_json::json!({"run": ["./touch", "x"]})).await;
    assert!(c.detail.contains("is a relative path"), "{}", c.detail);

    // Allowed by its path, by a bare name, or by the file a symlink leads to.
    for entries in [
        &["command=/usr/bin/touch"][..],
        &["command=touch"][..],
        &["command=*"][..],
    ] {
        let c = check_with(entries, touch.clone()).await;
        assert!(c.ok, "{entries:?}: {c:?}");
        assert!(marker.exists());
        std::fs::remove_file(&marker).unwrap();
    }
    let c = check_with(
        &["command=/bin/sh"],
        serde_json::json!({"run": ["sh", "-c", "true"]}),
    )
    .await;
    assert!(
        c.ok,
        "/bin/sh allows the sh found on the search path: {c:?}"
    );
}

/// A program gets an explicit environment: never the delegate's own variables, never one that
/// changes which code runs.
#[tokio::test]
async fn programs_never_inherit_the_delegates_environment() {
    let var = crate::helpers::unique_env_name("SECRET");
    std::env::set_var(&var, "do-not-leak");
    let c = check_with(
        &["command=/bin/sh"],
        serde_json::json!({
            "shell": format!("echo \"${{{var}-unset}} $PATH\""),
            "expect": {"stdoutEquals": "unset /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        }),
    )
    .await;
    assert!(c.ok, "{c:?}");
    let c = check_with(
        &["command=*"],
        serde_json::json!({"run": ["true"], "env": {"LD_PRELOAD": "/tmp/evil.so"}}),
    )
    .await;
    assert!(!c.ok);
    assert!(
        c.detail
            .contains("LD_PRELOAD changes which code a program runs"),
        "{}",
        c.detail
    );
}

/// `--run-as`: programs run as that user, with its group and no supplementary groups.
#[tokio::test]
async fn programs_run_as_the_configured_user() {
    use faultline_delegate::{
        probes::Probes,
        sandbox::{RunAs, Sandbox},
    };
    let nobody = RunAs::lookup("nobody").unwrap();
    let policy =
        faultline_experiment::policy::Policy::from_strings(&["command=/usr/bin/id"]).unwrap();
    let probes = Probes::new(Sandbox::new(policy, Some(nobody.clone()))).unwrap();
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "who", "command": {"run": ["/usr/bin/id", "-u"], "expect": {"stdoutEquals": nobody.uid.to_string()}},
    }))
    .unwrap();
    let c = probes.check(&probe).await;
    assert!(c.ok, "{c:?}");
    let probe: Probe = serde_json::from_value(serde_json::json!({
        "name": "groups", "command": {"run": ["/usr/bin/id", "-G"], "expect": {"stdoutEquals": nobody.gid.to_string()}},
    }))
    .unwrap();
    let c = probes.check(&probe).await;
    assert!(c.ok, "{c:?}");
}
