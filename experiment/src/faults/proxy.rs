//! Parameters of the TCP fault proxy (`tcp-proxy`): where it listens and forwards, and the
//! toxics it applies. Toxics use Toxiproxy's names, attributes and units, so a Toxiproxy toxic
//! reads the same here and in the delegate's Toxiproxy-compatible API.
use super::{need_duration, typed, FaultSpec, Field};
use crate::{template::FaultStep, template::SpecError};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Which proxy: a new one for the step's duration (`listen` + `upstream`), or an existing proxy
/// of the delegate's Toxiproxy API (`proxy`), whose toxics the step adds and then removes.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["listen", "upstream"]}, {"required": ["proxy"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyTarget {
    /// Address the new proxy listens on, `IP:PORT`, e.g. `127.0.0.1:15432`.
    pub listen: Option<String>,
    /// Address the new proxy forwards to, `HOST:PORT`, e.g. `127.0.0.1:5432`.
    pub upstream: Option<String>,
    /// Name of an existing proxy of the Toxiproxy API (`--toxiproxy-api`).
    pub proxy: Option<String>,
}

/// `params` of `tcp-proxy`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProxyParams {
    /// Toxics in the order data passes them, as in Toxiproxy.
    pub toxics: Vec<ToxicSpec>,
}

/// Which way the data a toxic acts on flows.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client → upstream server.
    Upstream,
    /// Upstream server → client (Toxiproxy's default).
    #[default]
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

/// One toxic, as Toxiproxy writes it: `{name, type, stream, toxicity, attributes}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ToxicSpec {
    /// Unique per proxy; defaults to `TYPE_STREAM`, e.g. `latency_downstream`.
    pub name: String,
    /// Which direction it acts on (default `downstream`).
    pub stream: Stream,
    /// Share of connections it applies to, 0 to 1 (default 1), decided once per connection.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub toxicity: f64,
    #[serde(flatten)]
    pub kind: ToxicKind,
}

/// A toxic's `type` and its `attributes` (missing attributes are 0, as in Toxiproxy).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum ToxicKind {
    /// Delays data by `latency` ± `jitter` milliseconds.
    Latency(Latency),
    /// Caps the rate to `rate` KB/s (0 = no cap).
    Bandwidth(Bandwidth),
    /// Delays the close of the connection by `delay` milliseconds.
    SlowClose(SlowClose),
    /// Drops all data; closes the connection after `timeout` milliseconds (0 = never).
    Timeout(Timeout),
    /// Resets the connection (TCP RST) after `timeout` milliseconds.
    ResetPeer(ResetPeer),
    /// Splits data into pieces of `average_size` ± `size_variation` bytes, `delay` µs apart.
    Slicer(Slicer),
    /// Closes the connection once `bytes` bytes have passed.
    LimitData(LimitData),
}

