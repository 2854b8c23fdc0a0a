//! The soak's CI version (the long one is `faultline-bench-soak`, see BENCHMARKS.md): two
//! minutes of runs through two replicas behind one address and ten real delegates while every
//! kind of disruption happens at least once (a replica SIGKILLed, Postgres restarted, a
//! delegate's connection reset, a delegate SIGKILLed mid-fault, a delegate's state disk full).
//! Needs root for the tmpfs of the full disk, as the other namespace tests do.
use faultline_e2e::soak::{self, Disruption, Opts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_minutes() {
    let report = soak::run(Opts::two_minutes(10)).await.unwrap();
    eprintln!("{}", report.table());
    for l in &report.timeline {
        eprintln!("{l}");
    }
    for kind in Disruption::ALL {
        assert!(
            report.done.get(&kind).copied().unwrap_or(0) >= 1,
            "{} happened at least once",
            kind.name()
        );
    }
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(
        failed.is_empty(),
        "failed checks (files kept in {:?}):\n{}",
        report.kept,
        failed.join("\n")
    );
}
