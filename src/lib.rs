//! vault-injector: a drop-in Rust replacement for the Vault Agent Injector (hashicorp/vault-k8s).
//!
//! Two layers. The pure core, the crate `vault_injector_core` (re-exported here under the same
//! module names), turns a pod and the injector's settings into a patch with no I/O: `settings`,
//! `annotations`, `agent_config`, `inject`, `patch`, `admission`, `render` and `lint`. Around it,
//! the I/O shells of this crate:
//!
//! - [`server`]: the HTTPS webhook (`/mutate`, health, metrics), limits and graceful shutdown;
//! - [`tls`]: certificate sources: files with reload, auto-TLS (generated CA and leaf, the
//!   leader/follower roles);
//! - [`cluster`]: the Kubernetes API: the client, leader election, the webhook caBundle keeper,
//!   the Namespace cache, the missed-injection watcher;
//! - [`telemetry`]: metrics and logs;
//! - [`cli`]: the command line (`serve`, `render`, `lint` and the helpers).

pub use vault_injector_core::{
    admission, agent_config, annotations, goparse, inject, lint, ns_defaults, openbao, patch,
    render, settings, warnings,
};

pub mod cli;
pub mod cluster;
pub mod server;
pub mod telemetry;
pub mod tls;
