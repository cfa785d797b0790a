//! `vault-injector lint`: render every pod template of a set of manifests offline and report
//! the refusals (errors) and admission warnings, so CI can check manifests before a cluster sees
//! them. Pure: the CLI reads the files and prints the findings.

use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::admission::{self, Mutation};
use crate::annotations::keys;
use crate::render::InputError;
use crate::settings::AgentDefaults;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The injector would let the pod through but something will page someone.
    Warning,
    /// The injector would refuse the pod.
    Error,
}

/// One finding, tied to the object it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// File (or `<stdin>`) and document number, 1-based: `deploy.yaml#2`.
    pub location: String,
    /// `Deployment/orders-app`.
    pub object: String,
    /// Error or warning.
    pub severity: Severity,
    /// The refusal or warning text (it names the annotation).
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{}: {}: {level}: {}",
            self.location, self.object, self.message
        )
    }
}

/// The result of linting one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Pod templates that asked for injection and were rendered.
    pub checked: usize,
    /// Everything found, in input order.
    pub findings: Vec<Finding>,
}

/// Lints every workload in `input` (multi-document YAML, a JSON object or array, or a `List`).
pub fn lint(
    input: &str,
    source_name: &str,
    namespace: Option<&str>,
    defaults: &AgentDefaults,
) -> Result<Report, InputError> {
    let mut report = Report::default();
    for (index, doc) in documents(input, source_name)?.into_iter().enumerate() {
        let location = format!("{source_name}#{}", index + 1);
        for object in flatten(doc) {
            lint_object(&object, &location, namespace, defaults, &mut report);
        }
    }
    Ok(report)
}

fn documents(input: &str, source_name: &str) -> Result<Vec<Value>, InputError> {
    let syntax = |format: &'static str, message: String| InputError::Syntax {
        source_name: source_name.to_owned(),
        format,
        message,
    };
    let trimmed = input.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value = serde_json::from_str(input).map_err(|e| syntax("JSON", e.to_string()))?;
        return Ok(match v {
            Value::Array(items) => items,
            other => vec![other],
        });
    }
    let mut docs = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(input) {
        let v = Value::deserialize(de).map_err(|e| syntax("YAML", e.to_string()))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// `kind: List` (what `kubectl get -o yaml` prints) holds its objects in `items`.
fn flatten(doc: Value) -> Vec<Value> {
    if doc.get("kind").and_then(Value::as_str) == Some("List") {
        return doc
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
    }
    vec![doc]
}

/// The pod template of a workload object, or `None` for kinds without one.
fn pod_template(object: &Value) -> Option<&Value> {
    match object.get("kind")?.as_str()? {
        "Pod" => Some(object),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => object.pointer("/spec/template"),
        "CronJob" => object.pointer("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

fn lint_object(
    object: &Value,
    location: &str,
    namespace: Option<&str>,
    defaults: &AgentDefaults,
    report: &mut Report,
) {
    let Some(template) = pod_template(object) else {
        return;
    };
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let ns = namespace
        .or_else(|| {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
        })
        .unwrap_or("default");
    let pod = as_created_pod(template);
    let finding = |severity, message: String| Finding {
        location: location.to_owned(),
        object: format!("{kind}/{name}"),
        severity,
        message,
    };
    match admission::mutate(&pod, ns, defaults) {
        Ok(Mutation::Skip(_)) => {}
        Ok(Mutation::Inject { warnings, ops, .. }) => {
            report.checked += 1;
            report
                .findings
                .extend(warnings.into_iter().map(|w| finding(Severity::Warning, w)));
            if matches!(kind, "Job" | "CronJob") && adds_a_container(&ops) {
                report
                    .findings
                    .push(finding(Severity::Warning, job_sidecar_warning()));
            }
        }
        Err(refusal) => {
            report.checked += 1;
            report
                .findings
                .push(finding(Severity::Error, refusal.to_string()));
        }
    }
}

/// Whether the patch adds a container that runs beside the app (a classic sidecar, whatever
/// a JSON patch renamed it to), rather than only init containers.
fn adds_a_container(ops: &[crate::patch::Op]) -> bool {
    ops.iter()
        .any(|op| op.path == "/spec/containers" || op.path == "/spec/containers/-")
}

/// A Job completes once all of its pod's containers have exited; a classic agent sidecar runs
/// until the pod is deleted, so the Job (and each CronJob run) never completes.
fn job_sidecar_warning() -> String {
    format!(
        "{}: the vault-agent sidecar never exits, so the Job never completes; set it to \"true\" (secrets rendered once), or set {}: \"true\" (Kubernetes 1.29+)",
        keys::PRE_POPULATE_ONLY,
        keys::NATIVE_SIDECAR
    )
}

/// The pod as the webhook would see it at creation: the template, plus what the ServiceAccount
/// admission plugin adds before mutating webhooks run ([`crate::render::as_created`]).
fn as_created_pod(template: &Value) -> Value {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    crate::render::as_created(&pod)
}
