//! A pod builder for tests, benchmarks and fuzz targets: one annotated pod as the API server
//! sends it, changed a field at a time. Only `serde_json` is used, so the fuzz crate can include
//! this file as it is.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

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
    /// Sets `metadata.name`.
    pub fn name(mut self, name: &str) -> Self {
        self.0["metadata"]["name"] = json!(name);
        self
    }

    /// Sets `metadata.namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.0["metadata"]["namespace"] = json!(namespace);
        self
    }

    /// Sets `spec.serviceAccountName`.
    pub fn service_account(mut self, name: &str) -> Self {
        self.0["spec"]["serviceAccountName"] = json!(name);
        self
    }

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

    /// Replaces every annotation with `annotations` (any keys, not only Vault's).
    pub fn annotations(mut self, annotations: Value) -> Self {
        self.0["metadata"]["annotations"] = annotations;
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

    /// Appends `item` to the array at `pointer` (which must exist).
    pub fn push(mut self, pointer: &str, item: Value) -> Self {
        self.0
            .pointer_mut(pointer)
            .and_then(Value::as_array_mut)
            .unwrap_or_else(|| panic!("no array at {pointer}"))
            .push(item);
        self
    }

    /// The pod JSON.
    pub fn build(self) -> Value {
        self.0
    }
}
