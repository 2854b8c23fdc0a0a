//! Command line and environment configuration of the hub (clap, `FAULTLINE_*` variables).
use clap::{Args, Parser, Subcommand, ValueEnum};
use faultline_experiment::Dur;
use std::{fmt, net::SocketAddr, path::PathBuf};

#[derive(Parser, Debug)]
#[command(name = "faultline", version, about = "Faultline chaos-engineering hub")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as `text` (for people) or `json` (one object per line, with the fields of the
    /// spans they belong to: a run's lines carry `run_id`, `delegate`, `project`).
    #[arg(long, global = true, env = "FAULTLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Send traces to this OpenTelemetry collector over OTLP/HTTP (protobuf), e.g.
    /// `http://otel-collector:4318` (`/v1/traces` is appended): a span per GraphQL request, per
    /// dispatch to a delegate and per batch of events stored.
    #[arg(
        long,
        global = true,
        env = "FAULTLINE_OTLP_ENDPOINT",
        value_name = "URL"
    )]
    pub otlp_endpoint: Option<String>,
}

/// How log lines are written (`--log-format`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at start-up; the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the hub: HTTPS, GraphQL, dashboard and the delegate gRPC endpoint on one port.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Print a schema.
    Schema {
        #[command(subcommand)]
        what: SchemaWhat,
    },
    /// Run a private PostgreSQL cluster in the foreground (what `serve` embeds), printing its URL.
    Postgres(PostgresArgs),
    /// Manage users in the database directly (the first users, or to recover access).
    User {
        #[command(subcommand)]
        what: UserCmd,
    },
    /// Work with experiment templates: offline (`validate`, `import`: no hub needed) or on a hub
    /// (`apply`, `list`).
    Template {
        #[command(subcommand)]
        what: TemplateCmd,
    },
    /// A client for CI/CD pipelines: start a run on a hub, follow it, and exit with its verdict
    /// (0 passed, 1 failed or below --min-score, 2 usage/auth/validation, 3 timeout/aborted/error,
    /// 130 / 143 interrupted). `run list`, `run show`, `run abort` read and stop runs. See
    /// docs/ci.md.
    Run(RunCmd),
}

/// Where the hub is and who calls it: shared by `faultline run` and every hub client
/// subcommand (`run list|show|abort`, `template apply|list`). Global, so the flags may follow a
/// subcommand (`faultline run list --hub …`); clap cannot require a global flag, so the
/// client checks `--hub` and `--token` itself (exit 2).
#[derive(Args, Debug, Clone)]
pub struct HubArgs {
    /// The hub's base URL, e.g. https://faultline.example:8443 (required).
    #[arg(long, env = "FAULTLINE_HUB", global = true)]
    pub hub: Option<String>,
    /// An API token (create one on the dashboard's Access page); prefer the environment variable
    /// (required).
    #[arg(long, env = "FAULTLINE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<Secret>,
    /// PEM file of the CA that signed the hub's certificate, for HTTPS and the WebSocket
    /// (default: the public web roots).
    #[arg(long, env = "FAULTLINE_HUB_CA", global = true)]
    pub hub_ca: Option<PathBuf>,
    /// The project (default: the API token's project).
    #[arg(long, env = "FAULTLINE_PROJECT", global = true)]
    pub project: Option<String>,
}

/// `faultline run`: the pipeline gate (its flags), or one of `list`, `show`, `abort`.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct RunCmd {
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub gate: RunArgs,
    #[command(subcommand)]
    pub what: Option<RunSub>,
}

