//! Parameters of the resource faults: `cpu-stress`, `memory-stress`, `io-stress` and
//! `disk-fill`. Each holds for the step's `duration`; the delegate checks what depends on the
//! host (CPUs, free memory, free space) when it plans the fault.
use super::{need_duration, typed, ByteSize, FaultSpec, Field};
use crate::{template::FaultStep, template::SpecError, Dur};
use serde::{Deserialize, Serialize};

/// At most this many stress workers per fault.
pub const MAX_WORKERS: u32 = 256;

/// `params` of `cpu-stress`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CpuParams {
    /// Busy worker processes (default: one per CPU, or one per entry of `cores`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 256)))]
    pub workers: Option<u32>,
    /// Share of each ~100ms period a worker is busy, in percent (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub load: Option<u32>,
    /// Pin the workers to these CPUs (round robin), e.g. `[0, 2]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cores: Vec<u16>,
}

/// `params` of `memory-stress`: exactly one of `size` or `percent`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["size"]}, {"required": ["percent"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MemoryParams {
    /// How much memory to allocate and touch, e.g. `512MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// How much, as a share of MemAvailable when the fault starts (1-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub percent: Option<u32>,
    /// Grow to the full amount evenly over this time instead of at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Dur>,
    /// Allocate even when less than the safety margin of MemAvailable would be left.
    #[serde(default)]
    pub force: bool,
}

/// What `io-stress` and `disk-fill` act on: a directory.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["path"])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathTarget {
    /// An existing directory (absolute path), e.g. `/var/lib/app`. Its files are created here
    /// and deleted on revert.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^/")))]
    pub path: String,
}

/// `params` of `io-stress`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IoParams {
    /// Writer processes, each with its own file (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 256)))]
    pub workers: Option<u32>,
    /// Size of each write (default 1MiB; 4KiB to 64MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<ByteSize>,
    /// Each worker's file grows to this size, then is rewritten from the start (default 64MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<ByteSize>,
    /// fdatasync after every write, so the load reaches the disk.
    #[serde(default)]
    pub fsync: bool,
}

/// `params` of `disk-fill`: exactly one of `fillPercent` or `size`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["fillPercent"]}, {"required": ["size"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DiskFillParams {
    /// Fill the filesystem up to this share used (1-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub fill_percent: Option<u32>,
    /// Fill by this much, e.g. `2GiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// Fill even beyond the safety margin (2% and 100MiB left free).
    #[serde(default)]
    pub force: bool,
}

fn in_range(at: &Field<'_>, name: &str, v: Option<u64>, lo: u64, hi: u64) -> Result<(), SpecError> {
    match v {
        Some(v) if !(lo..=hi).contains(&v) => Err(SpecError::field(
            at.of(&format!("params.{name}")),
            format!("must be between {lo} and {hi}"),
        )),
        _ => Ok(()),
    }
}

fn path_target(at: &Field<'_>, step: &FaultStep) -> Result<PathTarget, SpecError> {
    let t: PathTarget = typed(&step.target, &at.of("target"))?;
    let p = std::path::Path::new(&t.path);
    if !p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(
            SpecError::field(at.of("target.path"), "must be an absolute path without ..")
                .hint("e.g. target: {path: /var/lib/app}"),
        );
    }
    Ok(t)
}

pub(super) fn parse(at: &Field<'_>, step: &FaultStep) -> Result<FaultSpec, SpecError> {
    need_duration(at, step)?;
    let params = at.of("params");
    match step.fault.as_str() {
        "cpu-stress" => {
            let p: CpuParams = typed(&step.params, &params)?;
            in_range(
                at,
                "workers",
                p.workers.map(u64::from),
                1,
                MAX_WORKERS.into(),
            )?;
            in_range(at, "load", p.load.map(u64::from), 1, 100)?;
            if p.cores.len() > 1024 {
                return Err(SpecError::field(
                    at.of("params.cores"),
                    "lists too many CPUs",
                ));
            }
            Ok(FaultSpec::CpuStress { params: p })
        }
        "memory-stress" => {
            let p: MemoryParams = typed(&step.params, &params)?;
            if p.size.is_some() == p.percent.is_some() {
                return Err(
                    SpecError::field(&params, "give exactly one of size or percent")
                        .hint("e.g. params: {size: 512MiB}"),
                );
            }
            if p.size == Some(ByteSize(0)) {
                return Err(SpecError::field(
                    at.of("params.size"),
                    "must be more than 0",
                ));
            }
            in_range(at, "percent", p.percent.map(u64::from), 1, 100)?;
            Ok(FaultSpec::MemoryStress { params: p })
        }
        "io-stress" => {
            let target = path_target(at, step)?;
            let p: IoParams = typed(&step.params, &params)?;
            in_range(
                at,
                "workers",
                p.workers.map(u64::from),
                1,
                MAX_WORKERS.into(),
            )?;
            in_range(
                at,
                "blockSize",
                p.block_size.map(|b| b.0),
                4096,
                ByteSize::mib(64).0,
            )?;
            if let (Some(f), b) = (p.file_size, p.block_size.unwrap_or(ByteSize::mib(1))) {
                if f < b {
                    return Err(SpecError::field(
                        at.of("params.fileSize"),
                        format!("must be at least the block size ({b})"),
                    ));
                }
            }
            Ok(FaultSpec::IoStress { target, params: p })
        }
        _ => {
            let target = path_target(at, step)?;
            let p: DiskFillParams = typed(&step.params, &params)?;
            if p.size.is_some() == p.fill_percent.is_some() {
                return Err(
                    SpecError::field(&params, "give exactly one of fillPercent or size")
                        .hint("e.g. params: {fillPercent: 90}"),
                );
            }
            if p.size == Some(ByteSize(0)) {
                return Err(SpecError::field(
                    at.of("params.size"),
                    "must be more than 0",
                ));
            }
            in_range(at, "fillPercent", p.fill_percent.map(u64::from), 1, 100)?;
            Ok(FaultSpec::DiskFill { target, params: p })
        }
    }
}
