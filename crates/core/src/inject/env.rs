//! The agent's environment: the encoded configuration in `VAULT_CONFIG` (chunked when large),
//! the pod-field variables, and the shell words of its command.

use super::*;

pub(super) fn field_ref(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Upstream sets these variables only when their value is non-empty.
pub(super) fn push_if_set(env: &mut Vec<EnvVar>, name: &str, value: &str) {
    if !value.is_empty() {
        env.push(plain(name, value));
    }
}

pub(super) fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    }
}

/// As upstream builds them; also how many variables the encoded configuration took (0 in ConfigMap
/// mode).
pub(super) fn env_vars(r: &AgentRequest, init: bool) -> Result<(Vec<EnvVar>, usize), Refusal> {
    let mut env = vec![
        field_ref("NAMESPACE", "metadata.namespace"),
        field_ref("HOST_IP", "status.hostIP"),
        field_ref("POD_IP", "status.podIP"),
    ];
    push_if_set(&mut env, "GOMAXPROCS", &r.env.go_max_procs);
    push_if_set(&mut env, "VAULT_CLIENT_TIMEOUT", &r.env.client_timeout);
    push_if_set(&mut env, "VAULT_MAX_RETRIES", &r.env.client_max_retries);
    push_if_set(&mut env, "VAULT_LOG_LEVEL", &r.env.log_level);
    push_if_set(&mut env, "VAULT_LOG_FORMAT", &r.env.log_format);
    push_if_set(&mut env, "HTTPS_PROXY", &r.env.proxy_address);
    let mut config_chunks = 0;
    if r.config_map.is_empty() {
        let config = Config::build(r, init)
            .to_json()
            .map_err(|e| Refusal::Patch(Problem::Message(e.to_string())))?;
        let vars = config_vars(&config);
        config_chunks = vars.len();
        env.extend(vars);
    } else {
        let v = &r.vault;
        push_if_set(&mut env, "VAULT_ADDR", &v.address);
        push_if_set(&mut env, "VAULT_CACERT", &v.ca_cert);
        push_if_set(&mut env, "VAULT_CAPATH", &v.ca_key);
        push_if_set(&mut env, "VAULT_CLIENT_CERT", &v.client_cert);
        push_if_set(&mut env, "VAULT_CLIENT_KEY", &v.client_key);
        env.push(plain(
            "VAULT_SKIP_VERIFY",
            if v.tls_skip_verify { "true" } else { "false" },
        ));
        push_if_set(&mut env, "VAULT_TLS_SERVER_NAME", &v.tls_server_name);
    }
    if !r.env.ca_cert_bytes.is_empty() {
        env.push(plain(
            "VAULT_CACERT_BYTES",
            &decode_if_base64(&r.env.ca_cert_bytes),
        ));
    }
    if r.auth.auth_type == "aws" {
        env.extend(r.aws_env.iter().map(|(k, v)| plain(k, v)));
        if let Some(region) = r.auth.config.get("region") {
            env.push(plain("AWS_REGION", region));
        }
    }
    Ok((env, config_chunks))
}

/// An agent configuration as the environment variables that carry it: base64, in as many
/// `VAULT_CONFIG` chunks as it needs (see [`config_env_chunks`]).
pub(super) fn config_vars(config: &str) -> Vec<EnvVar> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(config);
    config_env_chunks(&encoded)
        .iter()
        .map(|(name, value)| plain(name, value))
        .collect()
}

/// The encoded configuration as `(name, value)` environment variables (not upstream when split).
///
/// One `VAULT_CONFIG`, exactly as upstream, while `VAULT_CONFIG=<value>` and its NUL fit in
/// [`MAX_ENV_STRING`]. Beyond that (many templates) the container would
/// never start, so the value is cut into [`CONFIG_CHUNK_LEN`] pieces `VAULT_CONFIG`,
/// `VAULT_CONFIG_1`, `VAULT_CONFIG_2`, ... that [`container_arg`] joins again.
pub fn config_env_chunks(encoded: &str) -> Vec<(String, &str)> {
    if CONFIG_ENV.len() + 1 + encoded.len() < MAX_ENV_STRING {
        return vec![(CONFIG_ENV.to_owned(), encoded)];
    }
    // Base64 is ASCII, so every byte offset is a char boundary.
    encoded
        .as_bytes()
        .chunks(CONFIG_CHUNK_LEN)
        .enumerate()
        .map(|(i, chunk)| {
            let name = if i == 0 {
                CONFIG_ENV.to_owned()
            } else {
                format!("{CONFIG_ENV}_{i}")
            };
            (name, std::str::from_utf8(chunk).unwrap_or_default())
        })
        .collect()
}

/// The container's shell command for a configuration held in `chunks` variables, running the
/// `cli` agent: upstream's [`DEFAULT_CONTAINER_ARG`] for one chunk and `vault`, else the same
/// with every chunk echoed in order, as one word (`echo` is a shell builtin, so the joined
/// value never passes through `execve`).
pub fn container_arg(chunks: usize, cli: &str) -> String {
    format!(
        "{} && {cli} agent -config={HOME_PATH}/config.json",
        decode_config_to(chunks, &format!("{HOME_PATH}/config.json"))
    )
}

/// The shell command that writes the configuration held in `chunks` variables to `file`.
pub(super) fn decode_config_to(chunks: usize, file: &str) -> String {
    let joined: String = (0..chunks.max(1))
        .map(|i| {
            if i == 0 {
                format!("${{{CONFIG_ENV}?}}")
            } else {
                format!("${{{CONFIG_ENV}_{i}?}}")
            }
        })
        .collect();
    format!("echo {joined} | base64 -d > {file}")
}

/// `s` as one literal shell word: unchanged when it holds only characters no shell treats
/// specially (every ordinary URL and path, so upstream's unquoted preStop text is kept for
/// them), else [`shell_quote`]d. Upstream pastes the values in unquoted, so `service: "x; id"`
/// ran `id` in the agent on shutdown and a value with a space broke the revocation.
pub(super) fn shell_word(s: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(shell_quote(s))
    }
}

/// POSIX single quoting: `'...'`, with each `'` written as `'\''`.
pub(super) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Upstream's `decodeIfBase64`: the decoded bytes when `s` is base64, else `s` itself. Go's
/// `base64.StdEncoding.DecodeString` ignores line breaks and non-zero trailing bits.
pub(super) fn decode_if_base64(s: &str) -> String {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let compact: String = s.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    match LENIENT.decode(compact) {
        Ok(bytes) => go_json_string(&bytes),
        Err(_) => s.to_owned(),
    }
}

/// The text Go's `encoding/json` writes for a Go string holding `bytes`: upstream keeps the
/// decoded bytes in a string whatever they are, and the JSON encoder replaces every byte that
/// does not start a valid UTF-8 sequence with U+FFFD, one per byte (Rust's lossy conversion
/// would merge a truncated sequence into one replacement).
pub(super) fn go_json_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid_up_to` bytes are UTF-8 by definition.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                rest = after.get(1..).unwrap_or_default();
            }
        }
    }
}
