//! Chaos Toolkit import through the public API: each fixture under `fixtures/chaostoolkit/` is a
//! Chaos Toolkit experiment (JSON or YAML), converted and checked field by field; the `bad-*`
//! ones check that every problem is reported at its path in the source.
use faultline_experiment::{
    import::{self, from_chaostoolkit, Format, ImportError, Imported, Options},
    parse_template,
    probes::{JsonExpect, Mode, Probe, StatusSpec},
    template::Step,
    Dur,
};
use serde_json::json;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/chaostoolkit/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Converts a fixture that must convert, and checks its YAML reads back as the same experiment.
fn convert(name: &str) -> Imported {
    let imported = from_chaostoolkit(&fixture(name)).unwrap_or_else(|e| panic!("{name}:\n{e}"));
    let reparsed = parse_template(&imported.yaml)
        .unwrap_or_else(|e| panic!("{name}: the YAML does not parse: {e}\n{}", imported.yaml));
    assert_eq!(reparsed, imported.experiment, "{name}");
    imported
}

/// The problems of a fixture that must not convert, as `path: message` lines.
fn problems(name: &str) -> Vec<ImportError> {
    match from_chaostoolkit(&fixture(name)) {
        Ok(i) => panic!("{name} converted:\n{}", i.yaml),
        Err(e) => e.0,
    }
}

fn paths(errs: &[ImportError]) -> Vec<&str> {
    errs.iter().map(|e| e.path.as_str()).collect()
}

fn assert_note(i: &Imported, start: &str) {
    assert!(
        i.notes.iter().any(|n| n.starts_with(start)),
        "no note starting {start:?} in {:#?}",
        i.notes
    );
}

fn probe<'a>(i: &'a Imported, name: &str) -> &'a Probe {
    let probes = &i.experiment.hypothesis.probes;
    probes
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no probe {name}: {probes:?}"))
}

fn kill(name: &str, target: serde_json::Value, signal: &str) -> Step {
    Step {
        name: Some(name.into()),
        fault: Some("process-kill".into()),
        target,
        params: json!({ "signal": signal }),
        ..Step::default()
    }
}

fn pause(secs: u64) -> Step {
    Step {
        pause: Some(Dur::secs(secs)),
        ..Step::default()
    }
}

#[test]
fn json_http_probes_pkill_and_rollbacks() {
    let i = convert("web-kill.json");
    let e = &i.experiment;
    assert!(i
        .yaml
        .starts_with("# Converted from the Chaos Toolkit experiment \"Web survives a killed worker!\".\napiVersion: faultline.dev/v1\n"));
    assert_eq!(e.metadata.name, "web-survives-a-killed-worker");
    assert_eq!(
        e.metadata.description,
        "The web tier keeps answering while one worker is killed."
    );
    let labels: Vec<(&str, &str)> = e
        .metadata
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("process-kill", "true"), ("web", "true")]);
    assert_eq!(e.hypothesis.recover_within, Dur::secs(30));

    let health = probe(&i, "health-is-ok");
    let h = health.http.as_ref().unwrap();
    assert_eq!(h.url, "http://127.0.0.1:8080/health");
    assert_eq!(h.method, "GET");
    assert_eq!(h.expect.status, StatusSpec::One(200));
    assert_eq!(health.mode, Mode::Edge);
    // timeout: [3, 5] is connect + read.
    assert_eq!(health.timeout, Dur::secs(8));

    let ping = probe(&i, "ping-answers");
    let h = ping.http.as_ref().unwrap();
    assert_eq!(h.method, "HEAD");
    assert_eq!(h.headers["Accept"], "text/plain");
    // "${expected}" is exactly one reference, so the number 204 keeps its type.
    assert_eq!(h.expect.status, StatusSpec::List(vec![200, 204]));
    assert_eq!(ping.timeout, Dur::from_millis(1500));

    assert_eq!(
        e.steps,
        [
            kill("kill-web-worker", json!({"name": "web-worker"}), "KILL"),
            pause(5)
        ]
    );

    let [start, tell] = e.rollbacks.as_slice() else {
        panic!("{:?}", e.rollbacks)
    };
    assert_eq!(start.name.as_deref(), Some("start-web"));
    assert_eq!(
        start.command.as_ref().unwrap().run,
        ["systemctl", "start", "web.service"]
    );
    assert_eq!(start.timeout, Dur::secs(20));
    let http = tell.http.as_ref().unwrap();
    assert_eq!(http.url, "http://127.0.0.1:8080/ops/events");
    assert_eq!(http.method, "POST");
    assert_eq!(
        http.body.as_deref(),
        Some(r#"{"event":"chaos-done","ok":true}"#)
    );
    assert_eq!(tell.timeout, Dur::secs(30));

    assert_note(&i, "tags: ");
    assert_note(
        &i,
        "steady-state-hypothesis.probes[0].provider.timeout: [connect, read]",
    );
    assert_note(&i, "steady-state-hypothesis: probes run in mode edge");
}

