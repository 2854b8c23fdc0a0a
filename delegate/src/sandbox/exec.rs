//! Programs a template runs (command probes, command rollbacks and actions): only what the
//! policy's `command=` entries allow, and with as little as the operator gave:
//!
//! - the program is found on a fixed search path ([`SEARCH_PATH`]), never the template's
//!   `PATH`, and checked by the file it is (symlinks followed) before it runs;
//! - its environment is explicit: `PATH`, `HOME`, `LANG` and the template's `env` (never the
//!   delegate's own, which may hold its registration token or a probe's password), and never a
//!   variable that changes which code runs (`LD_*`, …);
//! - `--run-as USER` runs it as that user (and the user's group, with no supplementary groups);
//! - it runs in a process group of its own with stdin closed, so a timeout kills it and every
//!   process it started; at most [`MAX_OUTPUT`] of stdout and of stderr is kept.
use super::{refused, Sandbox};
use faultline_experiment::policy::{loader_env, program_of};
use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
    pin::pin,
    process::{ExitStatus, Stdio},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    process::Command,
};

/// Where bare program names are looked up, whatever the template's or the delegate's `PATH`.
pub const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Most of stdout (and of stderr) kept; the rest is read and dropped, so the program never
/// blocks on a full pipe.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Most of each stream a step's event carries with `captureOutput: true`.
pub const MAX_CAPTURED: usize = 4 * 1024;
/// How long output is still read after the program exited.
const PIPE_GRACE: Duration = Duration::from_millis(100);

/// The user programs run as (`--run-as`).
#[derive(Clone, Debug)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl RunAs {
    /// Looks the user up in the host's user database.
    pub fn lookup(name: &str) -> Result<RunAs, String> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Ok(RunAs {
                name: name.into(),
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                home: u.dir,
            }),
            Ok(None) => Err(format!("no user {name:?} on this host")),
            Err(e) => Err(format!("cannot look up user {name:?}: {e}")),
        }
    }
}

/// What a finished program did.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A program ready to start: checked, with its environment and user set.
pub struct Prepared {
    cmd: Command,
    /// The program as the template named it, for messages.
    pub program: String,
}

impl Sandbox {
    /// Checks and prepares `run` (argv) or `shell` (a `/bin/sh -c` script) with the template's
    /// `env` and `workdir`; the error says why it may not or cannot run, never running it.
    pub fn command(
        &self,
        run: &[String],
        shell: &Option<String>,
        env: &BTreeMap<String, String>,
        workdir: Option<&str>,
    ) -> Result<Prepared, String> {
        let program = program_of(run, shell);
        if program.is_empty() {
            return Err("nothing to run: give run or shell".into());
        }
        let found = locate(&program)?;
        let canonical = std::fs::canonicalize(&found)
            .map_err(|e| format!("program {program:?}: {}", io_text(&e)))?;
        let files: Vec<String> = [found.as_path(), canonical.as_path()]
            .iter()
            .filter_map(|p| p.to_str().map(str::to_string))
            .collect();
        if !self.policy.program(&program, &files) {
            let entry = if program.contains('/') {
                program.clone()
            } else {
                files.first().cloned().unwrap_or_else(|| program.clone())
            };
            return Err(format!(
                "{} (needs --allow command={entry})",
                refused(format_args!("program {program} may not run on this host"))
            ));
        }
        if let Some(name) = env.keys().find(|n| loader_env(n)) {
            return Err(refused(format_args!(
                "environment variable {name} changes which code a program runs and is never passed"
            )));
        }
        let mut cmd = Command::new(&found);
        cmd.arg0(&program);
        match (shell, run.split_first()) {
            (Some(script), _) => {
                cmd.arg("-c").arg(script);
            }
            (None, Some((_, args))) => {
                cmd.args(args);
            }
            (None, None) => {}
        }
        let home = self
            .run_as
            .as_ref()
            .map(|u| u.home.clone())
            .unwrap_or_else(|| PathBuf::from("/"));
        cmd.env_clear()
            .env("PATH", SEARCH_PATH)
            .env("HOME", &home)
            .env("LANG", "C.UTF-8")
            .envs(env);
        if let Some(dir) = workdir {
            // Spawning in a missing directory fails with the same error as a missing program.
            if !Path::new(dir).is_dir() {
                return Err(format!("workdir {dir:?} is not a directory"));
            }
            cmd.current_dir(dir);
        } else {
            // Not HOME: a service user's home often does not exist (`/nonexistent`).
            cmd.current_dir("/");
        }
        if let Some(u) = &self.run_as {
            cmd.uid(u.uid).gid(u.gid);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        Ok(Prepared { cmd, program })
    }
}

impl Prepared {
    /// Runs the program to its end. Dropping the future (a timeout) kills its whole process
    /// group.
    pub async fn output(mut self) -> Result<Output, String> {
        let program = self.program;
        let mut child = self.cmd.spawn().map_err(|e| spawn_error(&program, &e))?;
        // Declared after `child`, so dropped (killing the group) before the child is reaped and
        // its id could be reused.
        let group = GroupKiller(child.id());
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = {
            let reading = async {
                tokio::join!(read_capped(stdout, &mut out), read_capped(stderr, &mut err))
            };
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
                // step is about the program, so its output gets a moment, not the whole timeout.
                let _ = tokio::time::timeout(PIPE_GRACE, &mut reading).await;
            }
            status
        };
        // Reaped: its pid, and with it the group id, may belong to someone else now.
        group.disarm();
        let status = status.map_err(|e| format!("waiting for {program:?}: {e}"))?;
        Ok(Output {
            status,
            stdout: out,
            stderr: err,
        })
    }
}

impl Output {
    /// Both streams for an event (`captureOutput: true`), each cut to [`MAX_CAPTURED`].
    pub fn captured(&self) -> String {
        let part = |name: &str, b: &[u8]| {
            let text = String::from_utf8_lossy(b);
            let text = text.trim_end();
            if text.is_empty() {
                String::new()
            } else {
                format!("{name}:\n{}\n", crate::probes::clip(text, MAX_CAPTURED))
            }
        };
        format!(
            "{}{}",
            part("stdout", &self.stdout),
            part("stderr", &self.stderr)
        )
    }
}

/// The file a program name means: an absolute path as it is, a bare name on [`SEARCH_PATH`].
fn locate(program: &str) -> Result<PathBuf, String> {
    if program.starts_with('/') {
        return Ok(PathBuf::from(program));
    }
    if program.contains('/') {
        return Err(format!(
            "program {program:?} is a relative path; give an absolute path or a bare name"
        ));
    }
    SEARCH_PATH
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("program {program:?} not found on {SEARCH_PATH}"))
}

fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "not found".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn spawn_error(program: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("program {program:?} not found"),
        _ => format!("cannot run {program:?}: {}", io_text(e)),
    }
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

/// Kills the program's whole process group when dropped: a step that runs out of time is
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
