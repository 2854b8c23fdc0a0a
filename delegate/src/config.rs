//! Command line and environment configuration (clap derive; every flag also reads a
//! `FAULTLINE_DELEGATE_*` variable). This module only parses: what the values mean belongs to the
//! modules that use them.
use clap::Parser;
use faultline_experiment::Dur;
use std::{collections::BTreeMap, ffi::OsString, fmt, path::PathBuf, str::FromStr};

/// What the command line asks for: the delegate (no subcommand), or the standalone Toxiproxy
/// server (`faultline-delegate toxiproxy ...`).
#[derive(Debug, Clone)]
pub enum Invocation {
    Delegate(Box<Config>),
    Toxiproxy(ToxiproxyConfig),
}

/// The name of the standalone Toxiproxy server's subcommand.
pub const TOXIPROXY_COMMAND: &str = "toxiproxy";

impl Invocation {
    /// Parses a command line (program name first). The subcommand is picked by its first
    /// argument, so the delegate's own flags (and its required `--hub`) stay exactly as they
    /// were, and the server's flags are its own.
    pub fn parse_from<I, T>(args: I) -> Result<Invocation, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        if args.get(1).is_some_and(|a| a == TOXIPROXY_COMMAND) {
            let rest = args[2..].iter().cloned().map(go_style_flag);
            let argv = std::iter::once(OsString::from("faultline-delegate toxiproxy")).chain(rest);
            return ToxiproxyConfig::try_parse_from(argv).map(Invocation::Toxiproxy);
        }
        Config::try_parse_from(args).map(|c| Invocation::Delegate(Box::new(c)))
    }
}

/// `toxiproxy-server` takes Go-style single-dash flags (`-host`, `-port 8474`, `-config=FILE`,
/// `-version`); they become their double-dash spellings, so scripts that start
/// `toxiproxy-server` can start this server by changing only the program. Anything else is
/// left as it is (`-h` stays help).
fn go_style_flag(arg: OsString) -> OsString {
    const GO_FLAGS: [&str; 4] = ["host", "port", "config", "version"];
    let Some(s) = arg.to_str() else { return arg };
    let Some(flag) = s.strip_prefix('-').filter(|f| !f.starts_with('-')) else {
        return arg;
    };
    let name = flag.split_once('=').map_or(flag, |(n, _)| n);
    if GO_FLAGS.contains(&name) {
        format!("-{s}").into()
    } else {
        arg
    }
}

/// `faultline-delegate toxiproxy`: a Toxiproxy server on its own, with `toxiproxy-server`'s
/// flags and none of the delegate's (no hub, token or state directory).
#[derive(Parser, Debug, Clone)]
#[command(
    version,
    about = "A standalone Toxiproxy-compatible server: the Toxiproxy 2.x HTTP API and its TCP \
             fault proxies, without a hub (a drop-in for toxiproxy-server)",
    after_help = "toxiproxy-server's single-dash spellings (-host, -port, -config, -version) \
                  work too. SIGTERM or SIGINT stops the proxies and exits 0."
)]
pub struct ToxiproxyConfig {
    /// Host (name or address) for the API to listen on. toxiproxy-server defaults to
    /// `localhost`; this is the same interface without a name lookup. The API has no
    /// authentication: keep it on loopback.
    #[arg(long, env = "FAULTLINE_TOXIPROXY_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port for the API to listen on; 0 picks a free one (the line on stdout names it).
    #[arg(long, env = "FAULTLINE_TOXIPROXY_PORT", default_value_t = 8474)]
    pub port: u16,