#[test]
fn yaml_process_probes_regex_and_pid_file_kill() {
    let i = convert("pidfile-regex.yaml");
    let e = &i.experiment;
    assert_eq!(e.metadata.name, "queue-consumer-comes-back-after-sigterm");

    let sub = probe(&i, "consumer-subscribed");
    let c = sub.command.as_ref().unwrap();
    assert_eq!(
        c.run,
        ["/usr/local/bin/queuectl", "status", "--queue", "orders"]
    );
    assert_eq!(
        c.expect.stdout_regex.as_deref(),
        Some("subscribed to orders")
    );
    assert_eq!(c.expect.exit_code, 0);
    assert_eq!(sub.timeout, Dur::secs(5));

    // A string of arguments runs through the shell, as Chaos Toolkit runs it.
    let lag = probe(&i, "lag-is-zero");
    let c = lag.command.as_ref().unwrap();
    assert!(c.run.is_empty());
    assert_eq!(
        c.shell.as_deref(),
        Some("sh -c 'queuectl lag orders | grep -q ^0$'")
    );
    assert_eq!(c.expect.exit_code, 0);

    // The pid file comes from env configuration through its default.
    assert_eq!(
        e.steps,
        [
            pause(2),
            kill(
                "terminate-consumer",
                json!({"pidFile": "/run/consumer.pid"}),
                "TERM"
            ),
            pause(10)
        ]
    );
    assert_note(
        &i,
        "configuration.pidfile: Chaos Toolkit reads the environment variable CONSUMER_PIDFILE",
    );

    let r = &e.rollbacks[0];
    let c = r.command.as_ref().unwrap();
    assert_eq!(
        c.shell.as_deref(),
        Some("systemctl restart consumer || true")
    );
    assert!(c.run.is_empty());
}

#[test]
fn jsonpath_and_range_tolerances_killall_and_method_probes() {
    let i = convert("jsonpath-range.yaml");
    let e = &i.experiment;
    assert_eq!(e.metadata.name, "api-checks-stay-green-when-nginx-reloads");

    let green = probe(&i, "checks-green");
    let h = green.http.as_ref().unwrap();
    assert_eq!(
        h.expect.json,
        [JsonExpect {
            pointer: "/checks/0/state".into(),
            equals: json!("green")
        }]
    );
    // A jsonpath tolerance does not look at the status, so any status is accepted.
    assert_eq!(h.expect.status, StatusSpec::Text("100-599".into()));
    assert!(!h.tls_verify);
    assert_eq!(green.attempts, 3);

    let range = probe(&i, "answers-2xx");
    assert_eq!(
        range.http.as_ref().unwrap().expect.status,
        StatusSpec::Text("200-299".into())
    );

    // No target: the path is read against {status, headers, body}, so $.body.x is body /x.
    let version = probe(&i, "version-is-2");
    let h = version.http.as_ref().unwrap();
    assert_eq!(h.expect.json[0].pointer, "/version/major");
    assert_eq!(h.expect.json[0].equals, json!(2));
    assert_eq!(h.url, "https://api.example.test/version?verbose=yes+please");

    // The method's probe keeps its name unique and runs continuously.
    let again = probe(&i, "answers-2xx-2");
    assert_eq!(again.mode, Mode::Continuous);
    assert_note(&i, "method[1]: probe \"answers-2xx-2\" became a continuous");

    assert_eq!(
        e.steps,
        [
            kill("reload-nginx", json!({"name": "nginx"}), "HUP"),
            pause(3)
        ]
    );
}

