//! The hub's TOML configuration file (`faultline_hub::config_file::FileConfig::parse`): any
//! text gives a configuration or problems located at `FILE:LINE:COL` inside the text (0:0 only
//! when the place is unknown), never a panic.
#![no_main]
use faultline_hub::config_file::FileConfig;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(e) = FileConfig::parse(text, Path::new("hub.toml")) else {
        return;
    };
    assert!(
        !e.problems.is_empty(),
        "an error names at least one problem"
    );
    let lines: Vec<&str> = text.split('\n').collect();
    for p in &e.problems {
        assert!(!p.message.is_empty(), "a problem says something: {p:?}");
        if (p.line, p.column) == (0, 0) {
            continue;
        }
        assert!(
            p.line >= 1 && p.line <= lines.len(),
            "line {} outside the text's {} lines: {p:?}",
            p.line,
            lines.len()
        );
        let width = lines[p.line - 1].chars().count();
        assert!(
            p.column >= 1 && p.column <= width + 1,
            "column {} outside line {} ({width} characters): {p:?}",
            p.column,
            p.line
        );
    }
    let _ = e.to_string();
});
