//! The process and resource fault kinds through the public parser: what they read, and that a
//! bad value is reported at its field (with line and column) and says why.
use faultline_experiment::{
    faults::{ByteSize, FaultSpec, Pick},
    parse_template, Dur,
};

fn template(steps: &str) -> String {
    format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: res}}\nhypothesis:\n  probes:\n    - {{name: up, tcp: {{address: \"127.0.0.1:1\"}}}}\nsteps:\n{steps}"
    )
}

fn specs(steps: &str) -> Vec<FaultSpec> {
    let e = parse_template(&template(steps)).unwrap_or_else(|e| panic!("{e}"));
    e.faults().into_iter().map(|f| f.spec.clone()).collect()
}

/// The first error's field, message and line.
fn error(steps: &str) -> (String, String, Option<usize>) {
    let e = parse_template(&template(steps)).expect_err("refused");
    let first = &e.0[0];
    (first.field.clone(), first.message.clone(), first.line)
}

#[test]
fn every_kind_reads_its_target_and_params() {
    let s = specs(
        r#"  - {fault: process-kill, target: {command: "^python3 .*worker"}, params: {percentage: 50, interval: 500ms}, duration: 5s}
  - {fault: process-stop, target: {pid: 4242}, params: {count: 2}, duration: 1s}
  - {fault: process-pause, target: {name: web}, duration: 1s}
  - {fault: cpu-stress, params: {workers: 2, load: 60, cores: [0, 2]}, duration: 10s}
  - {fault: memory-stress, params: {size: 512MiB, ramp: 5s}, duration: 10s}
  - {fault: io-stress, target: {path: /var/tmp}, params: {workers: 2, blockSize: 64KiB, fsync: true}, duration: 10s}
  - {fault: disk-fill, target: {path: /var/lib/app}, params: {fillPercent: 90}, duration: 10s}
"#,
    );
    let kinds: Vec<&str> = s.iter().map(|f| f.kind()).collect();
    assert_eq!(
        kinds,
        [
            "process-kill",
            "process-stop",
            "process-pause",
            "cpu-stress",
            "memory-stress",
            "io-stress",
            "disk-fill"
        ]
    );
    let FaultSpec::ProcessKill { params, .. } = &s[0] else {
        panic!()
    };
    assert_eq!(params.pick(), Pick::Percentage(50));
    assert_eq!(params.interval, Some(Dur::from_millis(500)));
    let FaultSpec::MemoryStress { params } = &s[4] else {
        panic!()
    };
    assert_eq!(params.size, Some(ByteSize::mib(512)));
    assert_eq!(s[5].path(), Some("/var/tmp"));
    assert_eq!(s[6].path(), Some("/var/lib/app"));
    assert!(s[3].process_target().is_none());
}

#[test]
fn bad_values_name_their_field_and_say_why() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"  - {fault: process-kill, target: {command: "(unclosed"}}"#,
            "steps[0].target.command",
            "invalid regular expression",
        ),
        (
            "  - {fault: process-kill, target: {name: web, pid: 12}}",
            "steps[0].target",
            "exactly one of pid, pidFile, name or command",
        ),
        (
            "  - {fault: process-kill, target: {pid: 1}}",
            "steps[0].target.pid",
            "pid 1 is init",
        ),
        (
            "  - {fault: process-stop, target: {name: web}, params: {count: 2, percentage: 5}, duration: 1s}",
            "steps[0].params",
            "count or percentage, not both",
        ),
        (
            "  - {fault: process-stop, target: {name: web}, params: {percentage: 150}, duration: 1s}",
            "steps[0].params.percentage",
            "between 1 and 100",
        ),
        (
            "  - {fault: process-kill, target: {name: web}, params: {interval: 10ms}, duration: 1s}",
            "steps[0].params.interval",
            "at least 100ms",
        ),
        (
            "  - {fault: process-kill, target: {name: web}, params: {interval: 1s}}",
            "steps[0].duration",
            "needs a duration",
        ),
        (
            "  - {fault: process-stop, target: {name: web}}",
            "steps[0].duration",
            "needs a duration",
        ),
        (
            "  - {fault: cpu-stress, params: {load: 0}, duration: 1s}",
            "steps[0].params.load",
            "between 1 and 100",
        ),
        (
            "  - {fault: cpu-stress, params: {cpus: 2}, duration: 1s}",
            "steps[0].params.cpus",
            "unknown field",
        ),
        (
            "  - {fault: memory-stress, params: {size: 1GiB, percent: 5}, duration: 1s}",
            "steps[0].params",
            "exactly one of size or percent",
        ),
        (
            "  - {fault: memory-stress, params: {size: lots}, duration: 1s}",
            "steps[0].params.size",
            "invalid size",
        ),
        (
            "  - {fault: io-stress, target: {path: tmp/x}, duration: 1s}",
            "steps[0].target.path",
            "absolute path",
        ),
        (
            "  - {fault: io-stress, target: {path: /tmp}, params: {blockSize: 12}, duration: 1s}",
            "steps[0].params.blockSize",
            "between 4096 and",
        ),
        (
            "  - {fault: disk-fill, target: {path: /var/../etc}, params: {size: 1GiB}, duration: 1s}",
            "steps[0].target.path",
            "without ..",
        ),
        (
            "  - {fault: disk-fill, target: {path: /var}, duration: 1s}",
            "steps[0].params",
            "exactly one of fillPercent or size",
        ),
        (
            "  - {fault: disk-fill, target: {path: /var}, params: {fillPercent: 101}, duration: 1s}",
            "steps[0].params.fillPercent",
            "between 1 and 100",
        ),
    ];
    for (step, field, why) in cases {
        let (f, msg, line) = error(step);
        assert_eq!(&f, field, "{step}: {msg}");
        assert!(msg.contains(why), "{step}: {msg}");
        assert_eq!(line, Some(8), "{step}: located on its line");
    }
}