/// `faultline run SUBCOMMAND` (`client/runs.rs`).
#[derive(Subcommand, Debug, Clone)]
pub enum RunSub {
    /// Lists runs, most recent first.
    List {
        /// Only runs of this template (by name).
        #[arg(long)]
        template: Option<String>,
        /// Only runs in this status (PENDING, RUNNING, PASSED, FAILED, ABORTED, ERROR, ...);
        /// repeat for several.
        #[arg(long)]
        status: Vec<String>,
        /// At most this many runs (1-1000).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Shows one run: status, template version, delegate, score, recovery, reason.
    Show {
        /// The run's id, or a prefix of at least 8 hex digits.
        id: String,
        /// Print the run as JSON.
        #[arg(long)]
        json: bool,
        /// Also write the run's report to FILE: a self-contained HTML page, or a PDF when FILE
        /// ends in .pdf (docs/run-report.md).
        #[arg(long, value_name = "FILE")]
        report: Option<std::path::PathBuf>,
    },
    /// Aborts a run: its delegate reverts every fault at once.
    Abort {
        /// The run's id, or a prefix of at least 8 hex digits.
        id: String,
        /// Why, kept with the run and in the audit log.
        #[arg(long)]
        reason: Option<String>,
        /// Print the run as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `faultline run`: flags of the pipeline gate (`client/gate.rs`).
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The template's name.
    #[arg(long, required = true)]
    pub template: Option<String>,
    /// Pin a template version (default: the latest); an unknown version exits 2.
    #[arg(long)]
    pub version: Option<u32>,
    /// The delegate's name (default: the template's `target.delegate`).
    #[arg(long, conflicts_with = "selector")]
    pub delegate: Option<String>,
    /// A delegate label selector, `k=v[,k=v...]`.
    #[arg(long)]
    pub selector: Option<String>,
    /// Resolve every fault's targets on the delegate but apply nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow the run until it ends and exit with its verdict (without it: print the run's id
    /// and link, exit 0).
    #[arg(long)]
    pub wait: bool,
    /// Follow the run by polling every 500 ms instead of the WebSocket event stream (the
    /// command falls back to polling by itself when the WebSocket cannot be opened).
    #[arg(long)]
    pub poll: bool,
    /// Say how the run is followed (WebSocket or polling) and when it resubscribes.
    #[arg(long, short)]
    pub verbose: bool,
    /// Exit 1 when a PASSED run's resilience score is below this (0-100).
    #[arg(long)]
    pub min_score: Option<f64>,
    /// Abort the run and exit 3 when it has not ended within this, e.g. 10m.
    #[arg(long, default_value = "30m")]
    pub timeout: Dur,
    /// Write a JUnit XML report here (one testsuite, one testcase per probe and per fault step).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Print one JSON object on stdout at the end (id, status, score, recoveryMs, reason, url,
    /// exitCode, templateVersion).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Adds a local user. The password is read from standard input with --password-stdin;
    /// otherwise one is generated and printed once.
    Add {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// `admin` (instance administrator), or a project role: owner, editor, viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// The project the role is in (not used with `admin`).
        #[arg(long, default_value = "default")]
        project: String,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sets a user's password (read from standard input) and ends its sessions.
    SetPassword {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TemplateCmd {
    /// Validate template files: prints `FILE:LINE:COL: message` per problem, exits 1 on any.
    Validate {
        /// YAML files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Convert another tool's experiment to a template: prints the YAML on stdout and
    /// `FILE: note: ...` on stderr; exits 1 with `FILE: path: reason` lines when it cannot.
    Import {
        /// The format of FILE.
        #[arg(long, value_enum)]
        format: ImportFormat,
        /// Template name; by default derived from the experiment's title.
        #[arg(long)]
        name: Option<String>,
        /// The experiment to convert (JSON or YAML).
        file: PathBuf,
    },
    /// Stores templates on a hub: creates each, or adds a version only when its YAML changed.
    /// Prints `created NAME v1`, `updated NAME v3` or `unchanged NAME v2` per file.
    Apply {
        #[command(flatten)]
        hub: HubArgs,
        /// YAML files, one template each (the name is its `metadata.name`).
        #[arg(short = 'f', long = "file", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Print one JSON object per file instead.
        #[arg(long)]
        json: bool,
    },
    /// Lists a hub's templates: name, latest version, last update, description.
    List {
        #[command(flatten)]
        hub: HubArgs,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Makes the project's templates follow a directory (docs/gitops.md): every `*.yaml` /
    /// `*.yml` under DIR creates its template or adds a version when its text changed, in one
    /// transaction on the hub. Prints created, updated, unchanged, archived and invalid
    /// (`FILE:LINE:COL: message`); exits 1 when a file is invalid (it changed nothing).
    Sync {
        #[command(flatten)]
        hub: HubArgs,
        /// The directory (searched recursively; hidden entries such as `.git` are skipped).
        dir: PathBuf,
        /// Names the directory on the hub; only its templates are archived by --prune
        /// (default: DIR as given, e.g. `experiments`).
        #[arg(long, env = "FAULTLINE_SYNC_SOURCE")]
        source: Option<String>,
        /// Archive the templates of this source whose file is gone (never deletes; their runs
        /// stay readable, they start no new runs).
        #[arg(long)]
        prune: bool,
        /// Report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The git commit the files are at, recorded on each new version (default: none).
        #[arg(long, env = "FAULTLINE_SYNC_COMMIT")]
        commit: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Formats `template import` reads.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// A Chaos Toolkit experiment (JSON or YAML).
    #[value(name = "chaostoolkit")]
    ChaosToolkit,
}

impl From<ImportFormat> for faultline_experiment::import::Format {
    fn from(f: ImportFormat) -> Self {
        match f {
            ImportFormat::ChaosToolkit => faultline_experiment::import::Format::ChaosToolkit,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum SchemaWhat {
    /// The GraphQL SDL.
    Graphql,
    /// The JSON Schema (draft-07) of experiment templates, for editors; docs/template.schema.json.
    Template,
}

/// A value that must not show up in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// PostgreSQL URL. When unset, the hub runs a private cluster in its data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// Where the hub keeps its TLS material and, without DATABASE_URL, its Postgres cluster.
    #[arg(long, env = "FAULTLINE_DATA_DIR", default_value = ".faultline")]
    pub data_dir: PathBuf,
    /// Database connections this process may open.
    #[arg(long, env = "FAULTLINE_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
    /// How long a request waits for a database connection before it is answered with an
    /// UNAVAILABLE error (the database is down or every connection is busy).
    #[arg(long, env = "FAULTLINE_DB_ACQUIRE_TIMEOUT", default_value = "5s")]
    pub db_acquire_timeout: Dur,
}

/// The hub's own git sync (docs/gitops.md).
#[derive(Args, Debug, Clone)]
pub struct GitArgs {
    /// Directory of the credentials a project's repository binding may name: SSH deploy keys
    /// and files holding an HTTPS token, one per file. Bindings name a file here, never a
    /// path, so a project owner cannot make the hub read other files. Unset: no credentials.
    #[arg(long, env = "FAULTLINE_GIT_CREDENTIALS_DIR")]
    pub git_credentials_dir: Option<PathBuf>,
    /// URL schemes a repository may use (git's GIT_ALLOW_PROTOCOL); add `file` only for tests
    /// and local mirrors, since it lets a binding read repositories on the hub's disk.
    #[arg(
        long,
        env = "FAULTLINE_GIT_PROTOCOLS",
        value_delimiter = ',',
        default_value = "https,ssh"
    )]
    pub git_protocols: Vec<String>,
    /// Longest time one `git` command may take before it is killed and the sync fails.
    #[arg(long, env = "FAULTLINE_GIT_TIMEOUT", default_value = "60s")]
    pub git_timeout: Dur,
    /// Largest checkout read (the files under the bound path), in MiB.
    #[arg(long, env = "FAULTLINE_GIT_MAX_MIB", default_value_t = 64)]
    pub git_max_mib: u64,
    /// How often each replica looks for a repository due for a sync.
    #[arg(long, env = "FAULTLINE_GIT_POLL", default_value = "1s")]
    pub git_poll: Dur,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Serve the dashboard from this directory (a `web/dist` built by `npm run build`) instead
    /// of the copy built into the binary.
    #[arg(long, env = "FAULTLINE_WEB_DIR")]
    pub web_dir: Option<std::path::PathBuf>,
    /// Address for HTTPS (GraphQL, dashboard) and gRPC (delegates), multiplexed on one port.
    #[arg(long, env = "FAULTLINE_LISTEN", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain. Without it a self-signed CA and certificate are generated.
    #[arg(long, env = "FAULTLINE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "FAULTLINE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names or IPs for the generated certificate (localhost and loopback are always in).
    #[arg(long = "tls-san", env = "FAULTLINE_TLS_SANS", value_delimiter = ',')]
    pub tls_sans: Vec<String>,
    /// Serve plain HTTP (and h2c gRPC) instead of HTTPS. Only behind a TLS-terminating proxy.
    #[arg(long, env = "FAULTLINE_INSECURE_HTTP")]
    pub insecure_http: bool,
    #[command(flatten)]
    pub git: GitArgs,
    /// Name of this replica in logs and in `delegates.connected_replica`; random by default.
    #[arg(long, env = "FAULTLINE_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// A run no delegate has picked up after this long ends in ERROR.
    #[arg(long, env = "FAULTLINE_PENDING_TIMEOUT", default_value = "10m")]
    pub pending_timeout: Dur,
    /// A delegate silent for this long is lost: its unfinished runs end in ERROR. Keep it longer
    /// than the delegates' own dead-man timeout, so they have reverted by then.
    #[arg(long, env = "FAULTLINE_DEAD_MAN_TIMEOUT", default_value = "90s")]
    pub dead_man_timeout: Dur,
    /// An abort the delegate has not confirmed after this long ends the run in ERROR.
    #[arg(long, env = "FAULTLINE_ABORT_TIMEOUT", default_value = "30s")]
    pub abort_timeout: Dur,
    /// How often delegates send heartbeats (told to them when they connect).
    #[arg(long, env = "FAULTLINE_HEARTBEAT_INTERVAL", default_value = "5s")]
    pub heartbeat_interval: Dur,
    /// How often each replica re-checks Postgres for work, in case a notification was missed.
    #[arg(long, env = "FAULTLINE_POLL_INTERVAL", default_value = "2s")]
    pub poll_interval: Dur,
    /// Events per second each delegate may send (bursts of twice that); faster senders are
    /// slowed down by not reading their stream, never by dropping events. 0 = no limit;
    /// otherwise at least 1000, so one full batch never waits longer than a second.
    #[arg(long, env = "FAULTLINE_DELEGATE_EVENT_RATE", default_value_t = 20_000, value_parser = event_rate)]
    pub delegate_event_rate: u32,
    /// A schedule's fire time that passed while no hub was running is still fired (once, the
    /// latest of them) when a hub starts less than this late; older ones are recorded as
    /// missed (docs/schedules.md).
    #[arg(long, env = "FAULTLINE_SCHEDULE_CATCH_UP", default_value = "5m")]
    pub schedule_catch_up: Dur,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// How long in-flight requests may take to finish on shutdown.
    #[arg(long, env = "FAULTLINE_SHUTDOWN_GRACE", default_value = "10s")]
    pub shutdown_grace: Dur,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub grafana: GrafanaArgs,
    /// TOML configuration file for long lists such as OpenID Connect providers (`[[oidc]]`, see
    /// docs/sso.md). Read and checked at start; problems are printed as FILE:LINE:COL: message.
    #[arg(long = "config", env = "FAULTLINE_CONFIG")]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// Keys that seal secrets the hub keeps in Postgres (webhook signing secrets), as base64 of
    /// 32 random bytes (`openssl rand -base64 32`), comma-separated: the first seals, all open
    /// (rotate by putting a new key first; the hub reseals at start). Every replica needs the
    /// same keys. Without any, those secrets are stored unencrypted. Prefer the environment or
    /// --secret-key-file.
    #[arg(
        long,
        env = "FAULTLINE_SECRET_KEY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub secret_key: Vec<Secret>,
    /// A file of such keys, one per line (after those of --secret-key).
    #[arg(long, env = "FAULTLINE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
}

/// Outgoing webhooks (docs/notifications.md).
#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Where webhooks may send, comma-separated: CIDRs (`10.0.0.0/8`), host names
    /// (`hooks.slack.com`) or suffixes (`*.example.com`). Empty (the default): any public
    /// address, never loopback, private, link-local or other special ones. Given: only these.
    #[arg(
        long = "webhook-allow",
        env = "FAULTLINE_WEBHOOK_ALLOW",
        value_delimiter = ','
    )]
    pub webhook_allow: Vec<String>,
    /// How long one delivery attempt may take (connect, send, read the response).
    #[arg(long, env = "FAULTLINE_WEBHOOK_TIMEOUT", default_value = "10s")]
    pub webhook_timeout: Dur,
    /// Attempts per delivery before it is given up as failed.
    #[arg(long, env = "FAULTLINE_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub webhook_max_attempts: u32,
    /// A delivery not done this long after its event is given up as failed.
    #[arg(long, env = "FAULTLINE_WEBHOOK_MAX_AGE", default_value = "24h")]
    pub webhook_max_age: Dur,
    /// The first retry's delay; each next one is 3 times longer (at most 6h), ±25% jitter.
    #[arg(long, env = "FAULTLINE_WEBHOOK_RETRY_BASE", default_value = "30s")]
    pub webhook_retry_base: Dur,
}

/// Identity and perimeter settings (docs/identity.md).
#[derive(Args, Debug, Clone)]
pub struct AccessArgs {
    /// Email of the administrator made on the very first start (no user yet).
    #[arg(
        long,
        env = "FAULTLINE_ADMIN_EMAIL",
        default_value = "admin@faultline.local"
    )]
    pub admin_email: String,
    /// Password of that administrator; without it one is generated and printed once. Set it
    /// through the environment, not as a flag (flags show up in `ps`).
    #[arg(long, env = "FAULTLINE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
    /// Session signing keys, `KID:BASE64` (32+ random bytes), comma-separated: the first signs,
    /// all verify (rotate by putting a new key first). Without any, a key is made once and kept
    /// in Postgres for every replica. Prefer the environment or --session-keys-file.
    #[arg(
        long,
        env = "FAULTLINE_SESSION_KEYS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub session_keys: Vec<Secret>,
    /// A file of session keys, one `KID:BASE64` per line (after those of --session-keys).
    #[arg(long, env = "FAULTLINE_SESSION_KEYS_FILE")]
    pub session_keys_file: Option<PathBuf>,
    /// The hub's external URL as browsers reach it (e.g. `https://chaos.example.com`), used for
    /// SSO redirect URIs. Without it, the request's Host header and https.
    #[arg(long, env = "FAULTLINE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How long a login lasts.
    #[arg(long, env = "FAULTLINE_SESSION_TTL", default_value = "12h")]
    pub session_ttl: Dur,
    /// Addresses (CIDRs, comma-separated) that may reach the dashboard, GraphQL and /auth;
    /// others get 403 before anything else runs. Empty: everyone.
    #[arg(
        long = "allow-cidr",
        env = "FAULTLINE_ALLOW_CIDRS",
        value_delimiter = ','
    )]
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Addresses (CIDRs) that may reach the delegates' gRPC service. Empty: everyone.
    #[arg(
        long = "grpc-allow-cidr",
        env = "FAULTLINE_GRPC_ALLOW_CIDRS",
        value_delimiter = ','
    )]
    pub grpc_allow_cidrs: Vec<ipnet::IpNet>,
    /// Reverse proxies (CIDRs) whose X-Forwarded-For names the client. Others' is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "FAULTLINE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// API requests per second allowed per client address (bursts of twice that); 0 = no limit.
    #[arg(long, env = "FAULTLINE_RATE_LIMIT", default_value_t = 200)]
    pub rate_limit: u32,
    /// Origins allowed to call the API from a browser page on another origin (CORS). Empty
    /// (the default): no cross-origin access.
    #[arg(
        long = "cors-origin",
        env = "FAULTLINE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
}

