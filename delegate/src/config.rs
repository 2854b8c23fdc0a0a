//! Command line and environment configuration (clap derive; every flag also reads a
//! `FAULTLINE_DELEGATE_*` variable). This module only parses: what the values mean belongs to the
//! modules that use them.
use clap::Parser;
use faultline_experiment::Dur;
use std::{collections::BTreeMap, fmt, path::PathBuf, str::FromStr};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "faultline-delegate",
    version,
    about = "Faultline delegate: dials out to the hub, injects faults and runs probes"
)]
pub struct Config {
    /// The hub's delegate endpoint. `https://` connects with TLS, `http://` in plain text.
    #[arg(long, env = "FAULTLINE_DELEGATE_HUB")]
    pub hub: String,

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
    /// `port=LO-HI`. Repeat the flag; the environment variable takes a comma-separated list.
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
}
