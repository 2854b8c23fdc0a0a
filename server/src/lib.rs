//! The Faultline hub as a library: `main.rs` only parses flags and calls into here, so tests and
//! benchmarks can start a real hub in-process.
#![forbid(unsafe_code)]

pub mod annotations;
pub mod app;
pub mod audit;
pub mod bucket;
pub mod client;
pub mod config;
pub mod config_file;
pub mod db;
pub mod delegates;
pub mod embedded_pg;
pub mod error;
pub mod git;
pub mod git_sync;
pub mod gitops;
pub mod graphql;
pub mod grpc;
pub mod halt;
pub mod http;
pub mod identity;
pub mod ingest;
pub mod liveness;
pub mod metrics;
pub mod notifications;
pub mod notify;
pub mod oidc;
pub mod perimeter;
pub mod reaper;
pub mod report;
pub mod retention;
pub mod run_ids;
pub mod runs;
pub mod scheduler;
pub mod schedules;
pub mod secretbox;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod template_cli;
pub mod templates;
pub mod tls;
pub mod user_cli;
pub mod web;
