//! cpu-stress, memory-stress and io-stress with real worker processes (the delegate binary's
//! hidden `stress-worker` mode): the load they make, as /proc measures it, and that revert (or
//! journal recovery after a simulated crash) leaves no worker and no file behind.
use crate::helpers::{eventually, wait_until, HttpServer, TargetProc};
use faultline_delegate::{
    executor::{Executor, RunRequest},
    faults::{stress, Applied, FaultError, Faults, RunCtx},
    journal::Journal,
    outbox::Outbox,
};
use faultline_experiment::{
    events::{self, FaultEvent},
    faults::{ByteSize, CpuParams, FaultSpec, IoParams, MemoryParams, PathTarget},
};
use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

/// The registry, with workers started from the real delegate binary.
pub fn faults() -> Faults {
    Faults::new().with_worker_exe(env!("CARGO_BIN_EXE_faultline-delegate"))
}

pub fn ctx(run_id: &str) -> RunCtx<'_> {
    RunCtx { run_id, step: 1 }
}

/// Live workers of an applied fault.
pub fn workers_of(a: &Applied) -> Vec<i32> {
    stress::tagged(&stress::tag(&a.run_id, a.step))
        .iter()
        .map(|p| p.pid)
        .collect()
}

/// Gone, or a zombie this test process has not reaped (then reaped here).
pub fn gone(pid: i32) -> bool {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    if st.is_empty() {
        return true;
    }
    let zombie = st[st.rfind(')').unwrap() + 2..].starts_with('Z');
    if zombie {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
    zombie
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn status_field(pid: i32, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

#[test]
fn cpu_stress_keeps_each_worker_near_the_asked_load_until_reverted() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = faults();
    let spec = FaultSpec::CpuStress {
        params: CpuParams {
            workers: Some(2),
            load: Some(50),
            cores: vec![0, 1],
        },
    };
    let a = faults.inject(&journal, &spec, ctx("cpu-run")).unwrap();
    assert_eq!(
        a.detail,
        "2 CPU stress workers busy 50% of each 100ms, pinned to CPU 0, 1"
    );
    let mut pids = Vec::new();
    wait_until(Duration::from_secs(5), || {
        pids = workers_of(&a);
        pids.len() == 2
    });
    // Each worker pins itself as it starts, round robin over the cores.
    wait_until(Duration::from_secs(5), || {
        let mut pinned: Vec<String> = pids
            .iter()
            .map(|p| status_field(*p, "Cpus_allowed_list:"))
            .collect();
        pinned.sort();
        pinned == ["0", "1"]
    });
    // Up to ten windows of ~1s: a worker never uses more than its share, and in a window
    // without other load on the machine it gets about all of it (other builds and tests on a
    // 2-core CI host may starve several windows in a row).
    let hz = 100.0; // USER_HZ is 100 on Linux
    let mut best = vec![0.0f64; pids.len()];
    for _ in 0..10 {
        let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(1000));
        let secs = t0.elapsed().as_secs_f64();
        for (i, p) in pids.iter().enumerate() {
            let share = (cpu_ticks(*p) - before[i]) as f64 / hz / secs;
            assert!(
                share <= 0.75,
                "worker {p} used {share:.2} of a core, asked 0.5"
            );
            best[i] = f64::max(best[i], share);
        }
        if best.iter().all(|s| *s >= 0.25) {
            break;
        }
    }
    for s in &best {
        assert!(
            (0.25..=0.75).contains(s),
            "a worker used {s:.2} of a core, asked 0.5"
        );
    }
    let detail = faults.revert(&journal, &a).unwrap();
    assert_eq!(detail, "stopped 2 CPU stress workers");
    for p in &pids {
        assert!(gone(*p), "worker {p} still running");
    }
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn cpu_stress_refuses_a_cpu_it_may_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let spec = FaultSpec::CpuStress {
        params: CpuParams {
            workers: None,
            load: None,
            cores: vec![1000],
        },
    };
    let err = faults()
        .inject(&journal, &spec, ctx("cpu-bad"))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("params.cores: CPU 1000 is not available"),
        "{err}"
    );
}

#[test]
fn memory_stress_holds_the_size_in_a_worker_and_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let faults = faults();
    let size = ByteSize::mib(64);
    let spec = FaultSpec::MemoryStress {
        params: MemoryParams {
            size: Some(size),
            ramp: Some(faultline_experiment::Dur::from_millis(300)),
            ..Default::default()
        },
    };
    let a = faults.inject(&journal, &spec, ctx("mem-run")).unwrap();
    assert!(
        a.detail
            .starts_with("a worker process allocating 64.0 MiB over 300ms"),
        "{}",
        a.detail
    );
    let mut pid = 0;
    wait_until(Duration::from_secs(10), || {
        pid = workers_of(&a).first().copied().unwrap_or(0);
        pid > 0 && {
            let rss_kb: u64 = status_field(pid, "VmRSS:")
                .trim_end_matches(" kB")
                .parse()
                .unwrap_or(0);
            rss_kb * 1024 >= size.0
        }
    });
    assert_eq!(status_field(pid, "oom_score_adj:"), "", "not in status");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim(),
        "1000",
        "the OOM killer takes the worker first"
    );
    faults.revert(&journal, &a).unwrap();
    assert!(gone(pid));
}

