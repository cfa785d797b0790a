//! Per-namespace defaults (beyond upstream), pure.
//!
//! With `-namespace-defaults`, the `vault.hashicorp.com/*` (and `openbao.org/*`) annotations of
//! a Namespace are defaults for its pods: a key the pod has (even empty, in either spelling)
//! wins; any other key is added to the map the core reads. Two keys are never taken from the
//! Namespace: the switch `agent-inject` (a pod opts in itself, so turning the feature on never
//! injects a pod that did not ask) and the status `agent-inject-status`.
//!
//! The Namespaces come from a watch-backed cache (`vault_injector::cluster::namespaces`, in the I/O shell); this module only merges.

use std::collections::BTreeMap;

use crate::annotations::keys;
use crate::openbao;

/// The pod's (already folded, see [`openbao::fold`]) annotations with the Namespace's defaults
/// added; `None` when the Namespace adds nothing.
pub fn merge(
    pod: &BTreeMap<String, String>,
    namespace: &BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    // The Namespace's own two spellings fold the same way as a pod's.
    let folded;
    let namespace = match openbao::fold(Some(namespace)) {
        Some(f) => {
            folded = f;
            &folded
        }
        None => namespace,
    };
    let mut merged: Option<BTreeMap<String, String>> = None;
    for (key, value) in namespace {
        let Some(suffix) = key.strip_prefix(openbao::VAULT_PREFIX) else {
            continue;
        };
        if key == keys::INJECT || key == keys::STATUS || pod.contains_key(key) {
            continue;
        }
        // A pod with only the `openbao.org/` spelling has it folded already; this guards a
        // caller that hands in an unfolded map.
        if pod.contains_key(&format!("{}{suffix}", openbao::PREFIX)) {
            continue;
        }
        merged
            .get_or_insert_with(|| pod.clone())
            .insert(key.clone(), value.clone());
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn namespace_annotations_fill_in_what_the_pod_lacks() {
        let pod = map(&[
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/role", "pod-role"),
            ("vault.hashicorp.com/agent-limits-cpu", ""),
        ]);
        let ns = map(&[
            ("vault.hashicorp.com/role", "ns-role"),
            ("vault.hashicorp.com/agent-limits-cpu", "2"),
            ("vault.hashicorp.com/tls-secret", "org-ca"),
            ("vault.hashicorp.com/ca-cert", "/vault/tls/ca.crt"),
            ("kubernetes.io/metadata.name", "apps"),
            ("other.example/vault.hashicorp.com/x", "y"),
        ]);
        let merged = merge(&pod, &ns).unwrap();
        assert_eq!(
            merged,
            map(&[
                ("vault.hashicorp.com/agent-inject", "true"),
                ("vault.hashicorp.com/role", "pod-role"),
                ("vault.hashicorp.com/agent-limits-cpu", ""),
                ("vault.hashicorp.com/tls-secret", "org-ca"),
                ("vault.hashicorp.com/ca-cert", "/vault/tls/ca.crt"),
            ])
        );
    }

    #[test]
    fn the_switch_and_the_status_never_come_from_the_namespace() {
        let pod = map(&[("vault.hashicorp.com/role", "r")]);
        let ns = map(&[
            ("vault.hashicorp.com/agent-inject", "true"),
            ("vault.hashicorp.com/agent-inject-status", "injected"),
            ("openbao.org/agent-inject", "true"),
        ]);
        assert_eq!(merge(&pod, &ns), None);
    }

    #[test]
    fn a_namespace_without_defaults_changes_nothing() {
        let pod = map(&[("vault.hashicorp.com/agent-inject", "true")]);
        assert_eq!(merge(&pod, &BTreeMap::new()), None);
        let ns = map(&[("vault.hashicorp.com/role", "r")]);
        let pod = map(&[("vault.hashicorp.com/role", "mine")]);
        assert_eq!(merge(&pod, &ns), None);
    }

    #[test]
    fn openbao_spellings_count_on_both_sides() {
        let ns = map(&[
            ("openbao.org/role", "ns-bao-role"),
            ("vault.hashicorp.com/role", "ns-vault-role"),
            ("openbao.org/agent-image", "openbao/openbao:2.4.1"),
        ]);
        let pod = map(&[("vault.hashicorp.com/agent-inject", "true")]);
        let merged = merge(&pod, &ns).unwrap();
        assert_eq!(merged["vault.hashicorp.com/role"], "ns-bao-role");
        assert_eq!(
            merged["vault.hashicorp.com/agent-image"],
            "openbao/openbao:2.4.1"
        );
        // A pod key in the openbao spelling wins over the namespace, even unfolded.
        let pod = map(&[("openbao.org/role", "pod-role")]);
        let merged = merge(&pod, &ns).unwrap();
        assert!(!merged.contains_key("vault.hashicorp.com/role"));
    }
}
