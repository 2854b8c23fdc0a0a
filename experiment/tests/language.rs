//! The template language end to end through the public parser: every construct of the issue's
//! example, the errors people make, and the fix hints they get.
use faultline_experiment::{
    parse_template,
    probes::{Mode, ProbeKind, StatusSpec, ValueExpect},
    Stage,
};
use std::time::Duration;

const FULL: &str = include_str!("fixtures/full.yaml");

#[test]
fn the_full_language_parses() {
    let e = parse_template(FULL).unwrap_or_else(|e| panic!("{e}"));
    let p = &e.hypothesis.probes;
    assert_eq!(p.len(), 6);
    let kinds: Vec<&str> = p.iter().map(|p| p.kind_name()).collect();
    assert_eq!(
        kinds,
        ["http", "tcp", "prometheus", "postgres", "redis", "command"]
    );
    let modes: Vec<Mode> = p.iter().map(|p| p.mode).collect();
    assert_eq!(
        modes,
        [
            Mode::Continuous,
            Mode::Edge,
            Mode::OnChaos,
            Mode::Eot,
            Mode::Sot,
            Mode::Continuous
        ]
    );
    assert_eq!(p[0].attempts, 2);
    let Some(ProbeKind::Http(h)) = p[0].kind() else {
        panic!()
    };
    assert!(h.expect.status.accepts(204) && !h.expect.status.accepts(301));
    assert_eq!(e.hypothesis.min_score, Some(60.0));

    let plan = e.plan();
    assert_eq!(plan.len(), 3);
    assert!(matches!(&plan[1], Stage::Pause(d) if *d == Duration::from_secs(5)));
    let Stage::Faults(group) = &plan[2] else {
        panic!()
    };
    assert_eq!(group.len(), 2);
    assert_eq!(group[1].path, "steps[2].parallel[1]");
    assert_eq!(group[1].ordinal, 2);
    assert_eq!(e.weights(), vec![5, 8, 5]);
    // baseline 5 + kill 0 + pause 5 + group max 30 + recover 30, plus probe and rollback slack
    let planned = e.planned_duration();
    assert!(planned >= Duration::from_secs(70), "{planned:?}");
    assert!(planned <= Duration::from_secs(200), "{planned:?}");
    assert_eq!(e.abort_when[0].consecutive_failures, 10);
    assert_eq!(e.rollbacks.len(), 2);
}

#[test]
fn serialised_spec_reads_back_the_same() {
    // The hub sends the validated template to the delegate as JSON.
    let e = parse_template(FULL).unwrap();
    let json = serde_json::to_string(&e).unwrap();
    let back: faultline_experiment::Experiment = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
    back.validate().unwrap();
}

#[test]
fn litmus_spellings_of_modes_are_accepted() {
    for (written, mode) in [
        ("SOT", Mode::Sot),
        ("EOT", Mode::Eot),
        ("Edge", Mode::Edge),
        ("Continuous", Mode::Continuous),
        ("OnChaos", Mode::OnChaos),
        ("onChaos", Mode::OnChaos),
    ] {
        let y = FULL.replacen("mode: continuous", &format!("mode: {written}"), 1);
        let e = parse_template(&y).unwrap_or_else(|e| panic!("{written}: {e}"));
        assert_eq!(e.hypothesis.probes[0].mode, mode);
    }
}

fn errors(yaml: &str) -> Vec<faultline_experiment::SpecError> {
    parse_template(yaml).expect_err("should be refused").0
}

fn find<'a>(
    errs: &'a [faultline_experiment::SpecError],
    field: &str,
) -> &'a faultline_experiment::SpecError {
    errs.iter()
        .find(|e| e.field == field)
        .unwrap_or_else(|| panic!("no error on {field}: {errs:?}"))
}

