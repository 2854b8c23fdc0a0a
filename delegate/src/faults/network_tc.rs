//! `network-bandwidth` (tc tbf, or htb + u32 filters when narrowed to destinations/ports) and the
//! netem kinds `network-latency`, `network-corrupt`, `network-duplicate`, `network-reorder`.
//!
//! Each fault owns the interface's root qdisc, added with a handle drawn at plan time and
//! journalled; revert deletes the root only while it still has that handle and kind. An interface
//! whose root qdisc is not the kernel's default (handle `0:`) is refused, never replaced. Egress
//! only: shaping arriving traffic would need an ifb device.
//!
//! netem is detected once per process ([`netem_support`]); without it the netem kinds are not
//! advertised and refuse at plan time with a pointer to the proxy-level alternatives.
use super::network::{
    self, by_family, describe_scope, describe_target, run, run_ok, NetData, NetError, QdiscRef,
};
use super::{Applied, Fault, FaultError, RunCtx};
use faultline_experiment::faults::{FaultSpec, NetworkScope, NetworkTarget, PortRange};
use std::{sync::OnceLock, time::Duration};

/// Most u32 filters one fault may add (destinations × families × protocols × port masks).
pub const MAX_FILTERS: usize = 512;

pub struct NetworkBandwidth;

/// One of the netem kinds.
pub struct Netem {
    pub kind: &'static str,
}

/// The interface's root qdisc when it is not the kernel's default: `(handle, kind)`.
fn root_qdisc(ns: Option<&str>, iface: &str) -> Result<Option<(String, String)>, NetError> {
    let out = run_ok(
        ns,
        "tc",
        &["-j", "qdisc", "show", "dev", iface, "root"],
        None,
    )?;
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .find(|q| q["root"].as_bool().unwrap_or(true))
        .and_then(|q| {
            let handle = q["handle"].as_str().unwrap_or("0:");
            (handle != "0:").then(|| {
                (
                    handle.to_string(),
                    q["kind"].as_str().unwrap_or_default().to_string(),
                )
            })
        }))
}

/// Refuses an interface whose root qdisc someone already set.
fn check_root_free(t: &NetworkTarget) -> Result<(), NetError> {
    if let Some((handle, kind)) = root_qdisc(t.netns.as_deref(), &t.interface)? {
        return Err(NetError::Refused(format!(
            "{} already has a root qdisc ({kind}, handle {handle}); refusing to replace it",
            describe_target(t)
        )));
    }
    Ok(())
}

/// u32 matches for the scope's remote ends, one line each (empty when nothing narrows it).
fn u32_matches(scope: &NetworkScope<'_>) -> Vec<(&'static str, String)> {
    if scope.destinations.is_empty() && scope.ports.is_empty() {
        return Vec::new();
    }
    let families: Vec<(bool, Vec<Option<String>>)> = if scope.destinations.is_empty() {
        vec![(true, vec![None]), (false, vec![None])]
    } else {
        by_family(scope.destinations)
            .into_iter()
            .map(|(v4, l)| (v4, l.iter().map(|c| Some(c.to_string())).collect()))
            .collect()
    };
    let ports: Vec<(u16, u16)> = scope
        .ports
        .iter()
        .flat_map(|r: &PortRange| network::port_masks(*r))
        .collect();
    let mut out = Vec::new();
    for (v4, cidrs) in families {
        let (proto, m) = if v4 { ("ip", "ip") } else { ("ipv6", "ip6") };
        for c in &cidrs {
            let dst = c
                .as_ref()
                .map(|c| format!(" match {m} dst {c}"))
                .unwrap_or_default();
            if ports.is_empty() {
                out.push((proto, dst.clone()));
                continue;
            }
            for l4 in [6, 17] {
                for (value, mask) in &ports {
                    out.push((
                        proto,
                        format!("{dst} match {m} protocol {l4} 0xff match {m} dport {value} {mask:#06x}"),
                    ));
                }
            }
        }
    }
    out
}

/// A handle major for a new root qdisc, 0x1000-0xefff, drawn per fault and journalled, so revert
/// can tell our root from one someone added after it (a netem child takes major + 1).
fn new_handle() -> u16 {
    0x1000 + rand::random::<u16>() % 0xe000
}

