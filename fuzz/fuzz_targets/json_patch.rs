//! `agent-json-patch` / `agent-init-json-patch` handling: the input as the patch document,
//! applied directly (`patch::apply_user_patch`) and through a whole review. No panic, no hang
//! (a copy bomb must be refused, not attempted), and the user's own containers keep their name
//! and image whatever the patch says: it only reaches the agent container.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use vault_injector::admission;
use vault_injector::patch;
use vault_injector::settings::{AgentDefaults, Settings};

static DEFAULTS: LazyLock<AgentDefaults> = LazyLock::new(|| Settings::default().agent);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(user) = serde_json::from_str::<Value>(text) {
        let container = json!({
            "name": "vault-agent",
            "image": "hashicorp/vault",
            "env": [{"name": "A", "value": "a"}],
            "resources": {"limits": {"memory": "128Mi"}},
            "volumeMounts": [{"name": "home-sidecar", "mountPath": "/home/vault"}]
        });
        let _ = patch::apply_user_patch(&container, &user);
    }
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "app",
            "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": "app",
                "vault.hashicorp.com/agent-inject-secret-db": "secret/data/db",
                "vault.hashicorp.com/agent-json-patch": text,
                "vault.hashicorp.com/agent-init-json-patch": text
            }
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "busybox",
                "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
            }],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
        }
    });
    if let Ok(mutation) = admission::mutate(&pod, "apps", &DEFAULTS) {
        let mutated = admission::mutated_object(&pod, &mutation).expect("the patch applies");
        let app = &mutated["spec"]["containers"][0];
        assert_eq!(app["name"], "app");
        assert_eq!(app["image"], "busybox");
    }
});