#[test]
fn background_actions_stop_cont_refs_and_runtime() {
    let i = convert("parallel-pause-ref.json");
    let e = &i.experiment;
    let [group, frozen, tail] = e.steps.as_slice() else {
        panic!("{:?}", e.steps)
    };
    let group = group.parallel.as_ref().unwrap();
    let members: Vec<(&str, &serde_json::Value, &serde_json::Value)> = group
        .iter()
        .map(|f| (f.name.as_deref().unwrap(), &f.target, &f.params))
        .collect();
    assert_eq!(
        members,
        [
            (
                "kill-cache-a",
                &json!({"name": "cache-a"}),
                &json!({"signal": "KILL"})
            ),
            (
                "kill-cache-b",
                &json!({"name": "cache-b"}),
                &json!({"signal": "KILL"})
            ),
            (
                "kill-cache-c",
                &json!({"name": "cache-c"}),
                &json!({"signal": "TERM"})
            ),
        ]
    );
    assert!(group.iter().all(|f| f.fault == "process-kill"));
    // SIGSTOP, 8s + 2s of pauses, SIGCONT: one process-pause of 10s; the last pause stays.
    assert_eq!(
        *frozen,
        Step {
            name: Some("freeze-db".into()),
            fault: Some("process-pause".into()),
            target: json!({"name": "postgres"}),
            duration: Some(Dur::secs(10)),
            ..Step::default()
        }
    );
    assert_eq!(*tail, pause(1));

    // runtime.hypothesis: continuously, every 2s, fail fast.
    let ping = probe(&i, "cache-ping");
    assert_eq!(ping.mode, Mode::Continuous);
    assert_eq!(ping.interval, Dur::secs(2));
    assert!(ping.stop_on_failure);
    let c = ping.command.as_ref().unwrap();
    assert_eq!(c.run, ["redis-cli", "ping"]);
    assert_eq!(c.expect.stdout_equals.as_deref(), Some("PONG"));
    // {"ref": "cache-ping"} in the method: the same probe, as a continuous one.
    let referenced = probe(&i, "cache-ping-2");
    assert_eq!(referenced.command, ping.command);
    assert_eq!(referenced.mode, Mode::Continuous);

    assert_note(
        &i,
        "method[0]: background actions, with the action after them, became one parallel step: \"kill-cache-a\", \"kill-cache-b\", \"kill-cache-c\" start together",
    );
    assert_note(
        &i,
        "method[4]: SIGSTOP until method[5]'s SIGCONT became process-pause for 10s",
    );
}

#[test]
fn env_defaults_query_arguments_and_text_tolerance() {
    let i = convert("env-query.yaml");
    let e = &i.experiment;
    let find = probe(&i, "finds-products").http.as_ref().unwrap();
    assert_eq!(
        find.url,
        "http://search.internal:9200/products/_search?q=name%3Ashoe+%26+size&size=1"
    );
    let green = probe(&i, "cluster-green").command.as_ref().unwrap();
    // null and "" arguments are dropped, as Chaos Toolkit drops them.
    assert_eq!(green.run, ["/opt/bin/cluster-health", "--format", "short"]);
    assert_eq!(green.expect.stdout_equals.as_deref(), Some("green"));
    // `cat FILE` in backquotes reads a pid file too.
    assert_eq!(
        e.steps,
        [kill(
            "kill-search",
            json!({"pidFile": "/var/run/search.pid"}),
            "KILL"
        )]
    );
    assert!(e.rollbacks.is_empty());
    assert_note(
        &i,
        "configuration.search_host: Chaos Toolkit reads the environment variable SEARCH_HOST at run time; the import used its default \"search.internal:9200\""
    );
}

#[test]
fn python_providers_are_errors() {
    let errs = problems("bad-python.json");
    // The http and sed actions after the Python one map to action steps: no error of theirs.
    assert_eq!(
        paths(&errs),
        [
            "steady-state-hypothesis.probes[0].provider.type",
            "steady-state-hypothesis.probes[1].tolerance",
            "method[0].provider.type",
        ]
    );
    assert_eq!(
        errs[2].to_string(),
        "method[0].provider.type: provider type \"python\" cannot be mapped; Faultline runs http and process providers only, and the Kubernetes activities of chaosk8s"
    );
    assert!(
        errs[1].message.starts_with("a boolean tolerance"),
        "{}",
        errs[1]
    );
}

