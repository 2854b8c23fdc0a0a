//! `network-loss` and `network-partition`: drop packets with nftables.
//!
//! Each fault adds one table of its own, `inet faultline_<run>_<step>_<nonce>` (the nonce is
//! drawn at plan time and journalled, so the name is unique to this fault), with a `postrouting`
//! chain for egress (`oifname`, remote end = `daddr`/`dport`) and a `prerouting` chain for ingress
//! (`iifname`, remote end = `saddr`/`sport`). The whole table goes in with one `nft -f` (atomic)
//! and out with one `delete table`; revert touches no other table, and a table already gone
//! (namespace deleted, someone flushed the ruleset) counts as reverted.
use super::network::{
    self, by_family, describe_scope, describe_target, run, run_ok, NetData, NetError,
};
use super::{Applied, Fault, FaultError, RunCtx};
use faultline_experiment::faults::{Direction, FaultSpec, NetworkScope};

/// `network-loss`: drop `percent` of the matching packets (`numgen random`).
pub struct NetworkLoss;
/// `network-partition`: drop every matching packet, both directions.
pub struct NetworkPartition;

/// One direction of the ruleset.
struct Hook {
    chain: &'static str,
    hook: &'static str,
    ifname: &'static str,
    addr: &'static str,
    port: &'static str,
}

const EGRESS: Hook = Hook {
    chain: "egress",
    hook: "postrouting",
    ifname: "oifname",
    addr: "daddr",
    port: "dport",
};
const INGRESS: Hook = Hook {
    chain: "ingress",
    hook: "prerouting",
    ifname: "iifname",
    addr: "saddr",
    port: "sport",
};

/// The nft script adding the table: `create` fails if the name is somehow taken, so nothing of
/// someone else's is ever merged into or later deleted.
fn script(table: &str, scope: &NetworkScope<'_>, hooks: &[Hook], per10k: Option<u32>) -> String {
    let mut s = format!("create table inet {table}\ntable inet {table} {{\n");
    let ports = (!scope.ports.is_empty()).then(|| {
        format!(
            "meta l4proto {{ tcp, udp }} th {{port}} {{ {} }} ",
            network::join(scope.ports)
        )
    });
    let chance = per10k
        .map(|n| format!("numgen random mod 10000 < {n} "))
        .unwrap_or_default();
    for h in hooks {
        s += &format!(
            "  chain {} {{\n    type filter hook {} priority 0; policy accept;\n",
            h.chain, h.hook
        );
        let iface = format!("{} \"{}\" ", h.ifname, scope.target.interface);
        let ports = ports
            .as_deref()
            .map(|p| p.replace("{port}", h.port))
            .unwrap_or_default();
        let families = by_family(scope.destinations);
        let addrs: Vec<String> = if families.is_empty() {
            vec![String::new()]
        } else {
            families
                .iter()
                .map(|(v4, l)| {
                    format!(
                        "{} {} {{ {} }} ",
                        if *v4 { "ip" } else { "ip6" },
                        h.addr,
                        network::join(l)
                    )
                })
                .collect()
        };
        for a in addrs {
            s += &format!("    {iface}{a}{ports}{chance}counter drop\n");
        }
        s += "  }\n";
    }
    s += "}\n";
    s
}

fn plan(
    kind: &'static str,
    spec: &FaultSpec,
    ctx: RunCtx<'_>,
    hooks: &[Hook],
    per10k: Option<u32>,
    detail: String,
) -> Result<Applied, FaultError> {
    let scope = spec.network().ok_or(FaultError::WrongSpec {
        kind,
        given: spec.kind(),
    })?;
    network::check_target(scope.target)?;
    let table = format!(
        "faultline_{}_{}_{:04x}",
        network::run_tag(ctx.run_id),
        ctx.step,
        rand::random::<u16>()
    );
    let data = NetData {
        netns: scope.target.netns.clone(),
        interface: scope.target.interface.clone(),
        table: Some(table.clone()),
        qdisc: None,
        script: script(&table, &scope, hooks, per10k),
    };
    Ok(Applied::new(
        ctx,
        kind,
        format!("{detail} (nftables table inet {table})"),
        data.to_value(),
    ))
}

