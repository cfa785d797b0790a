//! The HTTPS webhook server (server.md §4, mutation.md §1): `/mutate`, `/health/ready` and the
//! telemetry path, over rustls with HTTP/1.1 and HTTP/2, graceful shutdown on SIGTERM/SIGINT.
//!
//! This is the I/O shell around [`admission::review`]: it checks the HTTP envelope (content
//! type, body size), hands the body to the pure core, writes the reply and keeps the metrics.
//! It never logs a request body or an annotation value: templates can hold secrets.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown, Watcher};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;

use crate::admission::{self, Outcome};
use crate::certmanager::{CertManagerError, CertSource};
use crate::goparse::go_quote;
use crate::logging::HANDLER;
use crate::metrics::{Metrics, MetricsError};
use crate::settings::{AgentDefaults, DEFAULT_MAX_REQUESTS_IN_FLIGHT, Settings};
use crate::tls::{self, CertStore, TlsError};

/// Largest `/mutate` body accepted. A Pod in an AdmissionReview is far smaller; the API server
/// itself caps requests at 3 MiB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Time limits and sizes that keep a slow or hostile client from holding resources forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted `/mutate` body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Time for a client to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time for an HTTP/1 client to send a request's headers, measured from when the server
    /// starts waiting for them (so it also closes idle keep-alive connections), and for an
    /// HTTP/2 client to send its connection preface.
    pub header_read_timeout: Duration,
    /// Time for a client to send a whole `/mutate` body.
    pub body_read_timeout: Duration,
    /// An HTTP/2 connection on which no request has started or ended for this long, and none
    /// is in flight (checked once per period, so after one to two of them), is closed
    /// gracefully with GOAWAY. HTTP/2 has no header
    /// timeout after the preface, and a peer that answers pings would otherwise keep an idle
    /// connection forever. (Idle HTTP/1.1 connections fall under `header_read_timeout`.)
    pub http2_idle_timeout: Duration,
    /// How long a shutdown waits for requests in flight before closing their connections.
    pub shutdown_grace: Duration,
    /// How long a SIGTERM'd server keeps serving before it stops accepting (`-shutdown-delay`;
    /// see [`Server::start_draining`]).
    pub shutdown_delay: Duration,
    /// Most `/mutate` requests handled at once (from reading the body to the reply); beyond it
    /// the server answers 503 at once rather than queueing past the API server's timeout.
    pub max_in_flight: usize,
    /// Most bytes of request bodies buffered at once, all `/mutate` requests together (buffer
    /// capacity, counted before it is allocated); a body that would pass it gets 503. Without
    /// it, `max_in_flight` hostile clients could each make the server hold `max_body_bytes`.
    pub max_buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            // The API server gives a webhook at most 30 s; a body still arriving then is useless.
            body_read_timeout: Duration::from_secs(30),
            // Below the API server's 90 s idle-connection reuse; it reconnects transparently.
            http2_idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
            max_in_flight: DEFAULT_MAX_REQUESTS_IN_FLIGHT,
            // 16 bodies at the size limit, or thousands of real ones (a large pod's review is
            // about 22 kB).
            max_buffered_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The server could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The certificate source (disk files, or auto-TLS) could not start or stopped for good.
    #[error(transparent)]
    Certificates(#[from] CertManagerError),
    /// The certificate files could not be loaded, or rustls refused the configuration.
    #[error("Failed to configure TLS: {0}")]
    Tls(#[from] TlsError),
    /// The listen address could not be bound.
    #[error("Error listening on {}: {source}", go_quote(.addr))]
    Bind {
        /// The listen setting (`:8080`, `127.0.0.1:8443`, ...).
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The metrics registry could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The Kubernetes client for `-namespace-defaults` or `-missed-injection-watcher` could not
    /// be built.
    #[error(transparent)]
    Kube(#[from] crate::cluster::KubeError),
    /// SIGTERM/SIGINT handlers could not be installed.
    #[error("could not install the SIGTERM/SIGINT handlers: {0}")]
    Signals(#[source] io::Error),
}

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
const VAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Logs the Vault address the agents are given, and warns when the injector cannot connect
/// to it. The injector itself never talks to Vault, so a wrong address would otherwise show
/// only in the agents' logs, pod by pod; from the injector's namespace an address that does not
/// resolve or answer is usually wrong for the pods too. Only a warning: a NetworkPolicy may let
/// the agents through and not the injector.
async fn check_vault_address(address: String) {
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
async fn start_watchers(
    server: &Server,
    namespace_defaults: bool,
    missed_injection_watcher: bool,
) -> Result<(), ServeError> {
    if !namespace_defaults && !missed_injection_watcher {
        return Ok(());
    }
    let client = crate::cluster::client().await?;
    if namespace_defaults {
        let cache = crate::namespaces::NamespaceCache::start(client.clone());
        if !cache.wait_synced(Duration::from_secs(10)).await {
            tracing::warn!(target: HANDLER, "Namespace cache not synced yet; injections are refused until it is");
        }
        let _ = server.ctx.namespaces.set(cache);
    }
    if missed_injection_watcher {
        let counter = server.metrics().missed_injections()?;
        tokio::spawn(crate::missed::run(client, counter));
    }
    Ok(())
}

/// Serves on `listener` with the certificates in `certs` until `shutdown` completes, then shuts
/// down gracefully. This is [`serve`] without the process concerns (files, binding, signals),
/// for embedding and tests.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    certs: CertStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    Server::new(settings, certs)?.run(listener, shutdown).await
}

/// Binds a Go-style listen setting.
///
/// - An empty host (`:8080`, the chart's and the default setting) listens on every interface,
///   IPv4 and IPv6, as Go's listener does: one IPv6 socket on `[::]` with `IPV6_V6ONLY` off,
///   so IPv4 clients arrive as IPv4-mapped addresses whatever the host's `bindv6only` default.
///   A host without IPv6 gets an IPv4 listener on `0.0.0.0` instead, with a log line.
/// - `[::]:P` is dual-stack in the same way (but does not fall back: IPv6 was asked for).
/// - Anything else is used as given: `0.0.0.0:P` is IPv4 only, `[::1]:P` IPv6 only, a host
///   name is resolved and the first address that binds is used.
pub async fn bind(listen: &str) -> Result<TcpListener, ServeError> {
    let failed = |addr: &str, source: io::Error| ServeError::Bind {
        addr: addr.to_owned(),
        source,
    };
    let wildcard = |port: u16| SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    if let Some(port) = listen.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| {
            failed(
                listen,
                io::Error::new(io::ErrorKind::InvalidInput, "invalid port"),
            )
        })?;
        return match dual_stack(wildcard(port)) {
            Ok(listener) => Ok(listener),
            // Another process has the port: IPv4 would fail the same way, and saying
            // "no IPv6" would hide the cause.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(failed(listen, e)),
            Err(e) => {
                tracing::warn!(
                    target: HANDLER,
                    Error = %e,
                    "IPv6 is not available on this host; listening on IPv4 only (0.0.0.0:{port})"
                );
                let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port));
                TcpListener::bind(v4).await.map_err(|e| failed(listen, e))
            }
        };
    }
    if let Ok(addr) = listen.parse::<SocketAddr>()
        && addr.ip() == std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    {
        return dual_stack(addr).map_err(|e| failed(listen, e));
    }
    TcpListener::bind(listen)
        .await
        .map_err(|e| failed(listen, e))
}