#[test]
fn memory_stress_refuses_to_eat_the_safety_margin_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let (_, avail) = stress::memory().unwrap();
    let spec = |force| FaultSpec::MemoryStress {
        params: MemoryParams {
            size: Some(ByteSize(avail)),
            force,
            ..Default::default()
        },
    };
    let err = faults()
        .inject(&journal, &spec(false), ctx("mem-bad"))
        .unwrap_err();
    assert!(matches!(err, FaultError::Stress(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("params.size: ") && msg.contains("set force: true"),
        "{msg}"
    );
    // 100 % of what is available, also refused: percent is of MemAvailable.
    let err = faults()
        .inject(
            &journal,
            &FaultSpec::MemoryStress {
                params: MemoryParams {
                    percent: Some(100),
                    ..Default::default()
                },
            },
            ctx("mem-bad"),
        )
        .unwrap_err();
    assert!(err.to_string().starts_with("params.percent: "), "{err}");
    assert!(journal.entries().unwrap().is_empty());
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn io_stress_writes_its_own_files_and_deletes_them_on_revert() {
    let state = tempfile::tempdir().unwrap();
    let journal = Journal::open(state.path()).unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("keep.txt"), "mine").unwrap();
    let before = names_in(work.path());
    let faults = faults();
    let spec = FaultSpec::IoStress {
        target: PathTarget {
            path: work.path().display().to_string(),
        },
        params: IoParams {
            workers: Some(2),
            block_size: Some(ByteSize(64 * 1024)),
            file_size: Some(ByteSize::mib(2)),
            fsync: true,
        },
    };
    let a = faults.inject(&journal, &spec, ctx("io-run")).unwrap();
    assert!(
        a.detail
            .starts_with("2 writers of 64.0 KiB blocks with fdatasync under "),
        "{}",
        a.detail
    );
    let files = [
        work.path().join(".faultline-io-io-run-1-0"),
        work.path().join(".faultline-io-io-run-1-1"),
    ];
    wait_until(Duration::from_secs(10), || {
        files
            .iter()
            .all(|f| std::fs::metadata(f).is_ok_and(|m| m.len() >= 256 * 1024))
    });
    let pids = workers_of(&a);
    assert_eq!(pids.len(), 2);
    // The files stay within fileSize: the writers start over.
    std::thread::sleep(Duration::from_millis(300));
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 2 << 20);
    }
    let detail = faults.revert(&journal, &a).unwrap();
    assert_eq!(detail, "stopped 2 writers and deleted 2 of their files");
    assert!(pids.iter().all(|p| gone(*p)));
    assert_eq!(names_in(work.path()), before, "the directory is as before");
}

#[test]
fn journal_recovery_after_a_crash_kills_the_workers_and_deletes_the_files() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (mut pids, file);
    {
        let journal = Journal::open(state.path()).unwrap();
        let faults = faults();
        let cpu = faults
            .inject(
                &journal,
                &FaultSpec::CpuStress {
                    params: CpuParams {
                        workers: Some(1),
                        load: Some(5),
                        cores: vec![],
                    },
                },
                RunCtx {
                    run_id: "crash-run",
                    step: 0,
                },
            )
            .unwrap();
        let io = faults
            .inject(
                &journal,
                &FaultSpec::IoStress {
                    target: PathTarget {
                        path: work.path().display().to_string(),
                    },
                    params: IoParams {
                        workers: Some(1),
                        block_size: Some(ByteSize(4096)),
                        file_size: Some(ByteSize(1 << 20)),
                        fsync: false,
                    },
                },
                RunCtx {
                    run_id: "crash-run",
                    step: 1,
                },
            )
            .unwrap();
        file = work.path().join(".faultline-io-crash-run-1-0");
        wait_until(Duration::from_secs(10), || {
            workers_of(&cpu).len() == 1 && workers_of(&io).len() == 1 && file.exists()
        });
        pids = workers_of(&cpu);
        pids.extend(workers_of(&io));
        // The delegate "crashes": no revert; the journal and the workers are left.
    }
    assert!(pids.iter().all(|p| !gone(*p)), "workers outlive the crash");
    let journal = Journal::open(state.path()).unwrap();
    assert_eq!(journal.recover(&faults()).unwrap(), 2);
    for p in &pids {
        assert!(gone(*p), "worker {p} survived recovery");
    }
    assert!(!file.exists());
    assert!(journal.entries().unwrap().is_empty());
    assert_eq!(names_in(work.path()), Vec::<String>::new());
}

/// What a test run needs; the messages to the hub are not looked at here.
type Exec = (
    Executor,
    Arc<Outbox>,
    Arc<Journal>,
    tokio::sync::mpsc::UnboundedReceiver<faultline_proto::v1::delegate_message::Msg>,
);

