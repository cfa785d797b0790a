//! Hostile clients against a real server on 127.0.0.1 port 0: every misbehaving client gets a
//! bounded answer or a closed connection, and meanwhile a well-behaved client (the "canary": a
//! fresh TLS connection per review, HTTP/1.1 and HTTP/2 in turn) keeps getting its reviews
//! answered.
//!
//! The server runs in this process with short timeouts ([`limits`]) so the file finishes fast.
//! No test asserts how long something took, which a loaded machine would turn into a flaky
//! failure: each shows its bound by an event instead. The reply came before the client had sent
//! its body; the server closed a connection while its client was still sending; a refusal came
//! while the requests holding the slots were still held, with a body timeout longer than any
//! wait; garbage is dropped by a server whose handshake timeout is longer than any wait. Every
//! wait is capped by [`HANG_GUARD`], only so that a broken server fails a test instead of hanging
//! it. The durations are printed, not asserted: SECURITY.md has the figures measured with them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vault_injector::server::{Limits, ServeError, Server};
use vault_injector::settings::Settings;
use vault_injector::telemetry::metrics::Metrics;
use vault_injector::tls::{CertFiles, CertStore};

use support::net;

/// The longest any test waits for a reply or a close. A safety net against hangs, not a
/// latency bound: far above every server timeout in [`limits`], so that only a server that never
/// answers (or never closes) runs into it.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Server timeouts longer than [`HANG_GUARD`]: with these, an answer or a close that came at all
/// did not come from a timeout.
const NEVER: Duration = Duration::from_secs(3600);

/// Where the JSON-patch copy bomb below is refused: the operation whose copy takes the patch past
/// its growth budget (`patch::MAX_USER_PATCH_GROWTH`), long before the last of its 30 copies.
const BOMB_STOPS_AT: &str = "operation '/9': the patch adds more than 1048576 bytes";

