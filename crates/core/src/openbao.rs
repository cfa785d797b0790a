//! OpenBao compatibility (beyond upstream), pure.
//!
//! - `openbao.org/*` annotations mean what `vault.hashicorp.com/*` ones mean, as in the
//!   openbao-k8s fork. When a pod has both spellings of one key, the `openbao.org/` one wins,
//!   again as openbao-k8s (it copies a `vault.hashicorp.com/` key only when the `openbao.org/`
//!   one is absent). [`fold`] builds the map the core reads; nothing is written back to the pod.
//! - A pod that asks for injection with `openbao.org/agent-inject` gets its status written as
//!   `openbao.org/agent-inject-status` (what openbao-k8s writes and reads); every other pod keeps
//!   upstream's `vault.hashicorp.com/agent-inject-status`. Either spelling marks a pod injected.
//! - [`agent_binary`] decides whether the agent containers run `vault` or `bao`
//!   (`-agent-binary`). The choice is part of the agents' configuration: the containers are
//!   built with it (`inject::patch_ops`), before any `agent-json-patch`, so a renamed agent
//!   still runs the right CLI and arguments a user patch supplies are never rewritten.

use std::collections::BTreeMap;

use crate::annotations::keys;
use crate::patch::{Op, OpValue, escape_pointer};
use crate::settings::AgentBinarySetting;

/// The annotation prefix of openbao-k8s.
pub const PREFIX: &str = "openbao.org/";
/// The upstream annotation prefix.
pub const VAULT_PREFIX: &str = keys::PREFIX;
/// openbao-k8s's injection switch.
pub const INJECT: &str = "openbao.org/agent-inject";
/// openbao-k8s's status annotation, written for pods that used [`INJECT`].
pub const STATUS: &str = "openbao.org/agent-inject-status";

/// The CLI the agent containers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentBinary {
    /// `vault` (upstream).
    #[default]
    Vault,
    /// `bao` (OpenBao's CLI; its images have no `vault`).
    Bao,
}

impl AgentBinary {
    /// The command name, as the agent containers' shell commands write it.
    pub fn cli(self) -> &'static str {
        match self {
            Self::Vault => "vault",
            Self::Bao => "bao",
        }
    }
}

/// The pod's annotations with every `openbao.org/<key>` also present as
/// `vault.hashicorp.com/<key>` (overriding it); `None` when the pod has no `openbao.org/` key, so
/// upstream's path costs nothing.
pub fn fold(annotations: Option<&BTreeMap<String, String>>) -> Option<BTreeMap<String, String>> {
    let annotations = annotations?;
    if !annotations.keys().any(|k| k.starts_with(PREFIX)) {
        return None;
    }
    let mut folded = annotations.clone();
    for (key, value) in annotations {
        if let Some(suffix) = key.strip_prefix(PREFIX) {
            folded.insert(format!("{VAULT_PREFIX}{suffix}"), value.clone());
        }
    }
    Some(folded)
}

/// Whether the pod asked for injection with openbao-k8s's switch.
pub fn uses_openbao(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations.is_some_and(|a| a.contains_key(INJECT))
}

/// Whether an image reference names an OpenBao image: its repository (registry and path, not the
/// tag or digest) contains `openbao`, e.g. `openbao/openbao:2.4.1`,
/// `quay.io/openbao/openbao-ubi@sha256:...`.
pub fn is_openbao_image(image: &str) -> bool {
    let repository = image.split('@').next().unwrap_or_default();
    // A `:` after the last `/` starts the tag; one before it is a registry port.
    let repository = match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    };
    repository.to_ascii_lowercase().contains("openbao")
}

/// The CLI for a pod: `-agent-binary` decides, and when it is unset (upstream's behaviour,
/// `vault`) a pod annotated with `openbao.org/agent-inject` is treated as `auto`.
pub fn agent_binary(setting: AgentBinarySetting, uses_openbao: bool, image: &str) -> AgentBinary {
    let auto = || {
        if is_openbao_image(image) {
            AgentBinary::Bao
        } else {
            AgentBinary::Vault
        }
    };
    match setting {
        AgentBinarySetting::Vault => AgentBinary::Vault,
        AgentBinarySetting::Bao => AgentBinary::Bao,
        AgentBinarySetting::Auto => auto(),
        AgentBinarySetting::Upstream if uses_openbao => auto(),
        AgentBinarySetting::Upstream => AgentBinary::Vault,
    }
}