#[test]
fn secrets_are_an_error() {
    let errs = problems("bad-secrets.json");
    assert_eq!(paths(&errs), ["secrets"]);
    assert!(
        errs[0].message.starts_with("cannot be mapped"),
        "{}",
        errs[0]
    );
}

#[test]
fn unknown_refs_are_errors() {
    let errs = problems("bad-ref.yaml");
    assert_eq!(
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        [
            "method[1].ref: no activity is named \"web-okk\" (did you mean \"web-ok\"?)",
            "rollbacks[0].ref: no activity is named \"restart-everything\"",
        ]
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let errs = problems("bad-mixed.json");
    assert_eq!(
        paths(&errs),
        [
            "configuration.api_host",
            "steady-state-hypothesis.probes[0].tolerance.path",
            "steady-state-hypothesis.probes[1].tolerance.path",
            "steady-state-hypothesis.probes[2].tolerance.type",
            "steady-state-hypothesis.probes[3].tolerance.range",
            "steady-state-hypothesis.probes[4].tolerance",
            "method[0].provider.arguments",
            "method[2].provider.arguments",
            "method[3].provider.arguments",
        ]
    );
    let msg = |p: &str| &errs.iter().find(|e| e.path == p).unwrap().message;
    assert!(msg("configuration.api_host").contains("API_HOST"));
    assert!(msg("steady-state-hypothesis.probes[0].tolerance.path")
        .starts_with("JSONPath filter \"[?(@.ok == false)]\" cannot be mapped"));
    assert!(msg("steady-state-hypothesis.probes[1].tolerance.path")
        .starts_with("JSONPath recursive descent"));
    assert!(msg("method[0].provider.arguments").contains("not expanded"));
    assert!(msg("method[2].provider.arguments").starts_with("signal ABRT cannot be mapped"));
    assert!(msg("method[3].provider.arguments").starts_with("a SIGSTOP maps to process-pause only"));
    // The Display form is one problem per line.
    let text = import::ImportErrors(errs.clone()).to_string();
    assert_eq!(text.lines().count(), errs.len());
}

#[test]
fn every_fixture_is_yaml_or_json_and_good_ones_convert() {
    let dir = format!("{}/tests/fixtures/chaostoolkit", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            // public/: tests/chaostoolkit_public.rs; kubernetes/: chaostoolkit_kubernetes.rs
            continue;
        }
        let name = entry.file_name().into_string().unwrap();
        let bad = name.starts_with("bad-");
        assert_eq!(from_chaostoolkit(&fixture(&name)).is_err(), bad, "{name}");
        n += 1;
    }
    assert!(n >= 9, "{n} fixtures");
}

/// A minimal experiment to vary in the tests below.
const SMALL: &str = r#"{
  "title": "Small",
  "steady-state-hypothesis": {"title": "t", "probes": [
    {"type": "probe", "name": "up", "tolerance": 200, "provider": {"type": "http", "url": "http://127.0.0.1:1/"}}
  ]},
  "method": [
    {"type": "action", "name": "k", "provider": {"type": "process", "path": "pkill", "arguments": ["-x", "web"]}}
  ]
}"#;

#[test]
fn a_given_name_replaces_the_title_and_is_checked() {
    let opts = Options {
        name: Some("my-import".into()),
    };
    let i = import::convert(Format::ChaosToolkit, SMALL, &opts).unwrap();
    assert_eq!(i.experiment.metadata.name, "my-import");
    let bad = Options {
        name: Some("My Import".into()),
    };
    let e = import::convert(Format::ChaosToolkit, SMALL, &bad).unwrap_err();
    assert_eq!(paths(&e.0), ["name"]);
    // pkill's default signal is TERM, and without -x it would match a pattern.
    let i = from_chaostoolkit(&SMALL.replace("[\"-x\", \"web\"]", "[\"web\"]")).unwrap();
    assert_eq!(i.experiment.steps[0].params, json!({"signal": "TERM"}));
    assert_note(&i, "method[0].provider.arguments: pkill matches");
}

