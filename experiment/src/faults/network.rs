//! Parameters of the kernel network faults (`network-loss`, `network-partition`,
//! `network-bandwidth`, and the netem kinds `network-latency`, `network-corrupt`,
//! `network-duplicate`, `network-reorder`): which interface (in which namespace), which remote
//! ends (`destinations`, `ports`), and how much.
//!
//! The newtypes here ([`Cidr`], [`PortRange`], [`Rate`], [`Bytes`], [`Percent`]) are parsed once,
//! with errors that say what is wrong; the delegate's allow-list reuses [`Cidr`] and
//! [`PortRange`]. Nothing here touches the network.
use super::{need_duration, typed, FaultSpec, Field};
use crate::{template::FaultStep, template::SpecError, Dur};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, net::IpAddr, str::FromStr};

/// Most `destinations` or `ports` one step may list (each becomes rules or filters).
pub const MAX_LIST: usize = 32;

/// Where the fault acts: a network interface, optionally inside a named network namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkTarget {
    /// Interface name as `ip link` shows it (1-15 characters), e.g. `eth0`.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 15)))]
    pub interface: String,
    /// Name of a network namespace under /run/netns (as made by `ip netns add`); the fault acts
    /// inside it. Omitted: the delegate's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

/// Which packets a fault affects, relative to the interface.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Packets leaving through the interface (to `destinations`, to `ports`).
    #[default]
    Egress,
    /// Packets arriving on the interface (from `destinations`, from `ports`).
    Ingress,
    /// Both.
    Both,
}

impl Direction {
    pub fn egress(self) -> bool {
        matches!(self, Direction::Egress | Direction::Both)
    }
    pub fn ingress(self) -> bool {
        matches!(self, Direction::Ingress | Direction::Both)
    }
}

/// `params` of `network-loss`: drop a share of the packets (nftables, `numgen random`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LossParams {
    /// Share of the matching packets to drop, 0.01-100 (two decimals kept).
    pub percent: Percent,
    /// Which packets: leaving (default), arriving, or both.
    #[serde(default)]
    pub direction: Direction,
    /// Remote addresses or networks (IPv4 or IPv6 CIDR, or a single address); omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Cidr>,
    /// Remote TCP and UDP ports (`80` or `"8000-8080"`); omitted: all traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
}

/// `params` of `network-partition`: drop everything to and from the remote ends (both
/// directions). Give `destinations`, `ports` or both; to cut the interface off entirely, say so
/// with `destinations: [0.0.0.0/0, "::/0"]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PartitionParams {
    /// Remote addresses or networks (IPv4 or IPv6 CIDR, or a single address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Cidr>,
    /// Remote TCP and UDP ports (`80` or `"8000-8080"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
}

/// `params` of `network-bandwidth`: limit the rate of egress traffic (tc tbf on the interface's
/// root; htb with u32 filters when `destinations` or `ports` narrow it).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BandwidthParams {
    /// The rate, as tc writes it: `1mbit`, `500kbit`, `2mbps` (bytes per second), ...
    pub rate: Rate,
    /// Bucket size: how much may pass at full speed (`32kb`, `1500b`); default rate × 20ms, at
    /// least 4kb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Bytes>,
    /// Most bytes queued waiting for tokens; give this or `latency` (default latency 50ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Bytes>,
    /// Longest a packet may wait for tokens before it is dropped (default 50ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Dur>,
    /// Remote addresses or networks whose traffic is limited; omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Cidr>,
    /// Remote TCP and UDP ports whose traffic is limited; omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
}

/// `params` of `network-latency` (tc netem; egress).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LatencyParams {
    /// Delay added to each matching packet, e.g. `100ms`.
    pub latency: Dur,
    /// Random variation around `latency`, e.g. `20ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
    /// How much each delay depends on the previous one, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Percent>,
    /// Remote addresses or networks affected; omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Cidr>,
    /// Remote TCP and UDP ports affected; omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
}

/// `params` of `network-corrupt` and `network-duplicate` (tc netem; egress).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetemShareParams {
    /// Share of the matching packets corrupted (one bit flipped) or duplicated.
    pub percent: Percent,
    /// How much each decision depends on the previous one, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Percent>,
    /// Remote addresses or networks affected; omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Cidr>,
    /// Remote TCP and UDP ports affected; omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
}

