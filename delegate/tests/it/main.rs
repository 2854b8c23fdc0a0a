//! Integration tests of the delegate against real parts: real processes, a real HTTP server, the
//! real state directory, and (for the link) a small tonic hub on an ephemeral port. One binary,
//! one module per area, so the build stays fast.
mod helpers;

mod fake_hub;

mod executor;
mod http_probe;
mod journal;
mod link;
mod modes;
mod process_kill;