/// `--delegate-event-rate`: 0, or at least one batch per second.
fn event_rate(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    let min = crate::grpc::MAX_BATCH as u32;
    if n != 0 && n < min {
        return Err(format!(
            "use 0 (no limit) or at least {min} events per second"
        ));
    }
    Ok(n)
}

impl ServeArgs {
    /// `--secret-key`, then the lines of `--secret-key-file` (blank lines and `#` comments skipped).
    pub fn secret_keys(&self) -> anyhow::Result<crate::secretbox::SecretBox> {
        let mut keys: Vec<String> = self.secret_key.iter().map(|k| k.0.clone()).collect();
        if let Some(f) = &self.secret_key_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        crate::secretbox::SecretBox::new(&keys).map_err(|e| anyhow::anyhow!("--secret-key: {e}"))
    }

    /// The configuration file's contents (empty when no `--config` is given).
    pub fn file_config(&self) -> anyhow::Result<crate::config_file::FileConfig> {
        match &self.config_file {
            Some(path) => crate::config_file::FileConfig::load(path),
            None => Ok(Default::default()),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct PostgresArgs {
    /// Directory of the cluster (created and initialised when missing).
    #[arg(long, env = "FAULTLINE_DATA_DIR", default_value = ".faultline")]
    pub data_dir: PathBuf,
    /// Also listen on this loopback TCP port (0 = unix socket only).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// max_connections of the cluster.
    #[arg(long, default_value_t = 200)]
    pub max_connections: u32,
}

/// Where Prometheus reads the hub's metrics (docs/observability.md).
#[derive(Args, Debug, Clone, Default)]
pub struct MetricsArgs {
    /// Serve `/metrics` on this address too, over plain HTTP and without a credential: bind it
    /// to an address only the monitoring network reaches (e.g. a pod's IP, scraped in-cluster).
    #[arg(long, env = "FAULTLINE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve `/metrics` on the main port to requests carrying `Authorization: Bearer TOKEN`
    /// (Prometheus' `authorization` / `bearer_token_file`). Without it (or the file) the main
    /// port has no `/metrics`.
    #[arg(long, env = "FAULTLINE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// The same token, read from the first line of a file.
    #[arg(
        long,
        env = "FAULTLINE_METRICS_TOKEN_FILE",
        conflicts_with = "metrics_token"
    )]
    pub metrics_token_file: Option<PathBuf>,
    /// Record no metrics (what `faultline-bench-metrics` compares against); `/metrics` then
    /// has only the hub-wide series read from Postgres.
    #[arg(long, env = "FAULTLINE_NO_METRICS")]
    pub no_metrics: bool,
}

impl MetricsArgs {
    /// The bearer token `/metrics` on the main port asks for, if any.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        let t = match (&self.metrics_token, &self.metrics_token_file) {
            (Some(t), _) => t.0.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("--metrics-token-file {}: {e}", f.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            (None, None) => return Ok(None),
        };
        anyhow::ensure!(
            t.len() >= 16,
            "the metrics token must be at least 16 characters"
        );
        Ok(Some(t))
    }
}

