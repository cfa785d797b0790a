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
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
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
use crate::settings::{AgentDefaults, Settings};
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
    /// How long a shutdown waits for requests in flight before closing their connections.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_BYTES,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            // The API server gives a webhook at most 30 s; a body still arriving then is useless.
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
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
        /// The address as given to the OS (`:8080` already made `0.0.0.0:8080`).
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The metrics registry could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// SIGTERM/SIGINT handlers could not be installed.
    #[error("could not install the SIGTERM/SIGINT handlers: {0}")]
    Signals(#[source] io::Error),
}

/// Runs the injector's `serve` command until SIGTERM or SIGINT: starts the certificate source
/// (disk files with reload, or auto-TLS, server.md §5) and waits for the first certificate,
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
    let addr = bind_address(&settings.server.listen);
    // Build everything that can fail before announcing the listener.
    let server = Server::new(settings, certs)?;
    let signal = shutdown_signal()?;
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;

    if !telemetry_path.is_empty() {
        say(&format!(
            "Registering telemetry path on {}",
            go_quote(&telemetry_path)
        ));
    }
    // The bound address rather than the setting, so `127.0.0.1:0` tells the caller the port.
    say(&format!("Listening on {}...", go_quote(&local.to_string())));
    // A fatal certificate error (the leader lock could not be taken) shuts down like a signal,
    // then makes the process fail.
    let (fatal_tx, mut fatal_rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        tokio::select! {
            () = signal => {}
            e = source.failed() => {
                tracing::error!(target: HANDLER, Error = %e, "Shutting down due to error");
                let _ = fatal_tx.send(e);
            }
        }
    };
    server.run(listener, shutdown).await?;
    match fatal_rx.try_recv() {
        Ok(e) => Err(e.into()),
        Err(_) => Ok(()),
    }
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

/// The address to bind for a Go-style listen setting: an empty host (`:8080`) means every IPv4
/// interface. Anything else (`127.0.0.1:0`, `[::]:8080`, `localhost:8080`) is used as given.
pub fn bind_address(listen: &str) -> String {
    if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_owned()
    }
}

/// A configured server, ready to run on a listener.
#[derive(Clone)]
pub struct Server {
    ctx: Arc<Ctx>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("limits", &self.ctx.limits)
            .finish_non_exhaustive()
    }
}

struct Ctx {
    agent: AgentDefaults,
    telemetry_path: Option<String>,
    metrics: Metrics,
    certs: CertStore,
    limits: Limits,
    acceptor: TlsAcceptor,
    http: auto::Builder<TokioExecutor>,
}

impl Server {
    /// Builds the TLS configuration and metrics with the default [`Limits`].
    pub fn new(settings: Settings, certs: CertStore) -> Result<Self, ServeError> {
        Self::with_limits(settings, certs, Limits::default())
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
        http.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(20));

        let server = &settings.server;
        Ok(Self {
            ctx: Arc::new(Ctx {
                telemetry_path: (!server.telemetry_path.is_empty())
                    .then(|| server.telemetry_path.clone()),
                agent: settings.agent,
                metrics,
                certs,
                limits,
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
        let graceful = GracefulShutdown::new();
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
async fn serve_connection(ctx: Arc<Ctx>, tcp: TcpStream, peer: SocketAddr, watcher: Watcher) {
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
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&service_ctx);
        async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
    });
    let result = if h2 {
        let http = ctx.http.clone().http2_only();
        let io = PrefaceDeadline::new(tls, ctx.limits.header_read_timeout);
        watcher
            .watch(http.serve_connection(TokioIo::new(io), service))
            .await
    } else {
        let http = ctx.http.clone().http1_only();
        watcher
            .watch(http.serve_connection(TokioIo::new(tls), service))
            .await
    };
    if let Err(e) = result {
        tracing::debug!(target: HANDLER, Peer = %peer, Error = %e, "connection closed with an error");
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
    let body = match read_body(req.into_body(), &ctx.limits).await {
        Ok(body) => body,
        Err(e) => {
            let (status, msg) = match &e {
                BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
                BodyError::Read(_) | BodyError::TimedOut(_) => {
                    (StatusCode::BAD_REQUEST, e.to_string())
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

    match admission::review(&body, &ctx.agent) {
        Ok(reviewed) => {
            ctx.metrics
                .record_outcome(&reviewed.namespace, &reviewed.outcome);
            if let Outcome::Denied(reason) = &reviewed.outcome {
                // The refusal is the message the API server shows the user; the core writes it
                // naming annotations, never quoting template contents, so it is safe to log.
                tracing::warn!(target: HANDLER, Namespace = %reviewed.namespace, Reason = %reason, "Pod refused");
            }
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

#[derive(Debug, Error)]
enum BodyError {
    /// Content-Length or the bytes received exceed the limit.
    #[error("Request body too large: the limit is {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The client stopped sending.
    #[error("error reading request body: no complete body within {0:?}")]
    TimedOut(Duration),
    /// The connection failed mid-body.
    #[error("error reading request body: {0}")]
    Read(String),
}

/// Reads the whole body, refusing at once a declared length over the limit and otherwise
/// stopping as soon as the limit is crossed, so an oversized body is never buffered.
async fn read_body(body: Incoming, limits: &Limits) -> Result<Bytes, BodyError> {
    let max = limits.max_body_bytes;
    // hyper's size hint is exact when the client declared Content-Length.
    if body.size_hint().lower() > max as u64 {
        return Err(BodyError::TooLarge);
    }
    let collect = Limited::new(body, max).collect();
    match tokio::time::timeout(limits.body_read_timeout, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Ok(Err(e)) => Err(BodyError::Read(e.to_string())),
        Err(_) => Err(BodyError::TimedOut(limits.body_read_timeout)),
    }
}

/// `/health/ready`: 204 once a certificate is loaded.
fn ready(ctx: &Ctx) -> Response<ReplyBody> {
    if ctx.certs.is_loaded() {
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

    #[test]
    fn empty_host_listens_on_every_ipv4_interface() {
        assert_eq!(bind_address(":8080"), "0.0.0.0:8080");
        assert_eq!(bind_address("127.0.0.1:0"), "127.0.0.1:0");
        assert_eq!(bind_address("[::]:8080"), "[::]:8080");
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
