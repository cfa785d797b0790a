//! What the webhook adds to a pod CREATE through a real kube-apiserver.
//!
//! Creates the same pod N times in a namespace opted in to injection (the apiserver calls the
//! injector) and N times in one that is not (the namespaceSelector skips the webhook), same
//! apiserver, same run, interleaved (A B, B A, ...) so drift hits both sides alike, and prints
//! the client-observed POST latency of each side and the ratio of the medians.
//!
//!   benches/apiserver.sh                (starts the e2e stack with a release injector)
//!   cargo run --release --manifest-path tests/e2e/scenarios/Cargo.toml --example create_latency -- [N] [WARMUP]
//!
//! A benchmark, not a test: it asserts only that every pod on the webhook side was injected and
//! none on the other side was.
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use kube::api::PostParams;
use serde_json::json;
use vault_injector_e2e::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// [`pod`] with its service-account token as a volume of its own, under a fixed name, instead
/// of the `kube-api-access-<random>` one the ServiceAccount admission plugin would add: then
/// every pod is the same to the webhook, so `WEBHOOK=baseline` (one learnt reply for all pods)
/// gets patches that apply, and both webhooks see the same pods.
fn token_pod(
    name: &str,
    annotations: serde_json::Value,
) -> Result<k8s_openapi::api::core::v1::Pod> {
    let mut p = serde_json::to_value(pod(name, annotations)?)?;
    p["spec"]["automountServiceAccountToken"] = json!(false);
    p["spec"]["volumes"] = json!([{"name": "sa-token", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}]);
    p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "sa-token", "readOnly": true,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]);
    Ok(serde_json::from_value(p)?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(300);
    let warmup: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30);
    let client = client().await?;
    let with = TestNs::create_unique(&client, "lat-webhook", true).await?;
    let without = TestNs::create_unique(&client, "lat-plain", false).await?;
    // The seed's annotations plus a template and the cache: a typical small injection.
    let annotations = json!({
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/role": "web",
        "vault.hashicorp.com/agent-inject-secret-db.env": "database/creds/web",
        "vault.hashicorp.com/agent-inject-template-db.env":
            "{{ with secret \"database/creds/web\" }}DB_USER={{ .Data.username }}\nDB_PASSWORD={{ .Data.password }}{{ end }}",
        "vault.hashicorp.com/agent-cache-enable": "true",
    });
    let (mut lat_with, mut lat_without) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..warmup + n {
        let name = format!("p-{i}");
        let p = token_pod(&name, annotations.clone())?;
        let order: [(&TestNs, bool); 2] = if i % 2 == 0 {
            [(&with, true), (&without, false)]
        } else {
            [(&without, false), (&with, true)]
        };
        for (ns, webhook) in order {
            let t = Instant::now();
            let created = ns.pods().create(&PostParams::default(), &p).await?;
            let d = t.elapsed();
            ensure!(
                is_injected(&created) == webhook,
                "pod {name} in {}: injected={} (expected {webhook})",
                ns.name,
                is_injected(&created)
            );
            if i >= warmup {
                if webhook {
                    lat_with.push(d)
                } else {
                    lat_without.push(d)
                }
            }
        }
    }
    lat_with.sort();
    lat_without.sort();
    for (label, v) in [
        ("with webhook", &lat_with),
        ("without webhook", &lat_without),
    ] {
        println!(
            "{label:<16} n={} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
            v.len(),
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.9)),
            ms(percentile(v, 0.99)),
            ms(*v.last().unwrap_or(&Duration::ZERO)),
        );
    }
    println!(
        "create_latency_ratio_p50={:.2} create_latency_ratio_p99={:.2}",
        ms(percentile(&lat_with, 0.5)) / ms(percentile(&lat_without, 0.5)),
        ms(percentile(&lat_with, 0.99)) / ms(percentile(&lat_without, 0.99)),
    );
    with.delete().await;
    without.delete().await;
    Ok(())
}