/// Grafana annotations of the chaos windows and runs (docs/observability.md).
#[derive(Args, Debug, Clone, Default)]
pub struct GrafanaArgs {
    /// Push an annotation for each fault's window and each run to this Grafana
    /// (`https://grafana.example.com`), through its HTTP API.
    #[arg(long, env = "FAULTLINE_GRAFANA_URL", value_name = "URL")]
    pub grafana_url: Option<url::Url>,
    /// A Grafana service account token allowed to write annotations.
    #[arg(long, env = "FAULTLINE_GRAFANA_TOKEN", hide_env_values = true)]
    pub grafana_token: Option<Secret>,
    /// The same token, read from the first line of a file.
    #[arg(
        long,
        env = "FAULTLINE_GRAFANA_TOKEN_FILE",
        conflicts_with = "grafana_token"
    )]
    pub grafana_token_file: Option<PathBuf>,
    /// Attach the annotations to this dashboard (its UID) rather than to the whole organisation.
    #[arg(long, env = "FAULTLINE_GRAFANA_DASHBOARD_UID")]
    pub grafana_dashboard_uid: Option<String>,
    /// How long one request to Grafana may take.
    #[arg(long, env = "FAULTLINE_GRAFANA_TIMEOUT", default_value = "10s")]
    pub grafana_timeout: Dur,
}

