//! Wiring: `Hub::build` prepares everything (database, migrations, TLS, bound listener) and
//! `run_until_stopped` serves until the shutdown future resolves, then stops cleanly.
use crate::{
    config::{AccessArgs, ServeArgs},
    db,
    embedded_pg::EmbeddedPg,
    git_sync, graphql, http,
    identity::{
        sessions::{self, Sessions},
        users,
    },
    notifications, notify, oidc,
    perimeter::{Perimeter, Rules},
    reaper, scheduler,
    state::{AppState, Timing},
    tls,
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;

pub struct Hub {
    state: AppState,
    stop_tx: tokio::sync::watch::Sender<bool>,
    listener: TcpListener,
    tls: Option<tls::Tls>,
    pg: Option<EmbeddedPg>,
    args: ServeArgs,
}

impl Hub {
    pub async fn build(args: ServeArgs) -> anyhow::Result<Hub> {
        // First, so a mistake in the file stops the hub before anything starts.
        let file = args.file_config()?;
        let (url, pg) = match &args.db.database_url {
            Some(u) => (u.0.clone(), None),
            None => {
                let pg = EmbeddedPg::start(&args.db.data_dir, 0, 200).await?;
                (pg.url("faultline"), Some(pg))
            }
        };
        let secrets = args.secret_keys()?;
        crate::metrics::init(!args.metrics.no_metrics);
        // Mistakes in these stop the hub before it starts.
        args.metrics.token()?;
        args.grafana.settings()?;
        let pool = db::connect(
            &url,
            args.db.db_max_connections,
            args.db.db_acquire_timeout.0,
        )
        .await?;
        db::migrate(&pool).await?;
        if secrets.enabled() {
            notifications::store::reseal(&pool, &secrets).await?;
        } else {
            tracing::warn!(
                "no --secret-key: webhook signing secrets are stored unencrypted in Postgres"
            );
        }
        let access = &args.access;
        if let Some(b) = users::bootstrap_admin(
            &pool,
            &access.admin_email,
            access.admin_password.as_ref().map(|p| p.0.as_str()),
        )
        .await?
        {
            // Printed once, on purpose not through tracing (logs are often shipped elsewhere).
            println!("admin user: {}", b.email);
            if let Some(p) = b.generated_password {
                println!("admin password: {p}");
                println!("(shown only now; the hub stores only its argon2id hash)");
            }
        }
        let sessions =
            Arc::new(Sessions::load(&pool, &session_keys(access)?, access.session_ttl.0).await?);
        let tls = if args.insecure_http {
            tracing::warn!(
                "--insecure-http: serving plain HTTP; only do this behind a TLS-terminating proxy"
            );
            None
        } else {
            std::fs::create_dir_all(&args.db.data_dir)?;
            Some(tls::load_or_generate(
                args.tls_cert.as_deref(),
                args.tls_key.as_deref(),
                &args.db.data_dir,
                &args.tls_sans,
            )?)
        };
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("failed to bind {}: {e}", args.listen))?;
        let replica = args.replica_id.clone().unwrap_or_else(|| {
            let host = nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default();
            format!(
                "{host}-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            )
        });
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let oidc = oidc::Oidc::new(file.oidc, pool.clone())?;
        let state = AppState {
            oidc,
            pool,
            replica,
            hub: notify::Hub::new(),
            liveness: Arc::default(),
            timing: Timing {
                heartbeat: args.heartbeat_interval.0,
                poll: args.poll_interval.0,
                delegate_event_rate: args.delegate_event_rate,
            },
            stop,
            sessions,
            git: Arc::new(git_sync::GitSync {
                settings: git_sync::Settings {
                    git: crate::git::Settings {
                        protocols: args.git.git_protocols.clone(),
                        timeout: args.git.git_timeout.0,
                        max_bytes: args.git.git_max_mib << 20,
                    },
                    credentials_dir: args.git.git_credentials_dir.clone(),
                    poll: args.git.git_poll.0,
                },
                wake: tokio::sync::Notify::new(),
            }),
            public_url: args.access.public_url.clone(),
            notifications: Arc::new(notifications::Settings {
                timeout: args.webhooks.webhook_timeout.0,
                max_attempts: args.webhooks.webhook_max_attempts,
                max_age: args.webhooks.webhook_max_age.0,
                retry_base: args.webhooks.webhook_retry_base.0,
                public_url: args.access.public_url.clone(),
                egress: notifications::deliver::Egress::parse(&args.webhooks.webhook_allow)?,
                secrets,
            }),
        };
        Ok(Hub {
            state,
            stop_tx,
            listener,
            tls,
            pg,
            args,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        if let Some(t) = &self.tls {
            tracing::info!(fingerprint = %t.fingerprint, ca = ?t.ca_path, "tls ready");
            if let Some(ca) = &t.ca_path {
                println!("faultline ca {}", ca.display());
            }
            println!("faultline fingerprint {}", t.fingerprint);
        }
        println!("faultline listening on {scheme}://{addr}");
        tracing::info!(%addr, replica = %self.state.replica, "hub listening");

        let listen = tokio::spawn(
            self.state
                .hub
                .clone()
                .listen(self.state.pool.clone(), self.state.stop.clone()),
        );
        let poll = tokio::spawn(self.state.hub.clone().poll_loop(
            self.state.pool.clone(),
            self.state.timing.poll,
            self.state.stop.clone(),
        ));
        let beats = tokio::spawn(self.state.liveness.clone().run(
            self.state.pool.clone(),
            crate::liveness::flush_interval(self.state.timing.heartbeat),
            self.state.stop.clone(),
        ));
        let timeouts = reaper::Timeouts {
            pending: self.args.pending_timeout,
            dead_man: self.args.dead_man_timeout,
            abort: self.args.abort_timeout,
            redispatch: faultline_experiment::Dur::secs(30),
            overdue_grace: faultline_experiment::Dur::secs(120),
        };
        let reap = tokio::spawn(reaper::run(
            self.state.pool.clone(),
            timeouts,
            Duration::from_secs(2),
            self.state.stop.clone(),
        ));
        let schedule = tokio::spawn(scheduler::run(
            self.state.pool.clone(),
            scheduler::Settings {
                catch_up: self.args.schedule_catch_up.0,
                fresh_secs: self.state.fresh_secs(),
            },
            self.state.hub.schedules.clone(),
            self.state.stop.clone(),
        ));
        let deliver = tokio::spawn(notifications::deliver::run(
            self.state.pool.clone(),
            (*self.state.notifications).clone(),
            self.state.replica.clone(),
            self.state.hub.webhooks.clone(),
            self.state.stop.clone(),
        ));
        let annotate = tokio::spawn(crate::annotations::run(
            self.state.pool.clone(),
            self.args.grafana.settings()?,
            self.state.stop.clone(),
        ));
        let retain = tokio::spawn(crate::retention::run(
            self.state.pool.clone(),
            self.args.retention.settings(),
            self.state.stop.clone(),
        ));
        let git = tokio::spawn(git_sync::run(
            self.state.pool.clone(),
            self.state.git.clone(),
            self.state.replica.clone(),
            self.state.stop.clone(),
        ));
        let a = &self.args.access;
        let perimeter = Perimeter::new(Rules {
            api_allow: a.allow_cidrs.clone(),
            grpc_allow: a.grpc_allow_cidrs.clone(),
            trusted_proxies: a.trusted_proxies.clone(),
            rate_per_sec: a.rate_limit,
            hsts: self.tls.is_some(),
        });
        let router = http::router(
            self.state.clone(),
            graphql::schema(Some(self.state.clone())),
            perimeter,
            &a.cors_origins,
            self.args.web_dir.clone(),
            self.args.metrics.token()?,
        )?;
        let metrics = match self.args.metrics.metrics_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("failed to bind --metrics-listen {addr}: {e}"))?;
                println!("faultline metrics on http://{}/metrics", l.local_addr()?);
                Some(tokio::spawn(http::serve_metrics(
                    l,
                    self.state.pool.clone(),
                    self.state.stop.clone(),
                )))
            }
            None => None,
        };
        let stop_tx = self.stop_tx;
        // The listener closes first, then every task and delegate stream is told to stop: a
        // delegate told to go away cannot reconnect to this replica.
        http::serve(
            self.listener,
            self.tls.map(|t| t.config),
            router,
            shutdown,
            move || {
                tracing::info!("listener closed; ending delegate streams and background tasks");
                let _ = stop_tx.send(true);
            },
            self.args.shutdown_grace.0,
        )
        .await;
        let _ = tokio::join!(listen, poll, reap, schedule, deliver, git, annotate, beats, retain);
        // Each delegate stream marks itself disconnected before the pool closes.
        if tokio::time::timeout(self.args.shutdown_grace.0, self.state.hub.sessions_ended())
            .await
            .is_err()
        {
            tracing::warn!("delegate sessions still ending after the grace period");
        }
        if let Some(m) = metrics {
            let _ = m.await;
        }
        self.state.pool.close().await;
        if let Some(pg) = self.pg {
            pg.stop().await;
        }
        tracing::info!("hub stopped");
        Ok(())
    }
}

/// The configured session keys: `--session-keys`, then the lines of `--session-keys-file`.
fn session_keys(a: &AccessArgs) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut raw: Vec<(String, String)> = a
        .session_keys
        .iter()
        .map(|k| ("FAULTLINE_SESSION_KEYS".to_string(), k.0.clone()))
        .collect();
    if let Some(f) = &a.session_keys_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                raw.push((format!("{}:{}", f.display(), i + 1), line.to_string()));
            }
        }
    }
    raw.iter()
        .map(|(at, k)| sessions::parse_key(k).map_err(|e| anyhow::anyhow!("{at}: {e}")))
        .collect()
}
