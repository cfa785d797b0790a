//! The run's environment: the `E2E_*` variables run.sh exports, the Kubernetes client, the log
//! and the polling loop every wait goes through.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use kube::Client;

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn env_req(name: &str) -> Result<String> {
    env(name).with_context(|| {
        format!("{name} is not set: run the scenarios through tests/e2e/run.sh, or export the E2E_* variables (tests/e2e/README.md)")
    })
}

pub async fn client() -> Result<Client> {
    Client::try_default()
        .await
        .context("building a kube client from KUBECONFIG")
}

/// A short random suffix for object names.
pub fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    format!("{:05x}", (nanos ^ std::process::id()) & 0xfffff)
}

pub fn log(msg: impl AsRef<str>) {
    eprintln!("[scenario {}] {}", chrono_like_now(), msg.as_ref());
}

fn chrono_like_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// Poll `f` every 500 ms until it returns `Some`, or fail after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > timeout {
            return Err(match last_err {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