/// Writes the status annotation as [`STATUS`] (openbao-k8s's key) instead of upstream's, for
/// pods that asked for injection with [`INJECT`].
pub fn use_openbao_status(ops: &mut [Op]) {
    let vault_path = format!("/metadata/annotations/{}", escape_pointer(keys::STATUS));
    for op in ops.iter_mut() {
        if op.path == vault_path {
            op.path = format!("/metadata/annotations/{}", escape_pointer(STATUS));
        } else if op.path == "/metadata/annotations"
            && let OpValue::Map(map) = &mut op.value
            && let Some(status) = map.remove(keys::STATUS)
        {
            map.insert(STATUS.to_owned(), status);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn pods_without_openbao_keys_are_not_copied() {
        assert_eq!(fold(None), None);
        let a = map(&[("vault.hashicorp.com/agent-inject", "true")]);
        assert_eq!(fold(Some(&a)), None);
    }

    #[test]
    fn openbao_keys_are_read_as_vault_keys_and_win_over_them() {
        let a = map(&[
            ("openbao.org/agent-inject", "true"),
            ("openbao.org/role", "bao-role"),
            ("vault.hashicorp.com/role", "vault-role"),
            ("vault.hashicorp.com/agent-inject-secret-db", "db/creds/x"),
            ("openbao.org/agent-inject-template-db", "{{ . }}"),
        ]);
        let f = fold(Some(&a)).unwrap();
        assert_eq!(f["vault.hashicorp.com/agent-inject"], "true");
        assert_eq!(f["vault.hashicorp.com/role"], "bao-role");
        assert_eq!(
            f["vault.hashicorp.com/agent-inject-secret-db"],
            "db/creds/x"
        );
        assert_eq!(f["vault.hashicorp.com/agent-inject-template-db"], "{{ . }}");
        // The originals stay (the core ignores them).
        assert_eq!(f["openbao.org/role"], "bao-role");
    }

    #[test]
    fn openbao_images_are_recognised_by_repository_only() {
        for yes in [
            "openbao/openbao:2.4.1",
            "quay.io/openbao/openbao-ubi@sha256:abcd",
            "registry:5000/mirror/OpenBao",
            "ghcr.io/openbao/openbao",
        ] {
            assert!(is_openbao_image(yes), "{yes}");
        }
        for no in [
            "hashicorp/vault:2.0.4",
            "vault:openbao",
            "registry:5000/vault@sha256:openbao",
            "",
        ] {
            assert!(!is_openbao_image(no), "{no}");
        }
    }

    #[test]
    fn the_binary_follows_the_setting_then_the_pod_and_image() {
        use AgentBinarySetting as S;
        let bao = "openbao/openbao:2.4.1";
        let vault = "hashicorp/vault:2.0.4";
        assert_eq!(agent_binary(S::Upstream, false, bao), AgentBinary::Vault);
        assert_eq!(agent_binary(S::Upstream, true, bao), AgentBinary::Bao);
        assert_eq!(agent_binary(S::Upstream, true, vault), AgentBinary::Vault);
        assert_eq!(agent_binary(S::Auto, false, bao), AgentBinary::Bao);
        assert_eq!(agent_binary(S::Auto, true, vault), AgentBinary::Vault);
        assert_eq!(agent_binary(S::Vault, true, bao), AgentBinary::Vault);
        assert_eq!(agent_binary(S::Bao, false, vault), AgentBinary::Bao);
    }

    #[test]
    fn the_status_key_becomes_openbaos() {
        let op = |path: &str, value| Op {
            path: path.to_owned(),
            value,
        };
        let mut ops = vec![
            op(
                "/metadata/annotations/vault.hashicorp.com~1agent-inject-status",
                OpValue::String("injected".to_owned()),
            ),
            op("/spec/shareProcessNamespace", OpValue::Bool(true)),
        ];
        use_openbao_status(&mut ops);
        assert_eq!(
            ops[0].path,
            "/metadata/annotations/openbao.org~1agent-inject-status"
        );
        assert_eq!(ops[1].path, "/spec/shareProcessNamespace");

        let mut ops = vec![op(
            "/metadata/annotations",
            OpValue::Map(map(&[(keys::STATUS, "injected")])),
        )];
        use_openbao_status(&mut ops);
        assert_eq!(
            crate::patch::to_values(&ops)[0]["value"],
            json!({"openbao.org/agent-inject-status": "injected"})
        );
    }

    #[test]
    fn the_cli_names_are_vault_and_bao() {
        assert_eq!(AgentBinary::default().cli(), "vault");
        assert_eq!(AgentBinary::Bao.cli(), "bao");
    }
}
