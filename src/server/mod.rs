//! The HTTPS webhook server: `/mutate`, `/health/ready` and the telemetry path, over rustls
//! with HTTP/1.1 and HTTP/2, graceful shutdown on SIGTERM/SIGINT.
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
use crate::goparse::go_quote;
use crate::settings::{AgentDefaults, DEFAULT_MAX_REQUESTS_IN_FLIGHT, Settings};
use crate::telemetry::logging::HANDLER;
use crate::telemetry::metrics::{Metrics, MetricsError};
use crate::tls::certmanager::{CertManagerError, CertSource};
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
    namespaces: std::sync::OnceLock<crate::cluster::namespaces::NamespaceCache>,
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

mod body;
mod connection;
mod listen;
mod process;
mod routes;
#[cfg(test)]
mod tests;

use body::ReplyBody;
use body::{BodyError, read_body};
use connection::serve_connection;
pub use listen::bind;
pub use process::{serve, url_host_port};
use routes::handle;
