//! OpenBao compatibility (beyond upstream, issue 8 item 4), pure.
//!
//! - `openbao.org/*` annotations mean what `vault.hashicorp.com/*` ones mean, as in the
//!   openbao-k8s fork. When a pod has both spellings of one key, the `openbao.org/` one wins,
//!   again as openbao-k8s (it copies a `vault.hashicorp.com/` key only when the `openbao.org/`
//!   one is absent). [`fold`] builds the map the core reads; nothing is written back to the pod.
//! - A pod that asks for injection with `openbao.org/agent-inject` gets its status written as
//!   `openbao.org/agent-inject-status` (what openbao-k8s writes and reads); every other pod keeps
//!   upstream's `vault.hashicorp.com/agent-inject-status`. Either spelling marks a pod injected.
//! - [`agent_binary`] decides whether the agent containers run `vault` or `bao`
//!   (`-agent-binary`); [`use_bao`] rewrites the agent containers' commands accordingly.

use std::collections::BTreeMap;

use crate::annotations::keys;
use crate::patch::{Op, OpValue, escape_pointer};
use crate::settings::AgentBinarySetting;

/// The annotation prefix of openbao-k8s.
pub const PREFIX: &str = "openbao.org/";
/// The upstream annotation prefix.
pub const VAULT_PREFIX: &str = "vault.hashicorp.com/";
/// openbao-k8s's injection switch.
pub const INJECT: &str = "openbao.org/agent-inject";
/// openbao-k8s's status annotation, written for pods that used [`INJECT`].
pub const STATUS: &str = "openbao.org/agent-inject-status";

/// The CLI the agent containers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentBinary {
    /// `vault` (upstream).
    Vault,
    /// `bao` (OpenBao's CLI; its images have no `vault`).
    Bao,
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

/// The agent containers' command words that name the CLI, and what they become with `bao`.
const CLI_WORDS: [(&str, &str); 2] = [
    ("&& vault agent -config=", "&& bao agent -config="),
    ("/bin/vault token revoke ", "/bin/bao token revoke "),
];

/// Adapts the injection patch for OpenBao: the agent containers' shell command (and the
/// preStop revocation) run `bao` when `binary` says so, and the status annotation is written
/// as [`STATUS`] when `openbao_status`. A no-op for `(Vault, false)`.
pub fn adapt(ops: &mut [Op], binary: AgentBinary, openbao_status: bool) {
    if binary == AgentBinary::Bao {
        for op in ops.iter_mut() {
            use_bao(&mut op.value);
        }
    }
    if openbao_status {
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
}

/// Rewrites the CLI name in an agent container (or an array of them) added by the patch.
fn use_bao(value: &mut OpValue) {
    match value {
        OpValue::Array(items) => items.iter_mut().for_each(use_bao),
        OpValue::Container(container) => {
            if container.name != "vault-agent" && container.name != "vault-agent-init" {
                return;
            }
            if let Some(args) = &mut container.args {
                args.iter_mut().for_each(rewrite_words);
            }
            if let Some(command) = container
                .lifecycle
                .as_mut()
                .and_then(|l| l.pre_stop.as_mut())
                .and_then(|p| p.exec.as_mut())
                .and_then(|e| e.command.as_mut())
            {
                command.iter_mut().for_each(rewrite_words);
            }
        }
        _ => {}
    }
}

fn rewrite_words(s: &mut String) {
    for (vault, bao) in CLI_WORDS {
        if s.contains(vault) {
            *s = s.replace(vault, bao);
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
    fn adapt_rewrites_agent_commands_and_the_status_key() {
        use k8s_openapi::api::core::v1::{Container, ExecAction, Lifecycle, LifecycleHandler};

        let container = |name: &str, args: &str, pre_stop: Option<&str>| {
            OpValue::Container(Box::new(Container {
                name: name.to_owned(),
                args: Some(vec![args.to_owned()]),
                lifecycle: pre_stop.map(|c| Lifecycle {
                    pre_stop: Some(LifecycleHandler {
                        exec: Some(ExecAction {
                            command: Some(vec!["/bin/sh".into(), "-c".into(), c.to_owned()]),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }))
        };
        let op = |path: &str, value| Op {
            path: path.to_owned(),
            value,
        };
        let mut ops = vec![
            op(
                "/spec/containers/-",
                container(
                    "vault-agent",
                    "echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && vault agent -config=/home/vault/config.json",
                    Some("/bin/sleep 5 && /bin/vault token revoke -address=x -self"),
                ),
            ),
            op(
                "/spec/containers/-",
                container("app", "&& vault agent -config=x", None),
            ),
            op(
                "/metadata/annotations/vault.hashicorp.com~1agent-inject-status",
                OpValue::String("injected".to_owned()),
            ),
        ];
        let unchanged = ops.clone();
        adapt(&mut ops, AgentBinary::Vault, false);
        assert_eq!(ops, unchanged);

        adapt(&mut ops, AgentBinary::Bao, true);
        let ops = crate::patch::to_values(&ops);
        let unchanged = crate::patch::to_values(&unchanged);
        assert_eq!(
            ops[0]["value"]["args"][0],
            "echo ${VAULT_CONFIG?} | base64 -d > /home/vault/config.json && bao agent -config=/home/vault/config.json"
        );
        assert_eq!(
            ops[0]["value"]["lifecycle"]["preStop"]["exec"]["command"][2],
            "/bin/sleep 5 && /bin/bao token revoke -address=x -self"
        );
        assert_eq!(ops[1], unchanged[1], "only agent containers change");
        assert_eq!(
            ops[2]["path"],
            "/metadata/annotations/openbao.org~1agent-inject-status"
        );

        let mut ops = vec![op(
            "/metadata/annotations",
            OpValue::Map(map(&[(keys::STATUS, "injected")])),
        )];
        adapt(&mut ops, AgentBinary::Vault, true);
        assert_eq!(
            crate::patch::to_values(&ops)[0]["value"],
            json!({"openbao.org/agent-inject-status": "injected"})
        );
    }
}