    /// A JSON file of proxies to create at start, in toxiproxy-server's `-config` format: an
    /// array of `{"name", "listen", "upstream", "enabled"}`. A bad file stops the start with an
    /// error naming the entry and the field.
    #[arg(long, env = "FAULTLINE_TOXIPROXY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How long an idle proxy connection keeps polling before it sleeps (e.g. `100us`; 0 = off):
    /// lower latency on virtual machines for CPU time while traffic flows.
    #[arg(long, env = "FAULTLINE_TOXIPROXY_BUSY_POLL", default_value = "0s", value_parser = busy_poll_dur)]
    pub proxy_busy_poll: Dur,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "faultline-delegate",
    version,
    about = "Faultline delegate: dials out to the hub, injects faults and runs probes",
    after_help = "A standalone Toxiproxy server (no hub): faultline-delegate toxiproxy --help"
)]
pub struct Config {
    /// The hub's delegate endpoint. `https://` connects with TLS, `http://` in plain text.
    /// Several replicas' addresses may be given, comma-separated or by repeating the flag: the
    /// delegate starts at a random one and moves to the next whenever a connection fails, its
    /// stream is lost or the replica goes away, so it needs no load balancer in front.
    #[arg(
        long = "hub",
        env = "FAULTLINE_DELEGATE_HUB",
        value_delimiter = ',',
        required = true,
        value_name = "URL"
    )]
    pub hubs: Vec<String>,

    /// Log lines as `text` (for people) or `json` (one object per line, with the fields of the
    /// spans they belong to: a run's lines carry `run_id`, the delegate's name and project).
    #[arg(long, env = "FAULTLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// One-time registration token. Only needed until the state directory holds a credential.
    /// Prefer the environment variable or `--token-file`: a flag shows up in `ps` to every
    /// local user. The delegate removes the variable from its environment at start, so nothing
    /// it runs inherits it.
    #[arg(long, env = "FAULTLINE_DELEGATE_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,

    /// A file holding the registration token (e.g. a systemd credential or a 0600 file),
    /// read once at start.
    #[arg(
        long,
        env = "FAULTLINE_DELEGATE_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "token"
    )]
    pub token_file: Option<PathBuf>,

    /// Name to register under (letters, digits, '-', '_', '.'). Defaults to the host name.
    #[arg(long, env = "FAULTLINE_DELEGATE_NAME")]
    pub name: Option<String>,

    /// A `key=value` label the hub selects delegates by. Repeat the flag for more labels; the
    /// environment variable takes a comma-separated list.
    #[arg(
        long = "label",
        env = "FAULTLINE_DELEGATE_LABEL",
        value_name = "KEY=VALUE",
        value_parser = parse_label,
        value_delimiter = ','
    )]
    pub labels: Vec<(String, String)>,

    /// Where the delegate keeps its credential, fault journal and undelivered run events.
    #[arg(
        long,
        env = "FAULTLINE_DELEGATE_STATE_DIR",
        default_value = ".faultline-delegate"
    )]
    pub state_dir: PathBuf,

    /// PEM file with the CA that signed the hub's certificate. Without it, the public webpki
    /// roots are trusted.
    #[arg(long, env = "FAULTLINE_DELEGATE_HUB_CA")]
    pub hub_ca: Option<PathBuf>,

    /// After the hub has been unreachable this long, every running experiment is stopped and its
    /// faults reverted.
    #[arg(long, env = "FAULTLINE_DELEGATE_DEAD_MAN_TIMEOUT", default_value = "60s", value_parser = positive_dur)]
    pub dead_man_timeout: Dur,

    /// What the hub may do here: `fault=KIND`, `process=NAME`, `path=PREFIX` (pid files,
    /// io-stress and disk-fill directories), `command=PROGRAM` (or `*`), `env=NAME`,
    /// `interface=NAME`, `netns=NAME` (`host`: the delegate's own), `cidr=CIDR`, `port=N` or
    /// `port=LO-HI`, `namespace=NS` and `k8s-kind=KIND` (Kubernetes faults: none without them). Repeat the flag; the environment variable takes a comma-separated list.
    /// No program runs and no environment variable is read unless listed; the other kinds stay
    /// open until one entry of the kind is given (link-local and metadata addresses always
    /// need their own `cidr=`). See docs/safety.md.
    #[arg(
        long = "allow",
        env = "FAULTLINE_DELEGATE_ALLOW",
        value_name = "KIND=VALUE",
        value_delimiter = ','
    )]
    pub allow: Vec<crate::allow::Entry>,

    /// A file of allow-list entries, one `KIND=VALUE` per line (`#` starts a comment), added to
    /// those of `--allow`.
    #[arg(long, env = "FAULTLINE_DELEGATE_ALLOW_FILE", value_name = "PATH")]
    pub allow_file: Option<PathBuf>,

    /// Run the programs of command probes, rollbacks and actions as this user (and its group,
    /// without supplementary groups) instead of the delegate's own. Faults still run as the
    /// delegate: they need its privileges.
    #[arg(long, env = "FAULTLINE_DELEGATE_RUN_AS", value_name = "USER")]
    pub run_as: Option<String>,

    /// How often to send a heartbeat; the hub's `Welcome` may override it.
    #[arg(long, env = "FAULTLINE_DELEGATE_HEARTBEAT_INTERVAL", default_value = "5s", value_parser = positive_dur)]
    pub heartbeat_interval: Dur,

    /// Serve a Toxiproxy-compatible HTTP API on this address (e.g. `127.0.0.1:8474`) to manage
    /// the TCP fault proxies that `tcp-proxy` faults with a `proxy` target use. Off by default;
    /// it has no authentication, so keep it on loopback.
    #[arg(long, env = "FAULTLINE_DELEGATE_TOXIPROXY_API", value_name = "ADDR")]
    pub toxiproxy_api: Option<std::net::SocketAddr>,

    /// How long an idle TCP fault proxy connection keeps polling before it sleeps (e.g. `100us`;
    /// 0 = off). Lowers the latency the proxy adds on virtual machines, where waking a sleeping
    /// CPU is slow, at the cost of CPU time while traffic flows.
    #[arg(long, env = "FAULTLINE_DELEGATE_PROXY_BUSY_POLL", default_value = "0s", value_parser = busy_poll_dur)]
    pub proxy_busy_poll: Dur,

    /// A kubeconfig file (its current context) for the Kubernetes faults; else `KUBECONFIG`,
    /// else the in-cluster service account when the delegate runs in a pod. The Kubernetes
    /// fault kinds are advertised only when the cluster's API answers at start.
    #[arg(long, env = "FAULTLINE_DELEGATE_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The cluster's name in the `kubernetes.cluster` label (default: the kubeconfig context's
    /// cluster, or `in-cluster`).
    #[arg(
        long,
        env = "FAULTLINE_DELEGATE_KUBERNETES_CLUSTER",
        value_name = "NAME"
    )]
    pub kubernetes_cluster: Option<String>,

    /// Serve Prometheus metrics at `http://ADDR/metrics` (plain HTTP, no credential: bind it to
    /// an address only the monitoring network reaches). docs/observability.md.
    #[arg(long, env = "FAULTLINE_DELEGATE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// The Kubernetes node this delegate runs on (a DaemonSet passes its `spec.nodeName`): the
    /// pod-scoped faults (`pod-network-*`, `pod-cpu-stress`, ...) act on the pods of this node.
    #[arg(long, env = "FAULTLINE_DELEGATE_NODE_NAME", value_name = "NODE")]
    pub node_name: Option<String>,

    /// Bound of each Kubernetes API call, connecting included.
    #[arg(long, env = "FAULTLINE_DELEGATE_KUBERNETES_TIMEOUT", default_value = "10s", value_parser = positive_dur)]
    pub kubernetes_timeout: Dur,
}

