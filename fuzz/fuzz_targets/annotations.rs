//! An annotation map (a JSON object of strings) on a plain pod → `annotations::parse`, then the
//! whole decision (`admission::mutate`): no panic, no hang, and an accepted pod's patch applies
//! and yields a Pod.
#![no_main]

#[path = "../../tests/support/pods.rs"]
mod pods;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::Pod;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use vault_injector::settings::{AgentDefaults, Settings};
use vault_injector::{admission, annotations};

static DEFAULTS: LazyLock<AgentDefaults> = LazyLock::new(|| Settings::default().agent);

fuzz_target!(|data: &[u8]| {
    let Ok(map) = serde_json::from_slice::<BTreeMap<String, String>>(data) else {
        return;
    };
    let mut pod = base_pod();
    pod["metadata"]["annotations"] = json!(map);
    let typed: Pod = serde_json::from_value(pod.clone()).expect("the base pod is a Pod");
    let _ = annotations::parse(&typed, "apps", &DEFAULTS);
    if let Ok(mutation) = admission::mutate(&pod, "apps", &DEFAULTS) {
        let mutated = admission::mutated_object(&pod, &mutation).expect("the patch applies");
        let _: Pod = serde_json::from_value(mutated).expect("the result is a Pod");
    }
});

/// A pod with an init container, two app containers, an extra volume and an AWS role in the
/// environment, so that annotations about any of these have something to act on.
fn base_pod() -> Value {
    pods::pod()
        .name("app")
        .namespace("apps")
        .service_account("app")
        .init_container("setup")
        .container("side")
        .set(
            "/spec/containers/0/env",
            json!([{"name": "AWS_ROLE_ARN", "value": "arn"}]),
        )
        .push(
            "/spec/containers/0/volumeMounts",
            json!({"name": "data", "mountPath": "/data"}),
        )
        .push("/spec/volumes", json!({"name": "data", "emptyDir": {}}))
        .build()
}