#[test]
fn documents_that_are_not_experiments() {
    let one = |src: &str| from_chaostoolkit(src).unwrap_err().0;
    let e = one("{\"title\": ");
    assert!(e[0].message.starts_with("not valid JSON"), "{e:?}");
    let e = one("title: [unclosed\n");
    assert!(e[0].message.starts_with("not valid YAML"), "{e:?}");
    let e = one("- just\n- a list\n");
    assert!(
        e[0].message
            .starts_with("a Chaos Toolkit experiment is a mapping"),
        "{e:?}"
    );
    let e = one("{}");
    assert_eq!(paths(&e), ["title"], "{e:?}");
    let e = one(&SMALL.replace("\"probes\": [", "\"probes\": 3, \"x\": ["));
    assert_eq!(paths(&e), ["steady-state-hypothesis.probes"], "{e:?}");
    // A method of no action is a steady-state check now, not an error.
    let i = from_chaostoolkit(&SMALL.replace("\"method\": [", "\"method\": [], \"x\": [")).unwrap();
    assert!(i.experiment.steps.is_empty());
    assert_note(
        &i,
        "method: no action: the template is a steady-state check (its probes give the verdict; there is no resilience score)",
    );
    // Never panics on odd shapes.
    for junk in ["", "null", "42", "\"text\"", "[]", "{\"method\": 5}", "{\"method\": [5, null, {}]}",
        "{\"steady-state-hypothesis\": {\"probes\": [{\"ref\": 3}]}}", "{\"configuration\": []}",
        "{\"title\": \"$\", \"configuration\": {\"a\": {\"type\": 1}}, \"description\": \"${a} $a $$ ${\"}"] {
        let _ = from_chaostoolkit(junk);
    }
}

#[test]
fn configuration_substitutes_like_python_templates() {
    let src = SMALL
        .replace("\"title\": \"Small\"", "\"title\": \"Small\", \"configuration\": {\"host\": \"127.0.0.1\", \"port\": 8080, \"on\": true}, \"description\": \"$$host ${host}:$port ${missing} $on\"");
    let i = from_chaostoolkit(&src).unwrap();
    assert_eq!(
        i.experiment.metadata.description,
        "$host 127.0.0.1:8080 ${missing} True"
    );
    assert_note(
        &i,
        "description: ${missing} is not defined in configuration; left as written",
    );
    // env configuration without a default is an error only where it is used.
    let unused = SMALL.replace(
        "\"title\": \"Small\"",
        "\"title\": \"Small\", \"configuration\": {\"token\": {\"type\": \"env\", \"key\": \"TOKEN\"}}",
    );
    assert!(from_chaostoolkit(&unused).is_ok());
    let used = unused.replace("http://127.0.0.1:1/", "http://127.0.0.1:1/?t=${token}");
    let e = from_chaostoolkit(&used).unwrap_err();
    assert_eq!(paths(&e.0), ["configuration.token"]);
}

#[test]
fn a_title_without_letters_or_digits_needs_a_name() {
    let e = from_chaostoolkit(&SMALL.replace("\"Small\"", "\"!!!\"")).unwrap_err();
    assert_eq!(paths(&e.0), ["title"]);
}