/// A listening IPv6 socket on `addr` that also accepts IPv4 (`IPV6_V6ONLY` off), with
/// `SO_REUSEADDR` and the backlog tokio's own `bind` uses.
fn dual_stack(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// A configured server, ready to run on a listener.
#[derive(Clone)]
pub struct Server {
    ctx: Arc<Ctx>,
}

impl Server {
    /// The first part of a shutdown: from now on `/health/ready` reports not ready, while every
    /// request is still served. `serve` keeps it so for `-shutdown-delay` after SIGTERM: a pod
    /// being deleted leaves its Service's endpoints at about the time it gets SIGTERM, but the
    /// API server routes webhook calls by what it last saw of them, and a replica that stopped
    /// accepting at once would refuse the calls still on their way, which a `failurePolicy:
    /// Fail` webhook turns into refused pods.
    pub fn start_draining(&self) {
        self.ctx
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("limits", &self.ctx.limits)
            .finish_non_exhaustive()
    }
}

struct Ctx {
    /// Set at SIGTERM: `/health/ready` answers 503 while requests are still served.
    draining: std::sync::atomic::AtomicBool,
    agent: AgentDefaults,
    /// `-namespace-defaults` (not upstream): set once at start when the feature is on.
    namespaces: std::sync::OnceLock<crate::namespaces::NamespaceCache>,
    telemetry_path: Option<String>,
    metrics: Metrics,
    certs: CertStore,
    limits: Limits,
    /// One permit per `/mutate` request being handled ([`Limits::max_in_flight`]).
    in_flight: tokio::sync::Semaphore,
    /// One permit per byte of request body buffered ([`Limits::max_buffered_bytes`]).
    body_budget: tokio::sync::Semaphore,
    acceptor: TlsAcceptor,
    http: auto::Builder<TokioExecutor>,
}

impl Server {
    /// Builds the TLS configuration and metrics with the default [`Limits`] and the in-flight
    /// limit of the settings.
    pub fn new(settings: Settings, certs: CertStore) -> Result<Self, ServeError> {
        let limits = Limits {
            max_in_flight: settings.server.max_requests_in_flight,
            shutdown_delay: settings.server.shutdown_delay,
            ..Limits::default()
        };
        Self::with_limits(settings, certs, limits)
    }

    /// Builds the TLS configuration and metrics with the given limits.
    pub fn with_limits(
        settings: Settings,
        certs: CertStore,
        limits: Limits,
    ) -> Result<Self, ServeError> {
        let tls_config = tls::server_config(&settings.server, &certs)?;
        let metrics = Metrics::new()?;

        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        // Pings find dead HTTP/2 peers, which would otherwise hold their connection forever.
        // The stream and header limits are hyper's and h2's current defaults, spelled out so an
        // upgrade cannot loosen them (SECURITY.md lists them): 200 streams per connection stays
        // below the default in-flight limit, so one connection cannot take every slot.
        http.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(20))
            .max_concurrent_streams(200)
            .max_header_list_size(16 * 1024)
            // CVE-2023-44487 (rapid reset): GOAWAY after 20 streams reset before being served.
            .max_pending_accept_reset_streams(20)
            .max_local_error_reset_streams(1024);

        let server = &settings.server;
        Ok(Self {
            ctx: Arc::new(Ctx {
                draining: std::sync::atomic::AtomicBool::new(false),
                telemetry_path: (!server.telemetry_path.is_empty())
                    .then(|| server.telemetry_path.clone()),
                agent: settings.agent,
                namespaces: std::sync::OnceLock::new(),
                metrics,
                certs,
                limits,
                // `Semaphore::new` panics above MAX_PERMITS; no limit that high is meaningful.
                in_flight: tokio::sync::Semaphore::new(
                    limits
                        .max_in_flight
                        .min(tokio::sync::Semaphore::MAX_PERMITS),
                ),
                body_budget: tokio::sync::Semaphore::new(
                    limits
                        .max_buffered_bytes
                        .min(tokio::sync::Semaphore::MAX_PERMITS),
                ),
                acceptor: TlsAcceptor::from(Arc::new(tls_config)),
                http,
            }),
        })
    }

    /// This server's metrics (also served on the telemetry path when one is set).
    pub fn metrics(&self) -> &Metrics {
        &self.ctx.metrics
    }

    /// Accepts connections until `shutdown` completes; then stops accepting, lets requests in
    /// flight finish (up to [`Limits::shutdown_grace`]) and closes every connection.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        // `graceful` counts the connections and waits for them; `stop` tells each one to finish
        // (each connection task drives its own graceful shutdown, see `drive`).
        let graceful = GracefulShutdown::new();
        let (stop, _) = tokio::sync::watch::channel(());
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                // Reap finished connection tasks so the set does not grow without bound.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        connections.spawn(serve_connection(
                            Arc::clone(&self.ctx),
                            tcp,
                            peer,
                            graceful.watcher(),
                            stop.subscribe(),
                        ));
                    }
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(target: HANDLER, Error = %e, "error accepting connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop.send(());
        tracing::info!(
            target: HANDLER,
            Connections = graceful.count() as u64,
            "Shutting down: no longer accepting connections, finishing requests in flight"
        );
        if tokio::time::timeout(self.ctx.limits.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                target: HANDLER,
                "requests still in flight after the shutdown grace period; closing their connections"
            );
        }
        connections.shutdown().await;
        tracing::info!(target: HANDLER, "Server stopped");
        Ok(())
    }
}

