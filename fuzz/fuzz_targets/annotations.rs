//! An annotation map (a JSON object of strings) on a plain pod → `annotations::parse`, then the
//! whole decision (`admission::mutate`): no panic, no hang, and an accepted pod's patch applies
//! and yields a Pod.
#![no_main]

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

fn base_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "apps"},
        "spec": {
            "serviceAccountName": "app",
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "env": [{"name": "AWS_ROLE_ARN", "value": "arn"}],
                    "volumeMounts": [
                        {"name": "kube-api-access-x", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true},
                        {"name": "data", "mountPath": "/data"}
                    ]
                },
                {"name": "side", "image": "busybox"}
            ],
            "volumes": [
                {"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
                {"name": "data", "emptyDir": {}}
            ]
        }
    })
}
