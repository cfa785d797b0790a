//! The process around a server: certificates, the listener, signals, the opt-in watches and
//! the startup check of the Vault address.

use super::*;

/// Runs the injector's `serve` command until SIGTERM or SIGINT: starts the certificate source
/// (disk files with reload, or auto-TLS) and waits for the first certificate,
/// binds `listen`, prints upstream's startup lines on stdout, and serves. Returns after a
/// graceful shutdown, or with the error that stopped auto-TLS.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    for warning in &settings.server.warnings {
        tracing::warn!(target: HANDLER, "{warning}");
    }
    let certs = CertStore::new();
    let mut source = CertSource::start(&settings.server, &certs).await?;
    source.first_certificate(&certs).await?;

    let telemetry_path = settings.server.telemetry_path.clone();
    let listen = settings.server.listen.clone();
    let vault_address = settings.agent.vault_address.clone();
    let watchers = (
        settings.server.namespace_defaults,
        settings.server.missed_injection_watcher,
    );
    // Build everything that can fail before announcing the listener.
    let server = Server::new(settings, certs)?;
    start_watchers(&server, watchers.0, watchers.1).await?;
    let signal = shutdown_signal()?;
    let shutdown_delay = server.ctx.limits.shutdown_delay;
    let listener = bind(&listen).await?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen.clone(),
        source,
    })?;

    if !telemetry_path.is_empty() {
        say(&format!(
            "Registering telemetry path on {}",
            go_quote(&telemetry_path)
        ));
    }
    // The bound address rather than the setting, so `127.0.0.1:0` tells the caller the port.
    say(&format!("Listening on {}...", go_quote(&local.to_string())));
    tokio::spawn(check_vault_address(vault_address));
    // A fatal certificate error (the leader lock could not be taken) shuts down like a signal,
    // then makes the process fail.
    let (fatal_tx, mut fatal_rx) = tokio::sync::oneshot::channel();
    let draining = server.clone();
    let shutdown = async move {
        let signalled = tokio::select! {
            () = signal => true,
            e = source.failed() => {
                tracing::error!(target: HANDLER, Error = %e, "Shutting down due to error");
                let _ = fatal_tx.send(e);
                false
            }
        };
        if signalled {
            // A replica on its way out stops managing certificates at once (the caBundle keeper
            // would otherwise restore its own CA over its successor's while it drains); the
            // certificate it holds keeps serving.
            drop(source);
            draining.start_draining();
            if !shutdown_delay.is_zero() {
                tracing::info!(target: HANDLER, Delay = ?shutdown_delay, "Shutting down: serving on while the Service stops routing here");
                tokio::time::sleep(shutdown_delay).await;
            }
        }
    };
    server.run(listener, shutdown).await?;
    match fatal_rx.try_recv() {
        Ok(e) => Err(e.into()),
        Err(_) => Ok(()),
    }
}

/// How long the startup check of the Vault address waits for a connection.
pub(super) const VAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Logs the Vault address the agents are given, and warns when the injector cannot connect
/// to it. The injector itself never talks to Vault, so a wrong address would otherwise show
/// only in the agents' logs, pod by pod; from the injector's namespace an address that does not
/// resolve or answer is usually wrong for the pods too. Only a warning: a NetworkPolicy may let
/// the agents through and not the injector.
pub(super) async fn check_vault_address(address: String) {
    tracing::info!(target: HANDLER, Address = %address, "Agents will reach Vault at this address");
    let Some((host, port)) = url_host_port(&address) else {
        tracing::warn!(target: HANDLER, Address = %address, "The Vault address is not an http or https URL with a host; the agents cannot use it");
        return;
    };
    let connect = TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(VAULT_CHECK_TIMEOUT, connect).await {
        Ok(Ok(_)) => {
            tracing::debug!(target: HANDLER, Address = %address, "The Vault address is reachable from the injector");
        }
        Ok(Err(e)) => {
            tracing::warn!(target: HANDLER, Address = %address, Error = %e, "The Vault address is not reachable from the injector (the agents may still reach it)");
        }
        Err(_) => {
            tracing::warn!(target: HANDLER, Address = %address, Error = %format!("no connection within {VAULT_CHECK_TIMEOUT:?}"), "The Vault address is not reachable from the injector (the agents may still reach it)");
        }
    }
}

/// The host and port an `http`/`https` URL connects to (the scheme's port when none is given).
pub fn url_host_port(url: &str) -> Option<(String, u16)> {
    let uri: hyper::Uri = url.parse().ok()?;
    let default_port = match uri.scheme_str()? {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), uri.port_u16().unwrap_or(default_port)))
}

/// Starts the opt-in watches (not upstream): the Namespace cache of `-namespace-defaults`
/// (waiting up to 10 s for its first list; until then injections are refused with a retry
/// message) and the `-missed-injection-watcher`.
pub(super) async fn start_watchers(
    server: &Server,
    namespace_defaults: bool,
    missed_injection_watcher: bool,
) -> Result<(), ServeError> {
    if !namespace_defaults && !missed_injection_watcher {
        return Ok(());
    }
    let client = crate::cluster::client().await?;
    if namespace_defaults {
        let cache = crate::cluster::namespaces::NamespaceCache::start(client.clone());
        if !cache.wait_synced(Duration::from_secs(10)).await {
            tracing::warn!(target: HANDLER, "Namespace cache not synced yet; injections are refused until it is");
        }
        let _ = server.ctx.namespaces.set(cache);
    }
    if missed_injection_watcher {
        let counter = server.metrics().missed_injections()?;
        tokio::spawn(crate::cluster::missed::run(client, counter));
    }
    Ok(())
}

/// Writes a startup line on stdout, as upstream's UI does. A closed stdout is not worth dying
/// for (and `println!` would panic).
pub(super) fn say(line: &str) {
    use std::io::Write as _;
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Completes on the first SIGTERM or SIGINT. Installed before serving so a signal arriving
/// during startup is not lost to the default handler.
pub(super) fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServeError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
        Ok(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(target: HANDLER, Signal = name, "Received shutdown signal");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!(target: HANDLER, Signal = "ctrl-c", "Received shutdown signal");
        })
    }
}
