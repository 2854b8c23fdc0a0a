//! Parameters of `http-fault`: an HTTP/1.1 reverse proxy that the delegate runs on
//! `target.listen` in front of `target.upstream` for the step's duration, acting on requests
//! by rules (abort, delay, reset, rewrite). Everything is checked here, with the failing field
//! named down to the rule (`params.rules[1].match.pathRegex`); the delegate trusts the result.
use super::{need_duration, typed, FaultSpec, Field};
use crate::{template::FaultStep, template::SpecError, Dur};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

/// At most this many rules: each request walks them in order.
pub const MAX_RULES: usize = 64;
/// Longest `abort.body` and `rewrite.responseBody` text; they are held in memory.
pub const MAX_BODY_TEXT: usize = 64 * 1024;
/// Compiled size limit of a `pathRegex`, so a template cannot make the delegate build a huge
/// automaton.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Where the proxy listens and what it fronts.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpProxyTarget {
    /// Address the proxy listens on while the fault holds, `IP:port`, e.g. `127.0.0.1:18080`.
    /// Clients are pointed here instead of at the upstream.
    pub listen: String,
    /// The service behind the proxy, `http://host:port` (no path; https is not supported yet),
    /// e.g. `http://127.0.0.1:8080`.
    pub upstream: String,
}

impl HttpProxyTarget {
    /// The listen address (checked at parse time).
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        let addr: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| format!("{:?} is not an IP:port address", self.listen))?;
        if addr.port() == 0 {
            return Err("the port must not be 0".into());
        }
        Ok(addr)
    }

    /// `host:port` of the upstream (port 80 when not given), checked at parse time.
    pub fn upstream_authority(&self) -> Result<String, String> {
        let u = self.upstream.as_str();
        if u.starts_with("https://") {
            return Err("https upstreams are not supported yet".into());
        }
        let rest = u
            .strip_prefix("http://")
            .ok_or_else(|| format!("{u:?} must start with http://"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !path.is_empty() && path != "/" {
            return Err(format!(
                "{u:?} has a path; give only http://host:port (paths are forwarded as requested)"
            ));
        }
        if authority.contains('@') || authority.contains('?') || authority.contains('#') {
            return Err(format!("{u:?} must be only http://host:port"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            // `[::1]:80` splits at the last colon; a bare `[::1]` has its colon inside brackets.
            Some((h, p)) if !p.contains(']') => {
                let port: u16 = p
                    .parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("{u:?} has an invalid port {p:?}"))?;
                (h, port)
            }
            _ => (authority, 80),
        };
        let host_ok = !host.is_empty()
            && (host.starts_with('[') && host.ends_with(']')
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
        if !host_ok {
            return Err(format!("{u:?} has an invalid host {host:?}"));
        }
        Ok(format!("{host}:{port}"))
    }
}

/// `params` of `http-fault`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpFaultParams {
    /// Tried in order for each request: the first rule that matches and whose `percentage`
    /// fires acts; a request no rule takes is forwarded unchanged.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(max = 64)))]
    pub rules: Vec<HttpRule>,
    /// How long to wait for a connection to the upstream; the client gets 502 after it
    /// (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Dur>,
    /// How long to wait for the upstream's response headers; the client gets 504 after it
    /// (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_timeout: Option<Dur>,
}

impl HttpFaultParams {
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(5))
    }

    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(30))
    }
}

fn hundred() -> f64 {
    100.0
}

/// One rule: which requests (`match`), how often (`percentage`), and exactly one action
/// (`abort`, `delay`, `reset` or `rewrite`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["abort"]}, {"required": ["delay"]}, {"required": ["reset"]}, {"required": ["rewrite"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRule {
    /// Which requests the rule takes; omitted means every request.
    #[serde(default, rename = "match")]
    pub matcher: HttpMatch,
    /// Share of the matching requests the action applies to, 0-100, decided per request
    /// (default 100). A request the dice spare goes on to the next rule.
    #[serde(default = "hundred")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 100)))]
    pub percentage: f64,
    /// Answer at once with this status (and body), without reaching the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<HttpAbort>,
    /// Hold the request this long, then forward it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
    /// `true`: close the client's connection abruptly (TCP RST), without an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    /// Forward the request, changing headers on the way in and headers or body on the way out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<HttpRewrite>,
}

