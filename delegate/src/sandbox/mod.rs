//! The trust boundary between a template and this host: everything a template's probes,
//! rollbacks and actions do to the host goes through a [`Sandbox`], which holds the operator's
//! [`Policy`] and enforces it on what each step resolves to.
//!
//! - [`egress`]: every connection they open (names resolved here and each address checked, so
//!   a name cannot smuggle a forbidden address; link-local and metadata addresses refused
//!   unless listed; redirects re-checked);
//! - [`exec`]: every program they run (allowed by `command=`, found on a fixed search path,
//!   an explicit environment only, optionally as another user, in its own process group);
//! - [`Sandbox::env`]: the delegate's environment variables they read (`env=` only).
//!
//! Faults check the same policy in `faults/`: what they touch is not a connection or a
//! program but a process, a file or a kernel table.
use faultline_experiment::policy::Policy;
use std::sync::Arc;

pub mod egress;
pub mod exec;

pub use exec::RunAs;

/// The policy and how programs run, shared by every probe, rollback and action of a delegate.
#[derive(Clone, Debug)]
pub struct Sandbox {
    policy: Arc<Policy>,
    run_as: Option<RunAs>,
}

/// What every refusal ends with, so a reader knows who decided and how to change it.
pub(crate) fn refused(what: impl std::fmt::Display) -> String {
    format!("{what}: refused by this delegate's allow-list")
}

impl Sandbox {
    pub fn new(mut policy: Policy, run_as: Option<RunAs>) -> Self {
        policy.resolve_programs(|p| {
            std::fs::canonicalize(p)
                .ok()
                .and_then(|c| c.to_str().map(str::to_string))
        });
        Sandbox {
            policy: Arc::new(policy),
            run_as,
        }
    }

    /// A sandbox for tests: `entries` as `--allow` would take them.
    pub fn allowing(entries: &[&str]) -> Self {
        let policy = Policy::from_strings(entries).expect("test allow-list entries parse");
        Sandbox::new(policy, None)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn run_as(&self) -> Option<&RunAs> {
        self.run_as.as_ref()
    }

    /// The value of one of the delegate's environment variables, if `env=NAME` allows reading
    /// it; never any other.
    pub fn env(&self, name: &str, field: &str) -> Result<String, String> {
        if !self.policy.env_name(name) {
            return Err(format!(
                "{} (needs --allow env={name})",
                refused(format_args!(
                    "environment variable {name} ({field}) may not be read"
                ))
            ));
        }
        std::env::var(name).map_err(|_| format!("environment variable {name} ({field}) is not set"))
    }
}
