//! The method and the rollbacks: kills as `process-kill` (a SIGSTOP then SIGCONT as
//! `process-pause`), toxics POSTed to a Toxiproxy API as `tcp-proxy`, other `process` and `http`
//! actions as action steps, pauses, background groups, method probes, and `http` / `process`
//! rollbacks. What chaosk8s actions do is read in `kubernetes`; their steps are laid out here
//! with the others.
use super::{
    kubernetes::K8sPlanned,
    probes::{Args, Call, HttpCall, ProcessCall},
    reading::Index,
    Cx,
};
use crate::{
    faults::{parse_toxic, PickOrder, Signal},
    import::kill::{self, Sig},
    probes::{Mode, Probe, StatusSpec},
    template::{Action, CommandAction, FaultStep, HttpAction, Rollback, Step},
    Dur,
};
use serde_json::{json, Map, Value};
use std::{collections::BTreeMap, time::Duration};

/// One entry of the method once read: a wait, a signal to a process, an action step, or a
/// toxic added through a Toxiproxy API.
pub(super) enum Planned {
    Pause(Dur),
    Signal(Signalled),
    Action {
        step: Box<Step>,
        /// `(proxy, toxic)` when this is a DELETE of a toxic through a Toxiproxy API.
        removes: Option<(String, String)>,
    },
    Toxic(Toxicked),
    /// A chaosk8s action: a Kubernetes fault, or the end of one.
    K8s(Box<K8sPlanned>),
}

/// A toxic POSTed to `/proxies/NAME/toxics`.
pub(super) struct Toxicked {
    pub(super) path: String,
    pub(super) name: String,
    pub(super) proxy: String,
    /// The toxic as Toxiproxy reads it, checked.
    pub(super) toxic: Value,
    pub(super) toxic_name: String,
}

