//! `kill`, `pkill` and `killall` command lines read as the processes they signal and the
//! signal, which is what Faultline's process faults need. Importers use it for actions that run
//! these commands; it reads text only and refuses, with the reason, what it cannot pin down.
//!
//! Targets: a pid file (`kill $(cat FILE)`, `pkill -F FILE`), an exact command name (`killall
//! NAME`, `pkill -x NAME`, or a pkill pattern with a note), a regular expression over the
//! command line (`pkill -f PATTERN`), and `kill $(pgrep ...)` read as that pgrep; narrowed to a
//! user (`-u USER`) and to the oldest or newest match (`pkill -o` / `-n`).
use crate::faults::{is_user, PickOrder, Signal, MAX_COMMAND_REGEX};
use serde_json::{json, Value};

/// What a kill command does.
#[derive(Clone, Debug, PartialEq)]
pub struct Kill {
    /// `{name: ...}` (exact command name), `{command: ...}` (a regular expression over the
    /// command line) or `{pidFile: ...}`, with `user` when the command names one.
    pub target: Value,
    pub sig: Sig,
    /// `pkill -o` / `-n`: only the oldest or the newest match.
    pub pick: Option<PickOrder>,
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

/// What Faultline can target, for the errors that refuse an option.
const TARGETS: &str = "Faultline targets a pid file, an exact command name (name:) or a regular \
                       expression over the command line (command:, as pkill -f), narrowed to a \
                       user (-u) and to the oldest or newest match (-o, -n)";

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

/// The options of each program: `(short, long, takes a value)`.
fn options(program: &str) -> &'static [(char, &'static str, bool)] {
    match program {
        "kill" => &[('s', "signal", true), ('n', "", true), ('l', "list", false)],
        "killall" => &[
            ('s', "signal", true),
            ('u', "user", true),
            ('e', "exact", false),
            ('q', "quiet", false),
            ('w', "wait", false),
            ('v', "verbose", false),
            ('I', "ignore-case", false),
            ('g', "process-group", false),
            ('i', "interactive", false),
            ('r', "regexp", false),
            ('l', "list", false),
            ('o', "older-than", true),
            ('y', "younger-than", true),
            ('n', "ns", true),
            ('Z', "context", true),
        ],
        // pkill and pgrep (read inside kill $(pgrep ...)).
        _ => &[
            ('\0', "signal", true),
            ('F', "pidfile", true),
            ('u', "euid", true),
            ('U', "uid", true),
            ('o', "oldest", false),
            ('n', "newest", false),
            ('f', "full", false),
            ('x', "exact", false),
            ('e', "echo", false),
            ('c', "count", false),
            ('l', "list-name", false),
            ('a', "list-full", false),
            ('d', "delimiter", true),
            ('i', "ignore-case", false),
            ('v', "inverse", false),
            ('w', "lightweight", false),
            ('g', "pgroup", true),
            ('G', "group", true),
            ('P', "parent", true),
            ('s', "session", true),
            ('t', "terminal", true),
            ('r', "runstates", true),
            ('q', "queue", true),
            ('A', "ignore-ancestors", false),
            ('L', "logpidfile", false),
            ('\0', "ns", true),
            ('\0', "nslist", true),
        ],
    }
}

/// One option as read: its long name (or the short letter when it has none), its value and
/// how it was written (for errors).
type Opt = (String, Option<String>, String);

