//! The pod's `vault.hashicorp.com/*` annotations, parsed once into a typed, validated and fully
//! defaulted [`AgentRequest`].
//!
//! Every key is declared once in [`keys`]. Upstream runs five phases (gate, defaulting,
//! parsing, validation, patch building), and the phase decides the prefix of a refusal and
//! which error wins when several annotations are bad. The first four live here, in upstream's
//! order; phase E (quantities, JSON patches, config encoding) happens while the containers are
//! built in `inject`. An absent key takes its typed default from the injector's settings; the
//! defaults are never written into the annotations as strings and parsed again.

use k8s_openapi::api::core::v1::Pod;

mod env_exec;
mod error;
pub mod keys;
mod parse;
mod pod;
mod read;
mod request;
mod secrets;

pub use env_exec::{DEFAULT_STOP_SIGNAL, STOP_SIGNALS, is_env_name};
pub use error::{Problem, Refusal};
pub use parse::{
    DEFAULT_AUTH_TYPE, DEFAULT_CACHE_LISTENER_PORT, DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL,
    DEFAULT_REVOKE_GRACE, DEFAULT_USE_AUTO_AUTH_TOKEN,
};
pub use pod::{DEFAULT_SA_MOUNT_PATH, path_clean, path_join, service_account};
pub use request::{
    AgentEnv, AgentRequest, AuthMethod, Cache, DefaultTemplate, EnvExec, EnvSecret, Resources,
    Restart, Secret, TemplateConfig, TokenVolume, VaultConnection,
};
pub use secrets::DEFAULT_SECRET_VOLUME_PATH;

use crate::settings::AgentDefaults;
use read::{Written, weak_bool};

/// Phase A: whether the pod asks for injection and has not had it yet.
pub fn should_inject(pod: &Pod) -> Result<bool, Refusal> {
    skip_reason(pod).map(|reason| reason.is_none())
}

/// Why a pod that passes the gate is left alone (allowed without a patch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The pod has no `agent-inject` annotation.
    NotAnnotated,
    /// `agent-inject` is false (or empty).
    NotRequested,
    /// The pod is past `Pending`: this phase.
    NotPending(String),
    /// `agent-inject-status` is `injected`.
    AlreadyInjected,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAnnotated => write!(f, "no {} annotation", keys::INJECT),
            Self::NotRequested => write!(f, "{} is false", keys::INJECT),
            Self::NotPending(phase) => write!(f, "the pod is {phase:?}, not pending"),
            Self::AlreadyInjected => write!(f, "already injected ({}: injected)", keys::STATUS),
        }
    }
}

/// Phase A with its reason: `None` when the pod is to be injected.
pub fn skip_reason(pod: &Pod) -> Result<Option<SkipReason>, Refusal> {
    let annotations = pod.metadata.annotations.as_ref();
    let Some(raw) = annotations.and_then(|a| a.get(keys::INJECT)) else {
        return Ok(Some(SkipReason::NotAnnotated));
    };
    if !weak_bool(keys::INJECT, raw).map_err(Refusal::Gate)? {
        return Ok(Some(SkipReason::NotRequested));
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default();
    if !phase.is_empty() && phase != "Pending" {
        return Ok(Some(SkipReason::NotPending(phase.to_owned())));
    }
    let injected = annotations
        .and_then(|a| a.get(keys::STATUS))
        .map(String::as_str)
        == Some("injected");
    Ok(injected.then_some(SkipReason::AlreadyInjected))
}

/// Phases B, C and D for a pod that passed the gate and the namespace check.
pub fn parse(
    pod: &Pod,
    namespace: &str,
    defaults: &AgentDefaults,
) -> Result<AgentRequest, Refusal> {
    parse::Parser {
        pod,
        ann: Written::new(pod.metadata.annotations.as_ref()),
        namespace,
        defaults,
    }
    .parse()
}