/// `params` of `network-reorder` (tc netem; egress): `percent` of the packets go out at once,
/// the others are held back by `latency`, so they arrive out of order.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReorderParams {
    /// Share of the matching packets sent at once (ahead of the others).
    pub percent: Percent,
    /// Delay of the other packets, e.g. `10ms` (netem reorders only delayed traffic).
    pub latency: Dur,
    /// How much each decision depends on the previous one, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<Percent>,
    /// Remote addresses or networks affected; omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<Cidr>,
    /// Remote TCP and UDP ports affected; omitted: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
}

/// What a network fault acts on, whatever its kind (allow-list checks, the delegate's plans).
#[derive(Clone, Copy, Debug)]
pub struct NetworkScope<'a> {
    pub target: &'a NetworkTarget,
    /// Empty: every remote address.
    pub destinations: &'a [Cidr],
    /// Empty: every port (and traffic without ports).
    pub ports: &'a [PortRange],
}

// ---------------------------------------------------------------------------------------------
// Newtypes

/// An IPv4 or IPv6 network: `10.0.0.0/8`, `fd00::/64`, or one address (`/32`, `/128`). Host
/// bits are cleared, so `10.1.2.3/8` means `10.0.0.0/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Every address of the family: `0.0.0.0/0` or `::/0`.
    pub fn any(v4: bool) -> Cidr {
        let addr = if v4 {
            IpAddr::from([0u8; 4])
        } else {
            IpAddr::from([0u16; 8])
        };
        Cidr { addr, prefix: 0 }
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains(&self, other: &Cidr) -> bool {
        if self.is_v4() != other.is_v4() || other.prefix < self.prefix {
            return false;
        }
        mask(other.addr, self.prefix) == self.addr
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
            IpAddr::from((u32::from(a) & m).to_be_bytes())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - prefix as u32).unwrap_or(0);
            IpAddr::from((u128::from(a) & m).to_be_bytes())
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| {
            format!("`{s}` is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/64)")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0-{max}"))?,
        };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A port or an inclusive range of ports, 1-65535: `80` or `"8000-8080"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub const ALL: PortRange = PortRange { lo: 1, hi: 65535 };

    pub fn contains(&self, other: &PortRange) -> bool {
        self.lo <= other.lo && other.hi <= self.hi
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{s}` is not a port (1-65535) or a range like 8000-8080"))
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("`{s}`: the range is backwards ({lo} > {hi})"));
        }
        Ok(PortRange { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// A rate in bits per second, written as tc does: `bit`, `kbit`, `mbit`, `gbit` (×1000), or
/// `bps`, `kbps`, `mbps`, `gbps` (bytes per second).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(pub u64);

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let mult: f64 = match unit.trim() {
            "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            "bps" => 8.0,
            "kbps" => 8e3,
            "mbps" => 8e6,
            "gbps" => 8e9,
            _ => {
                return Err(format!(
                    "`{s}` is not a rate; write it like 1mbit, 500kbit or 2mbps (bytes/s)"
                ))
            }
        };
        let n: f64 = n
            .parse()
            .map_err(|_| format!("`{s}` is not a rate; write it like 1mbit or 500kbit"))?;
        let bits = n * mult;
        if !(8.0..=1e12).contains(&bits) {
            return Err(format!("`{s}`: the rate must be between 8bit and 1000gbit"));
        }
        Ok(Rate(bits.round() as u64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}bit", self.0)
    }
}

/// A size in bytes: `1500` or `1500b`, `32kb` / `32k` (×1024), `1mb` / `1m`, `64kbit` (bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl FromStr for Bytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let mult = match unit.trim() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1024,
            "m" | "mb" | "mib" => 1024 * 1024,
            "kbit" => 128,
            "mbit" => 128 * 1024,
            _ => {
                return Err(format!(
                    "`{s}` is not a size; write it like 1500b, 32kb or 1mb"
                ))
            }
        };
        let n: u64 = n
            .parse()
            .map_err(|_| format!("`{s}` is not a size; write it like 1500b, 32kb or 1mb"))?;
        match n.checked_mul(mult) {
            Some(b) if (1..=1 << 30).contains(&b) => Ok(Bytes(b)),
            _ => Err(format!("`{s}`: the size must be between 1b and 1gb")),
        }
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}b", self.0)
    }
}

/// A percentage, more than 0 and at most 100, e.g. `25` or `0.5`.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().trim_end_matches('%').trim();
        let v: f64 = t
            .parse()
            .map_err(|_| format!("`{s}` is not a percentage (e.g. 25 or 0.5)"))?;
        Percent::new(v)
    }
}

