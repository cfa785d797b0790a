//! The documentation that is generated from the code, or quotes it, checked against the code so
//! the two cannot drift:
//!
//! - the tables of `docs/settings.md` and `docs/annotations.md`, generated from the
//!   declarations (`settings::markdown_table`, `annotations::keys::markdown_table`);
//! - the values table of `charts/vault-injector/README.md`, generated from `values.yaml`: every
//!   leaf key with its default, the comment above it as its description;
//! - `docs/metrics.md` against the metrics the server registers;
//! - `docs/troubleshooting.md` against the refusals and warnings the injector prints;
//! - one license and one version across `Cargo.toml`, the chart and the image.
//!
//! Each generated table sits after a marker comment and runs to the next blank line.
//! `UPDATE_DOCS=1 cargo test --test docs` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use serde_yaml_ng::Value as Yaml;
use vault_injector::admission::{self, InjectionType, Mutation, NamespaceDefaults, Outcome};
use vault_injector::annotations::keys;
use vault_injector::settings;
use vault_injector::telemetry::metrics::Metrics;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SETTINGS_MARKER: &str = "<!-- settings table: generated from crates/core/src/settings/table.rs, checked by tests/docs.rs (UPDATE_DOCS=1 cargo test --test docs rewrites it) -->";
const ANNOTATIONS_MARKER: &str = "<!-- annotation table: generated from crates/core/src/annotations/keys/table.rs, checked by tests/docs.rs (UPDATE_DOCS=1 cargo test --test docs rewrites it) -->";
const VALUES_MARKER: &str = "<!-- values table: generated from values.yaml (the comment above each key is its description), checked by tests/docs.rs (UPDATE_DOCS=1 cargo test --test docs rewrites it) -->";

#[test]
fn the_settings_and_annotation_tables_are_the_declarations() {
    check_generated(
        "docs/settings.md",
        &[(SETTINGS_MARKER, settings::markdown_table())],
    );
    check_generated(
        "docs/annotations.md",
        &[(ANNOTATIONS_MARKER, keys::markdown_table())],
    );
}

#[test]
fn the_chart_values_table_lists_every_value_of_values_yaml_with_its_default() {
    let table = values_table(&read("charts/vault-injector/values.yaml"));
    // Every leaf is a row, whatever the generator does: the table is the check.
    let values: Yaml = serde_yaml_ng::from_str(&read("charts/vault-injector/values.yaml")).unwrap();
    let mut leaves = Vec::new();
    collect_leaves(&values, "", &[], &mut leaves);
    for leaf in &leaves {
        assert!(
            table.contains(&format!(
                "| `{}` | {} |",
                leaf.path,
                default_cell(&leaf.value)
            )),
            "{} is not in the values table",
            leaf.path
        );
    }
    assert!(leaves.len() > 80, "only {} values found", leaves.len());
    check_generated("charts/vault-injector/README.md", &[(VALUES_MARKER, table)]);
}

#[test]
fn every_metric_served_is_in_docs_metrics_md_and_nothing_else_is() {
    let metrics = Metrics::new().unwrap();
    // Labelled series appear once they have a value; the watcher's counter once it is on.
    metrics.record_outcome("ns", &Outcome::Injected(Some(InjectionType::InitOnly)));
    metrics.record_failure("ns");
    metrics
        .missed_injections()
        .unwrap()
        .with_label_values(&["ns"])
        .inc();
    let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
    let served: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    // The first cell of each table row: one or more `name`s.
    let documented: BTreeSet<String> = read("docs/metrics.md")
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        served, documented,
        "docs/metrics.md and the registry differ"
    );
}

