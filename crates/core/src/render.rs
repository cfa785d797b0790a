//! `vault-injector render`: the webhook's decision for a Pod or an AdmissionReview read from a
//! file, with no cluster. Pure: the CLI does the reading and printing.

use serde_json::{Value, json};
use thiserror::Error;

use crate::admission::{self, Mutation, RequestParts};
use crate::annotations::Refusal;
use crate::settings::AgentDefaults;

/// What `render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The mutated Pod.
    #[default]
    Pod,
    /// The RFC 6902 patch (`[]` when nothing is injected).
    Patch,
    /// The AdmissionReview response.
    Review,
}

/// Input that cannot be rendered (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    /// Neither JSON nor YAML.
    #[error("{source_name}: not valid {format}: {message}")]
    Syntax {
        /// File name or `<stdin>`.
        source_name: String,
        /// `JSON` or `YAML`.
        format: &'static str,
        /// The parser's message, with line and column.
        message: String,
    },
    /// Parsed, but not a Pod or an AdmissionReview.
    #[error("{source_name}: {message}")]
    Shape {
        /// File name or `<stdin>`.
        source_name: String,
        /// What is wrong.
        message: String,
    },
}

/// The outcome of one render.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Pretty JSON for stdout.
    pub stdout: String,
    /// The refusal, when the pod was refused (exit code 1).
    pub refusal: Option<Refusal>,
}

/// Where the ServiceAccount admission plugin mounts the API token.
pub const SA_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The plugin names its volume `kube-api-access-` plus five random characters; offline the
/// suffix is fixed, and made of characters the plugin never uses, so it is recognisable.
pub const SA_VOLUME: &str = "kube-api-access-00000";

/// Renders `input` (a Pod or an AdmissionReview, JSON or YAML).
///
/// For a bare Pod the namespace is `namespace`, else the pod's own, else `default`, and the
/// pod is first given what the API server adds before any webhook sees it ([`as_created`]),
/// unless `from_cluster` says it was read from a cluster and already has it. A review's object
/// is used as it is (the API server built it); its namespace is the request's unless
/// `namespace` overrides it.
pub fn render(
    input: &str,
    source_name: &str,
    namespace: Option<&str>,
    output: Output,
    from_cluster: bool,
    defaults: &AgentDefaults,
) -> Result<Rendered, InputError> {
    let doc = parse_document(input, source_name)?;
    let shape = |message: String| InputError::Shape {
        source_name: source_name.to_owned(),
        message,
    };
    let parts = match doc.get("kind").and_then(Value::as_str) {
        Some("AdmissionReview") => {
            let mut parts = admission::read_review(&doc).map_err(|e| shape(e.to_string()))?;
            if let Some(ns) = namespace {
                parts.namespace = ns.to_owned();
            }
            parts
        }
        Some("Pod") | None if doc.is_object() => RequestParts {
            api_version: "admission.k8s.io/v1".to_owned(),
            uid: String::new(),
            namespace: namespace
                .map(str::to_owned)
                .or_else(|| {
                    doc.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "default".to_owned()),
            object: if from_cluster { doc } else { as_created(&doc) },
        },
        Some(kind) => {
            return Err(shape(format!(
                "expected a Pod or an AdmissionReview, found kind {kind:?}"
            )));
        }
        None => {
            return Err(shape(
                "expected a Pod or an AdmissionReview object".to_owned(),
            ));
        }
    };
    let decision = admission::mutate(&parts.object, &parts.namespace, defaults);
    let refusal = decision.as_ref().err().cloned();
    let value = match (output, &decision) {
        (Output::Review, _) => admission::response_review(&parts, &decision),
        (Output::Patch, Ok(Mutation::Inject { ops, .. })) => {
            Value::Array(crate::patch::to_values(ops))
        }
        (Output::Patch, _) => json!([]),
        (Output::Pod, Ok(mutation)) => admission::mutated_object(&parts.object, mutation)
            .map_err(|e| shape(format!("the patch does not apply to this object: {e}")))?,
        (Output::Pod, Err(_)) => Value::Null,
    };
    let stdout = if value.is_null() {
        String::new()
    } else {
        let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
        s.push('\n');
        s
    };
    Ok(Rendered { stdout, refusal })
}

/// The pod as the webhook receives it at creation: what the ServiceAccount admission plugin
/// adds first, unless the pod opts out with `automountServiceAccountToken: false` (a
/// ServiceAccount that opts out cannot be seen offline). As the plugin does: every init
/// container and container without a mount at [`SA_MOUNT_PATH`] gets one, read-only, of the
/// pod's `kube-api-access-*` volume, which is added (projected: the token, the cluster CA, the
/// namespace) when the pod has none; `serviceAccountName` defaults to `default`. Mirror pods and
/// anything that is not an object with an object `spec` are left alone.
pub fn as_created(pod: &Value) -> Value {
    let mut pod = pod.clone();
    let mirror = pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return pod;
    };
    if mirror {
        return pod;
    }
    let name_missing = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if name_missing {
        spec.insert("serviceAccountName".to_owned(), json!("default"));
    }
    if spec.get("automountServiceAccountToken") == Some(&Value::Bool(false)) {
        return pod;
    }
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|volumes| {
            volumes.iter().find_map(|v| {
                v.get("name")
                    .and_then(Value::as_str)
                    .filter(|n| n.starts_with("kube-api-access-"))
                    .map(str::to_owned)
            })
        });
    let volume_name = existing.clone().unwrap_or_else(|| SA_VOLUME.to_owned());
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": SA_MOUNT_PATH});
    let mut mounted = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            let has_mount = c
                .get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|m| m.iter().any(|m| m["mountPath"] == SA_MOUNT_PATH));
            if has_mount {
                continue;
            }
            mounted = true;
            match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                Some(mounts) => mounts.push(mount.clone()),
                None => {
                    c.insert("volumeMounts".to_owned(), json!([mount.clone()]));
                }
            }
        }
    }
    if mounted && existing.is_none() {
        let volume = json!({
            "name": volume_name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]
            }
        });
        match spec.get_mut("volumes").and_then(Value::as_array_mut) {
            Some(volumes) => volumes.push(volume),
            None => {
                spec.insert("volumes".to_owned(), json!([volume]));
            }
        }
    }
    pod
}

