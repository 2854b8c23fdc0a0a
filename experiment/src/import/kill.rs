//! `kill`, `pkill` and `killall` command lines read as the one process they signal and the
//! signal, which is what Faultline's process faults need. Importers use it for actions that run
//! these commands; it reads text only and refuses what it cannot pin to one process.
use crate::faults::Signal;
use serde_json::{json, Value};

/// What a kill command does.
#[derive(Clone, Debug, PartialEq)]
pub struct Kill {
    /// `{name: ...}` (exact command name) or `{pidFile: ...}`.
    pub target: Value,
    pub sig: Sig,
    /// Set when the command matches more loosely than Faultline will (a pkill pattern).
    pub approx: Option<String>,
}

/// A signal as a process fault sees it: a kill, or the two halves of a pause.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sig {
    Kill(Signal),
    Stop,
    Cont,
}

/// `program` (`kill`, `pkill` or `killall`) run with `args` as argv, without a shell.
pub fn from_argv(program: &str, args: &[String]) -> Result<Kill, String> {
    if let Some(w) = args.iter().find(|w| w.contains("$(") || w.contains('`')) {
        return Err(format!(
            "list arguments run without a shell, so {w:?} is not expanded; write the \
             arguments as one string to read a pid file"
        ));
    }
    parse(program, args)
}

/// `program` run through the shell with the argument string `line`.
pub fn from_line(program: &str, line: &str) -> Result<Kill, String> {
    parse(program, &shell_words(line)?)
}

/// Reads options, the signal and the one target, whichever way the words came.
fn parse(program: &str, words: &[String]) -> Result<Kill, String> {
    let mut sig = Sig::Kill(Signal::Term);
    let mut targets = Vec::new();
    let mut exact = program == "killall";
    let mut it = words.iter();
    let mut options = true;
    while let Some(w) = it.next() {
        let w = w.as_str();
        let takes_value = match program {
            "kill" => ["-s", "-n", "--signal"].contains(&w),
            "pkill" => ["--signal", "-F", "--pidfile"].contains(&w),
            _ => ["-s", "--signal"].contains(&w),
        };
        if let Some(file) = w.strip_prefix(PIDFILE) {
            targets.push(json!({ "pidFile": file }));
        } else if !options || !w.starts_with('-') || w == "-" {
            if program == "kill" {
                return Err(format!(
                    "kill {w}: a process id is known only at run time; write \
                     kill $(cat PIDFILE) or use pkill -x NAME"
                ));
            }
            targets.push(process_name(program, w)?);
        } else if w == "--" {
            options = false;
        } else if takes_value {
            let v = it
                .next()
                .ok_or_else(|| format!("{program} {w} needs a value"))?;
            if ["-F", "--pidfile"].contains(&w) {
                targets.push(json!({ "pidFile": v }));
            } else {
                sig = signal(v)?;
            }
        } else if let Some(v) = w.strip_prefix("--signal=") {
            sig = signal(v)?;
        } else if (program == "pkill" && ["-x", "--exact"].contains(&w))
            || (program == "killall" && ["-e", "--exact"].contains(&w))
        {
            exact = true;
        } else if program == "killall" && ["-q", "--quiet", "-w", "--wait"].contains(&w) {
        } else if looks_like_signal(&w[1..]) {
            sig = signal(&w[1..])?;
        } else {
            return Err(format!(
                "{program} option {w} cannot be mapped; Faultline targets one process by its \
                 exact command name or a pid file"
            ));
        }
    }
    let target = match targets.as_slice() {
        [t] => t.clone(),
        [] => return Err(format!("{program} names no process")),
        _ => {
            return Err(format!(
                "{program} signals several processes; write one action per process"
            ))
        }
    };
    let approx = (target.get("name").is_some() && !exact).then(|| {
        format!(
            "{program} matches command names containing the pattern; Faultline matches the \
             exact command name {}",
            target["name"]
        )
    });
    Ok(Kill {
        target,
        sig,
        approx,
    })
}

/// Marks a word that was `$(cat FILE)` or `` `cat FILE` ``.
const PIDFILE: &str = "\u{0}pidfile:";

/// The words of a kill command line. `$(cat FILE)` becomes a pid-file word; any other shell
/// syntax is refused, since the import cannot tell what it would select.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let re = regex::Regex::new(r"\$\(\s*cat\s+([^\s()`$]+)\s*\)|`\s*cat\s+([^\s()`$]+)\s*`")
        .expect("valid regex");
    let line = re.replace_all(line, |c: &regex::Captures| {
        let file = c
            .get(1)
            .or_else(|| c.get(2))
            .map(|m| m.as_str())
            .unwrap_or_default();
        format!(" {PIDFILE}{file} ")
    });
    line.split_whitespace()
        .map(|w| {
            if !w.starts_with(PIDFILE)
                && w.contains([
                    '$', '`', '|', '&', ';', '<', '>', '(', ')', '*', '?', '"', '\'', '\\',
                ])
            {
                Err(format!(
                    "{w:?} is shell syntax the import cannot follow; write the process name, or \
                     $(cat PIDFILE) for a pid file"
                ))
            } else {
                Ok(w.to_string())
            }
        })
        .collect()
}

