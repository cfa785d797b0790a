//! Why a pod is refused: upstream's phase prefix, then what went wrong, naming the annotation
//! and the value at fault.

use thiserror::Error;

use crate::goparse::{self, NumError};

/// A refusal: upstream's phase prefix, then what went wrong.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Refusal {
    /// The object is not a Pod; upstream sends the decoder's text with no prefix.
    #[error("{0}")]
    NotAPod(String),
    /// Phase A: `agent-inject` is not a bool.
    #[error("error checking if should inject agent: {0}")]
    Gate(Problem),
    /// `kube-system` and `kube-public` are refused outright.
    #[error("error with request namespace: cannot inject into system namespaces: {0}")]
    SystemNamespace(String),
    /// Phase B.
    #[error("error adding default annotations: {0}")]
    Defaults(Problem),
    /// Phase C.
    #[error("error creating new agent sidecar: {0}")]
    Parse(Problem),
    /// Phase D.
    #[error("error validating agent configuration: {0}")]
    Validate(Problem),
    /// Phase E.
    #[error("error creating patch for agent: {0}")]
    Patch(Problem),
}

/// What is wrong, in upstream's words, plus the annotation at fault where upstream omits it.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Problem {
    /// A bool annotation (parsed like go-secure-stdlib's `parseutil.ParseBool`).
    #[error("cannot parse '' as bool: {err} (annotation {key})")]
    Bool {
        /// The key at fault.
        key: String,
        /// Go's error.
        err: NumError,
    },
    /// An integer, unsigned or float annotation.
    #[error("{err} (annotation {key})")]
    Number {
        /// The key at fault.
        key: String,
        /// Go's error.
        err: NumError,
    },
    /// `auth-min-backoff` / `auth-max-backoff`.
    #[error("error parsing {which} backoff as duration: {err} (annotation {key})")]
    Backoff {
        /// `min` or `max`.
        which: &'static str,
        /// The key at fault.
        key: &'static str,
        /// Go's error.
        err: goparse::DurationError,
    },
    /// A JSON-patch annotation that is not a JSON array of objects.
    #[error("error parsing JSON patch for annotation {key}: {err}")]
    JsonPatchSyntax {
        /// The key at fault.
        key: &'static str,
        /// The JSON decoder's message.
        err: String,
    },
    /// `agent-share-process-namespace` is not a bool (upstream's own wording).
    #[error("invalid value {value} for annotation \"{key}\", err=cannot parse '' as bool: {err}")]
    ShareProcessNamespace {
        /// The raw value.
        value: String,
        /// The key.
        key: &'static str,
        /// Go's error.
        err: NumError,
    },
    /// Any other fixed message (validation, discovery, run-as-same-user...).
    #[error("{0}")]
    Message(String),
    /// A resource quantity that Kubernetes would not accept.
    #[error("{err} (annotation {key}: {})", goparse::go_quote(.value))]
    Quantity {
        /// The key whose value (from the pod or the injector default) is wrong.
        key: &'static str,
        /// The value.
        value: String,
        /// apimachinery's error.
        err: goparse::QuantityError,
    },
}

impl Problem {
    pub(super) fn msg(s: impl Into<String>) -> Self {
        Self::Message(s.into())
    }
}