pub(super) struct Signalled {
    /// Path of the activity, for errors.
    pub(super) path: String,
    pub(super) name: String,
    /// `{name: ...}`, `{command: ...}` or `{pidFile: ...}`, maybe with `user`.
    pub(super) target: Value,
    pub(super) sig: Sig,
    /// `pkill -o` / `-n`.
    pub(super) pick: Option<PickOrder>,
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
                        let how = match (act.contains_key("tolerance"), &p.k8s) {
                            (true, _) => "its tolerance",
                            (false, Some(_)) => "no tolerance, so it passes when its check holds",
                            (false, None) => "no tolerance, so any HTTP status or exit code 0",
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
                    if let Some(p) = self.action(&def, act, background) {
                        planned.push(p);
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

    /// What an action does: a kill, a Toxiproxy toxic, or a command or request to run.
    fn action(&mut self, def: &str, act: &Map<String, Value>, background: bool) -> Option<Planned> {
        let name = self.activity_name(def, act);
        let call = self.call(def, act);
        let (name, call) = (name?, call?);
        match call {
            Call::K8s(k) => self
                .k8s_action(def, name, &k, background)
                .map(|k| Planned::K8s(Box::new(k))),
            Call::Process(p) => {
                let program = p.program.rsplit('/').next().unwrap_or_default();
                if ["kill", "pkill", "killall"].contains(&program) {
                    let mut s = self.signal_action(def, name, &p)?;
                    s.background = background;
                    return Some(Planned::Signal(s));
                }
                let (run, shell) = p.command();
                let command = CommandAction {
                    run,
                    shell,
                    env: BTreeMap::new(),
                    workdir: None,
                    expect_exit: 0,
                    capture_output: false,
                };
                let timeout = self.action_timeout(def, p.timeout);
                self.action_note();
                Some(Planned::Action {
                    step: Box::new(action_step(name, background, Some(command), None, timeout)),
                    removes: None,
                })
            }
            Call::Http(h) => {
                let toxics = toxiproxy_path(&h.url);
                if let ("POST", Some((proxy, None))) = (h.method.as_str(), &toxics) {
                    if background {
                        self.note(def, "background is ignored: the toxic is a tcp-proxy step");
                    }
                    return self.toxic(def, name, proxy.clone(), &h);
                }
                let removes = match (h.method.as_str(), toxics) {
                    ("DELETE", Some((proxy, Some(toxic)))) => Some((proxy, toxic)),
                    _ => None,
                };
                if h.attempts > 1 {
                    self.note(def, "max_retries is ignored: an action is sent once");
                }
                let timeout = self.action_timeout(def, h.timeout);
                let http = self.http_action(def, h)?;
                self.action_note();
                Some(Planned::Action {
                    step: Box::new(action_step(name, background, None, Some(http), timeout)),
                    removes,
                })
            }
        }
    }

    fn action_note(&mut self) {
        self.note(
            "method",
            "process and http actions became action steps: one that exits other than 0, or \
             answers other than 2xx (or its expected_status), ends the run with ERROR, where \
             Chaos Toolkit records the failure and goes on",
        );
    }

    /// At most 10m; without one, 30s (Chaos Toolkit waits without limit).
    fn action_timeout(&mut self, def: &str, t: Option<Dur>) -> Dur {
        match t {
            Some(t) if t.0 > Duration::from_secs(600) => {
                self.note(
                    def,
                    format!("timeout {t} shortened to 10m, the longest an action may take"),
                );
                Dur::secs(600)
            }
            Some(t) if !t.0.is_zero() => t,
            _ => {
                self.note(
                    def,
                    "no timeout: the action step is stopped after 30s (Chaos Toolkit waits \
                     without limit); give the provider a timeout, at most 600",
                );
                Dur::secs(30)
            }
        }
    }

    /// An http provider as an action's request; `expected_status` becomes `expectStatus`.
    pub(super) fn http_action(&mut self, def: &str, h: HttpCall) -> Option<HttpAction> {
        if !h.tls_verify {
            self.note(
                def,
                "verify_tls: false is ignored: actions and rollbacks verify TLS",
            );
        }
        let expect_status = match h.expected_status {
            None => None,
            Some(StatusSpec::One(s)) => Some(s),
            Some(StatusSpec::List(l)) if l.len() == 1 => Some(l[0]),
            Some(_) => {
                self.err(
                    format!("{def}.provider.expected_status"),
                    "lists several statuses; an action or rollback expects one (expectStatus)",
                );
                return None;
            }
        };
        Some(HttpAction {
            url: h.url,
            method: h.method,
            headers: h.headers,
            body: h.body,
            expect_status,
        })
    }

    /// A toxic POSTed to a Toxiproxy API, checked as Faultline reads toxics.
    fn toxic(&mut self, def: &str, name: String, proxy: String, h: &HttpCall) -> Option<Planned> {
        let at = format!("{def}.provider.arguments");
        let toxic = match &h.arguments {
            Some(Value::Object(o)) => Value::Object(o.clone()),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    self.err(&at, "must be the toxic as JSON: {type, attributes, ...}");
                    return None;
                }
            },
            _ => {
                self.err(
                    &at,
                    "is required: the toxic Toxiproxy adds, {type, attributes, ...}",
                );
                return None;
            }
        };
        match parse_toxic(&toxic, &at) {
            Ok(t) => Some(Planned::Toxic(Toxicked {
                path: def.to_string(),
                name,
                proxy,
                toxic,
                toxic_name: t.name,
            })),
            Err(e) => {
                self.err(e.field, e.message);
                None
            }
        }
    }

