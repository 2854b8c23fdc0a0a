//! The worker side of the resource faults: `faultline-delegate stress-worker --tag TAG
//! --parent PID MODE ...`, handled by `main` before anything else. One process per worker:
//!
//! - `cpu --load PCT [--core N]`: uses `PCT` % of a CPU's time in every 100 ms period,
//!   pinned to CPU `N`;
//! - `memory --bytes N [--ramp-ms MS]`: allocates and touches `N` bytes (evenly over `MS`),
//!   then holds them;
//! - `io --file PATH --block-size N --file-size N [--fsync]`: writes blocks to `PATH`, starting
//!   over at `file-size` (or when the disk is full).
//!
//! Every worker asks for SIGKILL when its parent dies (PR_SET_PDEATHSIG), exits at once if the
//! parent is already gone, and checks about every 100 ms that it has not been re-parented, so it
//! never outlives the delegate. It runs until killed (revert).
use super::stress::WORKER_ARG;
use nix::{sys::signal::Signal, unistd::getppid};
use std::{
    collections::HashMap,
    io::{Seek, SeekFrom, Write},
    process::ExitCode,
    time::{Duration, Instant},
};

/// Runs the worker and returns its exit code when the process was started as one; `None` for
/// a normal delegate start.
pub fn main_if_worker() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some(WORKER_ARG) {
        return None;
    }
    Some(match run(&args[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stress worker: {e}");
            ExitCode::FAILURE
        }
    })
}

/// `--key value` and `--flag` options after the mode.
struct Opts(HashMap<String, String>);

impl Opts {
    fn num(&self, k: &str) -> Result<u64, String> {
        self.0
            .get(k)
            .ok_or_else(|| format!("missing --{k}"))?
            .parse()
            .map_err(|_| format!("--{k} is not a number"))
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut opts = HashMap::new();
    let mut mode = None;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        match a.strip_prefix("--") {
            Some(k) => {
                let v = match it.peek() {
                    Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                opts.insert(k.to_string(), v);
            }
            None => mode = Some(a.clone()),
        }
    }
    let opts = Opts(opts);
    let parent = opts.num("parent")? as i32;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("prctl: {e}"))?;
    // The parent may have died before the line above.
    if getppid().as_raw() != parent {
        return Ok(());
    }
    let alive = move || getppid().as_raw() == parent;
    match mode.as_deref() {
        Some("cpu") => cpu(&opts, alive),
        Some("memory") => memory(&opts, alive),
        Some("io") => io(&opts, alive),
        other => Err(format!("unknown mode {other:?}")),
    }
}

const PERIOD: Duration = Duration::from_millis(100);

fn cpu(opts: &Opts, alive: impl Fn() -> bool) -> Result<(), String> {
    let load = opts.num("load")?.clamp(1, 100) as u32;
    if let Some(core) = opts.0.get("core") {
        let core: usize = core.parse().map_err(|_| "--core is not a number")?;
        let mut set = nix::sched::CpuSet::new();
        set.set(core).map_err(|e| format!("cpu {core}: {e}"))?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
            .map_err(|e| format!("cannot pin to cpu {core}: {e}"))?;
    }
    // Busy until this period's share of CPU *time* is used (not wall time), so a worker that
    // competes for its CPU still gets close to its load, then idle for the rest of the period.
    let busy = PERIOD * load / 100;
    let cpu_time = || {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
            .map(Duration::from)
            .unwrap_or_default()
    };
    let mut x: u64 = 1;
    while alive() {
        let (start, used) = (Instant::now(), cpu_time());
        while cpu_time().saturating_sub(used) < busy && start.elapsed() < PERIOD {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        if let Some(rest) = PERIOD.checked_sub(start.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    Ok(())
}

fn memory(opts: &Opts, alive: impl Fn() -> bool) -> Result<(), String> {
    // If memory runs out, the OOM killer should take this worker, not the delegate or a service.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let total = opts.num("bytes")? as usize;
    let ramp = Duration::from_millis(
        opts.0
            .get("ramp-ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    const CHUNK: usize = 16 << 20;
    let chunks = total.div_ceil(CHUNK).max(1);
    let started = Instant::now();
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(chunks);
    let mut left = total;
    for i in 0..chunks {
        if !alive() {
            return Ok(());
        }
        let n = left.min(CHUNK);
        // Writing every byte makes the pages resident (a zeroed allocation would not be).
        held.push(vec![0xa5u8; n]);
        left -= n;
        let due = ramp * (i as u32 + 1) / chunks as u32;
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    while alive() {
        std::thread::sleep(PERIOD);
    }
    drop(std::hint::black_box(held));
    Ok(())
}

fn io(opts: &Opts, alive: impl Fn() -> bool) -> Result<(), String> {
    let path = opts.0.get("file").ok_or("missing --file")?;
    let block = opts.num("block-size")?.max(1) as usize;
    let size = opts.num("file-size")?.max(block as u64);
    let fsync = opts.0.contains_key("fsync");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    let buf: Vec<u8> = (0..block).map(|i| (i * 31) as u8).collect();
    let mut pos = 0u64;
    let mut checked = Instant::now();
    loop {
        if checked.elapsed() >= PERIOD {
            if !alive() {
                return Ok(());
            }
            checked = Instant::now();
        }
        if pos + block as u64 > size {
            pos = 0;
            f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        }
        match f.write_all(&buf) {
            Ok(()) => pos += block as u64,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => {
                // Full: start over, and give the disk a moment.
                pos = u64::MAX / 2;
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(format!("{path}: {e}")),
        }
        if fsync {
            let _ = f.sync_data();
        }
    }
}
