//! `faultline`: the hub binary. Parses flags, sets up logging, hands over to the library.
use clap::Parser;
use faultline_hub::{
    app::Hub,
    client,
    config::{Cli, Command, LogFormat, RunCmd, SchemaWhat, TemplateCmd},
    db, embedded_pg, graphql, shutdown, template_cli, user_cli,
};

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_env("FAULTLINE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn,hyper=warn"));
    let b = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        // Each line also names the spans it is in, with their fields (`run_id`, ...).
        LogFormat::Json => b.json().with_current_span(true).with_span_list(true).init(),
        LogFormat::Text => b.init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
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
            db::migrate(&db::connect(&url, 2).await?).await?;
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
