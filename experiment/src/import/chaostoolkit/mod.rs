//! Chaos Toolkit experiments (JSON or YAML) to Faultline experiments.
//!
//! What maps, in short (the full table is in `docs/chaostoolkit-import.md`):
//! - `title`, `description`, `tags` become the metadata; `configuration` values are substituted
//!   into `${name}` references everywhere, as Chaos Toolkit does at run time.
//! - Steady-state probes with `http` or `process` providers become hypothesis probes in mode
//!   `edge`; their tolerances become the probe's expectations.
//! - Method actions that run `kill`, `pkill` or `killall` become `process-kill` steps (a SIGSTOP
//!   followed by a SIGCONT of the same process becomes `process-pause`); a toxic added through a
//!   Toxiproxy API becomes a `tcp-proxy` step; other `process` and `http` actions become action
//!   steps; method probes become `continuous` probes; `pauses` become pause steps; `background`
//!   kills a `parallel` group. A method of probes only is a steady-state check.
//! - Rollbacks with `http` or `process` providers become `http` and `command` rollbacks.
//! - Activities of the `chaosk8s` extension (Python providers) become the Kubernetes faults and
//!   `k8s` probes where they map; rollbacks that undo a held fault are absorbed by its revert.
//!
//! Everything else (other Python providers and tolerances, secrets, kills it cannot pin down,
//! chaosk8s activities that do not map) is an error naming its path in the source, and every
//! such problem is reported, not just the first.
//! This module reads text and builds values; it never reads the environment or runs anything,
//! so `{type: env}` configuration resolves only through its `default`.
//!
//! The parts: this module holds the entry, the whole document's shape and the notes and errors;
//! `reading` the document, configuration substitution and `ref`s; `probes` providers and
//! probes; `tolerances` what a tolerance expects; `actions` the method and the rollbacks;
//! `kubernetes` the chaosk8s activities.
mod actions;
mod kubernetes;
mod probes;
mod reading;
mod tolerances;

use super::{finish, ImportError, ImportErrors, Imported, Options};
use crate::{
    template::{Experiment, Hypothesis, Step, Target, API_VERSION},
    Dur,
};
use probes::hypothesis_note;
use reading::{index, read};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Converts a Chaos Toolkit experiment, naming the template after its title.
pub fn from_chaostoolkit(source: &str) -> Result<Imported, ImportErrors> {
    convert(source, &Options::default())
}

/// Converts a Chaos Toolkit experiment with the caller's options.
pub fn convert(source: &str, opts: &Options) -> Result<Imported, ImportErrors> {
    let doc = read(source)?;
    let Some(top) = doc.as_object() else {
        return Err(ImportErrors(vec![ImportError::new(
            "",
            "a Chaos Toolkit experiment is a mapping with title, steady-state-hypothesis and method",
        )]));
    };
    let mut cx = Cx::default();
    let exp = cx.experiment(top, opts);
    if !cx.errors.is_empty() {
        return Err(ImportErrors(cx.errors));
    }
    let title = top.get("title").and_then(Value::as_str).unwrap_or_default();
    finish(
        &exp,
        &format!("Converted from the Chaos Toolkit experiment {title:?}."),
        cx.notes,
    )
}

/// What the conversion has found so far.
#[derive(Default)]
struct Cx {
    errors: Vec<ImportError>,
    notes: Vec<String>,
    /// Probe names already used: Faultline's must be unique, Chaos Toolkit's need not be.
    probe_names: BTreeSet<String>,
    /// Toxics (proxy, toxic name) that became tcp-proxy steps, whose revert removes them.
    toxics: BTreeSet<(String, String)>,
    /// Workloads scaled and nodes cordoned by held Kubernetes steps, whose revert undoes them.
    k8s_held: BTreeSet<kubernetes::Held>,
    /// The note on which cluster chaosk8s activities act on is given once.
    k8s_noted: bool,
}

const TOP_LEVEL: &[&str] = &[
    "version",
    "title",
    "description",
    "tags",
    "configuration",
    "secrets",
    "steady-state-hypothesis",
    "method",
    "rollbacks",
    "runtime",
    "controls",
    "extensions",
    "contributions",
];

impl Cx {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let e = ImportError::new(path, message);
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn note(&mut self, path: &str, message: impl AsRef<str>) {
        let n = format!("{path}: {}", message.as_ref());
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    fn experiment(&mut self, raw: &Map<String, Value>, opts: &Options) -> Experiment {
        let conf = self.configuration(raw.get("configuration"));
        if raw.contains_key("secrets") {
            self.err(
                "secrets",
                "cannot be mapped: a Faultline template is stored and shown as written and holds \
                 no secrets; remove this section and give probes what they need through the \
                 delegate's environment",
            );
        }
        // Substitute first, as Chaos Toolkit does before it runs an activity: every later step
        // then sees final values, at the same paths.
        let top: Map<String, Value> = raw
            .iter()
            .map(|(k, v)| match k.as_str() {
                "configuration" | "secrets" => (k.clone(), v.clone()),
                _ => (k.clone(), self.substitute(v, k, &conf)),
            })
            .collect();
        for key in top.keys() {
            match key.as_str() {
                "controls" => self.note(
                    key,
                    "ignored: controls run Python code around the experiment; Faultline has none",
                ),
                "extensions" | "contributions" => self.note(key, "ignored"),
                k if !TOP_LEVEL.contains(&k) => {
                    self.note(key, "ignored: not a Chaos Toolkit experiment field")
                }
                _ => {}
            }
        }
        let metadata = self.metadata(&top, opts);
        let run = self.runtime(top.get("runtime"));
        let index = index(&top);

        let mut probes = Vec::new();
        match top.get("steady-state-hypothesis") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                let list = self.activities("steady-state-hypothesis.probes", h.get("probes"));
                for (i, p) in list.iter().enumerate() {
                    let at = format!("steady-state-hypothesis.probes[{i}]");
                    if let Some(p) = self.steady_probe(&at, p, &index, &run) {
                        probes.push(p);
                    }
                }
                if !probes.is_empty() {
                    self.note("steady-state-hypothesis", hypothesis_note(run.mode));
                }
            }
            Some(_) => self.err("steady-state-hypothesis", "must be a mapping with probes"),
        }
        let steps = self.method(top.get("method"), &index, &mut probes);
        let acts = |s: &Step| s.fault.is_some() || s.parallel.is_some() || s.action.is_some();
        if self.errors.is_empty() && !steps.iter().any(acts) {
            self.note(
                "method",
                "no action: the template is a steady-state check (its probes give the verdict; \
                 there is no resilience score)",
            );
        }
        if probes.is_empty() && self.errors.is_empty() {
            self.err(
                "steady-state-hypothesis",
                "has no probes and the method has none either; a Faultline experiment needs at \
                 least one probe",
            );
        }
        let rollbacks = self.rollbacks(top.get("rollbacks"), &index, top.get("runtime"));
        Experiment {
            api_version: API_VERSION.into(),
            kind: "Experiment".into(),
            metadata,
            target: Target::default(),
            hypothesis: Hypothesis {
                probes,
                recover_within: Dur::secs(30),
                baseline: Dur::default(),
                min_score: None,
            },
            steps,
            abort_when: Vec::new(),
            rollbacks,
            schedule: None,
        }
    }
}
