//! The three routes: `/mutate`, `/health/ready` and the telemetry path.

use super::*;

/// Routes by exact path, ignoring the query string, like Go's `ServeMux` for these patterns.
pub(super) async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Response<ReplyBody> {
    match req.uri().path() {
        "/mutate" => mutate(ctx, req).await,
        "/health/ready" => ready(ctx),
        path if ctx.telemetry_path.as_deref() == Some(path) => metrics(ctx),
        _ => text_reply(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// `/mutate`, any method, as upstream's handler accepts.
pub(super) async fn mutate(ctx: &Ctx, req: Request<Incoming>) -> Response<ReplyBody> {
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
pub(super) fn log_decision(reviewed: &admission::Reviewed) {
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

/// `/health/ready`: 204 once a certificate is loaded, until the server starts shutting down.
pub(super) fn ready(ctx: &Ctx) -> Response<ReplyBody> {
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
pub(super) fn metrics(ctx: &Ctx) -> Response<ReplyBody> {
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
pub(super) fn text_reply(status: StatusCode, msg: &str) -> Response<ReplyBody> {
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
