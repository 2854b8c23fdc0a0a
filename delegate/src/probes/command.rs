//! The `command` probe: runs a program (argv, no shell) or a `/bin/sh -c` script through the
//! [`Sandbox`] (allowed programs only, explicit environment, own process group, `--run-as`);
//! ok when the exit code and every stdout expectation hold.
//!
//! Output stays on the host: a failure says which expectation failed, showing stdout only
//! where the probe compares it (`stdoutEquals`, `value`; cut short), and `captureOutput: true` puts at
//! most 4 KiB of each stream in the check's event.
use super::{bounded_part, ms, quoted, regex, Check, Probe};
use crate::sandbox::Sandbox;
use faultline_experiment::probes::{
    CommandExpect, CommandProbe as CommandSpec, Probe as ProbeSpec,
};
use futures::future::BoxFuture;
use std::{os::unix::process::ExitStatusExt, process::ExitStatus, time::Instant};

pub struct CommandProbe {
    pub sandbox: Sandbox,
}

impl Probe for CommandProbe {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        bounded_part(spec, self.kind(), spec.command.as_ref(), |c| self.run(c))
    }
}

impl CommandProbe {
    async fn run(&self, c: &CommandSpec) -> Check {
        let start = Instant::now();
        let prepared = match self
            .sandbox
            .command(&c.run, &c.shell, &c.env, c.workdir.as_deref())
        {
            Ok(p) => p,
            Err(why) => return Check::fail(start, why),
        };
        let output = match prepared.output().await {
            Ok(o) => o,
            Err(why) => return Check::fail(start, why),
        };
        let latency_ms = ms(start);
        let out = String::from_utf8_lossy(&output.stdout);
        let failures = failures(output.status, &out, &c.expect);
        let mut check = if failures.is_empty() {
            let detail = format!("exit {} in {latency_ms:.1}ms", c.expect.exit_code);
            Check::timed(true, latency_ms, detail)
        } else {
            Check::timed(false, latency_ms, failures.join(", "))
        };
        if c.capture_output {
            check.output = Some(output.captured());
        }
        check
    }
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
            // The probe compares stdout, so it is shown, cut short.
            f.push(format!(
                "stdout is {}, expected {}",
                quoted(got),
                quoted(want)
            ));
        }
    }
    if let Some(value) = &expect.value {
        // Compared because the probe asks to, so stdout is shown, cut short.
        if let Err(why) = value.matches_shown(out.trim(), quoted) {
            f.push(format!("stdout {why}"));
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
