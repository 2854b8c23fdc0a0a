//! Experiment templates as data: the YAML a user writes, parsed into checked types.
//!
//! The hub validates templates with this crate before storing them, the delegate re-reads the
//! same types from the JSON the hub sends, and both score runs with [`score`]. Nothing here does
//! I/O: executing faults and probes belongs to the delegate.
#![forbid(unsafe_code)]

pub mod duration;
pub mod events;
pub mod faults;
pub mod hints;
pub mod import;
pub mod locate;
pub mod phase;
pub mod policy;
pub mod probes;
#[cfg(feature = "schema")]
pub mod schema;
pub mod score;
pub mod stats;
pub mod template;

pub use duration::Dur;
pub use template::{parse_template, Experiment, SpecError, SpecErrors, Stage};