/// One client connection: TLS handshake (bounded), then HTTP/2 or HTTP/1.1 as negotiated by
/// ALPN, watched for graceful shutdown.
async fn serve_connection(
    ctx: Arc<Ctx>,
    tcp: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
    stop: tokio::sync::watch::Receiver<()>,
) {
    // Counted as open (for the shutdown wait) until this task ends.
    let _watcher = watcher;
    // Replies are small and latency matters more than packet count.
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(ctx.limits.tls_handshake_timeout, ctx.acceptor.accept(tcp))
        .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            // Probes and port scans close without a handshake; that is noise. A TLS alert
            // (e.g. the API server not trusting our certificate) is worth seeing.
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) {
                tracing::debug!(target: HANDLER, Peer = %peer, Error = %e, "TLS handshake error");
            } else {
                tracing::warn!(target: HANDLER, Peer = %peer, Error = %e, "TLS handshake error");
            }
            return;
        }
        Err(_) => {
            tracing::debug!(target: HANDLER, Peer = %peer, "TLS handshake timed out");
            return;
        }
    };
    // Choosing the protocol from ALPN (rather than sniffing the first bytes, the auto builder's
    // default) means a client that sends nothing is always under one of our timeouts.
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let service_ctx = Arc::clone(&ctx);
    let activity = Arc::new(Activity::default());
    let service_activity = Arc::clone(&activity);
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&service_ctx);
        let busy = service_activity.start();
        async move {
            let reply = handle(&ctx, req).await;
            drop(busy);
            Ok::<_, Infallible>(reply)
        }
    });
    let result = if h2 {
        let http = ctx.http.clone().http2_only();
        let io = PrefaceDeadline::new(tls, ctx.limits.header_read_timeout);
        let idle = Some((activity.as_ref(), ctx.limits.http2_idle_timeout));
        drive(http.serve_connection(TokioIo::new(io), service), stop, idle).await
    } else {
        let http = ctx.http.clone().http1_only();
        drive(
            http.serve_connection(TokioIo::new(tls), service),
            stop,
            None,
        )
        .await
    };
    if let Err(e) = result {
        tracing::debug!(target: HANDLER, Peer = %peer, Error = %e, "connection closed with an error");
    }
}