fn read_options<'a>(
    program: &str,
    words: &'a [String],
) -> Result<(Vec<Opt>, Vec<&'a str>), String> {
    let table = options(program);
    let mut opts = Vec::new();
    let mut rest = Vec::new();
    let mut it = words.iter();
    let mut options_end = false;
    let name = |short: char, long: &str| {
        if long.is_empty() {
            short.to_string()
        } else {
            long.to_string()
        }
    };
    while let Some(w) = it.next() {
        let w = w.as_str();
        if options_end || !w.starts_with('-') || w == "-" || w.starts_with(PIDFILE) {
            rest.push(w);
        } else if w == "--" {
            options_end = true;
        } else if let Some(long) = w.strip_prefix("--") {
            let (key, inline) = match long.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (long, None),
            };
            let Some((_, l, takes)) = table.iter().find(|(_, l, _)| *l == key) else {
                return Err(format!("{program} has no option {w}"));
            };
            let value = match (takes, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(
                    it.next()
                        .ok_or_else(|| format!("{program} {w} needs a value"))?
                        .clone(),
                ),
                (false, Some(_)) => return Err(format!("{program} {w} takes no value")),
                (false, None) => None,
            };
            opts.push((l.to_string(), value, format!("--{key}")));
        } else if looks_like_signal(&w[1..]) {
            opts.push(("signal".into(), Some(w[1..].to_string()), w.to_string()));
        } else {
            // Short options, possibly several in one word (`-of`), a value last (`-uroot`).
            let letters: Vec<char> = w[1..].chars().collect();
            let mut i = 0;
            while let Some(&c) = letters.get(i) {
                i += 1;
                let Some((s, l, takes)) = table.iter().find(|(s, _, _)| *s == c && c != '\0')
                else {
                    return Err(format!("{program} has no option -{c}"));
                };
                let value = if *takes {
                    let inline: String = letters[i..].iter().collect();
                    i = letters.len();
                    Some(if inline.is_empty() {
                        it.next()
                            .ok_or_else(|| format!("{program} -{c} needs a value"))?
                            .clone()
                    } else {
                        inline
                    })
                } else {
                    None
                };
                opts.push((name(*s, l), value, format!("-{c}")));
            }
        }
    }
    Ok((opts, rest))
}

/// Reads options, the signal and the target, whichever way the words came.
fn parse(program: &str, words: &[String]) -> Result<Kill, String> {
    let (opts, rest) = read_options(program, words)?;
    let mut sig = Sig::Kill(Signal::Term);
    let mut exact = program == "killall";
    let (mut full, mut user, mut pick) = (false, None::<String>, None);
    let mut targets: Vec<Value> = Vec::new();
    let mut approx = None;
    for (opt, value, spelled) in opts {
        let v = value.unwrap_or_default();
        match (program, opt.as_str()) {
            (_, "signal") | ("kill", "n") => sig = signal(&v)?,
            (_, "pidfile") => targets.push(json!({ "pidFile": v })),
            ("killall", "user") | (_, "euid") => {
                if v.contains(',') {
                    return Err(format!(
                        "{program} -u {v} names several users; Faultline narrows to one"
                    ));
                }
                if !is_user(&v) {
                    return Err(format!(
                        "{program} -u {v:?}: not a user name or a numeric uid"
                    ));
                }
                user = Some(v);
            }
            (_, "exact") => exact = true,
            (_, "full") => full = true,
            (_, "oldest" | "newest") => {
                let o = if opt == "oldest" {
                    PickOrder::Oldest
                } else {
                    PickOrder::Newest
                };
                if pick.is_some_and(|p| p != o) {
                    return Err(format!("{program} -o and -n cannot both apply"));
                }
                pick = Some(o);
            }
            // Options that change what is printed or waited for, not what is signalled.
            (_, "echo" | "count" | "list-name" | "list-full" | "delimiter" | "quiet" | "wait")
            | (_, "verbose") => {}
            _ => {
                return Err(format!(
                    "{program} option {spelled} cannot be mapped: it selects processes in a way \
                     Faultline does not; {TARGETS}"
                ));
            }
        }
    }
    for w in rest {
        if let Some(file) = w.strip_prefix(PIDFILE) {
            targets.push(json!({ "pidFile": file }));
        } else if let Some(args) = w.strip_prefix(PGREP) {
            if program != "kill" {
                return Err(format!("{program} takes a pattern, not $(pgrep ...)"));
            }
            let args: Vec<String> = args.split(SEP).map(|a| a.replace(BLANK, " ")).collect();
            let k = parse("pgrep", &args).map_err(|e| format!("in $(pgrep ...): {e}"))?;
            approx = k.approx;
            pick = k.pick;
            targets.push(k.target);
        } else if program == "kill" {
            return Err(format!(
                "kill {w}: a process id is known only at run time; write kill $(cat PIDFILE), \
                 kill $(pgrep ...) or pkill"
            ));
        } else if full {
            let pattern = if exact {
                format!("^(?:{w})$")
            } else {
                w.to_string()
            };
            regex::RegexBuilder::new(&pattern)
                .size_limit(MAX_COMMAND_REGEX)
                .build()
                .map_err(|e| {
                    format!("{program} -f pattern {w:?} is not a regular expression Faultline reads: {e}")
                })?;
            targets.push(json!({ "command": pattern }));
        } else {
            targets.push(process_name(program, w)?);
        }
    }
    let mut target = match targets.as_slice() {
        [t] => t.clone(),
        [] => return Err(format!("{program} names no process")),
        _ => {
            return Err(format!(
                "{program} signals several processes; write one action per process"
            ))
        }
    };
    if target.get("pidFile").is_some() && (user.is_some() || pick.is_some()) {
        return Err(format!(
            "{program} reads one pid from a pid file; -u, -o or -n cannot narrow it further"
        ));
    }
    if let (Some(u), Some(t)) = (user, target.as_object_mut()) {
        t.insert("user".into(), Value::String(u));
    }
    if approx.is_none() && target.get("name").is_some() && !exact {
        approx = Some(format!(
            "{program} matches command names containing the pattern; Faultline matches the \
             exact command name {}",
            target["name"]
        ));
    }
    Ok(Kill {
        target,
        sig,
        pick,
        approx,
    })
}

