//! The method and the rollbacks: kills as `process-kill` (a SIGSTOP then SIGCONT as
//! `process-pause`), pauses, background groups, method probes, and `http` / `process` rollbacks.
use super::{probes::Args, probes::Call, reading::Index, Cx};
use crate::{
    faults::{Signal, KINDS},
    import::kill::{self, Sig},
    probes::{Mode, Probe},
    template::{CommandAction, FaultStep, HttpAction, Rollback, Step},
    Dur,
};
use serde_json::{json, Map, Value};
use std::{collections::BTreeMap, time::Duration};

/// One entry of the method once read: a wait, or a signal to a process.
pub(super) enum Planned {
    Pause(Dur),
    Signal(Signalled),
}

pub(super) struct Signalled {
    /// Path of the activity, for errors.
    pub(super) path: String,
    pub(super) name: String,
    /// `{name: ...}` or `{pidFile: ...}`.
    pub(super) target: Value,
    pub(super) sig: Sig,
    pub(super) background: bool,
}

impl Cx {
    pub(super) fn method(
        &mut self,
        method: Option<&Value>,
        index: &Index<'_>,
        probes: &mut Vec<Probe>,
    ) -> Vec<Step> {
        let list = self.activities("method", method);
        let mut planned = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("method[{i}]");
            let Some((def, act)) = self.resolve(&at, entry, index) else {
                continue;
            };
            let [before, after] = self.pauses(&def, act);
            let background = act.get("background") == Some(&Value::Bool(true));
            match act.get("type").and_then(Value::as_str) {
                Some("probe") => {
                    planned.extend(before.map(Planned::Pause));
                    if let Some(p) = self.probe(&def, act, act.get("tolerance"), Mode::Continuous) {
                        let how = if act.contains_key("tolerance") {
                            "its tolerance"
                        } else {
                            "no tolerance, so any HTTP status or exit code 0"
                        };
                        self.note(
                            &at,
                            format!(
                                "probe {:?} became a continuous hypothesis probe checked with \
                                 {how} (Chaos Toolkit runs it once, at this point of the method, \
                                 and only records it)",
                                p.name
                            ),
                        );
                        probes.push(p);
                    }
                    planned.extend(after.map(Planned::Pause));
                }
                Some("action") => {
                    if background && (before.is_some() || after.is_some()) {
                        self.note(&def, "pauses of a background action are ignored");
                    }
                    if !background {
                        planned.extend(before.map(Planned::Pause));
                    }
                    if let Some(mut s) = self.signal_action(&def, act) {
                        s.background = background;
                        planned.push(Planned::Signal(s));
                    }
                    if !background {
                        planned.extend(after.map(Planned::Pause));
                    }
                }
                _ => self.err(format!("{def}.type"), "must be action or probe"),
            }
        }
        self.steps(planned)
    }

    /// The kill an action performs, when it runs `kill`, `pkill` or `killall`.
    pub(super) fn signal_action(
        &mut self,
        def: &str,
        act: &Map<String, Value>,
    ) -> Option<Signalled> {
        let name = self.activity_name(def, act);
        let call = self.call(def, act);
        let (name, call) = (name?, call?);
        let Call::Process(p) = call else {
            self.err(
                format!("{def}.provider.type"),
                format!(
                    "an http action cannot be mapped to a fault; Faultline's fault kinds are {}",
                    KINDS.join(", ")
                ),
            );
            return None;
        };
        let program = p.program.rsplit('/').next().unwrap_or_default();
        if !["kill", "pkill", "killall"].contains(&program) {
            self.err(
                format!("{def}.provider.path"),
                format!(
                    "action {name:?} runs {program:?}, which maps to no Faultline fault; the \
                     fault kinds are {} (an action running kill, pkill or killall maps to them)",
                    KINDS.join(", ")
                ),
            );
            return None;
        }
        let at = format!("{def}.provider.arguments");
        let read = match &p.args {
            Args::List(l) => kill::from_argv(program, l),
            Args::Line(s) => kill::from_line(program, s),
        };
        match read {
            Ok(k) => {
                if let Some(n) = k.approx {
                    self.note(&at, n);
                }
                Some(Signalled {
                    path: def.to_string(),
                    name,
                    target: k.target,
                    sig: k.sig,
                    background: false,
                })
            }
            Err(e) => {
                self.err(at, e);
                None
            }
        }
    }

    /// The method's steps from what its activities do, in order: pauses merge, a SIGSTOP held
    /// until the SIGCONT of the same process becomes `process-pause`, background kills (and the
    /// kill right after them, which Chaos Toolkit starts without waiting) a `parallel` group.
    pub(super) fn steps(&mut self, planned: Vec<Planned>) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::new();
        let mut i = 0;
        while let Some(p) = planned.get(i) {
            i += 1;
            let s = match p {
                Planned::Pause(d) => {
                    match steps.last_mut().and_then(|s| s.pause.as_mut()) {
                        Some(p) => p.0 += d.0,
                        None if !d.0.is_zero() => steps.push(Step {
                            pause: Some(*d),
                            ..Step::default()
                        }),
                        None => {}
                    }
                    continue;
                }
                Planned::Signal(s) => s,
            };
            match s.sig {
                Sig::Stop => {
                    let mut held = Duration::ZERO;
                    while let Some(Planned::Pause(d)) = planned.get(i) {
                        held += d.0;
                        i += 1;
                    }
                    match planned.get(i) {
                        Some(Planned::Signal(c))
                            if c.sig == Sig::Cont
                                && c.target == s.target
                                && !held.is_zero()
                                && !s.background =>
                        {
                            steps.push(Step {
                                name: Some(s.name.clone()),
                                fault: Some("process-pause".into()),
                                target: s.target.clone(),
                                duration: Some(Dur(held)),
                                ..Step::default()
                            });
                            self.note(
                                &s.path,
                                format!(
                                    "SIGSTOP until {}'s SIGCONT became process-pause for {}",
                                    c.path,
                                    Dur(held)
                                ),
                            );
                            i += 1;
                        }
                        _ => self.err(
                            format!("{}.provider.arguments", s.path),
                            "a SIGSTOP maps to process-pause only when the next action sends \
                             SIGCONT to the same process after a pause (pauses.after), which \
                             sets how long it is held",
                        ),
                    }
                }
                Sig::Cont => self.err(
                    format!("{}.provider.arguments", s.path),
                    "a SIGCONT maps only as the end of a SIGSTOP of the same process before it",
                ),
                Sig::Kill(sig) => {
                    let mut group = vec![kill_step(s, sig)];
                    let mut open = s.background;
                    while let (true, Some(Planned::Signal(next))) = (open, planned.get(i)) {
                        let Sig::Kill(sig) = next.sig else { break };
                        group.push(kill_step(next, sig));
                        open = next.background;
                        i += 1;
                    }
                    if let [one] = group.as_slice() {
                        steps.push(Step {
                            name: one.name.clone(),
                            fault: Some(one.fault.clone()),
                            target: one.target.clone(),
                            params: one.params.clone(),
                            ..Step::default()
                        });
                    } else {
                        let names: Vec<String> = group
                            .iter()
                            .map(|f| format!("{:?}", f.name.as_deref().unwrap_or_default()))
                            .collect();
                        self.note(
                            &s.path,
                            format!(
                                "background actions, with the action after them, became one \
                                 parallel step: {} start together",
                                names.join(", ")
                            ),
                        );
                        steps.push(Step {
                            parallel: Some(group),
                            ..Step::default()
                        });
                    }
                }
            }
        }
        for (n, s) in steps.iter().enumerate() {
            if let Some(p) = s.pause.filter(|p| p.0 > Duration::from_secs(3600)) {
                self.err(
                    "method",
                    format!("pauses add up to {p} at step {n}; Faultline pauses at most 1h"),
                );
            }
        }
        steps
    }

    pub(super) fn rollbacks(
        &mut self,
        v: Option<&Value>,
        index: &Index<'_>,
        runtime: Option<&Value>,
    ) -> Vec<Rollback> {
        let list = self.activities("rollbacks", v);
        let strategy = runtime
            .and_then(|r| r.get("rollbacks"))
            .and_then(|r| r.get("strategy"))
            .and_then(Value::as_str);
        match strategy {
            None | Some("default" | "always") => {}
            Some("never") => {
                self.note(
                    "runtime.rollbacks.strategy",
                    "never: the rollbacks were left out",
                );
                return Vec::new();
            }
            Some(s) => self.note(
                "runtime.rollbacks.strategy",
                format!("{s:?} is ignored: Faultline runs rollbacks after every run"),
            ),
        }
        let mut out = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("rollbacks[{i}]");
            let Some((def, act)) = self.resolve(&at, entry, index) else {
                continue;
            };
            if act.contains_key("pauses") {
                self.note(&def, "pauses of a rollback are ignored");
            }
            let name = act.get("name").and_then(Value::as_str).map(str::to_string);
            let Some(call) = self.call(&def, act) else {
                continue;
            };
            let (timeout, http, command) = match call {
                Call::Http(h) => {
                    if !h.tls_verify {
                        self.note(&def, "verify_tls: false is ignored: rollbacks verify TLS");
                    }
                    let action = HttpAction {
                        url: h.url,
                        method: h.method,
                        headers: h.headers,
                        body: h.body,
                        expect_status: None,
                    };
                    (h.timeout, Some(action), None)
                }
                Call::Process(p) => {
                    let (run, shell) = p.command();
                    let action = CommandAction {
                        run,
                        shell,
                        env: BTreeMap::new(),
                        workdir: None,
                        expect_exit: 0,
                        capture_output: false,
                    };
                    (p.timeout, None, Some(action))
                }
            };
            let timeout = match timeout {
                Some(t) if t.0 > Duration::from_secs(600) => {
                    self.note(
                        &def,
                        format!("timeout {t} shortened to 10m, the longest a rollback may take"),
                    );
                    Dur::secs(600)
                }
                Some(t) if !t.0.is_zero() => t,
                _ => Dur::secs(30),
            };
            out.push(Rollback {
                name,
                command,
                http,
                timeout,
            });
        }
        out
    }
}

/// A `process-kill` fault from what a kill action does.
pub(super) fn kill_step(s: &Signalled, sig: Signal) -> FaultStep {
    FaultStep {
        name: Some(s.name.clone()),
        fault: "process-kill".into(),
        weight: crate::template::default_weight(),
        target: s.target.clone(),
        params: json!({ "signal": sig }),
        duration: None,
    }
}
