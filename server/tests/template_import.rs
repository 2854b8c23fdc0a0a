//! `faultline template import`, run as the built binary: the YAML on stdout, notes and
//! problems on stderr, and the exit code CI scripts rely on.
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../experiment/tests/fixtures/chaostoolkit")
        .join(name)
}

fn faultline<S: AsRef<OsStr>>(args: &[S]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env_remove("FAULTLINE_LOG")
        .output()
        .expect("run faultline");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn import(file: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args: Vec<&OsStr> = ["template", "import", "--format", "chaostoolkit"]
        .iter()
        .chain(extra)
        .map(OsStr::new)
        .collect();
    args.push(file.as_os_str());
    faultline(&args)
}

#[test]
fn converts_a_chaos_toolkit_experiment_to_a_valid_template() {
    let file = fixture("web-kill.json");
    let (code, stdout, stderr) = import(&file, &[]);
    assert_eq!(code, 0, "{stderr}");
    let exp =
        faultline_experiment::parse_template(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    assert_eq!(exp.metadata.name, "web-survives-a-killed-worker");
    assert_eq!(exp.steps[0].fault.as_deref(), Some("process-kill"));
    let prefix = format!("{}: note: ", file.display());
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        assert!(line.starts_with(&prefix), "{line}");
    }
    assert!(
        stderr.contains(&format!(
            "{prefix}steady-state-hypothesis: probes run in mode edge"
        )),
        "{stderr}"
    );

    // What it prints is what `template validate` accepts.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("web.yaml");
    std::fs::write(&out, &stdout).unwrap();
    let (code, stdout, _) = faultline(&[
        OsStr::new("template"),
        OsStr::new("validate"),
        out.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stdout}");

    // --name replaces the name taken from the title.
    let (code, stdout, stderr) = import(&file, &["--name", "web-import"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\n  name: web-import\n"), "{stdout}");
}

#[test]
fn reports_every_problem_with_its_path_and_exits_1() {
    let file = fixture("bad-python.json");
    let (code, stdout, stderr) = import(&file, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    let f = file.display();
    let lines: Vec<&str> = stderr.lines().collect();
    // The http and sed actions of the fixture map to action steps; the Python parts do not.
    assert_eq!(lines.len(), 3, "{stderr}");
    assert_eq!(
        lines[2],
        format!("{f}: method[0].provider.type: provider type \"python\" cannot be mapped; Faultline runs http and process providers only, and the Kubernetes activities of chaosk8s")
    );
    assert!(
        lines[0].starts_with(&format!(
            "{f}: steady-state-hypothesis.probes[0].provider.type: "
        )),
        "{stderr}"
    );

    let missing = fixture("no-such-file.json");
    let (code, _, stderr) = import(&missing, &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{stderr}"
    );
}
