//! The system tests: real `arca` processes on 127.0.0.1 (or in network
//! namespaces the tests make), driven by the AWS SDK for Rust, the Alibaba
//! Cloud SDK for Python, the `openssl` CLI and the runbook scripts. One
//! module per area; `cargo test -p arca-system-tests --test system <module>::`
//! runs one area.

mod alibaba;
mod asymmetric;
mod at_rest;
mod audit;
mod authorization;
mod aws_cli;
mod backup;
mod cluster;
mod consistency;
mod csr;
mod disk_full;
mod ed25519;
mod exactly_once;
mod failover;
mod import;
mod key_agreement;
mod lifecycle;
mod limits;
mod ml_dsa;
mod ml_kem;
mod operations;
mod peer;
mod restarted_leader;
mod root_key;
mod runbooks;
mod single_node;
mod tls;
mod upgrade;
