//! The `command` probe: runs a program (argv, no shell) or a `/bin/sh -c` script with the
//! probe's environment added and stdin closed; ok when the exit code and every stdout
//! expectation hold. The program runs in a process group of its own, so a timeout kills it and
//! everything it started. At most [`MAX_OUTPUT`] of stdout and of stderr is kept; stderr only
//! shows in the detail of a failure.
use super::{bounded_part, ms, quoted, regex, Check, Probe};
use faultline_spec::probes::{CommandExpect, CommandProbe as CommandSpec, Probe as ProbeSpec};
use futures::future::BoxFuture;
use std::{
    io,
    os::unix::process::ExitStatusExt,
    path::Path,
    pin::pin,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    process::Command,
};

/// Most of stdout (and of stderr) a check keeps; the rest is read and dropped, so the program
/// never blocks on a full pipe.
const MAX_OUTPUT: usize = 64 * 1024;
/// How long output is still read after the program exited.
const PIPE_GRACE: Duration = Duration::from_millis(100);

pub struct CommandProbe;

impl Probe for CommandProbe {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        bounded_part(spec, self.kind(), spec.command.as_ref(), run)
    }
}

async fn run(c: &CommandSpec) -> Check {
    let start = Instant::now();
    let (program, mut cmd) = match (&c.shell, c.run.split_first()) {
        (Some(script), _) => {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c").arg(script);
            ("/bin/sh", cmd)
        }
        (None, Some((program, args))) => {
            let mut cmd = Command::new(program);
            cmd.args(args);
            (program.as_str(), cmd)
        }
        (None, None) => return Check::fail(start, "nothing to run: give run or shell"),
    };
    if let Some(dir) = &c.workdir {
        // Spawning in a missing directory fails with the same error as a missing program.
        if !Path::new(dir).is_dir() {
            return Check::fail(start, format!("workdir {dir:?} is not a directory"));
        }
        cmd.current_dir(dir);
    }
    cmd.envs(&c.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Check::fail(start, spawn_error(program, &e)),
    };
    // Declared after `child`, so dropped (killing the group) before the child is reaped and its
    // id could be reused.
    let group = GroupKiller(child.id());
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = {
        let reading =
            async { tokio::join!(read_capped(stdout, &mut out), read_capped(stderr, &mut err)) };
        let mut reading = pin!(reading);
        let mut read_all = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = &mut reading, if !read_all => read_all = true,
            }
        };
        if !read_all {
            // Something the program started in the background may hold the pipes open: the
            // check is about the program, so its output gets a moment, not the rest of the
            // timeout.
            let _ = tokio::time::timeout(PIPE_GRACE, &mut reading).await;
        }
        status
    };
    group.disarm();
    let status = match status {
        Ok(s) => s,
        Err(e) => return Check::fail(start, format!("waiting for {program:?}: {e}")),
    };
    let latency_ms = ms(start);
    let out = String::from_utf8_lossy(&out);
    let failures = failures(status, &out, &c.expect);
    if failures.is_empty() {
        let detail = format!("exit {} in {latency_ms:.1}ms", c.expect.exit_code);
        return Check::timed(true, latency_ms, detail);
    }
    let mut detail = failures.join(", ");
    let err = String::from_utf8_lossy(&err);
    if !err.trim().is_empty() {
        detail.push_str("; stderr: ");
        detail.push_str(&tail(err.trim(), 150));
    }
    Check::timed(false, latency_ms, detail)
}

/// Every expectation that does not hold, exit status first (`exit 1, expected 0`); empty when
/// the check passes.
fn failures(status: ExitStatus, out: &str, expect: &CommandExpect) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(needle) = &expect.stdout_contains {
        if !out.contains(needle.as_str()) {
            f.push(format!("stdout does not contain {}", quoted(needle)));
        }
    }
    if let Some(pattern) = &expect.stdout_regex {
        match regex(pattern) {
            Ok(re) if re.is_match(out) => {}
            Ok(_) => f.push(format!("stdout does not match /{pattern}/")),
            Err(e) => f.push(e),
        }
    }
    if let Some(want) = &expect.stdout_equals {
        let got = out.trim_end();
        if got != want.trim_end() {
            f.push(format!(
                "stdout is {}, expected {}",
                quoted(got),
                quoted(want)
            ));
        }
    }
    let want = expect.exit_code;
    let exit = match (status.code(), status.signal()) {
        (Some(code), _) if code == want && f.is_empty() => return f,
        (Some(code), _) if code == want => format!("exit {code}"),
        (Some(code), _) => format!("exit {code}, expected {want}"),
        (None, Some(sig)) => format!("killed by signal {sig}, expected exit {want}"),
        (None, None) => format!("no exit code, expected {want}"),
    };
    f.insert(0, exit);
    f
}

fn spawn_error(program: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("program {program:?} not found"),
        io::ErrorKind::PermissionDenied => format!("cannot run {program:?}: permission denied"),
        _ => format!("cannot run {program:?}: {e}"),
    }
}

/// The end of `s`, where a program's last words usually are.
fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = s.len() - max;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    format!("…{}", &s[cut..])
}

/// Reads a pipe to its end into `kept`, keeping the first [`MAX_OUTPUT`] bytes.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, kept: &mut Vec<u8>) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = MAX_OUTPUT - kept.len();
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// Kills the program's whole process group when dropped armed: a check that runs out of time is
/// dropped, and a shell's children must not outlive it.
struct GroupKiller(Option<u32>);

impl GroupKiller {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
