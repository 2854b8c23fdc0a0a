//! `faultline-delegate`: parses flags, sets up logging, hands over to the library: the delegate,
//! or with `toxiproxy` first the standalone Toxiproxy server.
use faultline_delegate::{
    config::{Invocation, ToxiproxyConfig},
    shutdown,
};
use std::process::ExitCode;

fn main() -> ExitCode {
    // The hidden worker mode of the resource faults, before any delegate start-up.
    if let Some(code) = faultline_delegate::faults::stress_worker::main_if_worker() {
        return code;
    }
    let cfg = match Invocation::parse_from(std::env::args_os()) {
        Ok(Invocation::Delegate(cfg)) => *cfg,
        Ok(Invocation::Toxiproxy(cfg)) => return toxiproxy(cfg),
        Err(e) => e.exit(),
    };
    // Read; now out of the environment, so nothing the delegate starts inherits it (programs
    // get an explicit environment anyway; the stress workers are this binary).
    std::env::remove_var("FAULTLINE_DELEGATE_TOKEN");
    init_tracing(cfg.log_format == faultline_delegate::config::LogFormat::Json);
    // One thread is plenty for a few probes and one stream, and keeps the idle footprint small.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(async { faultline_delegate::run(cfg, shutdown::signal()).await }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The standalone Toxiproxy server. Unlike the delegate, a multi-threaded runtime: it exists to
/// move test traffic through its proxies, and the pumps of many connections share the cores.
fn toxiproxy(cfg: ToxiproxyConfig) -> ExitCode {
    init_tracing(std::env::var("FAULTLINE_LOG_FORMAT").as_deref() == Ok("json"));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(async {
        faultline_delegate::proxy::standalone::run(cfg, shutdown::signal()).await
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (stdout carries only the "connected" line), filtered by `FAULTLINE_LOG`;
/// `--log-format json` (`FAULTLINE_LOG_FORMAT=json`) for machine-readable lines, each with the
/// fields of its spans (a run's `run_id`). Colour only on a terminal.
fn init_tracing(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_env("FAULTLINE_LOG").unwrap_or_else(|_| {
        EnvFilter::new("info,h2=warn,tower=warn,hyper=warn,hyper_util=warn,reqwest=warn")
    });
    let b = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    if json {
        b.json().with_current_span(true).with_span_list(true).init();
    } else {
        b.init();
    }
}