/// Names of the toxic types, as in Toxiproxy.
pub const TOXIC_TYPES: &[&str] = &[
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
];

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    /// Added delay, milliseconds.
    pub latency: u64,
    /// Random ± variation of the delay, milliseconds.
    pub jitter: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Bandwidth {
    /// KB (1000 bytes) per second; 0 lets everything through.
    pub rate: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct SlowClose {
    /// Milliseconds between the end of the stream and its close.
    pub delay: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Timeout {
    /// Milliseconds until the connection is closed; 0 keeps it open (and silent) for good.
    pub timeout: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ResetPeer {
    /// Milliseconds until the reset; data passes meanwhile.
    pub timeout: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Slicer {
    /// Mean size of a piece, bytes (at least 1).
    pub average_size: u64,
    /// Random ± variation of a piece's size, bytes (below `average_size`).
    pub size_variation: u64,
    /// Microseconds between pieces.
    pub delay: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct LimitData {
    /// Bytes let through before the connection is closed.
    pub bytes: u64,
}

/// A toxic as written: everything but `type` optional, `attributes` still untyped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToxic {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    stream: Option<Stream>,
    #[serde(default)]
    toxicity: Option<f64>,
    #[serde(default)]
    attributes: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    #[serde(default)]
    toxics: Vec<serde_json::Value>,
}

impl ToxicKind {
    /// Reads the attributes of a toxic of type `kind`; `at` names the toxic in errors (its
    /// `type` and `attributes` fields).
    pub fn parse(kind: &str, attributes: &serde_json::Value, at: &str) -> Result<Self, SpecError> {
        let field = format!("{at}.attributes");
        let parsed = match kind {
            "latency" => typed(attributes, &field).map(ToxicKind::Latency),
            "bandwidth" => typed(attributes, &field).map(ToxicKind::Bandwidth),
            "slow_close" => typed(attributes, &field).map(ToxicKind::SlowClose),
            "timeout" => typed(attributes, &field).map(ToxicKind::Timeout),
            "reset_peer" => typed(attributes, &field).map(ToxicKind::ResetPeer),
            "slicer" => typed(attributes, &field).map(ToxicKind::Slicer),
            "limit_data" => typed(attributes, &field).map(ToxicKind::LimitData),
            other => {
                let hint = crate::hints::did_you_mean(other, TOXIC_TYPES)
                    .unwrap_or_else(|| format!("known types: {}", TOXIC_TYPES.join(", ")));
                return Err(SpecError::field(
                    format!("{at}.type"),
                    format!("unknown toxic type {other:?}"),
                )
                .hint(hint));
            }
        }?;
        if let ToxicKind::Slicer(s) = &parsed {
            if s.average_size == 0 {
                return Err(SpecError::field(
                    format!("{field}.average_size"),
                    "must be at least 1",
                ));
            }
            if s.size_variation >= s.average_size {
                return Err(SpecError::field(
                    format!("{field}.size_variation"),
                    format!("must be below average_size ({})", s.average_size),
                ));
            }
        }
        Ok(parsed)
    }

    /// The toxic's `type`, e.g. `slow_close`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency(_) => "latency",
            ToxicKind::Bandwidth(_) => "bandwidth",
            ToxicKind::SlowClose(_) => "slow_close",
            ToxicKind::Timeout(_) => "timeout",
            ToxicKind::ResetPeer(_) => "reset_peer",
            ToxicKind::Slicer(_) => "slicer",
            ToxicKind::LimitData(_) => "limit_data",
        }
    }

    /// The attributes as JSON, e.g. `{"latency": 100, "jitter": 0}`.
    pub fn attributes(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("attributes").map(serde_json::Value::take))
            .unwrap_or_default()
    }
}

impl std::fmt::Display for ToxicSpec {
    /// One line for humans: `latency_downstream (latency downstream, latency=100 jitter=0)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let attrs = self.kind.attributes();
        let attrs = attrs
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        write!(
            f,
            "{} ({} {}, {attrs}",
            self.name,
            self.kind.type_name(),
            self.stream.as_str()
        )?;
        if self.toxicity < 1.0 {
            write!(f, ", toxicity {}", self.toxicity)?;
        }
        f.write_str(")")
    }
}

/// Reads one toxic (`at` names it, e.g. `steps[0].params.toxics[1]`), with Toxiproxy's
/// defaults: stream `downstream`, toxicity 1, name `TYPE_STREAM`.
pub fn parse_toxic(v: &serde_json::Value, at: &str) -> Result<ToxicSpec, SpecError> {
    let raw: RawToxic = typed(v, at)?;
    let kind = ToxicKind::parse(&raw.kind, &raw.attributes, at)?;
    let stream = raw.stream.unwrap_or_default();
    let toxicity = raw.toxicity.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&toxicity) {
        return Err(SpecError::field(
            format!("{at}.toxicity"),
            format!("must be between 0 and 1, not {toxicity}"),
        ));
    }
    let name = raw
        .name
        .unwrap_or_else(|| format!("{}_{}", kind.type_name(), stream.as_str()));
    if name.is_empty() || name.len() > 100 || name.contains('/') {
        return Err(SpecError::field(
            format!("{at}.name"),
            "must be 1-100 characters without '/'",
        ));
    }
    Ok(ToxicSpec {
        name,
        stream,
        toxicity,
        kind,
    })
}

/// Whether `s` is `HOST:PORT` with a non-empty host and a numeric port.
pub fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