impl GrafanaArgs {
    /// Where to send annotations, if anywhere.
    pub fn settings(&self) -> anyhow::Result<Option<crate::annotations::Settings>> {
        let Some(url) = &self.grafana_url else {
            return Ok(None);
        };
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "--grafana-url must be http(s)://, not {}",
            url.scheme()
        );
        let token = match (&self.grafana_token, &self.grafana_token_file) {
            (Some(t), _) => t.0.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("--grafana-token-file {}: {e}", f.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            (None, None) => anyhow::bail!(
                "--grafana-url needs --grafana-token or --grafana-token-file (a service account token)"
            ),
        };
        anyhow::ensure!(!token.is_empty(), "the Grafana token is empty");
        Ok(Some(crate::annotations::Settings {
            url: url.clone(),
            token,
            dashboard_uid: self.grafana_dashboard_uid.clone(),
            timeout: self.grafana_timeout.0,
        }))
    }
}

/// Retention of run events (server/src/retention.rs).
#[derive(Args, Clone, Debug)]
pub struct RetentionArgs {
    /// Delete the events and probe checks of runs that ended longer ago than this, e.g. `90d`;
    /// the run's summary (verdict, score, tallies, recovery, latency verdict) stays. Default:
    /// keep them forever.
    #[arg(long, env = "FAULTLINE_RETAIN_EVENTS")]
    pub retain_events: Option<Dur>,
    /// A project's own retention, `PROJECT=DURATION` (repeatable, or comma-separated in the
    /// environment); it overrides --retain-events for that project.
    #[arg(long = "retain-events-project", env = "FAULTLINE_RETAIN_EVENTS_PROJECT", value_delimiter = ',', value_parser = crate::retention::parse_project)]
    pub retain_events_project: Vec<(String, std::time::Duration)>,
    /// How often retention looks for runs that are due.
    #[arg(long, env = "FAULTLINE_RETAIN_INTERVAL", default_value = "10m")]
    pub retain_interval: Dur,
    /// Rows deleted per statement (a short one each, so ingest never waits long behind it).
    #[arg(long, env = "FAULTLINE_RETAIN_BATCH", default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub retain_batch: i64,
}

impl RetentionArgs {
    pub fn settings(&self) -> crate::retention::Settings {
        crate::retention::Settings {
            keep: self.retain_events.map(|d| d.0),
            projects: self.retain_events_project.clone(),
            batch: self.retain_batch,
            every: self.retain_interval.0,
        }
    }
}
