//! Golden tests: one annotated pod per file in `tests/fixtures/` (its first comment line says
//! what it covers). Each snapshots the patch, the mutated pod and the decoded agent configs (a
//! fixture whose agents have none says why instead of snapshotting `{}`), and checks the patch
//! against the original JSON and that a second injection is a no-op.
//!
//! Update snapshots with `INSTA_UPDATE=always cargo test --test golden` and review the diff;
//! CI (CI=true) never writes them, so a stale golden fails.
//!
//! A snapshot whose JSON exceeds [`ABBREVIATE_ABOVE`] (only the large-configuration fixture; every
//! other snapshot is under 10 KiB) shows each string over 1 KiB as its length and FNV-1a hash, so
//! it stays reviewable; the checks above the snapshots still see every byte.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use vault_injector::admission::{self, Mutation};
use vault_injector::inject::EXEC_INIT_NAME;
use vault_injector::patch;

/// Snapshots larger than this (as compact JSON) have their long strings abbreviated.
const ABBREVIATE_ABOVE: usize = 64 * 1024;
/// Strings longer than this are abbreviated in such snapshots.
const LONG_STRING: usize = 1024;

fn agent_configs(pod: &Value) -> Value {
    let mut configs = serde_json::Map::new();
    for name in ["vault-agent-init", "vault-agent", EXEC_INIT_NAME] {
        let Some(container) = support::find_container(pod, name) else {
            continue;
        };
        // A configuration too large for one environment variable is split over VAULT_CONFIG,
        // VAULT_CONFIG_1, ...
        let Some(first) = support::env_value(container, "VAULT_CONFIG") else {
            continue;
        };
        let mut b64 = first.to_owned();
        for i in 1.. {
            match support::env_value(container, &format!("VAULT_CONFIG_{i}")) {
                Some(chunk) => b64.push_str(chunk),
                None => break,
            }
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        configs.insert(name.to_owned(), serde_json::from_slice(&bytes).unwrap());
    }
    Value::Object(configs)
}

/// `value` itself, or with every long string replaced by `<N bytes, fnv1a64 HASH>` when the
/// whole is too large to review.
fn reviewable(value: Value) -> Value {
    fn walk(v: Value) -> Value {
        match v {
            Value::String(s) if s.len() > LONG_STRING => Value::String(format!(
                "<{} bytes, fnv1a64 {:016x}>",
                s.len(),
                fnv1a64(s.as_bytes())
            )),
            Value::Array(items) => Value::Array(items.into_iter().map(walk).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, walk(v))).collect())
            }
            other => other,
        }
    }
    if serde_json::to_string(&value).unwrap().len() > ABBREVIATE_ABOVE {
        walk(value)
    } else {
        value
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn golden_fixtures() {
    insta::glob!("fixtures/*.yaml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.starts_with("# "),
            "{}: start with a comment saying what it covers",
            path.display()
        );
        let input: Value = serde_yaml_ng::from_str(&text).unwrap();
        let namespace = input["metadata"]["namespace"]
            .as_str()
            .unwrap_or("apps")
            .to_owned();
        let defaults = support::defaults();

        let mutation = admission::mutate(&input, &namespace, &defaults)
            .unwrap_or_else(|e| panic!("{}: refused: {e}", path.display()));
        let ops = match &mutation {
            Mutation::Skip(_) => Vec::new(),
            Mutation::Inject { ops, .. } => {
                // The reply's bytes come from the typed operations; they must be exactly the
                // serialised JSON values snapshotted below.
                let values = patch::to_values(ops);
                assert_eq!(
                    patch::to_bytes(ops),
                    serde_json::to_vec(&values).unwrap(),
                    "{}",
                    path.display()
                );
                values
            }
        };
        let mutated = admission::mutated_object(&input, &mutation).unwrap();

        // The patch applies to the original JSON and yields exactly the snapshotted pod.
        let reapplied = patch::apply(&input, &patch::to_patch(ops.clone()).unwrap()).unwrap();
        assert_eq!(reapplied, mutated);
        // The mutated pod is a valid Pod, and injecting it again changes nothing.
        serde_json::from_value::<Pod>(mutated.clone()).unwrap();
        assert!(matches!(
            admission::mutate(&mutated, &namespace, &defaults).unwrap(),
            Mutation::Skip(_)
        ));
        let configs = agent_configs(&mutated);
        // Every field of the input survives (the injector only adds), but for the command line
        // of a container wrapped for secrets as environment variables, which moves into the
        // exec agent's configuration.
        let unwrapped = unwrap_command(&input, &mutated, &configs);
        assert_contains(&input, &unwrapped, "");

        let has_config = configs.as_object().is_some_and(|c| !c.is_empty());
        if !has_config {
            assert_why_no_agent_config(path, &input, &mutated);
        }
        insta::assert_json_snapshot!("patch", reviewable(Value::Array(ops)));
        insta::assert_yaml_snapshot!("pod", reviewable(mutated));
        if has_config {
            insta::assert_json_snapshot!("agent_config", reviewable(configs));
        }
    });
}