impl Config {
    /// The registration name: `--name`, else the host name, else `delegate`.
    pub fn delegate_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "delegate".into())
    }

    /// Labels as a map; a repeated key keeps its last value.
    pub fn label_map(&self) -> BTreeMap<String, String> {
        self.labels.iter().cloned().collect()
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("{s:?} is not a key=value label")),
    }
}

/// A busy-poll window: at most 10 ms, so a typo cannot pin a CPU for seconds per chunk.
fn busy_poll_dur(s: &str) -> Result<Dur, String> {
    let d: Dur = s.parse()?;
    if d.0 > std::time::Duration::from_millis(10) {
        return Err(format!(
            "{d} is too long for a busy-poll window (at most 10ms)"
        ));
    }
    Ok(d)
}

fn positive_dur(s: &str) -> Result<Dur, String> {
    let d: Dur = s.parse()?;
    if d.0.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// A value that must never show up in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_and_hides_the_token() {
        let c = Config::try_parse_from([
            "faultline-delegate",
            "--hub",
            "https://127.0.0.1:8443",
            "--token",
            "fl_reg_secret",
            "--label",
            "role=demo",
            "--label",
            "zone=a",
            "--dead-man-timeout",
            "2s",
        ])
        .unwrap();
        assert_eq!(c.label_map().get("role").map(String::as_str), Some("demo"));
        assert_eq!(c.labels.len(), 2);
        assert_eq!(c.dead_man_timeout, Dur::secs(2));
        assert_eq!(c.heartbeat_interval, Dur::secs(5));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("fl_reg_secret"), "{dbg}");
    }

    #[test]
    fn rejects_bad_labels_and_durations() {
        let base = ["faultline-delegate", "--hub", "http://x"];
        let bad_label = [&base[..], &["--label", "novalue"]].concat();
        assert!(Config::try_parse_from(bad_label).is_err());
        let bad_dur = [&base[..], &["--heartbeat-interval", "5"]].concat();
        assert!(Config::try_parse_from(bad_dur).is_err());
        let zero = [&base[..], &["--dead-man-timeout", "0s"]].concat();
        assert!(Config::try_parse_from(zero).is_err());
        let spin = [&base[..], &["--proxy-busy-poll", "50ms"]].concat();
        let e = Config::try_parse_from(spin).unwrap_err().to_string();
        assert!(e.contains("at most 10ms"), "{e}");
        let ok = [&base[..], &["--proxy-busy-poll", "100us"]].concat();
        let c = Config::try_parse_from(ok).unwrap();
        assert_eq!(c.proxy_busy_poll.0, std::time::Duration::from_micros(100));
    }

    #[test]
    fn takes_several_hub_addresses_by_comma_or_repeated_flag() {
        let c = Config::try_parse_from([
            "faultline-delegate",
            "--hub",
            "https://a:8443,https://b:8443",
            "--hub",
            "https://c:8443",
        ])
        .unwrap();
        assert_eq!(
            c.hubs,
            ["https://a:8443", "https://b:8443", "https://c:8443"]
        );
        let e = Config::try_parse_from(["faultline-delegate"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--hub"), "{e}");
    }

    fn toxiproxy(args: &[&str]) -> Result<ToxiproxyConfig, clap::Error> {
        let argv = [&["faultline-delegate", "toxiproxy"][..], args].concat();
        match Invocation::parse_from(argv)? {
            Invocation::Toxiproxy(c) => Ok(c),
            Invocation::Delegate(c) => panic!("parsed as the delegate: {c:?}"),
        }
    }

    #[test]
    fn the_toxiproxy_subcommand_takes_toxiproxy_servers_flags() {
        let c = toxiproxy(&[]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8474));
        assert!(c.config.is_none());
        // Go-style single dashes, with a space or `=`.
        let c = toxiproxy(&["-host", "0.0.0.0", "-port=9000", "-config", "p.json"]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 9000));
        assert_eq!(c.config, Some(PathBuf::from("p.json")));
        let c = toxiproxy(&["--host=::1", "--port", "0", "--config=q.json"]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 0));
        assert_eq!(c.config, Some(PathBuf::from("q.json")));
        let e = toxiproxy(&["-version"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        let e = toxiproxy(&["-h"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        let e = toxiproxy(&["--port", "http"]).unwrap_err().to_string();
        assert!(e.contains("--port"), "{e}");
        // The delegate's flags are not the server's, and other single-dash words stay unknown.
        assert!(toxiproxy(&["--hub", "http://x"]).is_err());
        assert!(toxiproxy(&["-seed", "1"]).is_err());
    }

    #[test]
    fn without_the_subcommand_it_is_the_delegate() {
        let i = Invocation::parse_from(["faultline-delegate", "--hub", "http://x"]).unwrap();
        assert!(matches!(i, Invocation::Delegate(c) if c.hubs == ["http://x"]));
        // The delegate still needs its hub; a later "toxiproxy" is not the subcommand.
        assert!(Invocation::parse_from(["faultline-delegate"]).is_err());
        assert!(Invocation::parse_from(["faultline-delegate", "--name", "toxiproxy"]).is_err());
    }
}

/// How log lines are written (`--log-format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}