    /// The kill an action running `kill`, `pkill` or `killall` performs.
    fn signal_action(&mut self, def: &str, name: String, p: &ProcessCall) -> Option<Signalled> {
        let program = p.program.rsplit('/').next().unwrap_or_default();
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
                    pick: k.pick,
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
                Planned::K8s(k) => {
                    self.k8s_step(k, &planned, &mut i, &mut steps);
                    continue;
                }
                Planned::Action { step, .. } => {
                    steps.push(Step::clone(step));
                    continue;
                }
                Planned::Toxic(t) => {
                    let mut held = Duration::ZERO;
                    while let Some(Planned::Pause(d)) = planned.get(i) {
                        held += d.0;
                        i += 1;
                    }
                    let key = (t.proxy.clone(), t.toxic_name.clone());
                    let removed = match planned.get(i) {
                        Some(Planned::Action {
                            removes: Some(r), ..
                        }) if *r == key => {
                            i += 1;
                            true
                        }
                        _ => false,
                    };
                    self.toxic_step(t, held, removed, &mut steps);
                    continue;
                }
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
                                params: match pick_params(s.pick) {
                                    m if m.is_empty() => Value::Null,
                                    m => Value::Object(m),
                                },
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

    /// A toxic held for the pauses after it (until the action that removes it, if one comes
    /// next) as a `tcp-proxy` step on the proxy of that name.
    fn toxic_step(&mut self, t: &Toxicked, held: Duration, removed: bool, steps: &mut Vec<Step>) {
        if held.is_zero() {
            self.err(
                format!("{}.pauses.after", t.path),
                "a toxic added through the Toxiproxy API maps to a tcp-proxy step held for the \
                 pauses after it (until an action deletes it); give pauses.after, how long the \
                 toxic stays",
            );
            return;
        }
        let until = if removed {
            "until the action that deletes it"
        } else {
            "then removes it (Chaos Toolkit leaves it until a later action or a rollback deletes \
             it)"
        };
        self.note(
            &t.path,
            format!(
                "toxic {:?} became a tcp-proxy step on proxy {:?} for {} {until}; it is added to \
                 that proxy of the delegate's Toxiproxy-compatible API (--toxiproxy-api), not to \
                 the server in the URL",
                t.toxic_name,
                t.proxy,
                Dur(held)
            ),
        );
        self.toxics.insert((t.proxy.clone(), t.toxic_name.clone()));
        steps.push(Step {
            name: Some(t.name.clone()),
            fault: Some("tcp-proxy".into()),
            target: json!({ "proxy": t.proxy }),
            params: json!({ "toxics": [t.toxic] }),
            duration: Some(Dur(held)),
            ..Step::default()
        });
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
                Call::K8s(k) => {
                    self.k8s_rollback(&def, &k);
                    continue;
                }
                Call::Http(h) => {
                    if let ("DELETE", Some((proxy, Some(toxic)))) =
                        (h.method.as_str(), toxiproxy_path(&h.url))
                    {
                        if self.toxics.contains(&(proxy.clone(), toxic.clone())) {
                            self.note(
                                &def,
                                format!(
                                    "left out: the tcp-proxy step removes toxic {toxic:?} from \
                                     proxy {proxy:?} when it ends"
                                ),
                            );
                            continue;
                        }
                    }
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
    let mut params = pick_params(s.pick);
    params.insert("signal".into(), json!(sig));
    FaultStep {
        name: Some(s.name.clone()),
        fault: "process-kill".into(),
        weight: crate::template::default_weight(),
        target: s.target.clone(),
        params: Value::Object(params),
        duration: None,
    }
}

/// `count: 1, pick: oldest` for `pkill -o` (newest for `-n`); empty otherwise.
fn pick_params(pick: Option<PickOrder>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(p) = pick {
        m.insert("count".into(), json!(1));
        m.insert("pick".into(), json!(p));
    }
    m
}

/// An action step running `command` or sending `http`.
fn action_step(
    name: String,
    background: bool,
    command: Option<CommandAction>,
    http: Option<HttpAction>,
    timeout: Dur,
) -> Step {
    Step {
        name: Some(name),
        action: Some(Action {
            command,
            http,
            timeout,
        }),
        background,
        ..Step::default()
    }
}

/// `(proxy, None)` for a Toxiproxy API's `/proxies/NAME/toxics`, `(proxy, Some(toxic))` for
/// `/proxies/NAME/toxics/TOXIC`.
fn toxiproxy_path(url: &str) -> Option<(String, Option<String>)> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let path = path.split(['?', '#']).next()?.trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["proxies", p, "toxics"] if !p.is_empty() => Some((p.to_string(), None)),
        ["proxies", p, "toxics", t] if !p.is_empty() && !t.is_empty() => {
            Some((p.to_string(), Some(t.to_string())))
        }
        _ => None,
    }
}
