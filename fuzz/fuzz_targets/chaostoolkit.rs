//! The Chaos Toolkit import (`faultline_experiment::import::from_chaostoolkit`): any text gives
//! a template or the list of what cannot be mapped, never a panic. What it returns is a
//! template the hub accepts: its YAML parses to the experiment it returns, and the importer's
//! own checks catch every problem (the last check, `parse_template` of the result, never fails).
#![no_main]
use faultline_experiment::{import::from_chaostoolkit, parse_template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match from_chaostoolkit(text) {
        Ok(imported) => {
            let again = parse_template(&imported.yaml)
                .unwrap_or_else(|e| panic!("the imported YAML does not parse: {e}"));
            assert_eq!(again, imported.experiment);
        }
        Err(errs) => {
            assert!(!errs.0.is_empty(), "an error names at least one problem");
            for e in &errs.0 {
                assert!(!e.message.is_empty(), "an error says something: {e:?}");
                assert!(
                    !e.message.starts_with("the converted template is invalid")
                        && !e.message.starts_with("cannot write the converted template"),
                    "a gap in the importer's own checks: {e}\n--- source:\n{text}"
                );
            }
        }
    }
});
