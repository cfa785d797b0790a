//! Secrets as environment variables (not upstream): the agent runs inside one app container, in
//! place of its command, as that command's process supervisor.
//!
//! - `vault-agent-exec-init`, an init container of the agent image, copies the agent binary
//!   (`vault` or `bao`, whichever the agents run) into the `vault-exec` emptyDir and writes the
//!   agent's configuration there from `VAULT_CONFIG`, exactly as the classic agents decode
//!   theirs. The binaries are static Go programs, so they run in any image, and the app image
//!   needs no shell.
//! - The wrapped container runs `/vault/exec/<cli> agent -config=/vault/exec/config.json`
//!   (its `args` cleared); the configuration carries its original command line. It mounts
//!   `vault-exec` read-only, the service-account token the agent logs in with (when it did not
//!   already), and the `tls-secret` and `agent-extra-secret` volumes the classic agents get.
//!
//! `vault-exec` is a disk-backed emptyDir, unlike every other volume the injector adds: it holds
//! nothing secret (the agent binary, and a configuration without credentials: the agent logs
//! in with the service-account token it reads at run time, and the rendered values exist only
//! in its memory and in the process's environment), while a memory-backed one would charge
//! the binary (well over a hundred megabytes) to the init container's memory limit, which
//! kills the copy, and to the pod for its whole life. Files are world-readable (and the binary
//! world-executable) because the app may run as any uid.

use super::*;
use crate::agent_config::{EXEC_CA_FILE, EXEC_CONFIG_FILE, EXEC_DIR, ExecConfig};

/// The init container that prepares the `vault-exec` volume.
pub const EXEC_INIT_NAME: &str = "vault-agent-exec-init";
/// The volume holding the agent binary and its configuration.
pub const EXEC_VOLUME: &str = "vault-exec";

/// The wrapped container's new command: the copied agent with the exec configuration.
pub fn exec_command(binary: AgentBinary) -> Vec<String> {
    vec![
        format!("{EXEC_DIR}/{}", binary.cli()),
        "agent".to_owned(),
        format!("-config={EXEC_CONFIG_FILE}"),
    ]
}

/// The volume, the init container and the wrapped container's command and mounts, after
/// upstream's operations (so those keep upstream's indices and order).
pub(super) fn add_exec(
    p: &mut PatchBuilder,
    spec: &PodSpec,
    r: &AgentRequest,
    binary: AgentBinary,
    original_volumes: usize,
) -> Result<(), Refusal> {
    let e = &r.env_exec;
    // Parsing refused a pod whose wrapped container is missing; nothing is added without it.
    let Some((index, wrapped)) = spec
        .containers
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == e.container)
    else {
        return Ok(());
    };
    let volume = Volume {
        name: EXEC_VOLUME.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    p.append("/spec/volumes", original_volumes, [OpValue::volume(volume)]);

    let init = exec_init_container(r, binary)?;
    p.append(
        "/spec/initContainers",
        spec.init_containers.as_ref().map_or(0, Vec::len),
        [OpValue::Container(Box::new(init))],
    );

    let base = format!("/spec/containers/{index}");
    let own = wrapped.volume_mounts.as_deref().unwrap_or_default();
    let mut mounts = vec![mount(EXEC_VOLUME, EXEC_DIR, true)];
    let sa = &r.service_account;
    if !own.iter().any(|m| m.mount_path == sa.mount_path) {
        mounts.push(mount(&sa.name, &sa.mount_path, true));
    }
    if !r.tls_secret.is_empty() {
        mounts.push(mount(TLS_VOLUME, TLS_PATH, true));
    }
    if !r.extra_secret.is_empty() {
        mounts.push(mount(EXTRA_SECRET_VOLUME, EXTRA_SECRET_PATH, true));
    }
    p.append(
        &format!("{base}/volumeMounts"),
        own.len(),
        mounts.into_iter().map(OpValue::mount),
    );
    let strings = |s: Vec<String>| OpValue::Array(s.into_iter().map(OpValue::String).collect());
    // `add` replaces a member that exists (RFC 6902), so no `remove` is needed; the command
    // line the container had is in the agent's configuration.
    p.add(format!("{base}/command"), strings(exec_command(binary)));
    if wrapped.args.is_some() {
        p.add(format!("{base}/args"), strings(Vec::new()));
    }
    Ok(())
}

/// `vault-agent-exec-init`: the agent image, with the agents' resources and security context.
fn exec_init_container(r: &AgentRequest, binary: AgentBinary) -> Result<Container, Refusal> {
    let config = ExecConfig::build(r)
        .map(|c| c.to_json())
        .transpose()
        .map_err(|e| Refusal::Patch(Problem::Message(e.to_string())))?
        .unwrap_or_default();
    let mut vars = env::config_vars(&config);
    let chunks = vars.len();
    let cli = binary.cli();
    let bin = format!("{EXEC_DIR}/{cli}");
    let mut files = vec![bin.as_str(), EXEC_CONFIG_FILE];
    let mut steps = vec![
        format!("cp \"$(command -v {cli})\" {bin}"),
        format!("chmod 0555 {bin}"),
        env::decode_config_to(chunks, EXEC_CONFIG_FILE),
        format!("chmod 0444 {EXEC_CONFIG_FILE}"),
    ];
    if !r.env.ca_cert_bytes.is_empty() {
        vars.push(env::plain(
            "VAULT_CACERT_BYTES",
            &env::decode_if_base64(&r.env.ca_cert_bytes),
        ));
        files.push(EXEC_CA_FILE);
        steps.push(format!(
            "printf '%s\\n' \"$VAULT_CACERT_BYTES\" > {EXEC_CA_FILE}"
        ));
        steps.push(format!("chmod 0444 {EXEC_CA_FILE}"));
    }
    // `rm -f` first: the files are read-only, and an init container runs again when the pod's
    // sandbox is recreated, with the volume (and its files) kept.
    steps.insert(0, format!("rm -f {}", files.join(" ")));
    let script = steps.join(" && ");
    Ok(Container {
        name: EXEC_INIT_NAME.to_owned(),
        image: Some(r.image.clone()),
        command: Some(vec!["/bin/sh".to_owned(), "-ec".to_owned()]),
        args: Some(vec![script]),
        env: Some(vars),
        resources: Some(container::resources(r)?),
        volume_mounts: Some(vec![mount(EXEC_VOLUME, EXEC_DIR, false)]),
        security_context: container::security_context(r),
        ..Default::default()
    })
}
