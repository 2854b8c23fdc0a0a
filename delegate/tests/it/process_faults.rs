//! The extended process faults against real processes: `command` regex and `pid` targets,
//! `count` / `percentage` picks (at random, oldest or newest first), the `user` filter, a
//! repeated kill against a small bash supervisor, and
//! process-stop (and its older name process-pause) leaving nothing stopped after revert.
use crate::helpers::{proc_state, wait_until, TargetProc};
use faultline_delegate::{
    faults::{FaultError, Faults, RunCtx},
    journal::Journal,
};
use faultline_experiment::{
    faults::{FaultSpec, KillParams, PickOrder, ProcessTarget, Signal, StopParams},
    Dur,
};
use std::{
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

static N: AtomicUsize = AtomicUsize::new(0);

/// A marker no other process carries in its command line.
fn marker() -> String {
    format!(
        "flm{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Whether `pid` is python itself (not a launcher such as a pyenv shim) and has `marker` among
/// its arguments.
fn is_python_with(pid: i32, marker: &str) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let line = String::from_utf8_lossy(&raw);
    let argv0 = line.split('\0').next().unwrap_or_default();
    argv0
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .starts_with("python")
        && line.contains(marker)
}

/// Sleeping `python3 -c ... MARKER ARG` processes, killed on drop.
struct Pys(Vec<Child>);

impl Pys {
    fn spawn(marker: &str, args: &[&str]) -> Pys {
        let kids: Vec<Child> = args
            .iter()
            .map(|a| {
                Command::new("python3")
                    .args(["-c", "import time; time.sleep(30)", marker, a])
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("python3 runs")
            })
            .collect();
        // Until each has exec'd python (the pyenv shim execs too) and shows its arguments.
        for k in &kids {
            wait_until(Duration::from_secs(10), || {
                is_python_with(k.id() as i32, marker)
            });
        }
        Pys(kids)
    }

    fn pids(&self) -> Vec<i32> {
        self.0.iter().map(|c| c.id() as i32).collect()
    }
}

impl Drop for Pys {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ctx(run_id: &str) -> RunCtx<'_> {
    RunCtx { run_id, step: 0 }
}

fn by_command(re: String) -> ProcessTarget {
    ProcessTarget {
        command: Some(re),
        ..Default::default()
    }
}

fn stopped(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(|p| proc_state(*p) == 'T')
        .collect()
}

#[test]
fn a_command_regex_signals_only_the_matching_processes() {
    let m = marker();
    let mut pys = Pys::spawn(&m, &["web", "web", "db"]);
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let spec = FaultSpec::ProcessKill {
        target: by_command(format!(r"^\S*python3 -c .* {m} web$")),
        params: KillParams {
            signal: Signal::Term,
            ..Default::default()
        },
    };
    let a = Faults::new()
        .inject(&journal, &spec, ctx("cmd-run"))
        .unwrap();
    let pids = pys.pids();
    assert_eq!(
        a.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        pids[..2].to_vec()
    );
    assert!(a.detail.contains(&pids[0].to_string()), "{}", a.detail);
    for c in &mut pys.0[..2] {
        let status = c.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15));
    }
    assert!(matches!(proc_state(pids[2]), 'S' | 'R'), "db untouched");

    // Nothing matches any more: a clear error, nothing journalled.
    let err = Faults::new()
        .inject(&journal, &spec, ctx("cmd-run-2"))
        .unwrap_err();
    assert!(matches!(err, FaultError::NoMatch(_)), "{err}");
    assert!(err.to_string().contains(&m), "{err}");
    let left: Vec<String> = journal
        .entries()
        .unwrap()
        .into_iter()
        .map(|a| a.run_id)
        .collect();
    assert_eq!(left, vec!["cmd-run"], "the failed one is not journalled");
}

#[test]
fn a_pid_target_is_that_process_and_never_init_or_the_delegate() {
    let target = TargetProc::spawn();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let stop = |pid| FaultSpec::ProcessStop {
        target: ProcessTarget {
            pid: Some(pid),
            ..Default::default()
        },
        params: StopParams::default(),
    };
    let a = faults
        .inject(&journal, &stop(target.pid()), ctx("pid-run"))
        .unwrap();
    assert_eq!(a.detail, format!("SIGSTOP to pid {}", target.pid()));
    wait_until(Duration::from_secs(5), || proc_state(target.pid()) == 'T');
    faults.revert(&journal, &a).unwrap();
    wait_until(Duration::from_secs(5), || proc_state(target.pid()) != 'T');
    for pid in [1, std::process::id() as i32] {
        let err = faults
            .inject(&journal, &stop(pid), ctx("pid-run"))
            .unwrap_err();
        assert!(matches!(err, FaultError::Forbidden { .. }), "{err}");
    }
}