/// The server's timeouts in these tests: short, so the file runs in seconds.
fn limits() -> Limits {
    Limits {
        tls_handshake_timeout: Duration::from_millis(500),
        header_read_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_secs(1),
        http2_idle_timeout: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(1),
        ..Limits::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Oversized input

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_declared_body_gets_413_before_it_is_sent() {
    let server = TestServer::start(limits()).await;
    let canary = Canary::start(&server);
    // Declares 64 MiB and keeps streaming it: the reply must come long before the end.
    let declared: usize = 64 << 20;
    let tls = server.tls(&[b"http/1.1"]).await;
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    );
    let (status, sent, elapsed) = stream_body_until_reply(tls, head, declared, false).await;
    eprintln!("declared 64 MiB: {status:?} after {elapsed:?}, {sent} body bytes sent by then");
    assert_eq!(status, Some(413));
    // The reply came long before the body was sent: it did not wait for it.
    assert!(sent < declared / 4, "sent {sent} of {declared} bytes first");
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_chunked_body_is_cut_off_at_the_limit() {
    let server = TestServer::start(limits()).await;
    let canary = Canary::start(&server);
    // No length declared: the server must count while reading and stop at 4 MiB. What it
    // reads past the limit is at most one read's worth; what the client manages to send before
    // the reply also sits in socket buffers, hence the slack.
    let offered: usize = 64 << 20;
    let tls = server.tls(&[b"http/1.1"]).await;
    let head = "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
    let (status, sent, elapsed) = stream_body_until_reply(tls, head, offered, true).await;
    eprintln!("chunked 64 MiB: {status:?} after {elapsed:?}, {sent} body bytes sent by then");
    assert_eq!(status, Some(413));
    let limit = Limits::default().max_body_bytes;
    assert!(
        sent < limit + (8 << 20),
        "sent {sent} bytes before the 413 (limit {limit})"
    );
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431_or_a_closed_connection() {
    let server = TestServer::start(limits()).await;
    let canary = Canary::start(&server);

    // HTTP/1.1: one 1 MiB header, then 2,000 small headers.
    let huge = format!(
        "GET /health/ready HTTP/1.1\r\nHost: localhost\r\nX-Junk: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many = format!(
        "GET /health/ready HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
        (0..2000)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    for head in [huge, many] {
        let started = Instant::now();
        let mut tls = server.tls(&[b"http/1.1"]).await;
        // The server may answer and close before it has read everything: ignore write errors.
        let _ = tls.write_all(head.as_bytes()).await;
        let status = read_status(&mut tls, HANG_GUARD).await;
        eprintln!(
            "oversized HTTP/1.1 head ({} bytes): {status:?} after {:?}",
            head.len(),
            started.elapsed()
        );
        assert!(
            matches!(status, Ok(Some(431)) | Ok(None)),
            "{status:?} after {:?}",
            started.elapsed()
        );
    }

    // HTTP/2: a 1 MiB header against the server's 16 KiB SETTINGS_MAX_HEADER_LIST_SIZE.
    let started = Instant::now();
    let mut client = server.h2_client().await;
    let req = Request::post(server.url("/mutate"))
        .header(CONTENT_TYPE, "application/json")
        .header("x-junk", "a".repeat(1 << 20))
        .body(())
        .unwrap();
    let outcome = tokio::time::timeout(HANG_GUARD, async {
        let (response, _body) = client.send_request(req, true)?;
        response.await.map(|r| r.status())
    })
    .await
    .expect("an answer within the bound");
    eprintln!(
        "1 MiB HTTP/2 header: {outcome:?} after {:?}",
        started.elapsed()
    );
    assert!(
        !matches!(outcome, Ok(StatusCode::OK)),
        "a 1 MiB header was accepted: {outcome:?}"
    );

    canary.finish().await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Slow clients

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off_at_the_header_timeout() {
    let limits = limits();
    let server = TestServer::start(limits).await;
    let canary = Canary::start(&server);
    let mut slow = Vec::new();
    for _ in 0..20 {
        let tls = server.tls(&[b"http/1.1"]).await;
        slow.push(tokio::spawn(trickle(
            tls,
            b"POST /mutate HTTP/1.1\r\nHost: localhost\r\n".to_vec(),
            // One header byte every 50 ms, forever: progress must not extend the deadline.
            b"X".to_vec(),
        )));
    }
    // HTTP/2: a HEADERS frame without END_HEADERS, then one CONTINUATION frame every 50 ms.
    for _ in 0..10 {
        let tls = server.tls(&[b"h2"]).await;
        let mut head = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        head.extend(h2_frame(0x4, 0, 0, &[])); // SETTINGS
        head.extend(h2_frame(0x1, 0, 1, &[0x83])); // HEADERS, stream 1: `:method: POST`
        slow.push(tokio::spawn(trickle(
            tls,
            head,
            // CONTINUATION, stream 1, no END_HEADERS: `:scheme: https` again and again.
            h2_frame(0x9, 0, 1, &[0x87]),
        )));
    }
    // `trickle` only returns once the server has closed the connection, and its client never
    // stops sending: progress did not keep the connection open.
    let mut worst = Duration::ZERO;
    for task in slow {
        worst = worst.max(task.await.unwrap());
    }
    eprintln!("slowloris headers: 30 connections, each closed within {worst:?}");
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_bodies_get_400_at_the_body_timeout() {
    let limits = limits();
    let server = TestServer::start(limits).await;
    let canary = Canary::start(&server);
    let mut slow = Vec::new();
    // HTTP/1.1: a declared 10 kB body sent one byte every 50 ms.
    for _ in 0..10 {
        let server_tls = server.tls(&[b"http/1.1"]).await;
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let (mut rd, mut wr) = tokio::io::split(server_tls);
            wr.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{")
                .await
                .unwrap();
            let writer = tokio::spawn(async move {
                while wr.write_all(b" ").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            let status = read_status(&mut rd, HANG_GUARD).await;
            writer.abort();
            (status.ok().flatten(), started.elapsed())
        }));
    }
    // HTTP/2: the same over one connection, ten streams.
    let client = server.h2_client().await;
    for _ in 0..10 {
        let mut client = client.clone().ready().await.unwrap();
        let url = server.url("/mutate");
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let req = Request::post(url)
                .header(CONTENT_TYPE, "application/json")
                .body(())
                .unwrap();
            let (response, mut body) = client.send_request(req, false).unwrap();
            let writer = tokio::spawn(async move {
                body.reserve_capacity(1);
                while body.send_data(Bytes::from_static(b" "), false).is_ok() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            let status = tokio::time::timeout(HANG_GUARD, response)
                .await
                .ok()
                .and_then(Result::ok)
                .map(|r| r.status().as_u16());
            writer.abort();
            (status, started.elapsed())
        }));
    }
    // The bodies never end, so a 400 can only be the body timeout's.
    let mut worst = Duration::ZERO;
    for task in slow {
        let (status, elapsed) = task.await.unwrap();
        assert_eq!(status, Some(400), "after {elapsed:?}");
        worst = worst.max(elapsed);
    }
    eprintln!("slowloris bodies: 20 requests, each answered 400 within {worst:?}");
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_tls_handshakes_are_dropped_at_the_handshake_timeout() {
    let limits = limits();
    let server = TestServer::start(limits).await;
    let canary = Canary::start(&server);
    let mut stalled = Vec::new();
    for i in 0..100 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        // Half of them start a ClientHello (a record header announcing 512 bytes, then 5 of
        // them); the others send nothing at all.
        if i % 2 == 0 {
            tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03])
                .await
                .unwrap();
        }
        stalled.push(tokio::spawn(async move {
            let started = Instant::now();
            closed_by_server(&mut tcp).await;
            started.elapsed()
        }));
    }
    let mut worst = Duration::ZERO;
    for task in stalled {
        worst = worst.max(task.await.unwrap());
    }
    eprintln!("stalled TLS handshakes: 100 connections, each closed within {worst:?}");
    canary.finish().await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Many connections, HTTP/2 abuse

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_connections_are_closed_and_starve_no_one() {
    let limits = limits();
    let server = TestServer::start(limits).await;
    let canary = Canary::start(&server);
    let started = Instant::now();
    let mut idle = Vec::new();
    for i in 0..400 {
        let addr = server.addr;
        match i % 4 {
            // TCP only.
            0 => {
                let mut tcp = TcpStream::connect(addr).await.unwrap();
                idle.push(tokio::spawn(async move {
                    closed_by_server(&mut tcp).await;
                }));
            }
            // TLS done, HTTP/1.1 negotiated, no request.
            1 => {
                let mut tls = server.tls(&[b"http/1.1"]).await;
                idle.push(tokio::spawn(async move {
                    closed_by_server(&mut tls).await;
                }));
            }
            // HTTP/2 set up (preface, SETTINGS), then no request; the client answers pings.
            3 => {
                let tls = server.tls(&[b"h2"]).await;
                let (sender, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
                    TokioExecutor::new(),
                    TokioIo::new(tls),
                )
                .await
                .unwrap();
                idle.push(tokio::spawn(async move {
                    let _sender = sender;
                    let closed = tokio::time::timeout(HANG_GUARD, conn).await;
                    assert!(closed.is_ok(), "an idle HTTP/2 connection was kept open");
                }));
            }
            // TLS done, h2 negotiated, no preface.
            _ => {
                let mut tls = server.tls(&[b"h2"]).await;
                idle.push(tokio::spawn(async move {
                    closed_by_server(&mut tls).await;
                }));
            }
        }
    }
    // Meanwhile, an HTTP/2 connection with a request every 100 ms for four idle timeouts is not
    // idle: kept open. (A fifth of the timeout between requests leaves room for a reply slowed
    // by a loaded machine; the connection is idle only after a whole timeout without one.)
    let busy = {
        let tls = server.tls(&[b"h2"]).await;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        let url = server.url("/health/ready");
        let requests = 4 * limits.http2_idle_timeout.as_millis() / 100;
        for _ in 0..requests {
            let req = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
            let resp = sender
                .send_request(req)
                .await
                .expect("busy connection kept");
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        conn
    };
    assert!(!busy.is_finished(), "a busy HTTP/2 connection was closed");
    for task in idle {
        task.await.unwrap();
    }
    eprintln!(
        "idle connections: 400 opened and all closed by the server within {:?}",
        started.elapsed()
    );
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_is_bounded() {
    let server = TestServer::start(limits()).await;
    let canary = Canary::start(&server);
    let started = Instant::now();
    // CVE-2023-44487: open a stream and cancel it at once, as fast as possible. Either the
    // server tells the client to go away (h2 counts resets) or it keeps up; either way with no
    // request left behind in the handler. The 5 s cap only bounds this test's own run time.
    let mut client = server.h2_client().await;
    let mut opened = 0_u32;
    let outcome: Result<(), h2::Error> = async {
        for i in 0..20_000_u32 {
            client = client.ready().await?;
            let req = Request::post(server.url("/mutate"))
                .header(CONTENT_TYPE, "application/json")
                .header("x-uid", i.to_string())
                .body(())
                .unwrap();
            let (_response, mut body) = client.send_request(req, false)?;
            body.send_reset(h2::Reason::CANCEL);
            opened += 1;
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        Ok(())
    }
    .await;
    let elapsed = started.elapsed();
    eprintln!("rapid reset: {opened} streams opened and reset in {elapsed:?}: {outcome:?}");
    server.wait_for_idle().await;
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_stream_floods_are_bounded() {
    let limits = limits();
    let server = TestServer::start(limits).await;
    let canary = Canary::start(&server);

    // 1. 400 streams on one connection, each a /mutate whose body never ends. The server takes
    //    at most its SETTINGS_MAX_CONCURRENT_STREAMS (200, below the in-flight limit, so the
    //    canary is not turned away); the client queues the rest (or, had it ignored the
    //    setting, they would be refused). Each stream taken holds an in-flight slot until the
    //    body timeout, then gets 400: two waves.
    let started = Instant::now();
    let client = server.h2_client().await;
    let mut hanging = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let mut c = client.clone();
        let req = Request::post(server.url("/mutate"))
            .header(CONTENT_TYPE, "application/json")
            .body(())
            .unwrap();
        let (response, body) = c.send_request(req, false).unwrap();
        hanging.spawn(async move {
            let outcome = response.await.map(|r| r.status());
            drop(body);
            outcome
        });
    }
    let (mut answered, mut refused, mut peak) = (0, 0, 0_u64);
    let all_done = tokio::time::timeout(HANG_GUARD, async {
        while !hanging.is_empty() {
            // Sampled every 10 ms while the streams are pending.
            peak = peak.max(server.queue_length());
            if let Ok(Some(done)) =
                tokio::time::timeout(Duration::from_millis(10), hanging.join_next()).await
            {
                match done.unwrap() {
                    Ok(StatusCode::BAD_REQUEST) => answered += 1,
                    Ok(other) => panic!("a hanging stream got {other}"),
                    Err(e) => {
                        assert_eq!(e.reason(), Some(h2::Reason::REFUSED_STREAM), "{e}");
                        refused += 1;
                    }
                }
            }
        }
    })
    .await;
    assert!(
        all_done.is_ok(),
        "streams still open: {} of 400",
        hanging.len()
    );
    eprintln!(
        "stream flood: {answered} streams answered 400 at the body timeout, {refused} refused, \
         in-flight peak {peak}, all done in {:?}",
        started.elapsed()
    );
    // 200 streams, plus one canary review at most.
    assert!(peak <= 201, "in-flight peak {peak}");
    assert_eq!(answered + refused, 400);

    // 2. A flood of complete small requests, 200 at a time, for 2 s (the flood's own length,
    //    not a bound on the server).
    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let mut flooders = Vec::new();
    for _ in 0..200 {
        let client = client.clone();
        let done = Arc::clone(&done);
        let url = server.url("/mutate");
        flooders.push(tokio::spawn(async move {
            while started.elapsed() < Duration::from_secs(2) {
                let Ok(mut c) = client.clone().ready().await else {
                    return;
                };
                let req = Request::post(&url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(())
                    .unwrap();
                let Ok((response, mut body)) = c.send_request(req, false) else {
                    return;
                };
                let _ = body.send_data(Bytes::from_static(b"{}"), true);
                if let Ok(r) = response.await {
                    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in flooders {
        tokio::time::timeout(HANG_GUARD, task)
            .await
            .expect("a flood request was never answered")
            .unwrap();
    }
    eprintln!(
        "stream flood: {} requests answered in {:?}",
        done.load(Ordering::Relaxed),
        started.elapsed()
    );
    // The connection stays up through the flood (it is busy, not idle).
    assert!(
        done.load(Ordering::Relaxed) >= 500,
        "the flood was cut short"
    );
    server.wait_for_idle().await;
    canary.finish().await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Garbage

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_tls_is_dropped_at_once() {
    // No handshake timeout within the test's patience: a close can only be the garbage's doing.
    let server = TestServer::start(Limits {
        tls_handshake_timeout: NEVER,
        ..limits()
    })
    .await;
    let canary = Canary::start(&server);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut noise = vec![0_u8; 64 * 1024];
    for b in &mut noise {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "plain HTTP",
            b"POST /mutate HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("random bytes", noise),
        // A handshake record announcing 65,535 bytes: over TLS's 16 KiB record limit.
        ("oversized record", {
            let mut r = vec![0x16, 0x03, 0x01, 0xff, 0xff];
            r.extend(std::iter::repeat_n(0_u8, 1024));
            r
        }),
        (
            "SSLv2 hello",
            vec![0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15],
        ),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let started = Instant::now();
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let _ = tcp.write_all(&bytes).await;
        closed_by_server(&mut tcp).await;
        eprintln!("garbage ({what}): closed after {:?}", started.elapsed());
    }
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_that_is_not_a_review_gets_an_http_error() {
    let server = TestServer::start(limits()).await;
    let canary = Canary::start(&server);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, String, u16)> = vec![
        ("an array", "[]".into(), 500),
        ("a string", "\"AdmissionReview\"".into(), 500),
        ("an empty object", "{}".into(), 400),
        ("a null request", r#"{"request":null}"#.into(), 400),
        ("a numeric request", r#"{"request":5}"#.into(), 500),
        ("a numeric uid", r#"{"request":{"uid":5}}"#.into(), 500),
        (
            "a Pod",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{}}"#.into(),
            400,
        ),
        ("100,000 nested arrays", deep, 500),
        ("truncated JSON", r#"{"request":{"uid":"#.into(), 500),
    ];
    for (what, body, want) in cases {
        let reply = server.h1(post_json("/mutate", body)).await;
        assert_eq!(reply.0.as_u16(), want, "{what}: {}", reply.1);
    }
    // Invalid UTF-8 inside a string.
    let reply = server
        .h1(Request::post("/mutate")
            .header(HOST, "localhost")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(
                b"{\"request\":{\"uid\":\"\xff\"}}",
            )))
            .unwrap())
        .await;
    assert_eq!(reply.0, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.1);
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_whose_object_is_not_a_pod_is_answered_with_its_uid() {
    let server = TestServer::start(limits()).await;
    let canary = Canary::start(&server);
    let objects = [
        ("no object", serde_json::Value::Null),
        ("a string", serde_json::json!("pod")),
        ("an array", serde_json::json!([1, 2])),
        (
            "a ConfigMap",
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}),
        ),
        (
            "a Deployment",
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "annotations": {"vault.hashicorp.com/agent-inject": "true"}}, "spec": {"template": {"spec": {"containers": []}}}}),
        ),
        (
            "a pod whose containers are a string",
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"annotations": {"vault.hashicorp.com/agent-inject": "true"}}, "spec": {"containers": "app"}}),
        ),
    ];
    for (what, object) in objects {
        let uid = format!("uid-{}", what.replace(' ', "-"));
        let mut review: serde_json::Value = serde_json::from_str(&review_json(&uid)).unwrap();
        review["request"]["object"] = object;
        review["request"]["kind"] =
            serde_json::json!({"group": "", "version": "v1", "kind": "Whatever"});
        let (status, body) = server.h1(post_json("/mutate", review.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["response"]["uid"], uid.as_str(), "{what}: {body}");
        // Never a patch for something that is not a Pod.
        assert!(reply["response"].get("patch").is_none(), "{what}: {body}");
    }
    canary.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_patch_copy_bomb_is_refused_promptly() {
    let server = TestServer::start(limits()).await;
    let canary = Canary::start(&server);
    // 30 copies of /env onto itself, each doubling it: 2^30 copies of a 1 kB variable if
    // applied (tests/fuzz_regressions.rs has the pure version).
    let mut ops = vec![
        serde_json::json!({"op": "add", "path": "/env/-", "value": {"name": "A", "value": "x".repeat(1000)}}),
    ];
    ops.extend(
        (0..30).map(|_| serde_json::json!({"op": "copy", "from": "/env", "path": "/env/-"})),
    );
    let mut review: serde_json::Value = serde_json::from_str(&review_json("bomb")).unwrap();
    review["request"]["object"]["metadata"]["annotations"]["vault.hashicorp.com/agent-json-patch"] =
        serde_json::Value::String(serde_json::Value::Array(ops).to_string());
    let mut answers = Vec::new();
    for _ in 0..8 {
        let client = server.client();
        let body = review.to_string();
        answers.push(tokio::spawn(async move {
            let started = Instant::now();
            let (status, body) =
                tokio::time::timeout(HANG_GUARD, client.h1(post_json("/mutate", body)))
                    .await
                    .expect("the bomb was answered");
            (status, body, started.elapsed())
        }));
    }
    let mut worst = Duration::ZERO;
    for answer in answers {
        let (status, body, elapsed) = answer.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["response"]["allowed"], false, "{body}");
        // Refused where the patch crossed its growth budget, nine copies in, not after all 30.
        assert!(
            reply["response"]["status"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(BOMB_STOPS_AT)),
            "{body}"
        );
        worst = worst.max(elapsed);
    }
    eprintln!("json-patch copy bomb: 8 at once, each refused within {worst:?}");
    canary.finish().await;
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Overload

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_in_flight_limit_requests_get_503_at_once() {
    // The held requests keep their slots for longer than any wait: nothing frees one meanwhile.
    let limits = Limits {
        max_in_flight: 4,
        body_read_timeout: NEVER,
        ..limits()
    };
    let server = TestServer::start(limits).await;

    // Four requests whose bodies have not arrived hold the four slots.
    let payload = review_json("held");
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tls = server.tls(&[b"http/1.1"]).await;
        let head = format!(
            "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            payload.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        held.push(tls);
    }
    server
        .wait_for_metric("vault_agent_injector_request_queue_length 4")
        .await;

    // The fifth is refused at once, without its body being read, and counted.
    let started = Instant::now();
    let (status, body) = server.h1(post_json("/mutate", review_json("fifth"))).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body,
        "Too many requests in flight: the limit is 4 (-max-requests-in-flight); try again later\n"
    );
    eprintln!("overload: 503 in {elapsed:?}");
    // HTTP/2 too.
    let (status, _) = server.h2(review_json("sixth")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    server
        .wait_for_metric("vault_agent_injector_rejected_requests_total 2")
        .await;

    // Once the held requests complete, reviews are answered again.
    for tls in &mut held {
        tls.write_all(payload.as_bytes()).await.unwrap();
        assert_eq!(read_status(tls, HANG_GUARD).await.unwrap(), Some(200));
    }
    let (status, body) = server.h1(post_json("/mutate", review_json("after"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_buffered_at_once_share_a_byte_budget() {
    let limits = Limits {
        max_buffered_bytes: 9 << 20,
        body_read_timeout: NEVER,
        ..limits()
    };
    let server = TestServer::start(limits).await;
    let declare = |len: usize| {
        format!(
            "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    // Two clients declare 4 MiB bodies and send nothing: 8 of the 9 MiB are reserved.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tls = server.tls(&[b"http/1.1"]).await;
        tls.write_all(declare(4 << 20).as_bytes()).await.unwrap();
        held.push(tls);
    }
    server
        .wait_for_metric("vault_agent_injector_request_queue_length 2")
        .await;
    // A third is refused at once; a real review still fits in what is left.
    let started = Instant::now();
    let mut third = server.tls(&[b"http/1.1"]).await;
    third.write_all(declare(4 << 20).as_bytes()).await.unwrap();
    assert_eq!(read_status(&mut third, HANG_GUARD).await, Ok(Some(503)));
    eprintln!(
        "body budget: a third 4 MiB body refused in {:?}",
        started.elapsed()
    );
    let (status, body) = server.h1(post_json("/mutate", review_json("small"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Streamed without a length, a body is charged as its buffer grows, and refused midway.
    let tls = server.tls(&[b"http/1.1"]).await;
    let head = "POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
    let (status, sent, _) = stream_body_until_reply(tls, head, 64 << 20, true).await;
    assert_eq!(status, Some(503), "after {sent} bytes");
    server
        .wait_for_metric("vault_agent_injector_rejected_requests_total 2")
        .await;
    drop(held);
    server.wait_for_idle().await;
    // Given back: a 4 MiB declaration is read again (and refused for what it is, not for size).
    let mut tls = server.tls(&[b"http/1.1"]).await;
    tls.write_all(declare(4 << 20).as_bytes()).await.unwrap();
    tls.write_all(&vec![b' '; 4 << 20]).await.unwrap();
    assert_eq!(read_status(&mut tls, HANG_GUARD).await, Ok(Some(500)));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The well-behaved client

/// Sends a review every 20 ms on a fresh TLS connection (HTTP/1.1 and HTTP/2 in turn) until
/// [`Canary::finish`], and checks that every one is answered, with 200 and its own uid. Its
/// latency is printed, not asserted.
struct Canary {
    stop: Arc<AtomicBool>,
    task: JoinHandle<(usize, Duration)>,
}

impl Canary {
    fn start(server: &TestServer) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let client = server.client();
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let (mut count, mut worst) = (0, Duration::ZERO);
            while !flag.load(Ordering::Relaxed) || count < 3 {
                let uid = format!("canary-{count}");
                let started = Instant::now();
                let reply = async {
                    if count % 2 == 0 {
                        client.h1(post_json("/mutate", review_json(&uid))).await
                    } else {
                        client.h2(review_json(&uid)).await
                    }
                };
                let (status, body) = tokio::time::timeout(HANG_GUARD, reply)
                    .await
                    .unwrap_or_else(|_| panic!("canary review {count} was never answered"));
                let latency = started.elapsed();
                assert_eq!(status, StatusCode::OK, "canary {count}: {body}");
                assert!(body.contains(&uid), "canary {count}: {body}");
                worst = worst.max(latency);
                count += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (count, worst)
        });
        Self { stop, task }
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (count, worst) = self.task.await.expect("every canary review succeeded");
        eprintln!("canary: {count} reviews, worst latency {worst:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Raw-client helpers

/// Writes `head`, then body bytes (64 KiB at a time, HTTP/1.1 chunks when `chunked`) while
/// waiting for the reply; returns its status, how many body bytes were sent before it came and
/// how long after the head it came.
async fn stream_body_until_reply(
    tls: TlsStream<TcpStream>,
    head: String,
    total: usize,
    chunked: bool,
) -> (Option<u16>, usize, Duration) {
    let (mut rd, mut wr) = tokio::io::split(tls);
    wr.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 64 * 1024];
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend(&chunk);
        frame.extend(b"\r\n");
        while counter.load(Ordering::Relaxed) < total {
            let data = if chunked { &frame } else { &chunk };
            if wr.write_all(data).await.is_err() {
                return;
            }
            counter.fetch_add(chunk.len(), Ordering::Relaxed);
        }
    });
    let status = read_status(&mut rd, HANG_GUARD).await;
    let at_reply = sent.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    writer.abort();
    (status.ok().flatten(), at_reply, elapsed)
}

/// Writes `head`, then `piece` every 50 ms until the server closes the connection; returns how
/// long the connection stayed open. Fails if it is still open after [`HANG_GUARD`].
async fn trickle(tls: TlsStream<TcpStream>, head: Vec<u8>, piece: Vec<u8>) -> Duration {
    let started = Instant::now();
    let (mut rd, mut wr) = tokio::io::split(tls);
    wr.write_all(&head).await.unwrap();
    let writer = tokio::spawn(async move {
        while wr.write_all(&piece).await.is_ok() && wr.flush().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    closed_by_server(&mut rd).await;
    writer.abort();
    started.elapsed()
}

/// One HTTP/2 frame: 24-bit length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// Reads a reply head; `Ok(Some(status))`, `Ok(None)` when the connection closed before one
/// came, `Err(())` when neither happened within `within`.
async fn read_status(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> Result<Option<u16>, ()> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]);
                return head.split(' ').nth(1).and_then(|code| code.parse().ok());
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend(&chunk[..n]),
            }
        }
    })
    .await
    .map_err(|_| ())
}

/// Reads (and discards) until the server closes the connection; panics after [`HANG_GUARD`].
async fn closed_by_server(stream: &mut (impl AsyncRead + Unpin)) {
    assert!(
        net::closed_within(stream, HANG_GUARD).await,
        "the server never closed the connection"
    );
}

fn post_json(path: &str, body: String) -> Request<Full<Bytes>> {
    Request::post(path)
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// A review of an annotated pod that the injector injects.
fn review_json(uid: &str) -> String {
    let pod = support::pod()
        .name("app")
        .namespace("apps")
        .service_account("app")
        .ann("agent-inject-secret-db", "secret/data/db")
        .build();
    support::review(pod).uid(uid).into_json()
}

// ---------------------------------------------------------------------------------------------
// The server under test

/// What a client needs to reach the server: its address and the CA to trust.
#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    h2_config: Arc<ClientConfig>,
}

impl Client {
    async fn tls(&self, config: &Arc<ClientConfig>) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        TlsConnector::from(Arc::clone(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// One request on a fresh HTTP/1.1 connection: status and body.
    async fn h1(&self, req: Request<Full<Bytes>>) -> (StatusCode, String) {
        let tls = self.tls(&self.config).await;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// One `/mutate` POST on a fresh HTTP/2 connection: status and body.
    async fn h2(&self, body: String) -> (StatusCode, String) {
        let tls = self.tls(&self.h2_config).await;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::post(format!("https://localhost:{}/mutate", self.addr.port()))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

struct TestServer {
    addr: SocketAddr,
    client: Client,
    metrics: Metrics,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(limits: Limits) -> Self {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem) = ca.leaf();
        let files = CertFiles::new(dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&files.cert, cert_pem).unwrap();
        std::fs::write(&files.key, key_pem).unwrap();
        let mut settings = Settings::default();
        settings.server.tls_cert_file = files.cert.display().to_string();
        settings.server.tls_key_file = files.key.display().to_string();
        let certs = CertStore::new();
        certs.set(files.load().unwrap());

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::with_limits(settings, certs, limits).unwrap();
        let metrics = server.metrics().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            client: Client {
                addr,
                config: client_config(&ca.der, &[b"http/1.1"]),
                h2_config: client_config(&ca.der, &[b"h2"]),
            },
            metrics,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        self.client.clone()
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    async fn tls(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let config = if alpn == [b"h2"] {
            &self.client.h2_config
        } else {
            &self.client.config
        };
        self.client.tls(config).await
    }

    async fn h1(&self, req: Request<Full<Bytes>>) -> (StatusCode, String) {
        tokio::time::timeout(HANG_GUARD, self.client.h1(req))
            .await
            .expect("a reply")
    }

    async fn h2(&self, body: String) -> (StatusCode, String) {
        tokio::time::timeout(HANG_GUARD, self.client.h2(body))
            .await
            .expect("a reply")
    }

    /// A raw h2 client (frame-level control) on a fresh connection.
    async fn h2_client(&self) -> h2::client::SendRequest<Bytes> {
        let tls = self.tls(&[b"h2"]).await;
        let (client, connection) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// The in-flight gauge (`/mutate` requests inside the handler).
    fn queue_length(&self) -> u64 {
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix("vault_agent_injector_request_queue_length "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    fn metrics_text(&self) -> String {
        String::from_utf8(self.metrics.encode().unwrap()).unwrap()
    }

    async fn wait_for_metric(&self, line: &str) {
        let deadline = Instant::now() + HANG_GUARD;
        while !self.metrics_text().contains(line) {
            assert!(
                Instant::now() < deadline,
                "metric {line:?} never appeared:\n{}",
                self.metrics_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// No `/mutate` request left in the handler (none leaked by resets or timeouts).
    async fn wait_for_idle(&self) {
        self.wait_for_metric("vault_agent_injector_request_queue_length 0")
            .await;
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().unwrap();
        let result = tokio::time::timeout(HANG_GUARD, task)
            .await
            .expect("the server shut down")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}

/// A test CA issuing a `localhost` leaf.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let der = issuer.der().clone();
        Self { issuer, der }
    }

    /// A leaf for `localhost`: certificate and key PEM.
    fn leaf(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn client_config(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