#[test]
fn meaning_errors_are_located_and_hinted() {
    let bad = FULL
        .replace("fault: process-kill", "fault: proces-kill")
        .replace(
            "probe: checkout-ok\n    consecutiveFailures: 10",
            "probe: checkout-okk\n    consecutiveFailures: 0",
        )
        .replace("status: \"2xx\"", "status: \"2zz\"")
        .replace("attempts: 2", "attempts: 0")
        .replace("minScore: 60", "minScore: 160")
        .replace(
            "tcp: {address: \"127.0.0.1:5432\"}",
            "tcp: {address: \"127.0.0.1\"}",
        );
    let errs = errors(&bad);
    let kill = find(&errs, "steps[0].fault");
    assert_eq!(kill.hint.as_deref(), Some("did you mean \"process-kill\"?"));
    assert_eq!((kill.line, kill.column), (Some(40), Some(5)), "{kill:?}");
    let g = find(&errs, "abortWhen[0].probe");
    assert_eq!(g.hint.as_deref(), Some("did you mean \"checkout-ok\"?"));
    find(&errs, "abortWhen[0].consecutiveFailures");
    find(&errs, "hypothesis.probes[0].http.expect.status");
    find(&errs, "hypothesis.probes[0].attempts");
    find(&errs, "hypothesis.minScore");
    let tcp = find(&errs, "hypothesis.probes[1].tcp.address");
    assert_eq!(tcp.hint.as_deref(), Some("write host:port"));
    assert!(errs.iter().all(|e| e.line.is_some()), "{errs:?}");
}

#[test]
fn unknown_fields_get_a_did_you_mean() {
    let errs = errors(&FULL.replace("initialDelay: 0s", "initalDelay: 0s"));
    let e = &errs[0];
    assert_eq!(e.field, "hypothesis.probes[0].initalDelay", "{e:?}");
    assert_eq!(
        e.hint.as_deref(),
        Some("did you mean \"initialDelay\"?"),
        "{e:?}"
    );
    assert_eq!(e.line, Some(20));
}

#[test]
fn step_shapes_are_checked() {
    let bad = FULL.replace(
        "  - pause: 5s\n",
        "  - pause: 5s\n    fault: process-kill\n  - pause: 2s\n    weight: 3\n  - parallel: []\n",
    );
    let errs = errors(&bad);
    find(&errs, "steps[1]");
    find(&errs, "steps[2].weight");
    find(&errs, "steps[3].parallel");
}

/// The method of FULL replaced by `steps` (YAML lines under `steps:`).
fn with_steps(steps: &str) -> String {
    FULL.replace(
        &FULL[FULL.find("steps:\n").unwrap()..FULL.find("abortWhen:").unwrap()],
        &format!("steps:\n{steps}"),
    )
}

#[test]
fn a_steady_state_check_needs_no_fault_and_has_no_score() {
    for steps in ["", "  - pause: 1s\n"] {
        let e = parse_template(&with_steps(steps)).unwrap_or_else(|e| panic!("{e}"));
        assert!(e.faults().is_empty());
        assert!(e.weights().is_empty());
        assert_eq!(
            faultline_experiment::score::score(&e.weights(), [(0, true)]),
            None
        );
    }
    // `steps` may be left out altogether.
    let bare = with_steps("").replace("steps:\n", "");
    assert!(parse_template(&bare).unwrap().steps.is_empty());
}