#[test]
fn count_and_percentage_pick_exactly_that_many_and_say_which() {
    let m = marker();
    let pys = Pys::spawn(&m, &["a", "a", "a", "a", "a"]);
    let all = pys.pids();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    // 2 by count; 50 % of 5 rounds up to 3; 1 % is still one.
    for (count, percentage, want) in [(Some(2), None, 2), (None, Some(50), 3), (None, Some(1), 1)] {
        let spec = FaultSpec::ProcessStop {
            target: by_command(format!("{m} a$")),
            params: StopParams {
                count,
                percentage,
                ..Default::default()
            },
        };
        let a = faults.inject(&journal, &spec, ctx("pick-run")).unwrap();
        let picked: Vec<i32> = a.processes.iter().map(|p| p.pid).collect();
        assert_eq!(picked.len(), want, "{}", a.detail);
        assert!(
            a.detail.contains(&format!("{want} of 5 picked at random")),
            "{}",
            a.detail
        );
        for p in &picked {
            assert!(all.contains(p));
            assert!(a.detail.contains(&p.to_string()), "{}", a.detail);
        }
        wait_until(Duration::from_secs(5), || stopped(&all).len() == want);
        assert_eq!(
            stopped(&all),
            picked,
            "exactly the reported pids are stopped"
        );
        faults.revert(&journal, &a).unwrap();
        wait_until(Duration::from_secs(5), || stopped(&all).is_empty());
    }
}

#[test]
fn oldest_and_newest_pick_by_start_time() {
    let m = marker();
    // One at a time, further apart than a clock tick, so their start times differ.
    let pys: Vec<Pys> = ["a", "a", "a"]
        .iter()
        .map(|a| {
            let p = Pys::spawn(&m, &[a]);
            std::thread::sleep(Duration::from_millis(60));
            p
        })
        .collect();
    let pids: Vec<i32> = pys.iter().flat_map(|p| p.pids()).collect();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    for (order, count, want, words) in [
        (
            PickOrder::Oldest,
            1,
            vec![pids[0]],
            "1 of 3 picked oldest first",
        ),
        (
            PickOrder::Newest,
            1,
            vec![pids[2]],
            "1 of 3 picked newest first",
        ),
        (
            PickOrder::Oldest,
            2,
            vec![pids[0], pids[1]],
            "2 of 3 picked oldest first",
        ),
    ] {
        let spec = FaultSpec::ProcessStop {
            target: by_command(format!("{m} a$")),
            params: StopParams {
                count: Some(count),
                pick: order,
                ..Default::default()
            },
        };
        let a = faults.inject(&journal, &spec, ctx("order-run")).unwrap();
        let picked: Vec<i32> = a.processes.iter().map(|p| p.pid).collect();
        let mut want = want;
        want.sort();
        assert_eq!(picked, want, "{order:?}: {}", a.detail);
        assert!(a.detail.contains(words), "{}", a.detail);
        wait_until(Duration::from_secs(5), || {
            let mut s = stopped(&pids);
            s.sort();
            s == want
        });
        faults.revert(&journal, &a).unwrap();
        wait_until(Duration::from_secs(5), || stopped(&pids).is_empty());
    }
}

#[test]
fn a_user_narrows_the_matches_to_its_processes() {
    let m = marker();
    let pys = Pys::spawn(&m, &["a", "a"]);
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let me = nix::unistd::geteuid().as_raw();
    let as_user = |user: &str| FaultSpec::ProcessStop {
        target: ProcessTarget {
            user: Some(user.to_string()),
            ..by_command(format!("{m} a$"))
        },
        params: StopParams::default(),
    };
    // The processes' own user, by uid and by name, finds both.
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(me))
        .unwrap()
        .unwrap()
        .name;
    for user in [me.to_string(), name.clone()] {
        let a = faults
            .inject(&journal, &as_user(&user), ctx("user-run"))
            .unwrap();
        assert_eq!(a.processes.len(), 2, "{}", a.detail);
        assert!(
            a.detail.contains(&format!("of user {user}")),
            "{}",
            a.detail
        );
        wait_until(Duration::from_secs(5), || stopped(&pys.pids()).len() == 2);
        faults.revert(&journal, &a).unwrap();
        wait_until(Duration::from_secs(5), || stopped(&pys.pids()).is_empty());
    }
    // Another user owns none of them; an unknown user is named.
    let other = (me + 4242).to_string();
    let err = faults
        .inject(&journal, &as_user(&other), ctx("user-run"))
        .unwrap_err();
    assert!(matches!(err, FaultError::NoMatch(_)), "{err}");
    assert!(
        err.to_string().contains(&format!("of user {other}")),
        "{err}"
    );
    let err = faults
        .inject(&journal, &as_user("no-such-user-flm"), ctx("user-run"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no user named no-such-user-flm on this host"
    );
    assert!(stopped(&pys.pids()).is_empty());
}