/// A pkill pattern or killall name as the exact command name Faultline matches.
fn process_name(program: &str, w: &str) -> Result<Value, String> {
    if program == "pkill"
        && w.contains([
            '.', '^', '$', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\',
        ])
    {
        return Err(format!(
            "pkill pattern {w:?} is a regular expression; Faultline matches an exact command name"
        ));
    }
    if w.is_empty() || w.len() > 15 {
        return Err(format!(
            "{w:?} is not a command name: Faultline matches the exact name as in /proc/PID/comm \
             (1-15 characters)"
        ));
    }
    Ok(json!({ "name": w }))
}

/// Whether an option (without its dash) names a signal: `KILL`, `SIGKILL`, `kill` or `9`.
fn looks_like_signal(s: &str) -> bool {
    const LINUX: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())) || LINUX.contains(&name)
}

/// The signal a kill sends, by name or Linux number.
fn signal(s: &str) -> Result<Sig, String> {
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    Ok(match name {
        "KILL" | "9" => Sig::Kill(Signal::Kill),
        "TERM" | "15" => Sig::Kill(Signal::Term),
        "INT" | "2" => Sig::Kill(Signal::Int),
        "HUP" | "1" => Sig::Kill(Signal::Hup),
        "QUIT" | "3" => Sig::Kill(Signal::Quit),
        "USR1" | "10" => Sig::Kill(Signal::Usr1),
        "USR2" | "12" => Sig::Kill(Signal::Usr2),
        "STOP" | "19" => Sig::Stop,
        "CONT" | "18" => Sig::Cont,
        _ => {
            return Err(format!(
                "signal {s} cannot be mapped; process-kill sends KILL, TERM, INT, HUP, QUIT, USR1 \
                 or USR2, and STOP then CONT map to process-pause"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(program: &str, args: &str) -> Result<(Value, Sig), String> {
        from_line(program, args).map(|k| (k.target, k.sig))
    }

    #[test]
    fn reads_signals_targets_and_pid_files() {
        let pid = |f: &str| json!({ "pidFile": f });
        let name = |n: &str| json!({ "name": n });
        assert_eq!(
            line("kill", "-SIGKILL $(cat /run/a.pid)"),
            Ok((pid("/run/a.pid"), Sig::Kill(Signal::Kill)))
        );
        assert_eq!(
            line("kill", "-n 10 -- `cat /run/a.pid`"),
            Ok((pid("/run/a.pid"), Sig::Kill(Signal::Usr1)))
        );
        assert_eq!(
            line("pkill", "-F /run/b.pid --signal=INT"),
            Ok((pid("/run/b.pid"), Sig::Kill(Signal::Int)))
        );
        assert_eq!(
            line("killall", "-q -w -3 web"),
            Ok((name("web"), Sig::Kill(Signal::Quit)))
        );
        assert_eq!(line("pkill", "-STOP -x db"), Ok((name("db"), Sig::Stop)));
        assert_eq!(line("pkill", "-19 -x db"), Ok((name("db"), Sig::Stop)));
        assert_eq!(
            line("pkill", "--signal cont -x db"),
            Ok((name("db"), Sig::Cont))
        );
        // The commands' own default is TERM.
        assert_eq!(
            line("killall", "web"),
            Ok((name("web"), Sig::Kill(Signal::Term)))
        );
        // pkill matches a pattern unless -x; killall matches exact names.
        assert!(from_line("pkill", "web").unwrap().approx.is_some());
        assert!(from_line("pkill", "-x web").unwrap().approx.is_none());
        assert!(from_line("killall", "web").unwrap().approx.is_none());
        let argv = ["-9".to_string(), "-x".into(), "web".into()];
        assert_eq!(
            from_argv("pkill", &argv).map(|k| k.sig),
            Ok(Sig::Kill(Signal::Kill))
        );
    }

    #[test]
    fn refuses_what_is_not_one_known_process() {
        for (program, args, starts) in [
            ("kill", "-9 1234", "kill 1234: a process id"),
            ("kill", "-9 $(pgrep web)", "\"$(pgrep\" is shell syntax"),
            ("pkill", "-x web.*", "\"web.*\" is shell syntax"),
            (
                "pkill",
                "-x a-very-long-process",
                "\"a-very-long-process\" is not a command name",
            ),
            ("pkill", "-x a b", "pkill signals several processes"),
            ("pkill", "-x", "pkill names no process"),
            ("killall", "-s", "killall -s needs a value"),
            ("pkill", "-u root web", "pkill option -u cannot be mapped"),
            ("pkill", "-ABRT web", "signal ABRT cannot be mapped"),
        ] {
            let e = from_line(program, args).unwrap_err();
            assert!(e.starts_with(starts), "{program} {args}: {e}");
        }
        let e = from_argv("pkill", &["-x".into(), "web.*".into()]).unwrap_err();
        assert!(
            e.starts_with("pkill pattern \"web.*\" is a regular expression"),
            "{e}"
        );
        let e = from_argv("kill", &["$(cat /run/a.pid)".into()]).unwrap_err();
        assert!(e.starts_with("list arguments run without a shell"), "{e}");
    }
}
