//! What the parser reads from the pod itself: the service-account token volume, the IRSA mount
//! and AWS variables, the first container's uid, and Go's path rules for the paths it builds.

use k8s_openapi::api::core::v1::{Pod, Volume};

use super::error::Problem;
use super::keys;
use super::request::TokenVolume;
use crate::goparse;

/// Mount path used when the named token volume is not mounted by any app container.
pub const DEFAULT_SA_MOUNT_PATH: &str = "/var/run/secrets/vault.hashicorp.com/serviceaccount";

pub(super) fn first_container_uid(pod: &Pod) -> Result<i64, Problem> {
    let first = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .ok_or_else(|| Problem::msg("No containers found in Pod Spec"))?;
    let sc = first
        .security_context
        .as_ref()
        .ok_or_else(|| Problem::msg("No SecurityContext found for Container 0"))?;
    match sc.run_as_user {
        None => Err(Problem::msg(
            "RunAsUser is nil for Container 0's SecurityContext",
        )),
        Some(0) => Err(Problem::msg(format!(
            "container not allowed to run as root (annotation {} takes container {:?}'s runAsUser)",
            keys::RUN_AS_SAME_USER,
            first.name
        ))),
        Some(uid) => Ok(uid),
    }
}

/// Finds the service-account token volume the agents log in with: the named one, else the
/// first app-container mount whose path contains `serviceaccount`.
pub fn service_account(pod: &Pod, volume_name: &str) -> Result<TokenVolume, Problem> {
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let volumes = spec.and_then(|s| s.volumes.as_deref()).unwrap_or_default();
    let mounts = || {
        containers
            .iter()
            .flat_map(|c| c.volume_mounts.iter().flatten())
    };
    if !volume_name.is_empty() {
        if let Some(mount) = mounts().find(|m| m.name == volume_name) {
            let volume = volumes
                .iter()
                .find(|v| v.name == volume_name)
                .ok_or_else(|| {
                    Problem::msg(format!(
                        "failed to find volume {} in Pod {} volumes",
                        goparse::go_quote(volume_name),
                        goparse::go_quote(pod.metadata.name.as_deref().unwrap_or_default())
                    ))
                })?;
            return Ok(TokenVolume {
                name: mount.name.clone(),
                mount_path: mount.mount_path.clone(),
                token_path: projected_token_path(volume)?,
            });
        }
        if let Some(volume) = volumes.iter().find(|v| v.name == volume_name) {
            return Ok(TokenVolume {
                name: volume.name.clone(),
                mount_path: DEFAULT_SA_MOUNT_PATH.to_owned(),
                token_path: projected_token_path(volume)?,
            });
        }
        return Err(Problem::msg(format!(
            "failed to find service account volume {} (annotation {})",
            goparse::go_quote(volume_name),
            keys::SA_TOKEN_VOLUME_NAME
        )));
    }
    mounts()
        .find(|m| m.mount_path.contains("serviceaccount"))
        .map(|m| TokenVolume {
            name: m.name.clone(),
            mount_path: m.mount_path.clone(),
            token_path: "token".to_owned(),
        })
        .ok_or_else(|| {
            Problem::msg(format!(
                "failed to find service account volume mount (no app container mounts a path containing \"serviceaccount\"; with automountServiceAccountToken: false, name a projected token volume in {})",
                keys::SA_TOKEN_VOLUME_NAME
            ))
        })
}

fn projected_token_path(volume: &Volume) -> Result<String, Problem> {
    volume
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.service_account_token.as_ref())
        .find(|t| !t.path.is_empty())
        .map(|t| t.path.clone())
        .ok_or_else(|| {
            Problem::msg(format!(
                "failed to find tokenPath for projected volume {}",
                goparse::go_quote(&volume.name)
            ))
        })
}

/// IRSA: the first app-container mount whose path contains `eks.amazonaws.com`.
pub(super) fn irsa_mount(pod: &Pod) -> Option<(String, String)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .find(|m| m.mount_path.contains("eks.amazonaws.com"))
        .map(|m| (m.name.clone(), m.mount_path.clone()))
}

/// The AWS env names copied for IRSA; upstream's order is random, this is the documented one.
const AWS_ENV_NAMES: [&str; 4] = [
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
];

pub(super) fn aws_env(pod: &Pod) -> Vec<(String, String)> {
    let envs: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.env.iter().flatten())
        .collect();
    AWS_ENV_NAMES
        .iter()
        .filter_map(|name| {
            envs.iter()
                .find(|e| e.name == *name)
                .map(|e| ((*name).to_owned(), e.value.clone().unwrap_or_default()))
        })
        .collect()
}

/// Go's `path.Join`: joins the non-empty elements with `/` and cleans the result.
pub fn path_join(parts: &[&str]) -> String {
    let kept: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if kept.is_empty() {
        return String::new();
    }
    path_clean(&kept.join("/"))
}

/// Go's `path.Clean`.
pub fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}
