//! `faultline`: the hub binary. Parses flags, sets up logging, hands over to the library.
use clap::Parser;
use faultline_hub::{
    app::Hub,
    client,
    config::{Cli, Command, LogFormat, RunCmd, SchemaWhat, TemplateCmd},
    db, embedded_pg, graphql, shutdown, telemetry, template_cli, user_cli,
};

/// mimalloc, not glibc's malloc: with 100 delegates streaming events, a third of the hub's CPU
/// went to glibc's allocator (its free-list consolidation above all); BENCHMARKS.md, ingest.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the option enum of the mimalloc that libmimalloc-sys 0.1.49 builds
/// (v3; the crate names no constant for it, and the version is pinned).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// That option's default there, in milliseconds.
const MI_PURGE_DELAY_DEFAULT: std::ffi::c_long = 1000;

/// Freed memory goes back to the system at once instead of a second later: with 10,000 delegate
/// connections the hub's RSS was 827 MiB with mimalloc's default and 756 MiB without the delay
/// (glibc's malloc: 604 MiB), and ingest was unchanged. `MIMALLOC_PURGE_DELAY` still decides
/// when it is set.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: plain C calls on mimalloc's option table, which it fills before main runs.
    unsafe {
        // Only when the option at that index has the purge delay's default: a mimalloc whose
        // enum has moved is left as it is.
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_PURGE_DELAY_DEFAULT {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

/// Sends the spans still batched when the hub exits, then drops the exporter off the async
/// runtime (its blocking client may not be dropped on it).
struct Flush(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Drop for Flush {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::thread::spawn(move || {
                let _ = p.shutdown();
            })
            .join();
        }
    }
}

/// Logs to stderr as text or JSON; with `--otlp-endpoint`, spans also go to that collector (the
/// provider returned is flushed and dropped at exit).
fn init_tracing(
    format: LogFormat,
    otlp: Option<&str>,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use tracing_subscriber::{
        fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer,
    };
    let filter = EnvFilter::try_from_env("FAULTLINE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn,hyper=warn"));
    let lines = fmt::layer().with_writer(std::io::stderr);
    let lines = match format {
        // Each line also names the spans it is in, with their fields (`run_id`, ...).
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
        LogFormat::Text => lines.boxed(),
    };
    // The exporter's blocking client is made off the async runtime's threads.
    let provider = match otlp {
        Some(url) => {
            let url = url.to_string();
            Some(
                std::thread::spawn(move || telemetry::provider(&url, "faultline-hub"))
                    .join()
                    .map_err(|_| anyhow::anyhow!("the OTLP exporter's start panicked"))??,
            )
        }
        None => None,
    };
    let traces = provider.as_ref().map(telemetry::layer);
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(traces.with_filter(EnvFilter::new(
            "info,sqlx=warn,h2=warn,tower=warn,hyper=warn",
        )))
        .init();
    Ok(provider)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    purge_freed_memory_at_once();
    let cli = Cli::parse();
    let provider = match init_tracing(cli.log_format, cli.otlp_endpoint.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: --otlp-endpoint: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let _flush = Flush(provider);
    // The hub's clients have their own exit codes (docs/ci.md).
    match cli.command {
        Command::Run(RunCmd {
            hub,
            what: Some(what),
            ..
        }) => return client::runs::run(hub, what).await.into(),
        Command::Run(RunCmd { hub, gate, .. }) => return client::run(hub, gate).await.into(),
        Command::Template {
            what: TemplateCmd::Apply { hub, files, json },
        } => return client::templates::apply(hub, &files, json).await.into(),
        Command::Template {
            what: TemplateCmd::List { hub, json },
        } => return client::templates::list(hub, json).await.into(),
        Command::Template {
            what:
                TemplateCmd::Sync {
                    hub,
                    dir,
                    source,
                    prune,
                    dry_run,
                    commit,
                    json,
                },
        } => {
            let opts = client::sync::Options {
                source,
                prune,
                dry_run,
                commit,
                json,
            };
            return client::sync::sync(hub, &dir, opts).await.into();
        }
        _ => {}
    }
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let stop = shutdown::signal();
            Hub::build(args).await?.run_until_stopped(stop).await
        }
        Command::Migrate(args) => {
            let url = args
                .database_url
                .map(|u| u.0)
                .ok_or_else(|| anyhow::anyhow!("set DATABASE_URL (or --database-url)"))?;
            db::migrate(&db::connect(&url, 2, std::time::Duration::from_secs(10)).await?).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Schema {
            what: SchemaWhat::Graphql,
        } => {
            print!("{}", graphql::schema(None).sdl());
            Ok(())
        }
        Command::Schema {
            what: SchemaWhat::Template,
        } => {
            print!("{}", template_cli::schema());
            Ok(())
        }
        Command::Postgres(args) => {
            let pg =
                embedded_pg::EmbeddedPg::start(&args.data_dir, args.port, args.max_connections)
                    .await?;
            let stop = shutdown::signal();
            println!("postgres ready {}", pg.url("postgres"));
            stop.await;
            pg.stop().await;
            Ok(())
        }
        Command::Template {
            what: TemplateCmd::Validate { files },
        } => {
            let (lines, ok) = template_cli::validate(&files);
            for l in lines {
                println!("{l}");
            }
            if ok {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::User { what } => user_cli::run(what).await,
        Command::Run(_)
        | Command::Template {
            what: TemplateCmd::Apply { .. } | TemplateCmd::List { .. } | TemplateCmd::Sync { .. },
        } => unreachable!("handled in main"),
        Command::Template {
            what: TemplateCmd::Import { format, name, file },
        } => {
            let out = template_cli::import(&file, format.into(), name);
            print!("{}", out.yaml.as_deref().unwrap_or_default());
            for l in &out.messages {
                eprintln!("{l}");
            }
            if out.yaml.is_some() {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
    }
}
