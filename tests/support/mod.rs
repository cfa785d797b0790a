//! The one home of test fixtures: small builders for pods ([`pods`]) and AdmissionReviews
//! ([`reviews`]), the realistic workloads the benchmarks measure ([`workloads`]), socket helpers
//! for server tests ([`net`]), and helpers that run the injector core on a pod (below).
//!
//! Integration tests use it as `mod support;`; benchmarks and examples include this file by
//! `#[path]`, and the fuzz targets include `pods.rs`, which needs nothing but `serde_json`.
// Each test crate uses its own part of this module.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub mod net;
pub mod pods;
pub mod reviews;
pub mod workloads;

use base64::Engine as _;
use serde_json::Value;
use vault_injector::admission::{self, Mutation};
use vault_injector::annotations::Refusal;
use vault_injector::settings::{AgentDefaults, Settings};

pub use pods::{PodBuilder, pod};
pub use reviews::review;

/// The settings every test starts from: upstream defaults plus a Vault address.
pub fn defaults() -> AgentDefaults {
    Settings::default().agent
}

/// What one injection produced.
pub struct Injected {
    pub ops: Vec<Value>,
    pub pod: Value,
}

impl Injected {
    /// A container (or init container) of the mutated pod by name.
    pub fn container(&self, name: &str) -> &Value {
        find_container(&self.pod, name).unwrap_or_else(|| panic!("no container {name}"))
    }

    /// The decoded `VAULT_CONFIG` of an agent container.
    pub fn config(&self, name: &str) -> Value {
        serde_json::from_str(&self.raw_config(name)).unwrap()
    }

    /// The exact `VAULT_CONFIG` JSON text of an agent container.
    pub fn raw_config(&self, name: &str) -> String {
        let b64 = env_value(self.container(name), "VAULT_CONFIG").expect("VAULT_CONFIG");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    }

    /// The op paths, in order.
    pub fn paths(&self) -> Vec<String> {
        self.ops
            .iter()
            .map(|o| o["path"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Names of the mutated pod's containers.
    pub fn container_names(&self) -> Vec<String> {
        names(&self.pod["spec"]["containers"])
    }

    /// Names of the mutated pod's init containers.
    pub fn init_names(&self) -> Vec<String> {
        names(&self.pod["spec"]["initContainers"])
    }

    /// Names of the mutated pod's volumes.
    pub fn volume_names(&self) -> Vec<String> {
        names(&self.pod["spec"]["volumes"])
    }
}

pub fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn find_container<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod["spec"][k].as_array())
        .flatten()
        .find(|c| c["name"] == name)
}

pub fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
}

pub fn env_names(container: &Value) -> Vec<String> {
    names(&container["env"])
}

pub fn mount_names(container: &Value) -> Vec<String> {
    names(&container["volumeMounts"])
}

/// Runs the core with the test defaults in namespace `apps`.
pub fn inject(pod: &Value) -> Result<Injected, Refusal> {
    inject_with(pod, &defaults())
}

/// Runs the core with given defaults in namespace `apps`.
pub fn inject_with(pod: &Value, defaults: &AgentDefaults) -> Result<Injected, Refusal> {
    match admission::mutate(pod, "apps", defaults)? {
        Mutation::Skip(reason) => panic!("expected an injection, the pod was skipped: {reason}"),
        m @ Mutation::Inject { .. } => {
            let pod = admission::mutated_object(pod, &m).expect("patch applies");
            let Mutation::Inject { ops, .. } = m else {
                unreachable!()
            };
            // The reply serialises the typed operations directly; that must be the bytes the
            // JSON values would give.
            let values = vault_injector::patch::to_values(&ops);
            assert_eq!(
                vault_injector::patch::to_bytes(&ops),
                serde_json::to_vec(&values).unwrap()
            );
            Ok(Injected { ops: values, pod })
        }
    }
}

/// The refusal message for a pod that must be refused.
pub fn refusal(pod: &Value) -> String {
    match admission::mutate(pod, "apps", &defaults()) {
        Err(r) => r.to_string(),
        Ok(m) => panic!("expected a refusal, got {m:?}"),
    }
}

/// Whether the core skips the pod.
pub fn skipped(pod: &Value) -> bool {
    matches!(
        admission::mutate(pod, "apps", &defaults()),
        Ok(Mutation::Skip(_))
    )
}