#[test]
fn process_stop_and_its_older_name_leave_nothing_stopped() {
    let target = TargetProc::spawn();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let t = ProcessTarget {
        name: Some(target.name.clone()),
        ..Default::default()
    };
    for spec in [
        FaultSpec::ProcessStop {
            target: t.clone(),
            params: StopParams::default(),
        },
        FaultSpec::ProcessPause {
            target: t.clone(),
            params: StopParams::default(),
        },
    ] {
        let a = faults.inject(&journal, &spec, ctx("stop-run")).unwrap();
        assert_eq!(a.kind, spec.kind());
        wait_until(Duration::from_secs(5), || proc_state(target.pid()) == 'T');
        let detail = faults.revert(&journal, &a).unwrap();
        assert_eq!(detail, format!("sent SIGCONT to pid {}", target.pid()));
        wait_until(Duration::from_secs(5), || proc_state(target.pid()) == 'S');
    }
}

/// `bash` restarting a python child whenever it dies, one line per start in `log`; SIGTERM
/// stops the loop and its child.
struct Supervisor {
    bash: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Supervisor {
    fn spawn(marker: &str) -> Supervisor {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("starts");
        let script = format!(
            "trap 'kill $c; exit 0' TERM; while true; do python3 -c 'import time; time.sleep(30)' {marker} & c=$!; echo $c >> {}; wait $c; sleep 0.02; done",
            log.display()
        );
        let bash = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Supervisor {
            bash,
            log,
            _dir: dir,
        }
    }

    fn starts(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.bash.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.bash.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.bash.kill();
        let _ = self.bash.wait();
    }
}

#[test]
fn a_repeated_kill_follows_the_restarts_and_stops_on_revert() {
    let m = marker();
    let sup = Supervisor::spawn(&m);
    let target = by_command(format!(r"^\S*python3 -c .* {m}$"));
    // The first child is up (its arguments visible) before the fault resolves it.
    wait_until(Duration::from_secs(10), || {
        let log = std::fs::read_to_string(&sup.log).unwrap_or_default();
        log.lines()
            .next()
            .is_some_and(|pid| pid.parse().is_ok_and(|pid| is_python_with(pid, &m)))
    });
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = Faults::new();
    let spec = FaultSpec::ProcessKill {
        target,
        params: KillParams {
            interval: Some(Dur::from_millis(200)),
            ..Default::default()
        },
    };
    let a = faults.inject(&journal, &spec, ctx("repeat-run")).unwrap();
    assert!(
        faults.get("process-kill").unwrap().revertible(&a),
        "a repeated kill is held until reverted"
    );
    assert!(a.detail.contains("then again every 200ms"), "{}", a.detail);
    // Each restarted child is found and killed again: three kills (four starts), however slow
    // a loaded machine makes python's start.
    wait_until(Duration::from_secs(20), || sup.starts() >= 4);
    let detail = faults.revert(&journal, &a).unwrap();
    assert!(
        detail.starts_with("stopped the repeated kill after"),
        "{detail}"
    );
    // Let the supervisor bring the last one back, then nothing may kill it any more.
    let alive = || {
        let log = std::fs::read_to_string(&sup.log).unwrap_or_default();
        log.lines()
            .last()
            .is_some_and(|pid| pid.parse().is_ok_and(|pid| is_python_with(pid, &m)))
    };
    std::thread::sleep(Duration::from_millis(200)); // a kill sent just before the revert lands
    wait_until(Duration::from_secs(20), alive);
    let settled = sup.starts();
    std::thread::sleep(Duration::from_millis(800));
    assert!(alive(), "the last child lives on");
    assert_eq!(sup.starts(), settled, "no kill after the revert");
    assert!(journal.entries().unwrap().is_empty());
}
