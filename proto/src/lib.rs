//! The gRPC contract between hub and delegate, generated from `proto/faultline.proto`.
//!
//! Changes must be additive: never reuse a field number, mark removed ones `reserved`.
#![forbid(unsafe_code)]

pub mod v1 {
    tonic::include_proto!("faultline.v1");
}

/// The lowest delegate version the hub accepts; sent in `Welcome`.
pub const MIN_DELEGATE_VERSION: &str = "0.1.0";