/// Marks a word that was `$(cat FILE)` or `` `cat FILE` ``.
const PIDFILE: &str = "\u{0}pidfile:";
/// Marks a word that was `$(pgrep ARGS)`, its arguments apart by [`SEP`].
const PGREP: &str = "\u{0}pgrep:";
const SEP: char = '\u{1}';
/// Stands for a blank inside one argument of a [`PGREP`] word.
const BLANK: char = '\u{2}';

/// The words of a kill command line, as the shell splits them: quotes are read (with nothing
/// to expand inside), `$(cat FILE)` becomes a pid-file word and `$(pgrep ...)` a pgrep word;
/// any other shell syntax is refused, since the import cannot tell what it would select.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let re = regex::Regex::new(
        r"\$\(\s*cat\s+([^\s()`$]+)\s*\)|`\s*cat\s+([^\s()`$]+)\s*`|\$\(\s*pgrep\s+([^()`$]*)\)|`\s*pgrep\s+([^()`$]*)`",
    )
    .expect("valid regex");
    let mut inner_err = None;
    let line = re.replace_all(line, |c: &regex::Captures| {
        if let Some(file) = c.get(1).or_else(|| c.get(2)) {
            return format!(" {PIDFILE}{} ", file.as_str());
        }
        let args = c
            .get(3)
            .or_else(|| c.get(4))
            .map(|m| m.as_str())
            .unwrap_or_default();
        match words(args) {
            Ok(w) => {
                // Spaces inside an argument must not end the marker word.
                let w: Vec<String> = w
                    .iter()
                    .map(|a| a.replace(char::is_whitespace, &BLANK.to_string()))
                    .collect();
                format!(" {PGREP}{} ", w.join(&SEP.to_string()))
            }
            Err(e) => {
                inner_err.get_or_insert(e);
                String::new()
            }
        }
    });
    if let Some(e) = inner_err {
        return Err(e);
    }
    words(&line)
}