#[test]
fn tolerance_shapes_map_or_fail_by_provider() {
    let with = |tolerance: &str, provider: &str| {
        from_chaostoolkit(
            &SMALL
                .replace("\"tolerance\": 200", &format!("\"tolerance\": {tolerance}"))
                .replace(
                    "{\"type\": \"http\", \"url\": \"http://127.0.0.1:1/\"}",
                    provider,
                ),
        )
    };
    let http = "{\"type\": \"http\", \"url\": \"http://127.0.0.1:1/\"}";
    let process = "{\"type\": \"process\", \"path\": \"check\"}";
    let expect_of = |i: Imported| i.experiment.hypothesis.probes[0].clone();

    let p = expect_of(with("\"ok\"", http).unwrap());
    assert_eq!(
        p.http.unwrap().expect.body_regex.as_deref(),
        Some(r"\Aok\z")
    );
    let p = expect_of(with("3", process).unwrap());
    assert_eq!(p.command.unwrap().expect.exit_code, 3);
    let p = expect_of(with("[1]", process).unwrap());
    assert_eq!(p.command.unwrap().expect.exit_code, 1);
    let p = expect_of(
        with(
            "{\"type\": \"range\", \"range\": [4, 4], \"target\": \"status\"}",
            process,
        )
        .unwrap(),
    );
    assert_eq!(p.command.unwrap().expect.exit_code, 4);
    let p = expect_of(
        with(
            "{\"type\": \"regex\", \"pattern\": \"^ok\", \"target\": \"body\"}",
            http,
        )
        .unwrap(),
    );
    assert_eq!(p.http.unwrap().expect.body_regex.as_deref(), Some("^ok"));

    for (tolerance, provider, path) in [
        ("[0, 1]", process, "tolerance"),
        ("[\"a\"]", http, "tolerance"),
        ("700", http, "tolerance"),
        ("{\"type\": \"range\", \"range\": [200, 299]}", http, "tolerance.target"),
        ("{\"type\": \"range\", \"range\": [1, 2], \"target\": \"body\"}", http, "tolerance.target"),
        ("{\"type\": \"regex\", \"pattern\": \"(?<=a)b\", \"target\": \"body\"}", http, "tolerance.pattern"),
        ("{\"type\": \"regex\", \"pattern\": \"x\", \"target\": \"stderr\"}", process, "tolerance.target"),
        ("{\"type\": \"regex\", \"pattern\": \"x\"}", process, "tolerance.target"),
        ("{\"type\": \"jsonpath\", \"path\": \"$.a\", \"target\": \"body\"}", http, "tolerance.expect"),
        ("{\"type\": \"jsonpath\", \"path\": \"$.a\", \"expect\": 1, \"count\": 1, \"target\": \"body\"}", http, "tolerance.count"),
        ("{\"type\": \"jsonpath\", \"path\": \"$.a\", \"expect\": [1, 2], \"target\": \"body\"}", http, "tolerance.expect"),
        ("{\"type\": \"jsonpath\", \"path\": \"$.a\", \"expect\": 1}", http, "tolerance.target"),
        ("{\"type\": \"jsonpath\", \"path\": \"$.a\", \"expect\": 1, \"target\": \"stdout\"}", process, "tolerance.type"),
        ("{\"type\": \"nope\"}", http, "tolerance.type"),
    ] {
        let e = with(tolerance, provider).unwrap_err();
        assert_eq!(
            paths(&e.0),
            [format!("steady-state-hypothesis.probes[0].{path}").as_str()],
            "{tolerance}: {e}"
        );
    }
}

/// The command-line reading itself is unit-tested in `import::kill`; here, that its result
/// lands in the step and its refusals at the action's arguments.
#[test]
fn kill_command_lines_become_steps_or_errors_at_their_arguments() {
    let with = |path: &str, args: &str| {
        from_chaostoolkit(&SMALL.replace(
            "\"path\": \"pkill\", \"arguments\": [\"-x\", \"web\"]",
            &format!("\"path\": \"{path}\", \"arguments\": {args}"),
        ))
    };
    let s = with("/usr/bin/kill", "\"-n 10 -- $(cat /run/a.pid)\"")
        .unwrap()
        .experiment
        .steps[0]
        .clone();
    assert_eq!(s.target, json!({"pidFile": "/run/a.pid"}));
    assert_eq!(s.params, json!({"signal": "USR1"}));
    for (path, args) in [
        ("kill", "\"-9 1234\""),
        ("pkill", "[\"-x\", \"web.*\"]"),
        ("killall", "\"-s\""),
    ] {
        let e = with(path, args).unwrap_err();
        assert_eq!(
            paths(&e.0),
            ["method[0].provider.arguments"],
            "{path} {args}: {e}"
        );
    }
}