impl Percent {
    fn new(v: f64) -> Result<Percent, String> {
        if v.is_finite() && v > 0.0 && v <= 100.0 {
            Ok(Percent(v))
        } else {
            Err(format!("`{v}` is not a percentage above 0 and at most 100"))
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// Serialize as the string (and read strings, plus numbers where that is natural).
macro_rules! string_serde {
    ($t:ty, $expect:expr, $num:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$t, E> {
                        let f: fn(u64) -> Result<$t, String> = $num;
                        f(v).map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$t, E> {
                        match u64::try_from(v) {
                            Ok(v) => self.visit_u64(v),
                            Err(_) => Err(E::custom(format!("`{v}` is negative"))),
                        }
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$t, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

string_serde!(Cidr, "an IP address or CIDR such as 10.0.0.0/8", |v| Err(
    format!("`{v}` is not an IP address or CIDR (write it as a string, e.g. 10.0.0.0/8)")
));
string_serde!(PortRange, "a port (80) or a range (\"8000-8080\")", |v| v
    .to_string()
    .parse());
string_serde!(Rate, "a rate such as 1mbit", |v| Err(format!(
    "`{v}` has no unit; write the rate like 1mbit or 500kbit"
)));
string_serde!(Bytes, "a size such as 32kb", |v| v.to_string().parse());
string_serde!(Percent, "a percentage such as 25", |v| Percent::new(
    v as f64
));

#[cfg(feature = "schema")]
mod schema_impls {
    use super::*;
    use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
    use std::borrow::Cow;

    macro_rules! string_schema {
        ($t:ty, $name:expr, $schema:tt) => {
            impl JsonSchema for $t {
                fn schema_name() -> Cow<'static, str> {
                    $name.into()
                }
                fn json_schema(_: &mut SchemaGenerator) -> Schema {
                    json_schema!($schema)
                }
            }
        };
    }
    string_schema!(Cidr, "Cidr", {
        "type": "string",
        "description": "An IPv4 or IPv6 address or network (CIDR).",
        "examples": ["10.0.0.0/8", "192.168.1.10", "fd00::/64"],
    });
    string_schema!(PortRange, "PortRange", {
        "type": ["integer", "string"],
        "minimum": 1, "maximum": 65535,
        "pattern": r"^\s*[0-9]+\s*(-\s*[0-9]+\s*)?$",
        "description": "A port (1-65535) or an inclusive range written as a string.",
        "examples": [80, "8000-8080"],
    });
    string_schema!(Rate, "Rate", {
        "type": "string",
        "pattern": r"(?i)^\s*[0-9.]+\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)\s*$",
        "description": "A rate as tc writes it: bit, kbit, mbit, gbit (x1000) or bps, kbps, mbps, gbps (bytes per second).",
        "examples": ["1mbit", "500kbit"],
    });
    string_schema!(Bytes, "Bytes", {
        "type": ["integer", "string"],
        "minimum": 1,
        "pattern": r"(?i)^\s*[0-9]+\s*(b|k|kb|kib|m|mb|mib|kbit|mbit)?\s*$",
        "description": "A size in bytes: 1500b, 32kb (x1024), 1mb, 64kbit.",
        "examples": ["32kb", "1500b"],
    });
    string_schema!(Percent, "Percent", {
        "type": ["number", "string"],
        "exclusiveMinimum": 0, "maximum": 100,
        "description": "A percentage above 0 and at most 100.",
        "examples": [25, 0.5],
    });
}

// ---------------------------------------------------------------------------------------------
// Parsing a step

/// The netem kinds: they need the kernel's `sch_netem`.
pub const NETEM_KINDS: &[&str] = &[
    "network-latency",
    "network-corrupt",
    "network-duplicate",
    "network-reorder",
];

/// Interface and namespace names: what `ip` accepts, minus what could confuse a path or shell.
fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(super) fn parse(at: &Field<'_>, step: &FaultStep) -> Result<FaultSpec, SpecError> {
    let target: NetworkTarget = typed(&step.target, &at.of("target"))?;
    if !valid_name(&target.interface, 15) {
        return Err(SpecError::field(
            at.of("target.interface"),
            "must be an interface name (1-15 letters, digits, '-', '_' or '.')",
        )
        .hint("e.g. target: {interface: eth0}"));
    }
    if let Some(ns) = &target.netns {
        if !valid_name(ns, 64) {
            return Err(SpecError::field(
                at.of("target.netns"),
                "must be the name of a namespace under /run/netns (1-64 letters, digits, '-', '_' or '.')",
            ));
        }
    }
    need_duration(at, step)?;
    let p = at.of("params");
    let spec = match step.fault.as_str() {
        "network-loss" => FaultSpec::NetworkLoss {
            target,
            params: typed_params(&step.params, &p)?,
        },
        "network-partition" => {
            let params: PartitionParams = typed_params(&step.params, &p)?;
            if params.destinations.is_empty() && params.ports.is_empty() {
                return Err(SpecError::field(
                    p.clone(),
                    "network-partition needs destinations, ports or both",
                )
                .hint(
                    "to cut the interface off entirely, write destinations: [0.0.0.0/0, \"::/0\"]",
                ));
            }
            FaultSpec::NetworkPartition { target, params }
        }
        "network-bandwidth" => FaultSpec::NetworkBandwidth {
            target,
            params: typed_params(&step.params, &p)?,
        },
        "network-latency" => FaultSpec::NetworkLatency {
            target,
            params: typed_params(&step.params, &p)?,
        },
        "network-corrupt" => FaultSpec::NetworkCorrupt {
            target,
            params: typed_params(&step.params, &p)?,
        },
        "network-duplicate" => FaultSpec::NetworkDuplicate {
            target,
            params: typed_params(&step.params, &p)?,
        },
        _ => FaultSpec::NetworkReorder {
            target,
            params: typed_params(&step.params, &p)?,
        },
    };
    let scope = spec.network().expect("a network kind has a scope");
    for (name, len) in [
        ("destinations", scope.destinations.len()),
        ("ports", scope.ports.len()),
    ] {
        if len > MAX_LIST {
            return Err(SpecError::field(
                format!("{p}.{name}"),
                format!("lists {len} entries; at most {MAX_LIST} are allowed"),
            )
            .hint("use wider CIDRs or port ranges"));
        }
    }
    Ok(spec)
}

/// [`typed`], naming the entry of a list (`params.ports[1]`) or the key of a number
/// (`params.percent`) that was wrong, which `typed` alone cannot see.
fn typed_params<T: serde::de::DeserializeOwned>(
    v: &serde_json::Value,
    field: &str,
) -> Result<T, SpecError> {
    typed(v, field).map_err(|mut e| {
        let quoted = e.message.split('`').nth(1).unwrap_or_default().to_string();
        if e.field != field || quoted.is_empty() {
            return e;
        }
        let same = |x: &serde_json::Value| match x {
            serde_json::Value::String(s) => *s == quoted,
            serde_json::Value::Number(n) => n.to_string() == quoted,
            _ => false,
        };
        for (k, val) in v.as_object().into_iter().flatten() {
            if same(val) {
                e.field = format!("{field}.{k}");
                return e;
            }
            if let Some(i) = val.as_array().and_then(|a| a.iter().position(same)) {
                e.field = format!("{field}.{k}[{i}]");
                return e;
            }
        }
        e
    })
}

/// The scope of a network fault spec (`None` for other families).
pub(super) fn scope(spec: &FaultSpec) -> Option<NetworkScope<'_>> {
    let (target, destinations, ports) = match spec {
        FaultSpec::NetworkLoss { target, params } => (target, &params.destinations, &params.ports),
        FaultSpec::NetworkPartition { target, params } => {
            (target, &params.destinations, &params.ports)
        }
        FaultSpec::NetworkBandwidth { target, params } => {
            (target, &params.destinations, &params.ports)
        }
        FaultSpec::NetworkLatency { target, params } => {
            (target, &params.destinations, &params.ports)
        }
        FaultSpec::NetworkCorrupt { target, params }
        | FaultSpec::NetworkDuplicate { target, params } => {
            (target, &params.destinations, &params.ports)
        }
        FaultSpec::NetworkReorder { target, params } => {
            (target, &params.destinations, &params.ports)
        }
        _ => return None,
    };
    Some(NetworkScope {
        target,
        destinations,
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_mask_and_contain() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains(&"10.200.0.0/16".parse().unwrap()));
        assert!(!c.contains(&"11.0.0.0/16".parse().unwrap()));
        assert!(!c.contains(&"0.0.0.0/0".parse().unwrap()));
        assert_eq!("192.168.1.1".parse::<Cidr>().unwrap().prefix(), 32);
        let v6: Cidr = "fd00::1/64".parse().unwrap();
        assert_eq!(v6.to_string(), "fd00::/64");
        assert!(Cidr::any(false).contains(&v6));
        assert!(!Cidr::any(true).contains(&v6));
        assert!("10.0.0.0/33".parse::<Cidr>().unwrap_err().contains("0-32"));
        assert!("example.com".parse::<Cidr>().is_err());
    }

    #[test]
    fn ports_rates_sizes_and_percents_parse_or_say_why() {
        assert_eq!(
            "8000-8080".parse::<PortRange>().unwrap(),
            PortRange { lo: 8000, hi: 8080 }
        );
        assert!("0".parse::<PortRange>().is_err());
        assert!("90-80"
            .parse::<PortRange>()
            .unwrap_err()
            .contains("backwards"));
        assert_eq!("1mbit".parse::<Rate>().unwrap(), Rate(1_000_000));
        assert_eq!("2mbps".parse::<Rate>().unwrap(), Rate(16_000_000));
        assert!("1mb".parse::<Rate>().unwrap_err().contains("1mbit"));
        assert_eq!("32kb".parse::<Bytes>().unwrap(), Bytes(32 * 1024));
        assert_eq!("1500".parse::<Bytes>().unwrap(), Bytes(1500));
        assert!("0".parse::<Bytes>().is_err());
        assert_eq!("12.5%".parse::<Percent>().unwrap(), Percent(12.5));
        assert!("0".parse::<Percent>().is_err() && "101".parse::<Percent>().is_err());
    }

    fn step(yaml: &str) -> Result<FaultSpec, SpecError> {
        let s: FaultStep = serde_norway::from_str(yaml).unwrap();
        super::super::FaultSpec::parse("steps[0]", &s)
    }

    #[test]
    fn steps_parse_or_name_the_field() {
        let s = step("{fault: network-loss, target: {interface: veth0, netns: blue}, duration: 5s, params: {percent: 30, direction: both, destinations: [10.0.0.0/8, \"fd00::/8\"], ports: [80, \"8000-8080\"]}}").unwrap();
        let scope = s.network().unwrap();
        assert_eq!(scope.target.netns.as_deref(), Some("blue"));
        assert_eq!(scope.destinations.len(), 2);
        assert_eq!(scope.ports[1], PortRange { lo: 8000, hi: 8080 });
        let e = step("{fault: network-loss, target: {interface: eth0}, duration: 5s, params: {percent: 130}}").unwrap_err();
        assert_eq!(e.field, "steps[0].params.percent");
        assert!(e.message.contains("130"), "{e:?}");
        let e = step("{fault: network-loss, target: {interface: eth0}, duration: 5s, params: {percent: 5, ports: [\"9-1\"]}}").unwrap_err();
        assert!(e.message.contains("backwards"), "{e:?}");
        assert_eq!(e.field, "steps[0].params.ports[0]");
        let e = step("{fault: network-loss, target: {interface: \"eth0; rm\"}, duration: 5s, params: {percent: 5}}").unwrap_err();
        assert_eq!(e.field, "steps[0].target.interface");
        let e = step("{fault: network-partition, target: {interface: eth0}, duration: 5s}")
            .unwrap_err();
        assert!(e.hint.unwrap().contains("0.0.0.0/0"));
        let e =
            step("{fault: network-bandwidth, target: {interface: eth0}, params: {rate: 1mbit}}")
                .unwrap_err();
        assert_eq!(e.field, "steps[0].duration");
        let e = step("{fault: network-bandwidth, target: {interface: eth0}, duration: 1s, params: {rate: fast}}").unwrap_err();
        assert_eq!(e.field, "steps[0].params.rate");
        assert!(step("{fault: network-reorder, target: {interface: eth0}, duration: 1s, params: {percent: 25, latency: 10ms}}").is_ok());
    }
}

#[cfg(all(test, feature = "schema"))]
mod schema_tests {
    /// The template schema describes each network kind's target and params.
    #[test]
    fn the_schema_describes_the_network_kinds() {
        let s = crate::schema::template();
        let text = s.to_string();
        for kind in ["network-loss", "network-partition", "network-bandwidth"] {
            assert!(text.contains(&format!("\"const\":\"{kind}\"")), "{kind}");
        }
        for def in [
            "NetworkTarget",
            "LossParams",
            "BandwidthParams",
            "Cidr",
            "PortRange",
            "Rate",
        ] {
            assert!(s["definitions"].get(def).is_some(), "{def}");
        }
        assert_eq!(
            s["definitions"]["NetworkTarget"]["required"],
            serde_json::json!(["interface"])
        );
        assert_eq!(
            s["definitions"]["LossParams"]["required"],
            serde_json::json!(["percent"])
        );
    }
}
