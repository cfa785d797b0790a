//! vault-injector: a drop-in Rust replacement for the Vault Agent Injector (hashicorp/vault-k8s).
//!
//! The core (`settings` → `annotations` → `agent_config` → `inject` → `patch` → `admission`) is
//! pure and synchronous; `server` and `cli` are the I/O shells around it.
pub mod admission;
pub mod agent_config;
pub mod annotations;
pub mod autotls;
pub mod backoff;
pub mod certmanager;
pub mod cli;
pub mod cluster;
pub mod goparse;
pub mod inject;
pub mod lease;
pub mod lint;
pub mod logging;
pub mod metrics;
pub mod missed;
pub mod namespaces;
pub mod ns_defaults;
pub mod openbao;
pub mod patch;
pub mod render;
pub mod server;
pub mod settings;
pub mod tls;
pub mod warnings;
pub mod webhook;
