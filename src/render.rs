//! `vault-injector render`: the webhook's decision for a Pod or an AdmissionReview read from a
//! file, with no cluster. Pure: the CLI does the reading and printing.

use serde_json::{Value, json};
use thiserror::Error;

use crate::admission::{self, Mutation, RequestParts};
use crate::annotations::Refusal;
use crate::settings::AgentDefaults;

/// What `render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
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

/// Renders `input` (a Pod or an AdmissionReview, JSON or YAML).
///
/// For a bare Pod the namespace is `namespace`, else the pod's own, else `default`; for a review
/// it is the request's unless `namespace` overrides it.
pub fn render(
    input: &str,
    source_name: &str,
    namespace: Option<&str>,
    output: Output,
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
            object: doc,
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
