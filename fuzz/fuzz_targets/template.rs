//! The template parser (`faultline_experiment::parse_template`): any text gives a template or
//! located errors. A template that parses can be planned and timed, goes to a delegate as JSON
//! and comes back equal, and written as YAML (as the import writes it) reads back equal.
#![no_main]
use faultline_experiment::{parse_template, Experiment, SpecErrors};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_template(text) {
        Ok(e) => parsed(&e),
        Err(errs) => located(text, &errs),
    }
});

fn parsed(e: &Experiment) {
    let _ = e.plan();
    let _ = e.planned_duration();
    let _ = e.weights();
    let _ = e.faults();
    let _ = e.check_capabilities(&[], &[], "d");

    // `schedule` is never serialised (it stays in the stored text only).
    let expected = Experiment {
        schedule: None,
        ..e.clone()
    };
    let json = serde_json::to_string(e).expect("a parsed template serialises to JSON");
    let back: Experiment = serde_json::from_str(&json).expect("its JSON reads back");
    assert_eq!(back, expected, "JSON round trip changed the template");

    let yaml = serde_norway::to_string(e).expect("a parsed template serialises to YAML");
    let again = parse_template(&yaml)
        .unwrap_or_else(|errs| panic!("its YAML does not parse again: {errs}\n{yaml}"));
    assert_eq!(again, expected, "YAML round trip changed the template");
}

fn located(text: &str, errs: &SpecErrors) {
    assert!(!errs.0.is_empty(), "an error names at least one problem");
    let lines = yaml_lines(text);
    for e in &errs.0 {
        assert!(!e.message.is_empty(), "an error says something: {e:?}");
        match (e.line, e.column) {
            (Some(l), Some(c)) => {
                assert!(
                    l >= 1 && l <= lines.len(),
                    "line {l} outside the text's {} lines: {e:?}",
                    lines.len()
                );
                let width = lines[l - 1].chars().count();
                assert!(
                    c >= 1 && c <= width + 1,
                    "column {c} outside line {l} ({width} characters): {e:?}"
                );
            }
            (None, None) => {}
            _ => panic!("a line without a column or the reverse: {e:?}"),
        }
    }
}

/// The lines as YAML (and the dashboard's editor) count them: `\r\n`, `\r` and `\n` end one,
/// and so do NEL, LS and PS for YAML.
fn yaml_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c == '\r' && it.peek().is_some_and(|&(_, n)| n == '\n') {
            continue;
        }
        if matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            let line = &text[start..i];
            out.push(line.strip_suffix('\r').unwrap_or(line));
            start = i + c.len_utf8();
        }
    }
    out.push(&text[start..]);
    out
}