/// What a request must have for a rule to take it; every given part must match.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpMatch {
    /// Request method, exactly as sent (methods are case-sensitive), e.g. `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path prefix, e.g. `/api/` (the query string is not part of the path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Regular expression searched in the path (anchor it with `^...$` to match it whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// Headers the request must carry with exactly these values (names are case-insensitive).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// The answer of an `abort`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpAbort {
    /// HTTP status, 100-599, e.g. `503`.
    #[cfg_attr(feature = "schema", schemars(range(min = 100, max = 599)))]
    pub status: u16,
    /// Response body (text/plain); empty when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// What a `rewrite` changes; at least one part.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRewrite {
    /// Headers changed before the request goes upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderEdit>,
    /// Headers changed before the response goes back to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<HeaderEdit>,
    /// The response body: a text that replaces it whole, or `{replace: [from, to]}` to replace
    /// every occurrence of `from`. Bodies to edit are read whole, up to a limit (502 beyond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<BodyRewrite>,
}

/// Header changes: `remove` first, then `set` (which replaces any value already there).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderEdit {
    /// Header name → value to set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Header names to drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// A new response body.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum BodyRewrite {
    /// The whole new body.
    Text(String),
    /// `[from, to]`: every occurrence of `from` becomes `to`.
    Replace(BodyReplace),
}

/// `{replace: [from, to]}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BodyReplace {
    /// `[from, to]`; `from` must not be empty.
    pub replace: [String; 2],
}

/// The one action of a rule, as the delegate acts on it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HttpAction<'a> {
    Abort(&'a HttpAbort),
    Delay(Duration),
    Reset,
    Rewrite(&'a HttpRewrite),
}

impl HttpRule {
    /// The rule's action (exactly one is guaranteed by parsing).
    pub fn action(&self) -> HttpAction<'_> {
        if let Some(a) = &self.abort {
            HttpAction::Abort(a)
        } else if let Some(d) = self.delay {
            HttpAction::Delay(d.0)
        } else if let Some(r) = &self.rewrite {
            HttpAction::Rewrite(r)
        } else {
            HttpAction::Reset
        }
    }

    /// One line for humans, e.g. `GET /api* 30% → abort 503`.
    pub fn describe(&self) -> String {
        let m = &self.matcher;
        let mut what = Vec::new();
        what.push(m.method.clone().unwrap_or_else(|| "any method".into()));
        match (&m.path, &m.path_regex) {
            (Some(p), _) => what.push(format!("{p}*")),
            (_, Some(r)) => what.push(format!("path ~ /{r}/")),
            _ => what.push("any path".into()),
        }
        for (k, v) in &m.headers {
            what.push(format!("{k}: {v}"));
        }
        let action = match self.action() {
            HttpAction::Abort(a) => format!("abort {}", a.status),
            HttpAction::Delay(d) => format!("delay {}", Dur(d)),
            HttpAction::Reset => "reset the connection".into(),
            HttpAction::Rewrite(r) => {
                let mut parts = Vec::new();
                if r.request_headers.is_some() {
                    parts.push("request headers");
                }
                if r.response_headers.is_some() {
                    parts.push("response headers");
                }
                if r.response_body.is_some() {
                    parts.push("response body");
                }
                format!("rewrite {}", parts.join(", "))
            }
        };
        format!("{} {}% → {action}", what.join(" "), self.percentage)
    }
}

/// A token as HTTP allows it: a header name or a method.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value as HTTP allows it: visible ASCII, spaces and tabs.
fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn check_headers<'a>(
    at: &str,
    names: impl IntoIterator<Item = (&'a String, Option<&'a String>)>,
) -> Result<(), SpecError> {
    for (name, value) in names {
        if !is_token(name) {
            return Err(SpecError::field(
                at,
                format!("{name:?} is not a valid header name"),
            ));
        }
        if value.is_some_and(|v| !is_header_value(v)) {
            return Err(SpecError::field(
                format!("{at}.{name}"),
                "header values take visible ASCII characters, spaces and tabs only",
            ));
        }
    }
    Ok(())
}

