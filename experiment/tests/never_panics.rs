//! Property tests: whatever text arrives (from the API, a file, an import), parsing answers with a
//! template or located errors, never a panic; and a template that parses can be planned, timed
//! and capability-checked without a panic either.
use faultline_experiment::parse_template;
use proptest::prelude::*;

const FULL: &str = include_str!("fixtures/full.yaml");

/// Values that have broken YAML parsers and validators before.
const NASTY: &[&str] = &[
    "",
    "~",
    "-1",
    "0",
    "1e309",
    "NaN",
    "-.inf",
    "99999999999999999999",
    "[",
    "]",
    "{",
    "}",
    "{a: b}",
    "[1, [2, [3]]]",
    "!!binary aGk=",
    "&a x",
    "*a",
    "\"\\u0000\"",
    "'",
    "1h1h",
    "18446744073709551616ms",
    "0ms",
    "-5s",
    "yes",
    "null",
    ":",
    "- - -",
    "? x",
    "|",
    ">",
    "\t",
    "%YAML 1.2",
    "---",
    "...",
    "500000h",
];

fn check(text: &str) {
    match parse_template(text) {
        Ok(e) => {
            let _ = e.plan();
            let _ = e.planned_duration();
            let _ = e.weights();
            let _ = e.check_capabilities(&[], &[], "d");
            let json = serde_json::to_string(&e).expect("a parsed template serialises");
            let back: faultline_experiment::Experiment = serde_json::from_str(&json).unwrap();
            assert_eq!(back, e);
        }
        Err(errs) => {
            assert!(!errs.0.is_empty(), "an error names at least one problem");
            for e in &errs.0 {
                assert!(!e.message.is_empty());
                if let Some(l) = e.line {
                    assert!(
                        l >= 1 && l <= yaml_lines(text),
                        "line {l} out of range: {e:?}"
                    );
                }
            }
        }
    }
}

/// How many lines YAML sees: `\r\n`, `\r`, `\n`, NEL, LS and PS each end one.
fn yaml_lines(text: &str) -> usize {
    1 + text
        .replace("\r\n", "\n")
        .matches(['\r', '\n', '\u{85}', '\u{2028}', '\u{2029}'])
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(text in "\\PC{0,400}") {
        check(&text);
    }

    #[test]
    fn yaml_shaped_noise(parts in prop::collection::vec(prop::sample::select(vec![
        "a", ": ", "- ", "\n", "  ", "{", "}", "[", "]", ", ", "steps", "probes", "fault",
        "parallel", "pause", "1s", "http", "url", "\"", "'", "#", "&x ", "*x", "!!str ", "? ",
    ]), 0..120)) {
        check(&parts.concat());
    }

    /// The full example with one line replaced, removed or duplicated, or one value swapped for
    /// a nasty one: every near-miss of a real template.
    #[test]
    fn mutated_full_template(line in 0usize..80, op in 0u8..4, nasty in prop::sample::select(NASTY.to_vec())) {
        let mut lines: Vec<String> = FULL.lines().map(String::from).collect();
        let i = line % lines.len();
        match op {
            0 => { lines.remove(i); }
            1 => { let l = lines[i].clone(); lines.insert(i, l); }
            2 => {
                if let Some((k, _)) = lines[i].split_once(": ") {
                    lines[i] = format!("{k}: {nasty}");
                }
            }
            _ => lines[i] = nasty.to_string(),
        }
        check(&lines.join("\n"));
    }
}

#[test]
fn the_fixture_itself_parses() {
    parse_template(FULL).unwrap();
}
