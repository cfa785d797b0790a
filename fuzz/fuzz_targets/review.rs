//! AdmissionReview body bytes → `admission::review`, as the server's `/mutate` handler calls it.
//! Beyond "no panic, no hang": a reply is JSON with a `response`; a patch, when there is one,
//! applies to the object it was made for; and the fast path (a narrow decoder) and the general
//! path (a whole `serde_json::Value`) give the same reply, or both an error.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vault_injector::admission::{self, NamespaceDefaults};
use vault_injector::settings::{AgentDefaults, Settings};

static DEFAULTS: LazyLock<AgentDefaults> = LazyLock::new(|| Settings::default().agent);

fuzz_target!(|data: &[u8]| {
    let reviewed = admission::review(data, &DEFAULTS);
    let general = admission::review_general(data, &DEFAULTS, &|_| NamespaceDefaults::Off);
    match (&reviewed, &general) {
        (Ok(fast), Ok(general)) => assert_eq!(
            String::from_utf8_lossy(&fast.body),
            String::from_utf8_lossy(&general.body),
            "the fast and general paths reply differently"
        ),
        (Err(fast), Err(general)) => assert_eq!(fast, general),
        (fast, general) => panic!(
            "the fast path says {:?}, the general path {:?}",
            fast.as_ref().map(|r| &r.outcome),
            general.as_ref().map(|r| &r.outcome)
        ),
    }
    let Ok(reviewed) = reviewed else {
        return;
    };
    let reply: Value = serde_json::from_slice(&reviewed.body).expect("the reply is JSON");
    let response = reply.get("response").expect("the reply has a response");
    let Some(patch) = response.get("patch").and_then(Value::as_str) else {
        return;
    };
    let patch = STANDARD.decode(patch).expect("the patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("the patch is RFC 6902");
    let Ok(request) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut object = request["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).expect("the patch applies to its object");
});