fn apply(kind: &str, plan: &Applied) -> Result<(), FaultError> {
    let data = NetData::from_value(kind, &plan.data)?;
    run_ok(
        data.netns.as_deref(),
        "nft",
        &["-f", "-"],
        Some(&data.script),
    )?;
    Ok(())
}

/// Deletes the fault's table if it is still there; says how many packets it dropped.
fn revert(kind: &str, applied: &Applied) -> Result<String, FaultError> {
    let data = NetData::from_value(kind, &applied.data)?;
    let Some(table) = data.table.as_deref() else {
        return Err(NetError::BadData {
            kind: kind.into(),
            reason: "no table recorded".into(),
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
    let listed = run(ns, "nft", &["-j", "list", "table", "inet", table], None)?;
    if !listed.ok {
        if listed.stderr.contains("No such file or directory") {
            return Ok(format!("nothing to remove: table inet {table} is gone"));
        }
        return Err(NetError::Failed {
            command: format!("nft -j list table inet {table}"),
            stderr: listed.stderr,
        }
        .into());
    }
    let dropped = dropped_packets(&listed.stdout);
    let gone = run(ns, "nft", &["delete", "table", "inet", table], None)?;
    if !gone.ok && !gone.stderr.contains("No such file or directory") {
        return Err(NetError::Failed {
            command: format!("nft delete table inet {table}"),
            stderr: gone.stderr,
        }
        .into());
    }
    Ok(format!(
        "removed nftables table inet {table} (it dropped {dropped} packets)"
    ))
}

/// Sum of the table's rule counters, from `nft -j list table`.
fn dropped_packets(json: &str) -> u64 {
    fn walk(v: &serde_json::Value) -> u64 {
        match v {
            serde_json::Value::Object(o) => match o.get("counter") {
                Some(c) => c["packets"].as_u64().unwrap_or(0),
                None => o.values().map(walk).sum(),
            },
            serde_json::Value::Array(a) => a.iter().map(walk).sum(),
            _ => 0,
        }
    }
    serde_json::from_str(json).map(|v| walk(&v)).unwrap_or(0)
}

impl Fault for NetworkLoss {
    fn kind(&self) -> &'static str {
        "network-loss"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::NetworkLoss { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let (dir, towards) = match params.direction {
            Direction::Egress => ("leaving", "to"),
            Direction::Ingress => ("arriving on", "from"),
            Direction::Both => ("leaving or arriving on", "to/from"),
        };
        let mut hooks = Vec::new();
        if params.direction.egress() {
            hooks.push(EGRESS);
        }
        if params.direction.ingress() {
            hooks.push(INGRESS);
        }
        let detail = format!(
            "drop {} of packets {dir} {}{}",
            params.percent,
            describe_target(target),
            describe_scope(&spec.network().expect("a network kind"), towards)
        );
        // numgen draws 0-9999: two decimals of a percent.
        let per10k = (params.percent.0 * 100.0).round().clamp(1.0, 10_000.0) as u32;
        plan(self.kind(), spec, ctx, &hooks, Some(per10k), detail)
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        apply(self.kind(), plan)
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        revert(self.kind(), applied)
    }
}

impl Fault for NetworkPartition {
    fn kind(&self) -> &'static str {
        "network-partition"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::NetworkPartition { target, .. } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let detail = format!(
            "drop all packets on {} to and from{}",
            describe_target(target),
            describe_scope(&spec.network().expect("a network kind"), "")
        );
        plan(self.kind(), spec, ctx, &[EGRESS, INGRESS], None, detail)
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        apply(self.kind(), plan)
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        revert(self.kind(), applied)
    }
}
