//! Integration tests of the delegate against real parts: real processes, real HTTP, Prometheus,
//! PostgreSQL and Redis servers, the real state directory, and (for the link) a small tonic hub
//! on an ephemeral port; and a fake Kubernetes API server (`fake_kube.rs`), since no real one can
//! run here. One binary, one module per area, so the build stays fast.
mod helpers;

mod fake_hub;
mod fake_kube;

mod allow;
mod command_probe;
mod disk;
mod executor;
mod http_fault;
mod http_probe;
mod journal;
mod kubernetes;
mod link;
mod modes;
mod network;
mod pod_faults;
mod postgres_probe;
mod process_faults;
mod process_kill;
mod prometheus_probe;
mod proxy;
mod redis_probe;
mod stress;
mod tcp_probe;
mod toxiproxy_api;
mod toxiproxy_server;