/// An executor whose faults start their workers from the delegate binary.
fn executor(dir: &Path) -> Exec {
    let outbox = Arc::new(Outbox::open(&dir.join("runs")).unwrap());
    let journal = Arc::new(Journal::open(&dir.join("journal")).unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let exec = Executor::new(
        outbox.clone(),
        journal.clone(),
        Arc::new(faults()),
        Arc::new(crate::helpers::probes(&[])),
        tx,
    );
    (exec, outbox, journal, rx)
}

fn run_request(run_id: &str, url: &str, steps: &str) -> RunRequest {
    let yaml = format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: stress-run}}\nhypothesis:\n  probes:\n    - {{name: web, http: {{url: \"{url}\"}}, interval: 50ms}}\n  recoverWithin: 2s\nsteps:\n{steps}"
    );
    RunRequest {
        project: String::new(),
        run_id: run_id.into(),
        template_name: "stress-run".into(),
        template_version: 1,
        spec: faultline_experiment::parse_template(&yaml).unwrap(),
        dry_run: false,
    }
}

#[tokio::test]
async fn a_run_holds_the_stress_and_a_repeated_kill_for_their_duration_then_reverts_both() {
    let server = HttpServer::start(200).await;
    let mut target = TargetProc::spawn();
    let dir = tempfile::tempdir().unwrap();
    let (exec, outbox, journal, _to_hub) = executor(dir.path());
    let steps = format!(
        "  - parallel:\n      - {{fault: cpu-stress, params: {{workers: 1, load: 20}}, duration: 500ms}}\n      - {{fault: process-kill, target: {{name: {}}}, params: {{interval: 100ms}}, duration: 500ms}}\n",
        target.name
    );
    let run = "stress-e2e";
    exec.start(run_request(run, &server.url, &steps)).unwrap();
    let tag = stress::tag(run, 0);
    eventually(Duration::from_secs(5), || stress::tagged(&tag).len() == 1).await;
    let worker = stress::tagged(&tag)[0].pid;
    exec.wait(run).await;
    let events = outbox.history(run).unwrap();
    let reverted: Vec<FaultEvent> = crate::executor::payloads(&events, events::FAULT_REVERTED);
    let mut kinds: Vec<&str> = reverted.iter().map(|e| e.fault.as_str()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["cpu-stress", "process-kill"],
        "both are held, then reverted"
    );
    let kill = reverted.iter().find(|e| e.fault == "process-kill").unwrap();
    assert!(
        kill.detail.starts_with("stopped the repeated kill after"),
        "{}",
        kill.detail
    );
    assert!(gone(worker), "the cpu worker is gone after the run");
    assert_eq!(target.wait_for_death(Duration::from_secs(2)), Some(9));
    assert!(journal.entries().unwrap().is_empty());
}

#[tokio::test]
async fn an_abort_stops_the_workers_at_once() {
    let server = HttpServer::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let (exec, _outbox, journal, _to_hub) = executor(dir.path());
    let run = "stress-abort";
    exec.start(run_request(
        run,
        &server.url,
        "  - {fault: cpu-stress, params: {workers: 2, load: 10}, duration: 30s}\n",
    ))
    .unwrap();
    let tag = stress::tag(run, 0);
    eventually(Duration::from_secs(5), || stress::tagged(&tag).len() == 2).await;
    let workers: Vec<i32> = stress::tagged(&tag).iter().map(|p| p.pid).collect();
    let t0 = Instant::now();
    exec.abort(run, "enough").await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(workers.iter().all(|p| gone(*p)));
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn a_worker_dies_with_its_parent() {
    // bash stands in for the delegate: it starts a worker and is then SIGKILLed.
    let mut bash = std::process::Command::new("bash")
        .args([
            "-c",
            "\"$0\" stress-worker --tag fl-orphan-test --parent $$ cpu --load 1 & echo $!; wait",
            env!("CARGO_BIN_EXE_faultline-delegate"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(bash.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let worker: i32 = line.trim().parse().unwrap();
    wait_until(Duration::from_secs(5), || {
        stress::tagged("fl-orphan-test")
            .iter()
            .any(|p| p.pid == worker)
    });
    bash.kill().unwrap();
    bash.wait().unwrap();
    wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{worker}/stat"))
            .map_or(true, |s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
    });
}

#[test]
fn planning_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faults = faults();
    let path = dir.path().display().to_string();
    let specs = [
        FaultSpec::CpuStress {
            params: CpuParams::default(),
        },
        FaultSpec::MemoryStress {
            params: MemoryParams {
                size: Some(ByteSize::mib(8)),
                ..Default::default()
            },
        },
        FaultSpec::IoStress {
            target: PathTarget { path: path.clone() },
            params: IoParams::default(),
        },
        FaultSpec::DiskFill {
            target: PathTarget { path },
            params: faultline_experiment::faults::DiskFillParams {
                size: Some(ByteSize::mib(1)),
                ..Default::default()
            },
        },
    ];
    for spec in &specs {
        // What a dry run calls.
        let plan = faults.plan(spec, ctx("dry-run")).unwrap();
        assert!(!plan.detail.is_empty());
    }
    assert!(stress::tagged(&stress::tag("dry-run", 1)).is_empty());
    assert!(names_in(dir.path()).is_empty());
}