#[test]
fn troubleshooting_quotes_every_refusal_and_warning_as_the_injector_prints_it() {
    let doc = read("docs/troubleshooting.md");
    let pod = support::pod;
    let refused = |p: support::PodBuilder| support::refusal(&p.build());
    let mut messages = vec![
        refused(pod().ann("agent-inject", "yes")),
        refused(pod().ann("agent-pre-populate", "maybe")),
        refused(pod().ann("agent-run-as-user", "root")),
        refused(pod().ann("agent-revoke-grace", "-1")),
        refused(pod().ann("auth-min-backoff", "soon")),
        refused(pod().ann("agent-inject-default-template", "xml")),
        refused(pod().ann("agent-share-process-namespace", "maybe")),
        refused(pod().ann("agent-json-patch", "{}")),
        refused(pod().ann("agent-json-patch", r#"[{"op":"remove","path":"/nope"}]"#)),
        refused(pod().ann(
            "agent-json-patch",
            r#"[{"op":"replace","path":"/name","value":5}]"#,
        )),
        refused(pod().ann("agent-limits-mem", "128mb")),
        refused(pod().set("/spec/containers/0/volumeMounts", json!([]))),
        refused(pod().ann("agent-service-account-token-volume-name", "vault-token")),
        refused(
            pod()
                .ann("agent-service-account-token-volume-name", "vault-token")
                .push(
                    "/spec/volumes",
                    json!({"name": "vault-token", "emptyDir": {}}),
                ),
        ),
        refused(
            pod()
                .ann("agent-service-account-token-volume-name", "vault-token")
                .push(
                    "/spec/containers/0/volumeMounts",
                    json!({"name": "vault-token", "mountPath": "/var/run/secrets/vault"}),
                ),
        ),
        refused(pod().ann("agent-run-as-same-user", "true")),
        refused(
            pod()
                .ann("agent-run-as-same-user", "true")
                .set("/spec/containers/0/securityContext", json!({})),
        ),
        refused(pod().ann("agent-run-as-same-user", "true").set(
            "/spec/containers/0/securityContext",
            json!({"runAsUser": 0}),
        )),
        refused(
            pod()
                .ann("agent-share-process-namespace", "true")
                .set("/spec/shareProcessNamespace", json!(false)),
        ),
        refused(pod().without("role")),
        refused(pod().ann("agent-request-namespace", "")),
        refused(pod().ann("agent-image", "")),
        refused(pod().ann("auth-type", "")),
        refused(pod().ann("auth-path", "")),
        refused(pod().ann("service", "")),
    ];
    // Secrets as environment variables: a container with a command, one variable.
    let env = || {
        pod()
            .set("/spec/containers/0/command", json!(["/bin/app"]))
            .ann("agent-inject-env-DB", "database/creds/x")
    };
    messages.extend([
        refused(
            pod()
                .set("/spec/containers/0/command", json!(["/bin/app"]))
                .ann("agent-inject-env-db-pass", "database/creds/x"),
        ),
        refused(env().ann("agent-inject-env-restart", "sometimes")),
        refused(env().ann("agent-inject-env-stop-signal", "SIGFOO")),
        refused(env().ann("agent-inject-env-container", "web")),
        refused(
            env()
                .set("/spec/containers/0/command", json!(null))
                .ann("agent-inject-env-command", "not json"),
        ),
        refused(env().set("/spec/containers/0/command", json!(null))),
        refused(env().ann("agent-inject-env-command", r#"["/bin/x"]"#)),
        refused(env().set("/spec/containers/0/command", json!(["/bin/app --flag"]))),
        refused(env().set("/spec/containers/0/command", json!([""]))),
        refused(env().ann("agent-configmap", "cm")),
        refused(env().ann("proxy-address", "http://proxy:3128")),
    ]);
    let defaults = support::defaults();
    let system = admission::mutate(&pod().build(), "kube-system", &defaults).unwrap_err();
    messages.push(system.to_string());
    let not_synced = admission::mutate_with(&pod().build(), "apps", &defaults, &|_| {
        NamespaceDefaults::NotSynced
    })
    .unwrap_err();
    messages.push(not_synced.to_string());

    let warnings = |p: support::PodBuilder| match admission::mutate(&p.build(), "apps", &defaults) {
        Ok(Mutation::Inject { warnings, .. }) => warnings,
        other => panic!("expected an injection, got {other:?}"),
    };
    let dynamic = || pod().ann("agent-inject-secret-db", "database/creds/app");
    let mut all_warnings = Vec::new();
    all_warnings.extend(warnings(dynamic()));
    all_warnings.extend(warnings(
        dynamic().ann("agent-inject-command-db", "kill -HUP 1"),
    ));
    all_warnings.extend(warnings(dynamic().ann("agent-pre-populate-only", "true")));
    all_warnings.extend(warnings(pod().ann("tls-skip-verify", "true")));
    all_warnings.extend(warnings(pod().ann("agent-run-as-user", "0")));
    all_warnings.extend(warnings(
        env().ann("agent-inject-secret-db", "database/creds/x"),
    ));
    all_warnings.extend(warnings(env().ann("agent-inject-env-restart", "never")));
    let job = serde_json::to_string(&json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"template": {
            "metadata": {"annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": "migrate"
            }},
            "spec": {"containers": [{"name": "migrate", "image": "example/migrate:1"}]}
        }}
    }))
    .unwrap();
    let report = vault_injector::lint::lint(&job, "job.json", None, &defaults).unwrap();
    all_warnings.extend(report.findings.into_iter().map(|f| f.message));
    // Each of the ten admission warnings and lint's own, at least once.
    assert_eq!(
        all_warnings.iter().collect::<BTreeSet<_>>().len(),
        11,
        "{all_warnings:#?}"
    );
    messages.extend(all_warnings);

    let missing: Vec<&String> = messages
        .iter()
        .filter(|m| !doc.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/troubleshooting.md does not quote:\n{}",
        missing
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A refusal added to the core without an entry in the troubleshooting page fails here: every
/// fixed message text (the literal of each `Problem::msg`, up to its first placeholder) and
/// every phase prefix must be quoted there.
#[test]
fn troubleshooting_covers_every_refusal_text_in_the_core() {
    let doc = read("docs/troubleshooting.md");
    let mut texts = Vec::new();
    let files = rust_files("crates/core/src");
    for file in &files {
        let file = file.as_str();
        let source = read(file);
        for (i, _) in source.match_indices("Problem::msg(") {
            texts.push((file, first_literal(&source[i..])));
        }
    }
    let errors = read("crates/core/src/annotations/error.rs");
    let refusals = &errors[..errors.find("pub enum Problem").unwrap()];
    for (i, _) in refusals.match_indices("#[error(") {
        texts.push(("error.rs", first_literal(&refusals[i..])));
    }
    assert!(texts.len() > 20, "{texts:?}");
    for (file, text) in texts {
        let fixed = text.split('{').next().unwrap_or_default().trim();
        if fixed.len() < 10 {
            continue;
        }
        assert!(
            doc.contains(fixed),
            "docs/troubleshooting.md does not mention {fixed:?} ({file})"
        );
    }
}

#[test]
fn the_license_is_stated_alike_everywhere() {
    assert!(read("LICENSE").starts_with("Mozilla Public License Version 2.0\n"));
    for manifest in ["Cargo.toml", "crates/core/Cargo.toml"] {
        assert!(
            read(manifest).contains("\nlicense = \"MPL-2.0\"\n"),
            "{manifest}"
        );
    }
    let chart: Yaml = serde_yaml_ng::from_str(&read("charts/vault-injector/Chart.yaml")).unwrap();
    assert_eq!(
        chart["annotations"]["artifacthub.io/license"].as_str(),
        Some("MPL-2.0")
    );
    assert!(read("Dockerfile").contains("org.opencontainers.image.licenses=\"MPL-2.0\""));
}

#[test]
fn the_binary_the_chart_and_the_changelog_carry_one_version() {
    let version = env!("CARGO_PKG_VERSION");
    let chart: Yaml = serde_yaml_ng::from_str(&read("charts/vault-injector/Chart.yaml")).unwrap();
    assert_eq!(chart["version"].as_str(), Some(version));
    assert_eq!(chart["appVersion"].as_str(), Some(version));
    assert!(
        read("README.md").contains(&format!("This is version {version}.")),
        "the README names another version"
    );
    // Keep a Changelog: an Unreleased section first, then one per release, newest first.
    let changelog = read("CHANGELOG.md");
    let sections: Vec<&str> = changelog
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    assert_eq!(sections.first(), Some(&"[Unreleased]"));
    assert!(
        sections
            .iter()
            .any(|s| s.starts_with(&format!("[{version}] - "))),
        "CHANGELOG.md has no section for {version}"
    );
    for section in &sections[1..] {
        let (name, date) = section
            .split_once(" - ")
            .expect("`## [x.y.z] - YYYY-MM-DD`");
        assert!(name.starts_with('[') && name.ends_with(']'), "{section}");
        assert!(
            date.len() == 10 && date.chars().filter(|c| *c == '-').count() == 2,
            "{section}"
        );
    }
}

/// The text of the first string literal in `code`, unescaped (`\"` and `\\` only).
fn first_literal(code: &str) -> String {
    let start = code.find('"').expect("a string literal") + 1;
    let mut out = String::new();
    let mut chars = code[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Every `.rs` file under `dir` (relative to the repository), sorted.
fn rust_files(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(format!("{ROOT}/{d}")).unwrap_or_else(|e| panic!("{d}: {e}"))
        {
            let name = entry.expect("a directory entry").file_name();
            let path = format!("{d}/{}", name.to_string_lossy());
            if path.ends_with(".rs") {
                out.push(path);
            } else if std::fs::metadata(format!("{ROOT}/{path}")).is_ok_and(|m| m.is_dir()) {
                dirs.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` with the table after `marker` replaced by `table`.
fn with_table(text: &str, marker: &str, table: &str, file: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{file} has no marker {marker}"))
        + marker.len()
        + 1;
    let end = text[start..]
        .find("\n\n")
        .map_or(text.len(), |i| start + i + 1);
    format!("{}{table}{}", &text[..start], &text[end..])
}

/// Fails when a generated table of `file` differs from `tables`; rewrites them with
/// `UPDATE_DOCS` set.
fn check_generated(file: &str, tables: &[(&str, String)]) {
    let text = read(file);
    let mut expected = text.clone();
    for (marker, table) in tables {
        expected = with_table(&expected, marker, table, file);
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        if expected != text {
            std::fs::write(format!("{ROOT}/{file}"), &expected).unwrap();
        }
        return;
    }
    assert!(
        text == expected,
        "{file}: a generated table differs from its source; run UPDATE_DOCS=1 cargo test --test docs"
    );
}

/// One leaf of values.yaml: a scalar, a list, or an empty map.
struct Leaf {
    path: String,
    value: Yaml,
    /// The keys above it whose first child it is, nearest first (their comment describes it
    /// when it has none of its own).
    first_of: Vec<String>,
}

fn collect_leaves(value: &Yaml, path: &str, first_of: &[String], out: &mut Vec<Leaf>) {
    match value {
        Yaml::Mapping(map) if !map.is_empty() => {
            for (i, (key, child)) in map.iter().enumerate() {
                let key = key.as_str().expect("string keys");
                let child_path = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                let chain = if i == 0 && !path.is_empty() {
                    let mut c = vec![path.to_owned()];
                    c.extend(first_of.iter().cloned());
                    c
                } else {
                    Vec::new()
                };
                collect_leaves(child, &child_path, &chain, out);
            }
        }
        _ => out.push(Leaf {
            path: path.to_owned(),
            value: value.clone(),
            first_of: first_of.to_vec(),
        }),
    }
}

/// The comment lines right above each key of `text`, by dotted path. Lines inside block
/// scalars and lists are skipped; a blank line ends a comment.
fn value_comments(text: &str) -> BTreeMap<String, String> {
    let mut comments = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut comment: Vec<String> = Vec::new();
    let mut skip_deeper_than: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        let indent = line.len() - line.trim_start().len();
        if trimmed.is_empty() {
            comment.clear();
            continue;
        }
        if let Some(limit) = skip_deeper_than {
            if indent > limit || (indent == limit && trimmed.starts_with("- ")) {
                continue;
            }
            skip_deeper_than = None;
        }
        if let Some(text) = trimmed.strip_prefix('#') {
            comment.push(text.trim().to_owned());
            continue;
        }
        if trimmed.starts_with("- ") {
            // A list's items: part of the value of the key above.
            skip_deeper_than = Some(stack.last().map_or(0, |(i, _)| *i));
            comment.clear();
            continue;
        }
        let Some((key, rest)) = trimmed.split_once(':') else {
            comment.clear();
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .chain([key])
            .collect::<Vec<_>>()
            .join(".");
        comments.insert(path, comment.join(" "));
        comment.clear();
        stack.push((indent, key.to_owned()));
        if matches!(rest.trim(), "|" | "|-" | ">" | ">-") {
            skip_deeper_than = Some(indent);
        }
    }
    comments
}

/// A value's default as the table shows it.
fn default_cell(value: &Yaml) -> String {
    match value {
        Yaml::Null => "`null`".to_owned(),
        Yaml::Bool(b) => format!("`{b}`"),
        Yaml::Number(n) => format!("`{n}`"),
        Yaml::String(s) if s.is_empty() => "`\"\"`".to_owned(),
        Yaml::String(s) if s.contains('\n') => "a template (see `values.yaml`)".to_owned(),
        Yaml::String(s) => format!("`{s}`"),
        Yaml::Sequence(items) if items.is_empty() => "`[]`".to_owned(),
        Yaml::Sequence(_) => "a list (see `values.yaml`)".to_owned(),
        Yaml::Mapping(_) => "`{}`".to_owned(),
        Yaml::Tagged(_) => panic!("tagged values are not used in values.yaml"),
    }
}

/// The chart README's values table: every leaf of values.yaml, its default, its comment.
fn values_table(text: &str) -> String {
    let values: Yaml = serde_yaml_ng::from_str(text).unwrap();
    let comments = value_comments(text);
    let mut leaves = Vec::new();
    collect_leaves(&values, "", &[], &mut leaves);
    let mut out = String::from("| Value | Default | Description |\n|---|---|---|\n");
    for leaf in leaves {
        let own = comments.get(&leaf.path).filter(|c| !c.is_empty());
        let description = own
            .or_else(|| {
                leaf.first_of
                    .iter()
                    .find_map(|p| comments.get(p).filter(|c| !c.is_empty()))
            })
            .map_or(String::new(), |c| c.replace('|', "\\|"));
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            leaf.path,
            default_cell(&leaf.value),
            description
        ));
    }
    out
}