/// The `tc -batch` script: `leaf` (`tbf ...`, `netem ...`) as the root when nothing narrows the
/// fault; else the root and class lines `narrowed` gives for the handle, plus one u32 filter per
/// match towards the limited class. Returns the script and the root's kind.
fn build(
    scope: &NetworkScope<'_>,
    major: u16,
    leaf: &str,
    narrowed: impl FnOnce(&str) -> Vec<String>,
) -> Result<(String, String), NetError> {
    let dev = &scope.target.interface;
    let matches = u32_matches(scope);
    if matches.is_empty() {
        let kind = leaf
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        return Ok((
            format!("qdisc add dev {dev} root handle {major:x}: {leaf}\n"),
            kind,
        ));
    }
    if matches.len() > MAX_FILTERS {
        return Err(NetError::Refused(format!(
            "destinations and ports need {} tc filters; at most {MAX_FILTERS} are allowed (use wider CIDRs or aligned port ranges)",
            matches.len()
        )));
    }
    let mut lines = narrowed(&format!("{major:x}"));
    let kind = lines[0]
        .split(" handle ")
        .nth(1)
        .and_then(|r| r.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string();
    for (proto, m) in &matches {
        // One priority per family: u32 keeps filters of different protocols apart by prio.
        let prio = if *proto == "ip" { 1 } else { 2 };
        lines.push(format!(
            "filter add dev {dev} parent {major:x}: protocol {proto} prio {prio} u32{m} flowid {major:x}:{}",
            if kind == "htb" { 1 } else { 2 }
        ));
    }
    Ok((lines.join("\n") + "\n", kind))
}

fn applied(
    kind: &str,
    ctx: RunCtx<'_>,
    t: &NetworkTarget,
    major: u16,
    root_kind: String,
    script: String,
    detail: String,
) -> Applied {
    let data = NetData {
        netns: t.netns.clone(),
        interface: t.interface.clone(),
        table: None,
        qdisc: Some(QdiscRef {
            handle: format!("{major:x}:"),
            kind: root_kind.clone(),
        }),
        script,
    };
    Applied::new(
        ctx,
        kind,
        format!("{detail} (tc root qdisc {root_kind} {major:x}:)"),
        data.to_value(),
    )
}

fn apply(kind: &str, plan: &Applied) -> Result<(), FaultError> {
    let data = NetData::from_value(kind, &plan.data)?;
    run_ok(
        data.netns.as_deref(),
        "tc",
        &["-batch", "-"],
        Some(&data.script),
    )?;
    Ok(())
}

/// Deletes the root qdisc if it is still the one this fault added.
fn revert(kind: &str, applied: &Applied) -> Result<String, FaultError> {
    let data = NetData::from_value(kind, &applied.data)?;
    let Some(ours) = &data.qdisc else {
        return Err(NetError::BadData {
            kind: kind.into(),
            reason: "no qdisc recorded".into(),
        }
        .into());
    };
    if !data.netns_exists() {
        return Ok(format!(
            "nothing to remove: network namespace {} is gone",
            data.netns.as_deref().unwrap_or_default()
        ));
    }
    let ns = data.netns.as_deref();
    let root = match root_qdisc(ns, &data.interface) {
        Ok(r) => r,
        Err(NetError::Failed { stderr, .. }) if stderr.contains("Cannot find device") => {
            return Ok(format!(
                "nothing to remove: interface {} is gone",
                data.interface
            ))
        }
        Err(e) => return Err(e.into()),
    };
    match root {
        Some((handle, k)) if handle == ours.handle && k == ours.kind => {
            run_ok(
                ns,
                "tc",
                &[
                    "qdisc",
                    "del",
                    "dev",
                    &data.interface,
                    "root",
                    "handle",
                    &handle,
                ],
                None,
            )?;
            Ok(format!(
                "removed root qdisc {k} {handle} from {}",
                data.interface
            ))
        }
        Some((handle, k)) => Ok(format!(
            "nothing to remove: the root qdisc of {} is now {k} {handle}, not ours; left alone",
            data.interface
        )),
        None => Ok(format!(
            "nothing to remove: {} has its default qdisc again",
            data.interface
        )),
    }
}

fn wrong(kind: &'static str, spec: &FaultSpec) -> FaultError {
    FaultError::WrongSpec {
        kind,
        given: spec.kind(),
    }
}

impl Fault for NetworkBandwidth {
    fn kind(&self) -> &'static str {
        "network-bandwidth"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::NetworkBandwidth { target, params } = spec else {
            return Err(wrong(self.kind(), spec));
        };
        let scope = spec.network().ok_or_else(|| wrong(self.kind(), spec))?;
        network::check_target(target)?;
        check_root_free(target)?;
        let rate = params.rate.0;
        // Default bucket: 20ms at full rate, at least a few full-size packets.
        let burst = params
            .burst
            .map(|b| b.0)
            .unwrap_or((rate / 8 / 50).max(4096));
        let queue = match (params.limit, params.latency) {
            (Some(l), _) => format!("limit {}b", l.0),
            (None, l) => format!(
                "latency {}us",
                l.map(|d| d.0)
                    .unwrap_or(Duration::from_millis(50))
                    .as_micros()
            ),
        };
        let major = new_handle();
        let dev = &target.interface;
        let (script, root_kind) = build(
            &scope,
            major,
            &format!("tbf rate {rate}bit burst {burst}b {queue}"),
            |h| {
                vec![
                    // `default 0`: unmatched traffic bypasses the classes, unlimited.
                    format!("qdisc add dev {dev} root handle {h}: htb default 0"),
                    format!("class add dev {dev} parent {h}: classid {h}:1 htb rate {rate}bit ceil {rate}bit burst {burst}b cburst {burst}b"),
                ]
            },
        )?;
        let detail = format!(
            "limit egress of {} to {}{}",
            describe_target(target),
            params.rate_text(),
            describe_scope(&scope, "to")
        );
        Ok(applied(
            self.kind(),
            ctx,
            target,
            major,
            root_kind,
            script,
            detail,
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        apply(self.kind(), plan)
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        revert(self.kind(), applied)
    }
}

/// Human rate: `1mbit`, `500kbit`.
trait RateText {
    fn rate_text(&self) -> String;
}

impl RateText for faultline_experiment::faults::BandwidthParams {
    fn rate_text(&self) -> String {
        let r = self.rate.0;
        match r {
            r if r % 1_000_000_000 == 0 => format!("{}gbit", r / 1_000_000_000),
            r if r % 1_000_000 == 0 => format!("{}mbit", r / 1_000_000),
            r if r % 1_000 == 0 => format!("{}kbit", r / 1_000),
            r => format!("{r}bit"),
        }
    }
}

/// Whether this kernel has netem; found out once per process. `Err` says what tc answered.
pub fn netem_support() -> &'static Result<(), String> {
    static ONCE: OnceLock<Result<(), String>> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::path::Path::new("/sys/module/sch_netem").exists() {
            return Ok(());
        }
        // Try it where it cannot hurt: the loopback of a namespace made for the purpose (this
        // also lets the kernel load the module on demand).
        let ns = format!("faultline-netem-probe-{}", std::process::id());
        run_ok(None, "ip", &["netns", "add", &ns], None).map_err(|e| e.to_string())?;
        let tried = run_ok(
            Some(&ns),
            "tc",
            &["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
            None,
        );
        let _ = run(None, "ip", &["netns", "del", &ns], None);
        tried.map(|_| ()).map_err(|e| match e {
            NetError::Failed { stderr, .. } => stderr,
            e => e.to_string(),
        })
    })
}

