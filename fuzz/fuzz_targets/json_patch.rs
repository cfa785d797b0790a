//! `agent-json-patch` / `agent-init-json-patch` handling: the input as the patch document,
//! applied directly (`patch::apply_user_patch`) and through a whole review. No panic, no hang
//! (a copy bomb must be refused, not attempted), and the user's own containers keep their name
//! and image whatever the patch says: it only reaches the agent container.
#![no_main]

#[path = "../../tests/support/pods.rs"]
mod pods;

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
    let pod = pods::pod()
        .name("app")
        .ann("agent-inject-secret-db", "secret/data/db")
        .ann("agent-json-patch", text)
        .ann("agent-init-json-patch", text)
        .build();
    if let Ok(mutation) = admission::mutate(&pod, "apps", &DEFAULTS) {
        let mutated = admission::mutated_object(&pod, &mutation).expect("the patch applies");
        let app = &mutated["spec"]["containers"][0];
        assert_eq!(app["name"], "app");
        assert_eq!(app["image"], pod["spec"]["containers"][0]["image"]);
    }
});