/// JSON when it looks like JSON (better error positions), YAML otherwise.
fn parse_document(input: &str, source_name: &str) -> Result<Value, InputError> {
    let trimmed = input.trim_start();
    if trimmed.is_empty() {
        return Err(InputError::Shape {
            source_name: source_name.to_owned(),
            message: "empty input: expected a Pod or an AdmissionReview as JSON or YAML".to_owned(),
        });
    }
    if trimmed.starts_with('{') {
        serde_json::from_str(input).map_err(|e| InputError::Syntax {
            source_name: source_name.to_owned(),
            format: "JSON",
            message: e.to_string(),
        })
    } else {
        serde_yaml_ng::from_str(input).map_err(|e| InputError::Syntax {
            source_name: source_name.to_owned(),
            format: "YAML",
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_created_mounts_the_token_like_the_service_account_plugin() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "i"}],
            "containers": [
                {"name": "a", "volumeMounts": [{"name": "x", "mountPath": "/x"}]},
                {"name": "b", "volumeMounts": [{"name": "own", "mountPath": SA_MOUNT_PATH}]}
            ],
            "serviceAccountName": "app"
        }});
        let out = as_created(&pod);
        let mount = json!({"name": SA_VOLUME, "readOnly": true, "mountPath": SA_MOUNT_PATH});
        assert_eq!(
            out["spec"]["initContainers"][0]["volumeMounts"],
            json!([mount])
        );
        assert_eq!(out["spec"]["containers"][0]["volumeMounts"][1], mount);
        assert_eq!(
            out["spec"]["containers"][1]["volumeMounts"],
            pod["spec"]["containers"][1]["volumeMounts"],
            "an existing mount at the path is kept"
        );
        assert_eq!(out["spec"]["volumes"][0]["name"], SA_VOLUME);
        assert_eq!(out["spec"]["serviceAccountName"], "app");
        // Applied twice, nothing more is added.
        assert_eq!(as_created(&out), out);

        // An existing kube-api-access-* volume is reused, not duplicated.
        let pod = json!({"spec": {
            "containers": [{"name": "a"}],
            "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}]
        }});
        let out = as_created(&pod);
        assert_eq!(out["spec"]["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(
            out["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-abcde"
        );

        // Opted out: only the default service account name.
        let pod =
            json!({"spec": {"automountServiceAccountToken": false, "containers": [{"name": "a"}]}});
        let out = as_created(&pod);
        assert!(out["spec"]["containers"][0].get("volumeMounts").is_none());
        assert!(out["spec"].get("volumes").is_none());
        assert_eq!(out["spec"]["serviceAccountName"], "default");
    }
}
