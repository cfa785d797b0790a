//! One client connection: the bounded TLS handshake, HTTP/1.1 or HTTP/2, idle and shutdown
//! handling.

use super::*;

/// One client connection: TLS handshake (bounded), then HTTP/2 or HTTP/1.1 as negotiated by
/// ALPN, watched for graceful shutdown.
pub(super) async fn serve_connection(
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
pub(super) async fn drive<C: GracefulConnection>(
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
pub(super) struct Activity {
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
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.events.fetch_add(1, Ordering::Relaxed);
    }
}

/// Fails the read side of an HTTP/2 connection whose client has not sent the 24-byte
/// connection preface within the deadline. hyper's HTTP/2 server has no such timeout, so
/// without this a client could complete TLS, negotiate `h2` and then hold the connection by
/// sending nothing. Once the preface is in, HTTP/2 keep-alive pings take over.
pub(super) struct PrefaceDeadline<I> {
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