/// Splits on whitespace, reading single and double quotes; refuses what a shell would expand.
fn words(line: &str) -> Result<Vec<String>, String> {
    const SPECIAL: &[char] = &[
        '$', '`', '|', '&', ';', '<', '>', '(', ')', '*', '?', '\\', '[', '~', '#', '!', '{', '}',
    ];
    let refuse = |w: &str| {
        format!(
            "{w:?} is shell syntax the import cannot follow; write the process name or a quoted \
             pattern, $(cat PIDFILE) for a pid file, or $(pgrep ...)"
        )
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' | '"' => {
                in_word = true;
                let mut closed = false;
                while let Some(q) = chars.next() {
                    if q == c {
                        closed = true;
                        break;
                    }
                    if c == '"' && ['$', '`'].contains(&q) {
                        return Err(refuse(&format!("{c}{cur}{q}")));
                    }
                    // In double quotes a backslash escapes only $ ` " \ (POSIX sh).
                    if c == '"' && q == '\\' {
                        match chars.peek() {
                            Some(&n) if ['$', '`', '"', '\\'].contains(&n) => {
                                cur.push(n);
                                chars.next();
                                continue;
                            }
                            _ => {}
                        }
                    }
                    cur.push(q);
                }
                if !closed {
                    return Err(format!("unclosed quote {c} in {line:?}"));
                }
            }
            '\u{0}' => {
                // A marker from shell_words: the rest of the word is taken as it is.
                in_word = true;
                cur.push(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() {
                        break;
                    }
                    cur.push(n);
                    chars.next();
                }
            }
            c if SPECIAL.contains(&c) => {
                let mut w = cur.clone();
                w.push(c);
                w.extend(chars.by_ref().take_while(|n| !n.is_whitespace()));
                return Err(refuse(&w));
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// A pkill pattern or killall name as the exact command name Faultline matches.
fn process_name(program: &str, w: &str) -> Result<Value, String> {
    if program != "killall"
        && w.contains([
            '.', '^', '$', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '\\',
        ])
    {
        return Err(format!(
            "{program} pattern {w:?} is a regular expression over the command name; Faultline \
             matches an exact name (name:) or a regular expression over the whole command line \
             (command:): write {program} -f to match the command line"
        ));
    }
    if w.is_empty() || w.len() > 15 {
        return Err(format!(
            "{w:?} is not a command name: Faultline matches the exact name as in /proc/PID/comm \
             (1-15 characters); {program} -f matches the command line"
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
    fn reads_pkill_and_killall_options_that_select() {
        let kill = |program: &str, args: &str| from_line(program, args).unwrap();
        // -f: a regular expression over the command line; with -x, the whole of it.
        let k = kill("pkill", r#"-9 -f "python3 .*worker\.py""#);
        assert_eq!(k.target, json!({"command": r"python3 .*worker\.py"}));
        assert_eq!(
            (k.sig, k.pick, k.approx),
            (Sig::Kill(Signal::Kill), None, None)
        );
        let k = kill("pkill", "--full --exact 'java -jar app.jar'");
        assert_eq!(k.target, json!({"command": "^(?:java -jar app.jar)$"}));
        // -o / -n, alone or grouped with other flags, and -u in each spelling.
        let k = kill("pkill", "-o -x nginx");
        assert_eq!(
            (k.target, k.pick),
            (json!({"name": "nginx"}), Some(PickOrder::Oldest))
        );
        let k = kill("pkill", "-nf worker --signal=HUP");
        assert_eq!(k.target, json!({"command": "worker"}));
        assert_eq!(
            (k.sig, k.pick),
            (Sig::Kill(Signal::Hup), Some(PickOrder::Newest))
        );
        for args in [
            "-u postgres -x postgres",
            "--euid postgres -x postgres",
            "-upostgres -x postgres",
            "--euid=postgres -x postgres",
        ] {
            assert_eq!(
                kill("pkill", args).target,
                json!({"name": "postgres", "user": "postgres"}),
                "{args}"
            );
        }
        let k = kill("killall", "-u www-data -s SIGUSR1 --verbose nginx");
        assert_eq!(k.target, json!({"name": "nginx", "user": "www-data"}));
        assert_eq!(k.sig, Sig::Kill(Signal::Usr1));
        // Signals in every spelling.
        for (program, args) in [
            ("pkill", "-KILL -x web"),
            ("pkill", "-SIGKILL -x web"),
            ("pkill", "-kill -x web"),
            ("pkill", "-9 -x web"),
            ("pkill", "--signal KILL -x web"),
            ("pkill", "--signal=SIGKILL -x web"),
            ("killall", "-s 9 web"),
            ("killall", "--signal KILL web"),
            ("killall", "-KILL web"),
        ] {
            assert_eq!(
                kill(program, args).sig,
                Sig::Kill(Signal::Kill),
                "{program} {args}"
            );
        }
        // kill $(pgrep ...) reads as that pgrep, with kill's signal.
        let k = kill("kill", "-s HUP $(pgrep -o -f 'gunicorn: master')");
        assert_eq!(k.target, json!({"command": "gunicorn: master"}));
        assert_eq!(
            (k.sig, k.pick),
            (Sig::Kill(Signal::Hup), Some(PickOrder::Oldest))
        );
        let k = kill("kill", "`pgrep -x -u app web`");
        assert_eq!(k.target, json!({"name": "web", "user": "app"}));
        // Options that only change what is printed are fine.
        assert_eq!(
            kill("pkill", "--echo -HUP -F astre.pid").target,
            json!({"pidFile": "astre.pid"})
        );
        assert_eq!(kill("pkill", "-e -c -x web").target, json!({"name": "web"}));
    }

    #[test]
    fn refuses_what_is_not_one_known_process() {
        for (program, args, starts) in [
            ("kill", "-9 1234", "kill 1234: a process id"),
            ("kill", "-9 $(pidof web)", "\"$(pidof\" is shell syntax"),
            (
                "kill",
                "$(pgrep -v web)",
                "in $(pgrep ...): pgrep option -v cannot be mapped",
            ),
            ("pkill", "-x web.*", "\"web.*\" is shell syntax"),
            (
                "pkill",
                "-x 'web.*'",
                "pkill pattern \"web.*\" is a regular expression over the command name",
            ),
            (
                "pkill",
                "-f '(unclosed'",
                "pkill -f pattern \"(unclosed\" is not a regular expression",
            ),
            (
                "pkill",
                "-x a-very-long-process",
                "\"a-very-long-process\" is not a command name",
            ),
            ("pkill", "-x a b", "pkill signals several processes"),
            ("pkill", "-x", "pkill names no process"),
            ("killall", "-s", "killall -s needs a value"),
            (
                "pkill",
                "-u root,app web",
                "pkill -u root,app names several users",
            ),
            ("pkill", "-U 1000 web", "pkill option -U cannot be mapped"),
            ("pkill", "-P 1 web", "pkill option -P cannot be mapped"),
            ("pkill", "-o -n web", "pkill -o and -n cannot both apply"),
            (
                "pkill",
                "-o -F /run/a.pid",
                "pkill reads one pid from a pid file",
            ),
            ("killall", "-o 5m web", "killall option -o cannot be mapped"),
            (
                "killall",
                "-r 'web.*'",
                "killall option -r cannot be mapped",
            ),
            ("pkill", "--bogus web", "pkill has no option --bogus"),
            ("pkill", "-Q web", "pkill has no option -Q"),
            ("pkill", "-ABRT web", "signal ABRT cannot be mapped"),
            ("pkill", "-x 'web", "unclosed quote"),
            ("pkill", "-x \"$NAME\"", "\"\\\"$\" is shell syntax"),
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

    /// Found by the `chaostoolkit` fuzz target (fuzz/): a `-u` value that is no user name was
    /// taken, and only the last check of the converted template refused it, naming the
    /// Faultline field instead of the source's.
    #[test]
    fn refuses_a_user_that_is_no_user_name() {
        let e = from_argv("pkill", &["-u- app".into(), "-x".into(), "web".into()]).unwrap_err();
        assert!(e.starts_with("pkill -u \"- app\": not a user name"), "{e}");
        let k = from_argv(
            "pkill",
            &["-u".into(), "app".into(), "-x".into(), "web".into()],
        );
        assert_eq!(k.unwrap().target, json!({"name": "web", "user": "app"}));
    }
}