#[test]
fn actions_toxics_and_pkill_options_map() {
    let i = convert("actions-toxiproxy.yaml");
    let e = &i.experiment;
    let q = probe(&i, "queue-short").command.as_ref().unwrap();
    assert_eq!(q.expect.value.as_ref().unwrap().between, Some([0.0, 250.0]));
    let yaml: serde_json::Value = serde_norway::from_str(&i.yaml).unwrap();
    assert_eq!(
        yaml["steps"],
        json!([
            {"name": "warm-cache", "action": {"command": {"run": ["curl", "-fsS", "http://127.0.0.1:8080/warm"]}, "timeout": "20s"}},
            {"name": "load", "action": {"command": {"run": ["vegeta", "attack", "-duration=30s"]}, "timeout": "30s"}, "background": true},
            {"name": "enable-maintenance-flag", "action": {"http": {
                "url": "http://127.0.0.1:8080/admin/flags/slow-mode", "method": "PUT",
                "headers": {"Content-Type": "application/json"}, "body": "{\"enabled\":true}",
                "expectStatus": 202}, "timeout": "5s"}},
            // Held for the pauses after it (10s + the probe's 5s); the DELETE is its end.
            {"name": "slow-db", "fault": "tcp-proxy", "target": {"proxy": "postgres"},
             "params": {"toxics": [{"name": "db-latency", "type": "latency", "attributes": {"latency": 400, "jitter": 50}}]},
             "duration": "15s"},
            {"name": "restart-oldest-worker", "fault": "process-kill", "target": {"command": "celery worker"},
             "params": {"signal": "HUP", "count": 1, "pick": "oldest"}},
            {"name": "kill-app-web", "fault": "process-kill", "target": {"name": "web", "user": "app"},
             "params": {"signal": "TERM"}},
        ])
    );
    // The rollback that deletes the toxic is left out: the step's revert removes it.
    assert_eq!(e.rollbacks.len(), 1);
    assert_eq!(e.rollbacks[0].name.as_deref(), Some("flag-off"));
    assert_note(&i, "rollbacks[0]: left out: the tcp-proxy step removes toxic \"db-latency\" from proxy \"postgres\" when it ends");
    assert_note(&i, "method[3]: toxic \"db-latency\" became a tcp-proxy step on proxy \"postgres\" for 15s until the action that deletes it; it is added to that proxy of the delegate's Toxiproxy-compatible API (--toxiproxy-api), not to the server in the URL");
    assert_note(&i, "method[1]: no timeout: the action step is stopped after 30s (Chaos Toolkit waits without limit); give the provider a timeout, at most 600");
    assert!(
        i.notes
            .iter()
            .any(|n| n.starts_with("method: process and http actions became action steps")),
        "{:?}",
        i.notes
    );
    // The method has faults and actions: scored on its two kills and the toxic.
    assert_eq!(e.weights().len(), 3);
}

#[test]
fn toxics_and_actions_refuse_what_they_cannot_map() {
    let base = fixture("actions-toxiproxy.yaml");
    // A toxic with nothing after it has no duration.
    let e = from_chaostoolkit(
        &base
            .replace("    pauses: {after: 10}\n", "")
            .replace("    pauses: {after: 5}\n", ""),
    )
    .unwrap_err()
    .0;
    assert_eq!(paths(&e), ["method[3].pauses.after"], "{e:?}");
    // A toxic Faultline does not know is named at its field.
    let e = from_chaostoolkit(&base.replace("type: latency", "type: lag"))
        .unwrap_err()
        .0;
    assert_eq!(paths(&e), ["method[3].provider.arguments.type"], "{e:?}");
    assert!(
        e[0].message.starts_with("unknown toxic type \"lag\""),
        "{e:?}"
    );
    // An action expects one status.
    let e = from_chaostoolkit(&base.replace("expected_status: 202", "expected_status: [200, 202]"))
        .unwrap_err()
        .0;
    assert_eq!(paths(&e), ["method[2].provider.expected_status"], "{e:?}");
}

#[test]
fn a_method_of_probes_only_is_a_steady_state_check() {
    let i = convert("probes-only.json");
    assert!(i.experiment.steps.is_empty());
    assert!(i.experiment.weights().is_empty());
    let h = probe(&i, "health").http.as_ref().unwrap();
    assert_eq!(
        h.expect.json,
        [JsonExpect {
            pointer: "/status".into(),
            equals: json!("ok")
        }]
    );
    let v = probe(&i, "version").command.as_ref().unwrap();
    assert_eq!(v.expect.stdout_regex.as_deref(), Some(r"^v\d+"));
    assert_eq!(probe(&i, "metrics").mode, Mode::Continuous);
}