#[test]
fn action_steps_plan_with_their_undo_and_background() {
    let e = parse_template(&with_steps(
        r#"  - name: drain
    action:
      command: {run: [/usr/bin/kubectl, drain, node-1], env: {KUBECONFIG: /etc/k}, workdir: /tmp, expectExit: 0}
      timeout: 20s
    undo:
      command: {run: [/usr/bin/kubectl, uncordon, node-1]}
    background: true
  - fault: process-kill
    target: {name: checkout}
  - action:
      http: {url: "http://127.0.0.1:8474/proxies/db/toxics", method: POST, body: "{}", expectStatus: 200}
"#,
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let plan = e.plan();
    let Stage::Action(drain) = &plan[0] else {
        panic!("{plan:?}")
    };
    assert_eq!((drain.step, drain.path.as_str()), (0, "steps[0]"));
    assert!(drain.background);
    assert_eq!(drain.action.timeout.0, Duration::from_secs(20));
    let undo = drain.undo.as_ref().unwrap().command.as_ref().unwrap();
    assert_eq!(undo.run[1], "uncordon");
    assert!(matches!(&plan[1], Stage::Faults(g) if g[0].ordinal == 0));
    let Stage::Action(post) = &plan[2] else {
        panic!("{plan:?}")
    };
    assert_eq!(post.action.http.as_ref().unwrap().expect_status, Some(200));
    assert!(post.undo.is_none() && !post.background);
    // Actions are not faults: one weight, for the kill.
    assert_eq!(e.weights(), vec![5]);
    // Their timeouts (and undos') bound the run.
    assert!(e.planned_duration() >= Duration::from_secs(20 + 30 + 30));
    // Serialised for the delegate and read back, it is the same experiment.
    let back: faultline_experiment::Experiment =
        serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
    assert_eq!(back, e);
}

#[test]
fn action_steps_are_checked_field_by_field() {
    let errs = errors(&with_steps(
        r#"  - action: {command: {run: [true]}}
    fault: process-kill
  - fault: process-kill
    target: {name: x}
    undo: {command: {run: [true]}}
    background: true
  - action: {command: {run: [true]}, http: {url: "http://x/"}}
  - action: {http: {url: "ftp://x/", expectStatus: 99}, timeout: 0s}
    undo: {command: {shell: ""}}
  - action: {command: {run: [/bin/true]}}
    duration: 5s
"#,
    ));
    find(&errs, "steps[0]");
    let undo = find(&errs, "steps[1].undo");
    assert_eq!(undo.message, "belongs to an action step");
    find(&errs, "steps[1].background");
    find(&errs, "steps[2].action");
    find(&errs, "steps[3].action.http.url");
    find(&errs, "steps[3].action.http.expectStatus");
    find(&errs, "steps[3].action.timeout");
    find(&errs, "steps[3].undo.command.shell");
    assert_eq!(
        find(&errs, "steps[4].duration").message,
        "does not apply to an action"
    );
    assert!(errs.iter().all(|e| e.line.is_some()), "{errs:?}");
}

#[test]
fn a_probe_has_exactly_one_kind() {
    let errs = errors(&FULL.replace(
        "      mode: edge\n",
        "      mode: edge\n      redis: {address: \"127.0.0.1:6379\"}\n",
    ));
    let e = find(&errs, "hypothesis.probes[1].redis");
    assert!(e.message.contains("tcp and redis"), "{e:?}");
    let errs = errors(&FULL.replace(
        "      command: {run: [\"true\"], expect: {exitCode: 0}}\n",
        "",
    ));
    assert!(
        errs.iter()
            .any(|e| e.field == "hypothesis.probes[5]" && e.message.contains("no probe kind")),
        "{errs:?}"
    );
}

#[test]
fn capabilities_are_checked_per_field() {
    let e = parse_template(FULL).unwrap();
    let errs = e.check_capabilities(
        &["process-kill".into()],
        &["http".into(), "tcp".into()],
        "edge-1",
    );
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"steps[2].parallel[0].fault"), "{fields:?}");
    assert!(
        fields.contains(&"hypothesis.probes[2].prometheus"),
        "{fields:?}"
    );
    assert!(!fields.contains(&"steps[0].fault"), "{fields:?}");
    assert!(errs[0].message.contains("edge-1"));
    let all_f: Vec<String> = faultline_experiment::faults::KINDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let all_p: Vec<String> = faultline_experiment::probes::KINDS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(e.check_capabilities(&all_f, &all_p, "x").is_empty());
}

