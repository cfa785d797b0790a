//! Request bodies read within the size and memory limits, and the reply body that counts an
//! undelivered reply as a failed injection.

use super::*;

#[derive(Debug, Error)]
pub(super) enum BodyError {
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
pub(super) async fn read_body<'a>(
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
pub(super) struct BodyBudget<'a> {
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

/// A complete in-memory reply body. For `/mutate` replies it also counts a failed injection
/// when the connection goes away before hyper took the body to write it: the nearest
/// observable equivalent of upstream counting a failed `w.Write`.
pub(super) struct ReplyBody {
    pub(super) data: Option<Bytes>,
    on_undelivered: Option<(Metrics, String)>,
}

impl ReplyBody {
    pub(super) fn new(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self {
            // An empty body is "no frames", so 204 replies stay bodiless.
            data: (!data.is_empty()).then_some(data),
            on_undelivered: None,
        }
    }

    pub(super) fn empty() -> Self {
        Self {
            data: None,
            on_undelivered: None,
        }
    }

    pub(super) fn count_failure_if_undelivered(
        mut self,
        metrics: Metrics,
        namespace: String,
    ) -> Self {
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