/// Runs a connection to its end, shutting it down gracefully (HTTP/2 GOAWAY, or HTTP/1.1
/// close after the request in flight) when the server stops, or with `idle`, when no request
/// has started or ended on it for a whole period and none is in flight.
async fn drive<C: GracefulConnection>(
    conn: C,
    mut stop: tokio::sync::watch::Receiver<()>,
    idle: Option<(&Activity, Duration)>,
) -> Result<(), C::Error> {
    let mut conn = std::pin::pin!(conn);
    let mut ticker = idle.map(|(_, period)| {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    let mut last_seen = 0;
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => return result,
            // A dropped sender means the server is gone too: stop either way.
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            Some(()) = async {
                match ticker.as_mut() {
                    Some(t) => {
                        t.tick().await;
                        Some(())
                    }
                    None => std::future::pending().await,
                }
            }, if !closing => {
                if let Some((activity, _)) = idle {
                    let events = activity.events.load(Ordering::Relaxed);
                    if activity.in_flight.load(Ordering::Relaxed) == 0 && events == last_seen {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    last_seen = events;
                }
            }
        }
    }
}

/// Requests on one connection: how many are in the handler, and a count of every start and
/// end, so "no change over a whole period" means idle for at least that period.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    events: AtomicU64,
}

impl Activity {
    fn start(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }
}