pub(super) fn parse(at: &Field<'_>, step: &FaultStep) -> Result<FaultSpec, SpecError> {
    let target: ProxyTarget = typed(&step.target, &at.of("target"))?;
    match (&target.listen, &target.upstream, &target.proxy) {
        (Some(listen), Some(upstream), None) => {
            if listen.parse::<SocketAddr>().is_err() {
                return Err(SpecError::field(
                    at.of("target.listen"),
                    format!("{listen:?} is not an IP:PORT address"),
                )
                .hint("e.g. listen: 127.0.0.1:15432"));
            }
            if !is_host_port(upstream) {
                return Err(SpecError::field(
                    at.of("target.upstream"),
                    format!("{upstream:?} is not a HOST:PORT address"),
                )
                .hint("e.g. upstream: 127.0.0.1:5432"));
            }
        }
        (None, None, Some(name)) if !name.is_empty() => {}
        _ => {
            return Err(SpecError::field(
                at.of("target"),
                "give either listen and upstream (a new proxy) or proxy (an existing one)",
            )
            .hint("e.g. target: {listen: 127.0.0.1:15432, upstream: 127.0.0.1:5432}"))
        }
    }
    need_duration(at, step)?;
    let params_at = at.of("params");
    let raw: RawParams = typed(&step.params, &params_at)?;
    let mut toxics: Vec<ToxicSpec> = Vec::with_capacity(raw.toxics.len());
    for (i, v) in raw.toxics.iter().enumerate() {
        let here = format!("{params_at}.toxics[{i}]");
        let toxic = parse_toxic(v, &here)?;
        if toxics.iter().any(|t| t.name == toxic.name) {
            return Err(SpecError::field(
                format!("{here}.name"),
                format!("a toxic named {:?} is already in the list", toxic.name),
            )
            .hint("give each toxic of the same type and stream its own name"));
        }
        toxics.push(toxic);
    }
    if target.proxy.is_some() && toxics.is_empty() {
        return Err(SpecError::field(
            format!("{params_at}.toxics"),
            "an existing proxy needs at least one toxic to add",
        )
        .hint("e.g. toxics: [{type: latency, attributes: {latency: 100}}]"));
    }
    Ok(FaultSpec::TcpProxy {
        target,
        params: ProxyParams { toxics },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(target: serde_json::Value, params: serde_json::Value) -> FaultStep {
        FaultStep {
            name: None,
            fault: "tcp-proxy".into(),
            weight: 1,
            target,
            params,
            duration: Some(crate::Dur::secs(5)),
        }
    }

    fn parse_err(target: serde_json::Value, params: serde_json::Value) -> String {
        let e = parse(&Field("steps[0]"), &step(target, params)).unwrap_err();
        format!("{e}")
    }

    #[test]
    fn reads_toxics_with_toxiproxy_defaults() {
        let spec = parse(
            &Field("steps[0]"),
            &step(
                json!({"listen": "127.0.0.1:15432", "upstream": "localhost:5432"}),
                json!({"toxics": [
                    {"type": "latency", "attributes": {"latency": 100}},
                    {"type": "slicer", "name": "s", "stream": "upstream", "toxicity": 0.5,
                     "attributes": {"average_size": 10, "size_variation": 2, "delay": 50}}
                ]}),
            ),
        )
        .unwrap();
        let FaultSpec::TcpProxy { params, .. } = spec else {
            panic!("{spec:?}")
        };
        assert_eq!(params.toxics[0].name, "latency_downstream");
        assert_eq!(params.toxics[0].stream, Stream::Downstream);
        assert_eq!(params.toxics[0].toxicity, 1.0);
        assert_eq!(
            params.toxics[0].kind,
            ToxicKind::Latency(Latency {
                latency: 100,
                jitter: 0
            })
        );
        assert_eq!(params.toxics[1].stream, Stream::Upstream);
        assert_eq!(
            params.toxics[1].to_string(),
            "s (slicer upstream, average_size=10 delay=50 size_variation=2, toxicity 0.5)"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let t = json!({"listen": "127.0.0.1:1", "upstream": "h:2"});
        for (target, params, want) in [
            (
                json!({"listen": "nope", "upstream": "h:1"}),
                json!({}),
                "steps[0].target.listen",
            ),
            (
                json!({"listen": "127.0.0.1:1", "upstream": "h"}),
                json!({}),
                "steps[0].target.upstream",
            ),
            (
                json!({"proxy": "p", "listen": "127.0.0.1:1"}),
                json!({}),
                "steps[0].target",
            ),
            (json!({"proxy": "p"}), json!({}), "steps[0].params.toxics"),
            (
                t.clone(),
                json!({"toxics": [{"type": "latncy"}]}),
                "steps[0].params.toxics[0].type",
            ),
            (
                t.clone(),
                json!({"toxics": [{"type": "latency", "toxicity": 2}]}),
                "steps[0].params.toxics[0].toxicity",
            ),
            (
                t.clone(),
                json!({"toxics": [{"type": "latency", "attributes": {"delay": 1}}]}),
                "steps[0].params.toxics[0].attributes.delay",
            ),
            (
                t.clone(),
                json!({"toxics": [{"type": "slicer", "attributes": {"average_size": 0}}]}),
                "steps[0].params.toxics[0].attributes.average_size",
            ),
            (
                t.clone(),
                json!({"toxics": [{"type": "timeout"}, {"type": "timeout"}]}),
                "steps[0].params.toxics[1].name",
            ),
            (
                t.clone(),
                json!({"toxics": [{"type": "timeout", "stream": "sideways"}]}),
                "steps[0].params.toxics[0].stream",
            ),
        ] {
            let e = parse_err(target.clone(), params.clone());
            assert!(e.contains(want), "{target} {params}: {e}");
        }
    }

    #[test]
    fn needs_a_duration() {
        let mut s = step(
            json!({"proxy": "p"}),
            json!({"toxics": [{"type": "timeout"}]}),
        );
        s.duration = None;
        let e = parse(&Field("steps[0]"), &s).unwrap_err();
        assert!(format!("{e}").contains("steps[0].duration"), "{e}");
    }
}