/// `mutated` with the wrapped container's original `command` and `args` put back, after
/// checking that it runs the copied agent and that the exec configuration holds the command
/// line Kubernetes would have run (the container's `command`, or `agent-inject-env-command`,
/// then its `args`).
fn unwrap_command(input: &Value, mutated: &Value, configs: &Value) -> Value {
    let Some(exec) = configs.get(EXEC_INIT_NAME) else {
        return mutated.clone();
    };
    let mut out = mutated.clone();
    let containers = out["spec"]["containers"].as_array_mut().unwrap();
    let wrapped: Vec<&mut Value> = containers
        .iter_mut()
        .filter(|c| {
            c["command"][0]
                .as_str()
                .is_some_and(|s| s.starts_with("/vault/exec/"))
        })
        .collect();
    assert_eq!(wrapped.len(), 1, "one wrapped container");
    let c = wrapped.into_iter().next().unwrap();
    let cli = c["command"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("/vault/exec/");
    assert_eq!(
        c["command"],
        json!([
            format!("/vault/exec/{cli}"),
            "agent",
            "-config=/vault/exec/config.json"
        ])
    );
    let original = support::find_container(input, c["name"].as_str().unwrap()).unwrap();
    let annotations = &input["metadata"]["annotations"];
    let entrypoint = ["openbao.org/", "vault.hashicorp.com/"]
        .iter()
        .find_map(|p| annotations[format!("{p}agent-inject-env-command")].as_str())
        .map(|raw| serde_json::from_str::<Value>(raw).unwrap());
    let mut line: Vec<Value> = original["command"]
        .as_array()
        .cloned()
        .or_else(|| entrypoint.and_then(|e| e.as_array().cloned()))
        .unwrap();
    line.extend(original["args"].as_array().cloned().unwrap_or_default());
    assert_eq!(exec["exec"]["command"], Value::Array(line));
    let obj = c.as_object_mut().unwrap();
    for field in ["command", "args"] {
        match original.get(field) {
            Some(v) => obj.insert(field.to_owned(), v.clone()),
            None => obj.remove(field),
        };
    }
    out
}

/// A fixture whose agents carry no `VAULT_CONFIG` has no agent-config snapshot (it would only
/// show `{}`); instead this says why there is none, and that no stale snapshot is left behind.
/// Either nothing was injected, or the agents read their configuration from the ConfigMap named
/// by `agent-configmap`, mounted at `/vault/configs`.
fn assert_why_no_agent_config(fixture: &Path, input: &Value, mutated: &Value) {
    let name = fixture.file_name().unwrap().to_string_lossy();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("golden__agent_config@{name}.snap"));
    assert!(
        !snapshot.exists(),
        "{name}: no agent config, yet {} exists",
        snapshot.display()
    );
    let agents: Vec<&Value> = ["vault-agent-init", "vault-agent"]
        .into_iter()
        .filter_map(|agent| support::find_container(mutated, agent))
        .collect();
    if agents.is_empty() {
        assert_eq!(input, mutated, "{name}: nothing injected, nothing changed");
        return;
    }
    assert!(
        input["metadata"]["annotations"]["vault.hashicorp.com/agent-configmap"].is_string(),
        "{name}: an agent without VAULT_CONFIG outside ConfigMap mode"
    );
    for agent in agents {
        let args = agent["args"][0].as_str().unwrap_or_default();
        assert!(
            args.contains("vault agent -config=/vault/configs/"),
            "{name}: {} does not read its configuration from the ConfigMap: {args}",
            agent["name"]
        );
        assert!(
            support::mount_names(agent).contains(&"vault-config".to_owned()),
            "{name}: {} does not mount the ConfigMap",
            agent["name"]
        );
    }
}

/// Every member of `original` is in `mutated` with the same value, except arrays, which may
/// only have grown (user items keep their fields), and the status annotation.
fn assert_contains(original: &Value, mutated: &Value, at: &str) {
    match (original, mutated) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if at == "/metadata/annotations" && k == "vault.hashicorp.com/agent-inject-status" {
                    continue;
                }
                let w = b.get(k).unwrap_or_else(|| panic!("{at}/{k} was removed"));
                assert_contains(v, w, &format!("{at}/{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for item in a {
                let same_name =
                    |x: &Value| x.get("name").is_some() && x.get("name") == item.get("name");
                let found = b
                    .iter()
                    .find(|x| same_name(x) || *x == item)
                    .unwrap_or_else(|| panic!("{at}: lost {item}"));
                assert_contains(item, found, &format!("{at}[]"));
            }
        }
        (a, b) => assert_eq!(a, b, "{at} changed"),
    }
}

#[test]
fn no_snapshot_is_left_without_its_fixture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let fixtures: BTreeSet<String> = std::fs::read_dir(root.join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut per_fixture = std::collections::BTreeMap::<String, usize>::new();
    for entry in std::fs::read_dir(root.join("snapshots")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("golden__") else {
            continue;
        };
        // A snapshot must show something: the body after insta's header is never `{}`.
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let body = text.splitn(3, "---\n").nth(2).unwrap_or_default().trim();
        assert!(
            !body.is_empty() && body != "{}",
            "snapshot {name} shows nothing"
        );
        let fixture = rest
            .split_once('@')
            .map(|(_, f)| f.trim_end_matches(".snap"))
            .unwrap_or_default();
        assert!(
            fixtures.contains(fixture),
            "snapshot {name} has no fixture {fixture:?}"
        );
        *per_fixture.entry(fixture.to_owned()).or_default() += 1;
        assert!(
            ["patch@", "pod@", "agent_config@"]
                .iter()
                .any(|p| rest.starts_with(p)),
            "unexpected snapshot {name}"
        );
    }
    // The patch and the pod always; the agent config where the agents have one.
    for fixture in &fixtures {
        let count = per_fixture.get(fixture).copied().unwrap_or_default();
        assert!(
            (2..=3).contains(&count),
            "{fixture} has {count} snapshots, not two or three"
        );
    }
    assert!(fixtures.len() >= 15, "at least 15 fixtures");
    let _ = json!(null);
}
