//! Helpers for the vault-injector end-to-end scenarios (tests/scenarios.rs and the node tier).
//!
//! The cluster comes from `KUBECONFIG` (any cluster: the local harness of tests/e2e/run.sh or
//! kind). Everything else the scenarios need is passed in `E2E_*` environment variables that
//! run.sh writes to `$E2E_STATE/env`; see tests/e2e/README.md.
//!
//! One module per theme; everything is re-exported here, so a scenario reaches any helper as
//! `vault_injector_e2e::name`:
//! - [`harness`]: the environment, the client, logging, polling;
//! - [`namespaces`]: a namespace per scenario;
//! - [`pods`]: objects to create and reading the injected pods;
//! - [`injector`]: the injector under test (metrics, restarts, webhook policy, RBAC);
//! - [`openbao`]: OpenBao and PostgreSQL;
//! - [`kubelet`]: the fake kubelet of the process tier;
//! - [`node`]: the node tier (a real kubelet and containerd).

pub mod harness;
pub mod injector;
pub mod kubelet;
pub mod namespaces;
pub mod node;
pub mod openbao;
pub mod pods;

pub use harness::*;
pub use injector::*;
pub use kubelet::*;
pub use namespaces::*;
pub use openbao::*;
pub use pods::*;
