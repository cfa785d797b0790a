//! The node tier (tests/e2e/node.sh): the injector's image installed by its chart, and the pods
//! it mutates, run by a real kubelet with containerd and runc; the agents are real OpenBao
//! agents that log in with the pod's service-account token. Each scenario works in namespaces
//! of its own and says what it measured in `node-figure:` lines. Run one at a time
//! (`-- --test-threads=1`): `injector_restart` changes the chart's release while it runs.

#[path = "node/env_exec.rs"]
mod env_exec;
#[path = "node/injector_restart.rs"]
mod injector_restart;
#[path = "node/install.rs"]
mod install;
#[path = "node/jobs.rs"]
mod jobs;
#[path = "node/leases.rs"]
mod leases;
#[path = "node/walkthrough.rs"]
mod walkthrough;