/// `v[key]` when `v` is an object that has it.
fn child<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    v.as_object().and_then(|o| o.get(key))
}

fn parse_rule(at: &str, v: &serde_json::Value) -> Result<HttpRule, SpecError> {
    // Read the nested objects first, so a mistake inside one is named at its own path; what
    // fails after that is the rule's own field.
    if let Some(m) = child(v, "match") {
        typed::<HttpMatch>(m, &format!("{at}.match"))?;
    }
    if let Some(a) = child(v, "abort") {
        typed::<HttpAbort>(a, &format!("{at}.abort"))?;
    }
    if let Some(r) = child(v, "rewrite") {
        for part in ["requestHeaders", "responseHeaders"] {
            if let Some(h) = child(r, part) {
                typed::<HeaderEdit>(h, &format!("{at}.rewrite.{part}"))?;
            }
        }
        if let Some(b) = child(r, "responseBody") {
            if !b.is_string() {
                typed::<BodyReplace>(b, &format!("{at}.rewrite.responseBody"))
                    .map_err(|e| e.hint("give a text (the new body) or {replace: [from, to]}"))?;
            }
        }
        typed::<HttpRewrite>(r, &format!("{at}.rewrite"))?;
    }
    if !v.is_object() {
        return Err(SpecError::field(at, "a rule is an object")
            .hint("e.g. {match: {path: /api}, abort: {status: 503}}"));
    }
    let rule: HttpRule = typed(v, at)?;

    let m = &rule.matcher;
    let at_m = format!("{at}.match");
    if let Some(method) = &m.method {
        if !is_token(method) {
            return Err(SpecError::field(
                format!("{at_m}.method"),
                format!("{method:?} is not an HTTP method"),
            ));
        }
        if method.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(SpecError::field(
                format!("{at_m}.method"),
                format!("{method:?}: methods are case-sensitive"),
            )
            .hint(format!("write {}", method.to_ascii_uppercase())));
        }
    }
    if m.path.is_some() && m.path_regex.is_some() {
        return Err(SpecError::field(
            at_m.clone(),
            "give at most one of path or pathRegex",
        ));
    }
    if let Some(p) = &m.path {
        if !p.starts_with('/') {
            return Err(
                SpecError::field(format!("{at_m}.path"), "a path prefix starts with /")
                    .hint(format!("write /{p}")),
            );
        }
    }
    if let Some(r) = &m.path_regex {
        regex::RegexBuilder::new(r)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                SpecError::field(
                    format!("{at_m}.pathRegex"),
                    format!("invalid regular expression: {e}"),
                )
            })?;
    }
    check_headers(
        &format!("{at_m}.headers"),
        m.headers.iter().map(|(k, v)| (k, Some(v))),
    )?;

    if !rule.percentage.is_finite() || !(0.0..=100.0).contains(&rule.percentage) {
        return Err(SpecError::field(
            format!("{at}.percentage"),
            format!("{} is not between 0 and 100", rule.percentage),
        ));
    }

    let actions = [
        rule.abort.is_some(),
        rule.delay.is_some(),
        rule.reset.is_some(),
        rule.rewrite.is_some(),
    ]
    .iter()
    .filter(|a| **a)
    .count();
    if actions != 1 {
        let msg = if actions == 0 {
            "a rule needs an action"
        } else {
            "a rule takes exactly one action"
        };
        return Err(SpecError::field(at, msg).hint(
            "give exactly one of abort: {status: 503}, delay: 200ms, reset: true, rewrite: {...}",
        ));
    }
    if rule.reset == Some(false) {
        return Err(
            SpecError::field(format!("{at}.reset"), "reset: false does nothing")
                .hint("write reset: true, or give another action"),
        );
    }
    if let Some(d) = rule.delay {
        if d.0.is_zero() {
            return Err(SpecError::field(
                format!("{at}.delay"),
                "a delay must be longer than 0",
            ));
        }
    }
    if let Some(a) = &rule.abort {
        if !(100..=599).contains(&a.status) {
            return Err(SpecError::field(
                format!("{at}.abort.status"),
                format!("{} is not an HTTP status (100-599)", a.status),
            ));
        }
        if a.body.as_ref().is_some_and(|b| b.len() > MAX_BODY_TEXT) {
            return Err(SpecError::field(
                format!("{at}.abort.body"),
                format!("longer than {MAX_BODY_TEXT} bytes"),
            ));
        }
    }
    if let Some(r) = &rule.rewrite {
        let at_r = format!("{at}.rewrite");
        if r.request_headers.is_none() && r.response_headers.is_none() && r.response_body.is_none()
        {
            return Err(SpecError::field(at_r, "a rewrite changes nothing").hint(
                "give requestHeaders, responseHeaders or responseBody (e.g. responseBody: \"...\")",
            ));
        }
        for (part, edit) in [
            ("requestHeaders", &r.request_headers),
            ("responseHeaders", &r.response_headers),
        ] {
            let Some(edit) = edit else { continue };
            check_headers(
                &format!("{at_r}.{part}.set"),
                edit.set.iter().map(|(k, v)| (k, Some(v))),
            )?;
            check_headers(
                &format!("{at_r}.{part}.remove"),
                edit.remove.iter().map(|k| (k, None)),
            )?;
        }
        let at_b = format!("{at_r}.responseBody");
        match &r.response_body {
            Some(BodyRewrite::Text(t)) if t.len() > MAX_BODY_TEXT => {
                return Err(SpecError::field(
                    at_b,
                    format!("longer than {MAX_BODY_TEXT} bytes"),
                ))
            }
            Some(BodyRewrite::Replace(BodyReplace {
                replace: [from, to],
            })) => {
                if from.is_empty() {
                    return Err(SpecError::field(
                        format!("{at_b}.replace"),
                        "the text to replace must not be empty",
                    ));
                }
                if from.len() > MAX_BODY_TEXT || to.len() > MAX_BODY_TEXT {
                    return Err(SpecError::field(
                        format!("{at_b}.replace"),
                        format!("longer than {MAX_BODY_TEXT} bytes"),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(rule)
}

pub(super) fn parse(at: &Field<'_>, step: &FaultStep) -> Result<FaultSpec, SpecError> {
    let target: HttpProxyTarget = typed(&step.target, &at.of("target")).map_err(|e| {
        e.hint("e.g. target: {listen: \"127.0.0.1:18080\", upstream: \"http://127.0.0.1:8080\"}")
    })?;
    let listen = target
        .listen_addr()
        .map_err(|m| SpecError::field(at.of("target.listen"), m).hint("e.g. 127.0.0.1:18080"))?;
    let upstream = target.upstream_authority().map_err(|m| {
        SpecError::field(at.of("target.upstream"), m).hint("e.g. http://127.0.0.1:8080")
    })?;
    if upstream == listen.to_string() {
        return Err(SpecError::field(
            at.of("target.upstream"),
            "the upstream is the proxy's own listen address",
        ));
    }
    need_duration(at, step)?;

    let at_p = at.of("params");
    if let Some(rules) = child(&step.params, "rules") {
        let Some(list) = rules.as_array() else {
            return Err(SpecError::field(format!("{at_p}.rules"), "rules is a list")
                .hint("e.g. rules: [{abort: {status: 503}, percentage: 50}]"));
        };
        if list.len() > MAX_RULES {
            return Err(SpecError::field(
                format!("{at_p}.rules"),
                format!("at most {MAX_RULES} rules"),
            ));
        }
        for (i, r) in list.iter().enumerate() {
            parse_rule(&format!("{at_p}.rules[{i}]"), r)?;
        }
    }
    let params: HttpFaultParams = typed(&step.params, &at_p)?;
    for (name, d) in [
        ("connectTimeout", params.connect_timeout),
        ("responseTimeout", params.response_timeout),
    ] {
        if d.is_some_and(|d| d.0.is_zero()) {
            return Err(SpecError::field(
                format!("{at_p}.{name}"),
                "a timeout must be longer than 0",
            ));
        }
    }
    Ok(FaultSpec::HttpFault { target, params })
}
