//! Real Chaos Toolkit experiments from the chaostoolkit and chaostoolkit-incubator repositories
//! (`fixtures/chaostoolkit/public/`, sources in its README.md), kept verbatim: each one is first
//! checked valid by the real `chaos validate`, then imported, and the outcome is asserted per
//! file: converted, or refused at the path and for the reason named.
mod chaos_cli;

use faultline_experiment::import::from_chaostoolkit;
use std::path::PathBuf;

/// What importing one public experiment gives.
enum Outcome {
    Converts,
    /// Refused; the first problem is at this path and its message starts so.
    Refused(&'static str, &'static str),
}

const PYTHON: &str = "provider type \"python\" cannot be mapped";

const PUBLIC: &[(&str, Outcome)] = &[
    (
        "chaostoolkit-check-file-exists.json",
        Outcome::Refused("steady-state-hypothesis.probes[1].provider.type", PYTHON),
    ),
    (
        "chaostoolkit-check-file-exists-deviated.json",
        Outcome::Refused("steady-state-hypothesis.probes[0].provider.type", PYTHON),
    ),
    (
        "chaostoolkit-override-hypothesis-runtime-strategy.json",
        Outcome::Refused("steady-state-hypothesis.probes[1].provider.type", PYTHON),
    ),
    (
        "chaostoolkit-override-rollbacks-runtime-strategy.json",
        Outcome::Refused("steady-state-hypothesis.probes[1].provider.type", PYTHON),
    ),
    (
        "community-playground-chapter5-experiment.json",
        Outcome::Refused("method[0].provider.type", PYTHON),
    ),
    (
        "community-playground-simple-interactive-experiment.json",
        Outcome::Converts,
    ),
    (
        "community-playground-yorn-interactive-experiment.json",
        Outcome::Converts,
    ),
    (
        "documentation-a-simple-walkthrough-experiment.json",
        Outcome::Refused("steady-state-hypothesis.probes[0].provider.type", PYTHON),
    ),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chaostoolkit/public")
}

#[test]
fn every_public_experiment_converts_or_is_refused_for_its_reason() {
    let listed: Vec<&str> = PUBLIC.iter().map(|(f, _)| *f).collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") || n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(on_disk, sorted, "every public fixture is listed here");
    let mut converted = 0;
    for (file, outcome) in PUBLIC {
        let source = std::fs::read_to_string(dir().join(file)).unwrap();
        match (from_chaostoolkit(&source), outcome) {
            (Ok(i), Outcome::Converts) => {
                converted += 1;
                assert!(!i.experiment.hypothesis.probes.is_empty(), "{file}");
            }
            (Err(e), Outcome::Refused(path, starts)) => {
                assert_eq!(e.0[0].path, *path, "{file}: {e}");
                assert!(e.0[0].message.starts_with(starts), "{file}: {e}");
            }
            (Ok(i), Outcome::Refused(..)) => panic!("{file} converted:\n{}", i.yaml),
            (Err(e), Outcome::Converts) => panic!("{file} was refused:\n{e}"),
        }
    }
    eprintln!(
        "{converted} of {} public Chaos Toolkit experiments convert",
        PUBLIC.len()
    );
    assert_eq!(converted, 2);
}

#[test]
fn the_interactive_sample_becomes_probes_an_action_and_a_rollback() {
    let source = std::fs::read_to_string(
        dir().join("community-playground-simple-interactive-experiment.json"),
    )
    .unwrap();
    let i = from_chaostoolkit(&source).unwrap();
    let e = &i.experiment;
    let c = e.hypothesis.probes[0].command.as_ref().unwrap();
    // `echo 'updated'` has quotes, so it runs through the shell as Chaos Toolkit runs it.
    assert_eq!(c.shell.as_deref(), Some("echo 'updated'"));
    assert_eq!(c.expect.exit_code, 0);
    let a = e.steps[0]
        .action
        .as_ref()
        .unwrap()
        .command
        .as_ref()
        .unwrap();
    assert_eq!(a.shell.as_deref(), Some("echo 'updated'"));
    assert_eq!(e.rollbacks.len(), 1);
    assert!(e.faults().is_empty(), "no fault: action steps only");
}

#[test]
fn every_public_experiment_is_valid_for_chaos_toolkit() {
    let Some(chaos) = chaos_cli::chaos() else {
        return;
    };
    let files: Vec<PathBuf> = PUBLIC.iter().map(|(f, _)| dir().join(f)).collect();
    chaos_cli::validate_all(&chaos, &files, &[]);
}