#[test]
fn status_and_value_expectations() {
    assert!(StatusSpec::Text("200-204".into()).accepts(204));
    assert!(!StatusSpec::Text("200-204".into()).accepts(205));
    assert!(StatusSpec::List(vec![200, 404]).accepts(404));
    assert!(StatusSpec::Text("99-100".into()).ranges().is_err());
    assert!(StatusSpec::Text("700xx".into()).ranges().is_err()); // no overflow panic
    let ge: ValueExpect = serde_json::from_str(r#"{"op": ">=", "value": 0.99}"#).unwrap();
    assert!(ge.matches("0.995").is_ok());
    assert_eq!(ge.matches("0.5").unwrap_err(), "0.5 is not >= 0.99");
    assert!(ge.matches("NaN").is_err());
    let between: ValueExpect = serde_json::from_str(r#"{"between": [1, 2]}"#).unwrap();
    assert!(between.matches("1").is_ok() && between.matches("2.5").is_err());
    let text: ValueExpect = serde_json::from_str(r#"{"value": "PONG"}"#).unwrap();
    assert!(text.matches("PONG").is_ok() && text.matches("pong").is_err());
    let ne: ValueExpect = serde_json::from_str(r#"{"op": "!=", "value": 0}"#).unwrap();
    assert!(ne.matches("1").is_ok() && ne.matches("0").is_err());
    assert!(ValueExpect::default().matches("anything").is_ok());
}

#[test]
fn command_probes_compare_stdout_as_a_value() {
    let with = |expect: &str| {
        FULL.replace(
            r#"command: {run: ["true"], expect: {exitCode: 0}}"#,
            &format!(r#"command: {{run: ["echo", "312"], expect: {expect}}}"#),
        )
    };
    let e = parse_template(&with(r#"{value: {between: [0, 250]}}"#)).unwrap();
    let c = e
        .hypothesis
        .probes
        .iter()
        .find_map(|p| p.command.as_ref())
        .unwrap();
    let v = c.expect.value.as_ref().unwrap();
    assert_eq!(v.between, Some([0.0, 250.0]));
    assert_eq!(
        v.matches("312").unwrap_err(),
        "312 is not between 0 and 250"
    );
    let lt = parse_template(&with(r#"{value: {op: "<", value: 250}}"#)).unwrap();
    let c = lt.hypothesis.probes.iter().find_map(|p| p.command.as_ref());
    assert!(c
        .unwrap()
        .expect
        .value
        .as_ref()
        .unwrap()
        .matches("249")
        .is_ok());
    // Text compares only with == and !=; an empty comparison and both forms at once are refused
    // on the field.
    let at = "hypothesis.probes[5].command.expect.value";
    for (expect, field, starts) in [
        (
            r#"{value: {op: ">", value: ready}}"#,
            "op",
            "text compares only",
        ),
        (r#"{value: {}}"#, "", "compares nothing"),
        (
            r#"{value: {op: "<", value: 1, between: [0, 2]}}"#,
            "between",
            "give either between or op/value",
        ),
        (r#"{value: {op: "<"}}"#, "value", "op needs a value"),
        (
            r#"{value: {value: [1]}}"#,
            "value",
            "must be a number or a string",
        ),
    ] {
        let field = if field.is_empty() {
            at.to_string()
        } else {
            format!("{at}.{field}")
        };
        let errs = errors(&with(expect));
        let e = find(&errs, &field);
        assert!(e.message.starts_with(starts), "{expect}: {e:?}");
    }
    let errs = errors(&with(r#"{value: {op: "~", value: 1}}"#));
    assert!(
        errs.iter().any(|e| e.field.starts_with(at)),
        "unknown op: {errs:?}"
    );
}

#[test]
fn k8s_probes_name_the_field_at_fault() {
    let probe = |k8s: &str| {
        format!(
            "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: x}}\nhypothesis:\n  probes:\n    - {{name: k, k8s: {k8s}}}\n"
        )
    };
    for ok in [
        "{namespace: shop, resource: Deployment, name: web, field: /status/readyReplicas, expect: {op: \">=\", value: 3}}",
        "{namespace: shop, resource: Pod, name: web-0, absent: true}",
        "{namespace: shop, podsReady: {labelSelector: app=web, min: 2}}",
    ] {
        parse_template(&probe(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, field, words) in [
        (
            "{namespace: shop}",
            "hypothesis.probes[0].k8s",
            "resource and name, or podsReady",
        ),
        (
            "{namespace: shop, resource: Secret, name: s}",
            "hypothesis.probes[0].k8s.resource",
            "unknown resource",
        ),
        (
            "{namespace: shop, resource: Pod, name: p, field: status}",
            "hypothesis.probes[0].k8s.field",
            "JSON pointer",
        ),
        (
            "{namespace: shop, resource: Pod, name: p, expect: {value: 1}}",
            "hypothesis.probes[0].k8s.expect",
            "only applies with field",
        ),
        (
            "{namespace: shop, resource: Pod, name: p, absent: true, field: /a}",
            "hypothesis.probes[0].k8s.absent",
            "not with field",
        ),
        (
            "{namespace: shop, podsReady: {labelSelector: a=b, min: 0}}",
            "hypothesis.probes[0].k8s.podsReady.min",
            "at least 1",
        ),
    ] {
        let errs = errors(&probe(bad));
        let e = find(&errs, field);
        assert!(e.message.contains(words), "{bad}: {e:?}");
    }
}
