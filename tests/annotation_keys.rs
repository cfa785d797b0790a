//! The annotation declarations (`annotations::keys::ALL`) checked against the parser: every
//! declared key changes what is parsed, every typed key refuses a malformed value naming
//! itself, and every documented default (a fixed value or an injector setting) is what writing
//! it on the pod does. A key the parser ignores, reads with the wrong syntax or defaults
//! differently from its declaration fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use vault_injector::admission;
use vault_injector::annotations::keys::{self, Absent, Key, Shape, Value};
use vault_injector::annotations::{self, AgentRequest, Refusal, SkipReason};
use vault_injector::settings::{AgentDefaults, Settings};

/// The secret every per-secret key is tried on; upper case, so that keeping its case shows.
const SECRET: &str = "DB";

/// The environment variable every per-variable key is tried on.
const VAR: &str = "DB_USER";

/// The base pod: `support::pod()` with the secret [`SECRET`].
fn base() -> support::PodBuilder {
    support::pod().ann(&format!("agent-inject-secret-{SECRET}"), "kv/data/db")
}

/// The keys a declaration stands for, without the prefix: a family once for [`SECRET`] or for
/// each example parameter.
fn spellings(key: &Key) -> Vec<String> {
    let suffix = key.suffix();
    match key.shape {
        Shape::Single => vec![suffix.to_owned()],
        Shape::PerSecret => vec![format!("{suffix}-{SECRET}")],
        Shape::SingleAndPerSecret => vec![suffix.to_owned(), format!("{suffix}-{SECRET}")],
        Shape::Params(params) => params.iter().map(|p| format!("{suffix}-{p}")).collect(),
        Shape::PerVariable => vec![format!("{suffix}-{VAR}")],
    }
}

type Outcome = (
    Result<Option<SkipReason>, Refusal>,
    Result<AgentRequest, Refusal>,
);

/// The gate's decision and the parsed request.
fn outcome(pod: &support::PodBuilder, defaults: &AgentDefaults) -> Outcome {
    let pod: Pod = serde_json::from_value(pod.clone().build()).unwrap();
    (
        annotations::skip_reason(&pod),
        annotations::parse(&pod, "apps", defaults),
    )
}

#[test]
fn every_declared_key_changes_what_is_parsed() {
    let defaults = support::defaults();
    let without = outcome(&base(), &defaults);
    let changes = |spelled: &str, key: &Key| {
        key.examples
            .iter()
            .any(|example| outcome(&base().ann(spelled, example), &defaults) != without)
    };
    for key in keys::ALL {
        let spellings = spellings(key);
        // A parameter may be overridden by another key (`auth-config-role` by `role`), so one
        // example parameter that shows is enough for a family of parameters.
        let shown = match key.shape {
            Shape::Params(_) => spellings.iter().any(|s| changes(s, key)),
            _ => spellings.iter().all(|s| changes(s, key)),
        };
        assert!(
            shown,
            "{spellings:?}: none of the examples {:?} changes the gate or the parsed request",
            key.examples
        );
    }
}

/// A value the key's syntax refuses.
fn malformed(value: Value) -> Option<&'static str> {
    Some(match value {
        Value::Bool | Value::LenientBool => "yes",
        Value::Int | Value::Float => "many",
        Value::Uint => "-1",
        Value::Duration => "soon",
        Value::Quantity => "lots",
        Value::JsonPatch => "{",
        Value::Template => "yaml",
        Value::Restart => "sometimes",
        Value::Signal => "SIGBOGUS",
        Value::Command => "ls -l",
        Value::Json | Value::List | Value::Text => return None,
    })
}

#[test]
fn every_typed_key_refuses_a_malformed_value_naming_itself() {
    let defaults = support::defaults();
    for key in keys::ALL {
        let Some(bad) = malformed(key.value) else {
            continue;
        };
        for spelled in spellings(key) {
            let pod = base().ann(&spelled, bad).build();
            let result = admission::mutate(&pod, "apps", &defaults);
            if key.value == Value::LenientBool {
                assert!(result.is_ok(), "{spelled}: {bad:?} should count as false");
                continue;
            }
            let message = result
                .expect_err(&format!("{spelled}: {bad:?} was accepted"))
                .to_string();
            assert!(
                message.contains(&format!("{}{spelled}", keys::PREFIX)),
                "{spelled}: {message}"
            );
            if key.value != Value::JsonPatch {
                assert!(message.contains(bad), "{spelled}: {message}");
            }
        }
    }
}

#[test]
fn a_fixed_default_is_the_same_as_writing_it() {
    let defaults = support::defaults();
    let without = outcome(&base(), &defaults);
    for key in keys::ALL {
        let Absent::Value(value) = key.absent else {
            continue;
        };
        for spelled in spellings(key) {
            assert_eq!(
                outcome(&base().ann(&spelled, value), &defaults),
                without,
                "{spelled}: writing its documented default {value:?} changes the outcome"
            );
        }
    }
}

#[test]
fn a_setting_default_is_the_same_as_writing_its_value_on_the_pod() {
    let defaults = support::defaults();
    let without = outcome(&base(), &defaults);
    for key in keys::ALL {
        let Absent::Setting(setting) = key.absent else {
            continue;
        };
        let env = BTreeMap::from([(setting.env.to_owned(), setting.example.to_owned())]);
        let flags = BTreeMap::from([("vault-address".to_owned(), defaults.vault_address.clone())]);
        let changed = Settings::resolve(&flags, &|k| env.get(k).cloned()).unwrap();
        for spelled in spellings(key) {
            let by_setting = outcome(&base(), &changed.agent);
            assert_ne!(
                by_setting, without,
                "{}={:?} does not reach {spelled}",
                setting.env, setting.example
            );
            assert_eq!(
                by_setting,
                outcome(&base().ann(&spelled, setting.example), &defaults),
                "{}={:?} differs from writing {spelled} on the pod",
                setting.env,
                setting.example
            );
            // The pod's own value wins over the setting.
            assert_eq!(
                outcome(&base().ann(&spelled, setting.example), &changed.agent),
                outcome(&base().ann(&spelled, setting.example), &defaults),
                "{spelled} written on the pod does not win over {}",
                setting.env
            );
        }
    }
}

#[test]
fn declarations_are_unique_and_have_examples() {
    let mut seen = std::collections::BTreeSet::new();
    for key in keys::ALL {
        assert!(key.key.starts_with(keys::PREFIX), "{}", key.key);
        assert!(seen.insert(key.key), "{} is declared twice", key.key);
        assert!(!key.examples.is_empty(), "{} has no examples", key.key);
        assert!(!key.doc().is_empty(), "{} has no description", key.key);
    }
}