fn us(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

impl Netem {
    /// The netem arguments and a description, from the spec.
    fn args(&self, spec: &FaultSpec) -> Option<(String, String)> {
        let corr = |c: &Option<faultline_experiment::faults::Percent>| {
            c.map(|c| format!(" {}%", c.0)).unwrap_or_default()
        };
        Some(match spec {
            FaultSpec::NetworkLatency { params: p, .. } => {
                let mut a = format!("delay {}", us(p.latency.0));
                if let Some(j) = p.jitter {
                    a += &format!(" {}{}", us(j.0), corr(&p.correlation));
                }
                let jitter = p.jitter.map(|j| format!(" ± {j}")).unwrap_or_default();
                (a, format!("delay egress packets by {}{jitter}", p.latency))
            }
            FaultSpec::NetworkCorrupt { params: p, .. } => (
                format!("corrupt {}%{}", p.percent.0, corr(&p.correlation)),
                format!("corrupt {} of egress packets", p.percent),
            ),
            FaultSpec::NetworkDuplicate { params: p, .. } => (
                format!("duplicate {}%{}", p.percent.0, corr(&p.correlation)),
                format!("duplicate {} of egress packets", p.percent),
            ),
            FaultSpec::NetworkReorder { params: p, .. } => (
                format!(
                    "delay {} reorder {}%{}",
                    us(p.latency.0),
                    p.percent.0,
                    corr(&p.correlation)
                ),
                format!(
                    "reorder egress packets: {} sent at once, the rest delayed by {}",
                    p.percent, p.latency
                ),
            ),
            _ => return None,
        })
    }
}

impl Fault for Netem {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn available(&self) -> bool {
        netem_support().is_ok()
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        if spec.kind() != self.kind {
            return Err(wrong(self.kind, spec));
        }
        let (args, what) = self.args(spec).ok_or_else(|| wrong(self.kind, spec))?;
        if let Err(why) = netem_support() {
            return Err(NetError::Refused(format!(
                "{} needs the kernel's netem qdisc (sch_netem), which this host lacks ({why}); use the tcp-proxy fault's latency toxic or http-fault's delay instead",
                self.kind
            ))
            .into());
        }
        let scope = spec.network().ok_or_else(|| wrong(self.kind, spec))?;
        network::check_target(scope.target)?;
        check_root_free(scope.target)?;
        let major = new_handle();
        let dev = &scope.target.interface;
        let (script, root_kind) = build(&scope, major, &format!("netem {args}"), |h| {
            vec![
                // Band 1 (class :1) takes everything; filters send matches to band 2 (netem).
                format!("qdisc add dev {dev} root handle {h}: prio bands 2 priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"),
                format!("qdisc add dev {dev} parent {h}:2 handle {:x}: netem {args}", major + 1),
            ]
        })?;
        let detail = format!(
            "{what} on {}{}",
            describe_target(scope.target),
            describe_scope(&scope, "to")
        );
        Ok(applied(
            self.kind,
            ctx,
            scope.target,
            major,
            root_kind,
            script,
            detail,
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        apply(self.kind, plan)
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        revert(self.kind, applied)
    }
}