/// A request in the handler; see [`Activity`].
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Routes by exact path, ignoring the query string, like Go's `ServeMux` for these patterns.
async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Response<ReplyBody> {
    match req.uri().path() {
        "/mutate" => mutate(ctx, req).await,
        "/health/ready" => ready(ctx),
        path if ctx.telemetry_path.as_deref() == Some(path) => metrics(ctx),
        _ => text_reply(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// `/mutate`, any method (mutation.md §1).
async fn mutate(ctx: &Ctx, req: Request<Incoming>) -> Response<ReplyBody> {
    // Checked before anything else, so a refusal costs next to nothing. No Retry-After: the
    // API server's client would wait and retry; a plain 503 makes it apply the webhook's
    // failurePolicy at once.
    let Ok(_permit) = ctx.in_flight.try_acquire() else {
        ctx.metrics.record_rejection();
        let msg = format!(
            "Too many requests in flight: the limit is {} (-max-requests-in-flight); try again later",
            ctx.limits.max_in_flight
        );
        tracing::warn!(target: HANDLER, Warn = %msg, Code = 503_u64, "warning for request");
        return text_reply(StatusCode::SERVICE_UNAVAILABLE, &msg);
    };
    let url = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path(), |pq| pq.as_str());
    tracing::info!(target: HANDLER, Method = %req.method(), URL = %url, "Request received");
    // Queue gauge up now, down (with the duration recorded) on every way out of this function.
    let _timer = ctx.metrics.start_request();

    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if content_type != b"application/json" {
        let msg = format!(
            "Invalid content-type: {}",
            go_quote(&String::from_utf8_lossy(content_type))
        );
        tracing::warn!(target: HANDLER, Warn = %msg, Code = 400_u64, "warning for request");
        return text_reply(StatusCode::BAD_REQUEST, &msg);
    }

    let head = req.method() == Method::HEAD;
    // The budget share is held until the review is done with the body.
    let (body, _buffered) = match read_body(req.into_body(), &ctx.limits, &ctx.body_budget).await {
        Ok(read) => read,
        Err(e) => {
            let (status, msg) = match &e {
                BodyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
                BodyError::Read(_) | BodyError::TimedOut(_) => {
                    (StatusCode::BAD_REQUEST, e.to_string())
                }
                BodyError::OverBudget(_) => {
                    ctx.metrics.record_rejection();
                    (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                }
            };
            tracing::error!(target: HANDLER, Error = %msg, Code = u64::from(status.as_u16()), "error on request");
            return text_reply(status, &msg);
        }
    };
    if body.is_empty() {
        let msg = "Empty request body";
        tracing::error!(target: HANDLER, Error = msg, Code = 400_u64, "error on request");
        return text_reply(StatusCode::BAD_REQUEST, msg);
    }

    let namespace_defaults = |namespace: &str| match ctx.namespaces.get() {
        Some(cache) => cache.lookup(namespace),
        None => admission::NamespaceDefaults::Off,
    };
    match admission::review_with(&body, &ctx.agent, &namespace_defaults) {
        Ok(reviewed) => {
            ctx.metrics
                .record_outcome(&reviewed.namespace, &reviewed.outcome);
            log_decision(&reviewed);
            let mut body = ReplyBody::new(reviewed.body);
            if !head {
                body = body.count_failure_if_undelivered(ctx.metrics.clone(), reviewed.namespace);
            }
            let mut resp = Response::new(body);
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // Only the error kind: a decode error's detail can quote the request body.
            let kind = match e {
                admission::ReviewError::Decode(_) => "error decoding admission request",
                admission::ReviewError::NoRequest => "the AdmissionReview has no request",
            };
            tracing::error!(target: HANDLER, Error = kind, Code = u64::from(status.as_u16()), "error on request");
            text_reply(status, &e.to_string())
        }
    }
}

/// The review's decision: refusals at warn, the others at debug, each with the namespace and
/// the pod. Only names, the injection type and reasons are logged: a refusal is the message
/// the API server shows the user, which the core writes naming annotations and values, never
/// quoting template contents; a skip reason is one of a few fixed sentences.
fn log_decision(reviewed: &admission::Reviewed) {
    let pod = if reviewed.pod_name.is_empty() {
        "<unnamed>"
    } else {
        reviewed.pod_name.as_str()
    };
    let namespace = reviewed.namespace.as_str();
    match &reviewed.outcome {
        Outcome::Denied(reason) => {
            tracing::warn!(target: HANDLER, Namespace = %namespace, Pod = %pod, Reason = %reason, "Pod refused");
        }
        Outcome::Skipped(reason) => {
            tracing::debug!(target: HANDLER, Namespace = %namespace, Pod = %pod, Reason = %reason, "Not injecting");
        }
        Outcome::Injected(kind) => {
            let kind = kind.map_or("volumes only", |k| k.label());
            tracing::debug!(target: HANDLER, Namespace = %namespace, Pod = %pod, InjectionType = kind, "Injected");
        }
    }
}

#[derive(Debug, Error)]
enum BodyError {
    /// Content-Length or the bytes received exceed the limit.
    #[error("Request body too large: the limit is {0} bytes")]
    TooLarge(usize),
    /// The client stopped sending.
    #[error("error reading request body: no complete body within {0:?}")]
    TimedOut(Duration),
    /// The connection failed mid-body.
    #[error("error reading request body: {0}")]
    Read(String),
    /// Buffering this body would take the bodies being read past [`Limits::max_buffered_bytes`].
    #[error(
        "Too many request bytes in flight: the limit is {0} bytes for all bodies together; try again later"
    )]
    OverBudget(usize),
}

/// Reads the whole body, refusing at once a declared length over the limit and otherwise
/// stopping as soon as the limit is crossed, so an oversized body is never buffered. Every byte
/// of buffer capacity is first taken from `budget` (shared by all requests); the returned
/// permit gives it back when dropped.
async fn read_body<'a>(
    mut body: Incoming,
    limits: &Limits,
    budget: &'a tokio::sync::Semaphore,
) -> Result<(Bytes, BodyBudget<'a>), BodyError> {
    let max = limits.max_body_bytes;
    // hyper's size hint is exact when the client declared Content-Length.
    let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    if declared > max {
        return Err(BodyError::TooLarge(max));
    }
    let mut held = BodyBudget {
        budget,
        permit: None,
        bytes: 0,
        total: limits.max_buffered_bytes,
    };
    held.grow(declared)?;
    let mut buf = Vec::with_capacity(declared);
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            // Trailers carry nothing the webhook reads.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let needed = buf.len() + data.len();
            if needed > max {
                return Err(BodyError::TooLarge(max));
            }
            if needed > buf.capacity() {
                // Doubling, as `Vec` would, but capped, and paid for before allocating.
                let capacity = needed.max(buf.capacity() * 2).min(max);
                held.grow(capacity)?;
                buf.reserve_exact(capacity - buf.len());
            }
            buf.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(())) => Ok((Bytes::from(buf), held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::TimedOut(limits.body_read_timeout)),
    }
}

