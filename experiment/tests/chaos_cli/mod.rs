//! The real `chaos` CLI (PyPI chaostoolkit, with chaostoolkit-kubernetes for chaosk8s), which
//! the Chaos Toolkit import tests use to check that a fixture is a valid experiment first.
use std::{path::Path, path::PathBuf, process::Command};

/// `chaos`: FAULTLINE_CHAOS_BIN, else the venv of tests/toxiproxy-clients (install.sh), else
/// the PATH. None, and the caller skips, only with FAULTLINE_SKIP_CHAOSTOOLKIT=1.
pub fn chaos() -> Option<PathBuf> {
    let found = if let Some(p) = std::env::var_os("FAULTLINE_CHAOS_BIN") {
        Some(PathBuf::from(p))
    } else {
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/toxiproxy-clients/.venv/bin/chaos");
        if venv.is_file() {
            Some(venv)
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("chaos"))
                    .find(|p| p.is_file())
            })
        }
    };
    if found.is_none() {
        if std::env::var("FAULTLINE_SKIP_CHAOSTOOLKIT").as_deref() == Ok("1") {
            eprintln!("skipped: no chaos CLI and FAULTLINE_SKIP_CHAOSTOOLKIT=1");
            return None;
        }
        panic!(
            "the chaos CLI (PyPI chaostoolkit) is needed to check the fixtures: run \
             tests/toxiproxy-clients/install.sh, or set FAULTLINE_CHAOS_BIN, or \
             FAULTLINE_SKIP_CHAOSTOOLKIT=1 to skip"
        );
    }
    found
}

/// Runs `chaos validate` on each of `files` and fails unless the toolkit finds it valid
/// (it imports Python activities' modules and binds their arguments to the functions).
/// `env` is added to the environment of each run.
pub fn validate_all(chaos: &Path, files: &[PathBuf], env: &[(&str, &Path)]) {
    let work =
        std::env::temp_dir().join(format!("faultline-chaos-validate-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    for file in files {
        // Run elsewhere, so that no log or journal lands in the source tree.
        let out = Command::new(chaos)
            .args(["--no-log-file", "validate"])
            .arg(file)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&work)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", chaos.display()));
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("experiment syntax and semantic look valid"),
            "chaos validate {}: {}\n{text}",
            file.display(),
            out.status
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
