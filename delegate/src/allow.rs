//! The delegate's allow-list: the operator's [`Policy`](faultline_experiment::policy::Policy) as
//! `--allow KIND=VALUE` (repeatable), `FAULTLINE_DELEGATE_ALLOW` (comma-separated) or
//! `--allow-file` (one entry per line) give it. Its entries, what each allows and what stays
//! open or closed without them are in `faultline_experiment::policy` (shared with the hub, which
//! refuses at `startRun` what the delegate would refuse) and in docs/safety.md.
//!
//! Here: reading the entries from flags and file, and the check of a run at assignment, in the
//! words the delegate reports. What each step resolves to is checked again where it happens:
//! faults in `faults/`, connections, programs and environment variables in `sandbox/`.
pub use faultline_experiment::policy::{parse_file, Entry, Policy as AllowList, Who, HOST_NETNS};
use faultline_experiment::Experiment;

/// Every reason `exp` may not run on this delegate, as `FIELD: reason (hint)`; empty when it
/// may.
pub fn refusals(allow: &AllowList, exp: &Experiment) -> Vec<String> {
    allow
        .check(exp, Who("this delegate"))
        .iter()
        .map(ToString::to_string)
        .collect()
}
