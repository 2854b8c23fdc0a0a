//! `http-fault` parameters through the public parser: what is accepted, and that each mistake is
//! refused at its own field, with a line and a reason.
use faultline_experiment::{
    faults::{BodyReplace, BodyRewrite, FaultSpec, HttpAction},
    parse_template, SpecError,
};
use std::time::Duration;

fn template(step: &str) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: http}}\nhypothesis:\n  probes:\n    - {{name: up, http: {{url: \"http://127.0.0.1:18080/\"}}, mode: continuous}}\nsteps:\n  - fault: http-fault\n    target: {{listen: \"127.0.0.1:18080\", upstream: \"http://127.0.0.1:8080\"}}\n    duration: 5s\n{step}"
    )
}

fn parsed(step: &str) -> FaultSpec {
    let e = parse_template(&template(step)).unwrap_or_else(|e| panic!("{e}\n{step}"));
    e.faults().remove(0).spec
}

fn error(yaml: &str) -> SpecError {
    let errs = parse_template(yaml).expect_err("should be refused").0;
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs.into_iter().next().unwrap()
}

#[test]
fn every_action_and_match_parses() {
    let spec = parsed(
        r#"    params:
      responseTimeout: 2s
      rules:
        - match: {method: GET, path: /api/, headers: {x-user: alice}}
          percentage: 30
          abort: {status: 503, body: "try later"}
        - match: {pathRegex: "^/slow/[0-9]+$"}
          delay: 200ms
        - reset: true
          percentage: 0.5
        - rewrite:
            requestHeaders: {set: {x-env: chaos}, remove: [cookie]}
            responseHeaders: {remove: [server]}
            responseBody: {replace: [ok, ko]}
        - rewrite: {responseBody: "gone"}
"#,
    );
    let FaultSpec::HttpFault { target, params } = spec else {
        panic!("{spec:?}")
    };
    assert_eq!(target.upstream_authority().unwrap(), "127.0.0.1:8080");
    assert_eq!(target.listen_addr().unwrap().port(), 18080);
    assert_eq!(params.response_timeout(), Duration::from_secs(2));
    assert_eq!(params.connect_timeout(), Duration::from_secs(5));
    let r = &params.rules;
    assert_eq!(r.len(), 5);
    assert!(matches!(r[0].action(), HttpAction::Abort(a) if a.status == 503));
    assert_eq!(r[0].percentage, 30.0);
    assert_eq!(r[1].action(), HttpAction::Delay(Duration::from_millis(200)));
    assert_eq!(r[1].percentage, 100.0);
    assert_eq!(r[2].action(), HttpAction::Reset);
    let HttpAction::Rewrite(w) = r[3].action() else {
        panic!()
    };
    assert_eq!(
        w.response_body,
        Some(BodyRewrite::Replace(BodyReplace {
            replace: ["ok".into(), "ko".into()]
        }))
    );
    assert_eq!(
        r[4].rewrite.as_ref().unwrap().response_body,
        Some(BodyRewrite::Text("gone".into()))
    );
    assert_eq!(r[0].describe(), "GET /api/* x-user: alice 30% → abort 503");
}

#[test]
fn no_rules_is_a_plain_proxy() {
    let FaultSpec::HttpFault { params, .. } = parsed("") else {
        panic!()
    };
    assert!(params.rules.is_empty());
}

#[test]
fn each_mistake_is_named_at_its_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "rules:\n        - {abort: {status: 503}}\n        - {match: {pathRegex: \"a(\"}, reset: true}",
            "steps[0].params.rules[1].match.pathRegex",
            "invalid regular expression",
        ),
        (
            "rules: [{abort: {status: 600}}]",
            "steps[0].params.rules[0].abort.status",
            "not an HTTP status",
        ),
        (
            "rules: [{abort: {status: 99}}]",
            "steps[0].params.rules[0].abort.status",
            "100-599",
        ),
        (
            "rules: [{abort: {status: 503}, percentage: 101}]",
            "steps[0].params.rules[0].percentage",
            "between 0 and 100",
        ),
        (
            "rules: [{abort: {status: 503}, percentage: -1}]",
            "steps[0].params.rules[0].percentage",
            "between 0 and 100",
        ),
        (
            "rules: [{match: {path: /x}}]",
            "steps[0].params.rules[0]",
            "needs an action",
        ),
        (
            "rules: [{abort: {status: 503}, delay: 1s}]",
            "steps[0].params.rules[0]",
            "exactly one action",
        ),
        (
            "rules: [{reset: false}]",
            "steps[0].params.rules[0].reset",
            "does nothing",
        ),
        (
            "rules: [{delay: 0ms}]",
            "steps[0].params.rules[0].delay",
            "longer than 0",
        ),
        (
            "rules: [{match: {method: get}, reset: true}]",
            "steps[0].params.rules[0].match.method",
            "case-sensitive",
        ),
        (
            "rules: [{match: {path: api}, reset: true}]",
            "steps[0].params.rules[0].match.path",
            "starts with /",
        ),
        (
            "rules: [{match: {path: /a, pathRegex: b}, reset: true}]",
            "steps[0].params.rules[0].match",
            "at most one",
        ),
        (
            "rules: [{match: {pathh: /a}, reset: true}]",
            "steps[0].params.rules[0].match.pathh",
            "unknown field",
        ),
        (
            "rules: [{match: {headers: {\"bad name\": x}}, reset: true}]",
            "steps[0].params.rules[0].match.headers",
            "not a valid header name",
        ),
        (
            "rules: [{rewrite: {}}]",
            "steps[0].params.rules[0].rewrite",
            "changes nothing",
        ),
        (
            "rules: [{rewrite: {responseBody: {replace: [\"\", x]}}}]",
            "steps[0].params.rules[0].rewrite.responseBody.replace",
            "must not be empty",
        ),
        (
            "rules: [{rewrite: {responseBody: {swap: [a, b]}}}]",
            "steps[0].params.rules[0].rewrite.responseBody.swap",
            "unknown field",
        ),
        (
            "rules: [{rewrite: {requestHeaders: {add: {a: b}}}}]",
            "steps[0].params.rules[0].rewrite.requestHeaders.add",
            "unknown field",
        ),
        (
            "rules: [{abort: {status: 503, code: 1}}]",
            "steps[0].params.rules[0].abort.code",
            "unknown field",
        ),
        (
            "rules: [{abort: {status: 503}, weight: 2}]",
            "steps[0].params.rules[0].weight",
            "unknown field",
        ),
        ("rules: {a: 1}", "steps[0].params.rules", "a list"),
        (
            "connectTimeout: 0s",
            "steps[0].params.connectTimeout",
            "longer than 0",
        ),
    ];
    for (params, field, reason) in cases {
        let e = error(&template(&format!("    params:\n      {params}\n")));
        assert_eq!(&e.field, field, "{params}: {e:?}");
        assert!(e.message.contains(reason), "{params}: {e:?}");
        assert!(e.line.is_some(), "{params}: {e:?}");
    }
}

