//! Small builders for test pods and helpers to run the injector core on them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use serde_json::{Value, json};
use vault_injector::admission::{self, Mutation};
use vault_injector::annotations::Refusal;
use vault_injector::settings::{AgentDefaults, Settings};

/// The settings every test starts from: upstream defaults plus a Vault address.
pub fn defaults() -> AgentDefaults {
    Settings::default().agent
}

/// A pod as the API server sends it: one app container `app` mounting the projected
/// service-account volume, annotated for injection with a role.
pub fn pod() -> PodBuilder {
    PodBuilder(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "test",
            "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": "app"
            }
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "example/app:1",
                "volumeMounts": [{
                    "name": "kube-api-access-abcde",
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "readOnly": true
                }]
            }],
            "volumes": [{
                "name": "kube-api-access-abcde",
                "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}
            }]
        }
    }))
}

/// Builder over the pod's JSON.
#[derive(Clone)]
pub struct PodBuilder(pub Value);

impl PodBuilder {
    /// Sets `vault.hashicorp.com/<key>`.
    pub fn ann(mut self, key: &str, value: &str) -> Self {
        self.0["metadata"]["annotations"][format!("vault.hashicorp.com/{key}")] = json!(value);
        self
    }

    /// Removes `vault.hashicorp.com/<key>`.
    pub fn without(mut self, key: &str) -> Self {
        self.0["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(&format!("vault.hashicorp.com/{key}"));
        self
    }

    /// Adds an app container with no mounts.
    pub fn container(mut self, name: &str) -> Self {
        self.0["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name, "image": "example/other:1"}));
        self
    }

    /// Adds an init container with no mounts.
    pub fn init_container(mut self, name: &str) -> Self {
        let spec = self.0["spec"].as_object_mut().unwrap();
        spec.entry("initContainers")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name, "image": "example/init:1"}));
        self
    }

    /// Sets any field by JSON pointer (parents must exist).
    pub fn set(mut self, pointer: &str, value: Value) -> Self {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = self
            .0
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"));
        match parent {
            Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
            other => {
                other[key] = value;
            }
        }
        self
    }

    /// The pod JSON.
    pub fn build(self) -> Value {
        self.0
    }
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