/// A request's share of [`Limits::max_buffered_bytes`], returned when dropped.
struct BodyBudget<'a> {
    budget: &'a tokio::sync::Semaphore,
    permit: Option<tokio::sync::SemaphorePermit<'a>>,
    bytes: usize,
    total: usize,
}

impl BodyBudget<'_> {
    /// Holds `bytes` in all, taking more from the budget if needed, without waiting.
    fn grow(&mut self, bytes: usize) -> Result<(), BodyError> {
        if bytes <= self.bytes {
            return Ok(());
        }
        let more =
            u32::try_from(bytes - self.bytes).map_err(|_| BodyError::OverBudget(self.total))?;
        let permit = self
            .budget
            .try_acquire_many(more)
            .map_err(|_| BodyError::OverBudget(self.total))?;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.bytes = bytes;
        Ok(())
    }
}

/// `/health/ready`: 204 once a certificate is loaded, until the server starts shutting down.
fn ready(ctx: &Ctx) -> Response<ReplyBody> {
    if ctx.draining.load(std::sync::atomic::Ordering::Relaxed) {
        text_reply(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if ctx.certs.is_loaded() {
        let mut resp = Response::new(ReplyBody::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp
    } else {
        text_reply(StatusCode::SERVICE_UNAVAILABLE, "no certificate loaded yet")
    }
}

/// The telemetry path: Prometheus text exposition.
fn metrics(ctx: &Ctx) -> Response<ReplyBody> {
    match ctx.metrics.encode() {
        Ok(text) => {
            let mut resp = Response::new(ReplyBody::new(text));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(Metrics::content_type()),
            );
            resp
        }
        Err(e) => {
            tracing::error!(target: HANDLER, Error = %e, "error on request");
            text_reply(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// Go's `http.Error`: plain text, the message and a newline, `nosniff`.
fn text_reply(status: StatusCode, msg: &str) -> Response<ReplyBody> {
    let mut resp = Response::new(ReplyBody::new(format!("{msg}\n")));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Writes a startup line on stdout, as upstream's UI does. A closed stdout is not worth dying
/// for (and `println!` would panic).
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Completes on the first SIGTERM or SIGINT. Installed before serving so a signal arriving
/// during startup is not lost to the default handler.
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServeError> {
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

/// A complete in-memory reply body. For `/mutate` replies it also counts a failed injection
/// when the connection goes away before hyper took the body to write it: the nearest
/// observable equivalent of upstream counting a failed `w.Write`.
struct ReplyBody {
    data: Option<Bytes>,
    on_undelivered: Option<(Metrics, String)>,
}

impl ReplyBody {
    fn new(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self {
            // An empty body is "no frames", so 204 replies stay bodiless.
            data: (!data.is_empty()).then_some(data),
            on_undelivered: None,
        }
    }

    fn empty() -> Self {
        Self {
            data: None,
            on_undelivered: None,
        }
    }

    fn count_failure_if_undelivered(mut self, metrics: Metrics, namespace: String) -> Self {
        self.on_undelivered = Some((metrics, namespace));
        self
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

impl Drop for ReplyBody {
    fn drop(&mut self) {
        if self.data.is_some()
            && let Some((metrics, namespace)) = self.on_undelivered.take()
        {
            tracing::error!(target: HANDLER, Namespace = %namespace, "error writing response: the connection closed first");
            metrics.record_failure(&namespace);
        }
    }
}

/// Fails the read side of an HTTP/2 connection whose client has not sent the 24-byte
/// connection preface within the deadline. hyper's HTTP/2 server has no such timeout, so
/// without this a client could complete TLS, negotiate `h2` and then hold the connection by
/// sending nothing. Once the preface is in, HTTP/2 keep-alive pings take over.
struct PrefaceDeadline<I> {
    inner: I,
    remaining: usize,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<I> PrefaceDeadline<I> {
    const PREFACE_LEN: usize = 24;

    fn new(inner: I, timeout: Duration) -> Self {
        Self {
            inner,
            remaining: Self::PREFACE_LEN,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for PrefaceDeadline<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                self.remaining = self.remaining.saturating_sub(read);
                if self.remaining == 0 {
                    self.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let expired = self
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client sent no HTTP/2 connection preface in time",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for PrefaceDeadline<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Whether this host can listen on IPv6 loopback at all (some CI sandboxes cannot).
    fn host_has_ipv6() -> bool {
        std::net::TcpListener::bind("[::1]:0").is_ok()
    }

    /// A port nothing listens on at the time of the call.
    fn free_port() -> u16 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    }

    async fn connects(addr: &str) -> bool {
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    #[tokio::test]
    async fn an_empty_host_accepts_ipv4_and_ipv6_like_go() {
        let port = free_port();
        let listener = bind(&format!(":{port}")).await.unwrap();
        let accept = tokio::spawn(async move {
            for _ in 0..2 {
                let _ = listener.accept().await.unwrap();
            }
        });
        assert!(connects(&format!("127.0.0.1:{port}")).await);
        if host_has_ipv6() {
            assert!(connects(&format!("[::1]:{port}")).await);
        } else {
            assert!(connects(&format!("127.0.0.1:{port}")).await);
        }
        accept.await.unwrap();
    }

    #[tokio::test]
    async fn explicit_addresses_keep_to_their_own_stack() {
        let v4 = bind("0.0.0.0:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        assert!(v4.local_addr().unwrap().is_ipv4());
        assert!(connects(&format!("127.0.0.1:{port}")).await);
        if host_has_ipv6() {
            assert!(!connects(&format!("[::1]:{port}")).await);
            let v6 = bind("[::1]:0").await.unwrap();
            let port = v6.local_addr().unwrap().port();
            assert!(connects(&format!("[::1]:{port}")).await);
            assert!(!connects(&format!("127.0.0.1:{port}")).await);
        }
    }

    #[tokio::test]
    async fn a_taken_port_is_reported_with_the_setting() {
        let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let listen = format!(":{}", taken.local_addr().unwrap().port());
        let err = bind(&listen).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("Error listening on \"{listen}\": ")),
            "{err}"
        );
        let err = bind(":notaport").await.unwrap_err().to_string();
        assert!(err.contains("invalid port"), "{err}");
    }

    #[test]
    fn vault_urls_give_the_host_and_port_to_check() {
        let hp = |u: &str| url_host_port(u).map(|(h, p)| format!("{h} {p}"));
        assert_eq!(
            hp("https://vault.vault.svc:8200").as_deref(),
            Some("vault.vault.svc 8200")
        );
        assert_eq!(hp("http://vault").as_deref(), Some("vault 80"));
        assert_eq!(
            hp("https://vault.example.com/").as_deref(),
            Some("vault.example.com 443")
        );
        assert_eq!(hp("https://[::1]:8200").as_deref(), Some("::1 8200"));
        assert_eq!(hp("vault:8200"), None);
        assert_eq!(hp(""), None);
        assert_eq!(hp("ftp://vault"), None);
    }

    #[tokio::test]
    async fn serve_without_a_key_file_or_a_cluster_fails_before_binding() {
        let mut settings = Settings::default();
        settings.server.tls_cert_file = "/c".into();
        let err = serve(settings).await.unwrap_err().to_string();
        assert!(err.contains("AGENT_INJECT_TLS_KEY_FILE"), "{err}");
    }

    #[tokio::test]
    async fn serve_fails_at_startup_on_unreadable_cert_files() {
        let mut settings = Settings::default();
        settings.server.tls_cert_file = "/nonexistent/tls.crt".into();
        settings.server.tls_key_file = "/nonexistent/tls.key".into();
        let err = serve(settings).await.unwrap_err().to_string();
        assert!(
            err.starts_with(
                "Failed to configure TLS: could not read certificate file /nonexistent/tls.crt"
            ),
            "{err}"
        );
    }

    #[test]
    fn error_replies_are_go_http_error_shaped() {
        let resp = text_reply(StatusCode::BAD_REQUEST, "Empty request body");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(
            resp.body().data.as_deref(),
            Some(b"Empty request body\n".as_slice())
        );
    }

    #[test]
    fn an_undelivered_mutate_reply_counts_as_a_failure() {
        let metrics = Metrics::new().unwrap();
        drop(ReplyBody::new("{}").count_failure_if_undelivered(metrics.clone(), "ns".into()));
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        assert!(
            text.contains(
                "vault_agent_injector_failed_injections_by_namespace_total{namespace=\"ns\"} 1"
            ),
            "{text}"
        );

        // Taken by hyper: delivered, not counted.
        let metrics = Metrics::new().unwrap();
        let mut body =
            ReplyBody::new("{}").count_failure_if_undelivered(metrics.clone(), "ns".into());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        drop(body);
        let text = String::from_utf8(metrics.encode().unwrap()).unwrap();
        assert!(
            !text.contains("failed_injections_by_namespace_total{"),
            "{text}"
        );
    }
}
