//! The Dockerfile cannot be built here (no container engine), so its recipe is checked against
//! the package it builds: what `cargo build` inside it needs is copied in, it builds the
//! release profile of Cargo.toml for the musl targets with the locked dependencies, refuses a
//! dynamic binary, and the image runs that binary as the stock chart's non-root uid/gid.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + path)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The Dockerfile's instructions with `\` continuations joined and comments dropped.
fn instructions() -> Vec<String> {
    let text = read("Dockerfile");
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(t);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

/// Stages: the instructions after each FROM.
fn stages() -> Vec<Vec<String>> {
    let mut stages: Vec<Vec<String>> = Vec::new();
    for i in instructions() {
        if i.starts_with("FROM ") {
            stages.push(vec![i]);
        } else if let Some(s) = stages.last_mut() {
            s.push(i);
        }
    }
    stages
}

#[test]
fn build_stage_copies_every_path_the_package_manifest_needs() {
    let manifest: toml_like::Manifest = toml_like::parse(&read("Cargo.toml"));
    let build = &stages()[0];
    let copied: BTreeSet<String> = build
        .iter()
        .filter_map(|i| i.strip_prefix("COPY "))
        .filter(|rest| !rest.starts_with("--from"))
        .flat_map(|rest| {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|p| p.trim_end_matches('/').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    // Cargo reads these when it loads the package: the lockfile (--locked), every explicitly
    // declared target's file, and the auto-discovered examples/ and benches/ directories.
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "src"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for path in &manifest.target_paths {
        needed.insert(path.split('/').next().unwrap_or(path).to_owned());
    }
    for name in &manifest.bench_names {
        assert!(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/benches"))
                .join(format!("{name}.rs"))
                .exists(),
            "bench {name} is declared but benches/{name}.rs is missing"
        );
        needed.insert("benches".into());
    }
    if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).is_dir() {
        needed.insert("examples".into());
    }
    // Cargo's own configuration (build settings of the C parts) applies only if it is there.
    if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.cargo/config.toml")).exists() {
        needed.insert(".cargo".into());
    }
    let missing: Vec<_> = needed.difference(&copied).collect();
    assert!(
        missing.is_empty(),
        "the Dockerfile's build stage does not COPY {missing:?} (it copies {copied:?})"
    );
}

#[test]
fn build_stage_builds_the_locked_release_binary_for_musl_and_refuses_a_dynamic_one() {
    let build = stages()[0].join("\n");
    assert!(
        build.contains("cargo build --release --locked --target \"$target\" --bin vault-injector"),
        "the build must be the locked release profile of the binary:\n{build}"
    );
    assert!(build.contains("amd64) echo x86_64-unknown-linux-musl"));
    assert!(build.contains("arm64) echo aarch64-unknown-linux-musl"));
    assert!(
        build.contains("grep -qE 'statically linked|not a dynamic executable'"),
        "a dynamic binary must fail the build (the distroless/static base has no libc)"
    );
    // The toolchain image must satisfy the package's rust-version.
    let manifest = toml_like::parse(&read("Cargo.toml"));
    let rust = instructions()
        .iter()
        .find_map(|i| i.strip_prefix("ARG RUST_VERSION=").map(str::to_owned))
        .expect("ARG RUST_VERSION");
    let v = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    assert!(
        v(&rust) >= v(&manifest.rust_version),
        "RUST_VERSION {rust} is older than the package's rust-version {}",
        manifest.rust_version
    );
}

#[test]
fn image_runs_the_binary_as_the_charts_non_root_user() {
    let all = stages();
    let last = all.last().expect("a final stage");
    assert!(
        last[0].contains("${BASE_IMAGE}"),
        "final stage: {}",
        last[0]
    );
    assert!(
        instructions()
            .iter()
            .any(|i| i == "ARG BASE_IMAGE=gcr.io/distroless/static-debian12"),
        "the base image is distroless/static"
    );
    assert!(last.contains(
        &"COPY --from=build /out/vault-injector /usr/local/bin/vault-injector".to_owned()
    ));
    assert!(last.contains(&"ENTRYPOINT [\"/usr/local/bin/vault-injector\"]".to_owned()));
    let user = last
        .iter()
        .find_map(|i| i.strip_prefix("USER "))
        .expect("a USER instruction");
    // The chart's default pod securityContext, as rendered into webhook-config/.
    let deployment = read("webhook-config/40-deployment.yaml");
    assert_eq!(user, "100:1000");
    assert!(
        deployment.contains("runAsUser: 100\n") && deployment.contains("runAsGroup: 1000\n"),
        "the chart's default runAsUser/runAsGroup are no longer 100/1000: align the Dockerfile"
    );
}

/// Just enough of Cargo.toml for these checks (no TOML parser among the dev-dependencies).
mod toml_like {
    pub struct Manifest {
        pub rust_version: String,
        pub target_paths: Vec<String>,
        pub bench_names: Vec<String>,
    }

    pub fn parse(text: &str) -> Manifest {
        let mut m = Manifest {
            rust_version: String::new(),
            target_paths: Vec::new(),
            bench_names: Vec::new(),
        };
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_owned();
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim().trim_matches('"').to_owned());
            match (section.as_str(), k) {
                ("[package]", "rust-version") => m.rust_version = v,
                ("[lib]" | "[[bin]]" | "[[bench]]" | "[[example]]" | "[[test]]", "path") => {
                    m.target_paths.push(v)
                }
                ("[[bench]]", "name") => m.bench_names.push(v),
                _ => {}
            }
        }
        m
    }
}