#[test]
fn bad_targets_and_missing_duration_are_refused() {
    let with = |target: &str, duration: &str| {
        format!(
            "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: http}}\nhypothesis:\n  probes:\n    - {{name: up, tcp: {{address: \"127.0.0.1:1\"}}, mode: continuous}}\nsteps:\n  - fault: http-fault\n    target: {target}\n{duration}"
        )
    };
    let d = "    duration: 1s\n";
    for (target, field, reason) in [
        (
            "{listen: \"localhost:80\", upstream: \"http://a:1\"}",
            "steps[0].target.listen",
            "IP:port",
        ),
        (
            "{listen: \"127.0.0.1:0\", upstream: \"http://a:1\"}",
            "steps[0].target.listen",
            "must not be 0",
        ),
        (
            "{listen: \"127.0.0.1:8081\", upstream: \"https://a:1\"}",
            "steps[0].target.upstream",
            "https",
        ),
        (
            "{listen: \"127.0.0.1:8081\", upstream: \"ftp://a\"}",
            "steps[0].target.upstream",
            "http://",
        ),
        (
            "{listen: \"127.0.0.1:8081\", upstream: \"http://a:1/api\"}",
            "steps[0].target.upstream",
            "has a path",
        ),
        (
            "{listen: \"127.0.0.1:8081\", upstream: \"http://a:99999\"}",
            "steps[0].target.upstream",
            "invalid port",
        ),
        (
            "{listen: \"127.0.0.1:8081\", upstream: \"http://127.0.0.1:8081\"}",
            "steps[0].target.upstream",
            "own listen address",
        ),
        (
            "{listen: \"127.0.0.1:8081\"}",
            "steps[0].target",
            "missing field",
        ),
    ] {
        let e = error(&with(target, d));
        assert_eq!(e.field, field, "{target}: {e:?}");
        assert!(e.message.contains(reason), "{target}: {e:?}");
    }
    let e = error(&with(
        "{listen: \"127.0.0.1:8081\", upstream: \"http://[::1]:80/\"}",
        "",
    ));
    assert_eq!(e.field, "steps[0].duration", "{e:?}");
    let ok = with(
        "{listen: \"[::1]:8081\", upstream: \"http://[::1]\"}",
        "    duration: 1s\n",
    );
    let spec = parse_template(&ok).unwrap_or_else(|e| panic!("{e}"));
    let FaultSpec::HttpFault { target, .. } = &spec.faults()[0].spec else {
        panic!()
    };
    assert_eq!(target.upstream_authority().unwrap(), "[::1]:80");
}
