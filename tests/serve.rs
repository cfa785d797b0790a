//! The HTTPS server end to end: a real TLS listener on 127.0.0.1 port 0, certificates made in
//! the test, HTTP/1.1 and HTTP/2 clients (hyper + tokio-rustls) trusting only the test CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore, SupportedCipherSuite};
use rustls_pki_types::{CertificateDer, ServerName};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vault_injector::server::{self, Limits, ServeError};
use vault_injector::settings::{Settings, TlsVersion};
use vault_injector::tls::{self, CertFiles, CertStore, CertWatcher};

use support::net;

/// Upper bound for anything the test waits on: a safety net so that a broken server fails the
/// test instead of hanging it, not a latency bound (no test here asserts how fast anything is).
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_answers_v1_and_v1beta1_reviews_in_their_own_version() {
    let server = TestServer::start(|_| {}).await;
    for api_version in ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] {
        let uid = format!("uid-{api_version}");
        let reply = server
            .h1(post_json(
                "/mutate?timeout=30s",
                review(api_version, &uid, "default"),
            ))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{api_version}: {}",
            reply.body
        );
        assert_eq!(reply.headers[CONTENT_TYPE], "application/json");
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["apiVersion"], api_version);
        assert_eq!(json["kind"], "AdmissionReview");
        assert_eq!(json["response"]["uid"], uid.as_str());
        assert_eq!(json["response"]["allowed"], true);
        assert_eq!(json["response"]["patchType"], "JSONPatch");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_injections_and_refusals_by_namespace() {
    let server = TestServer::start(|s| s.server.telemetry_path = "/metrics".into()).await;
    let injected = server
        .h1(post_json(
            "/mutate",
            review("admission.k8s.io/v1", "a", "apps"),
        ))
        .await;
    assert_eq!(injected.status, StatusCode::OK, "{}", injected.body);
    // Injection into kube-system is refused (as upstream, the system namespaces are never
    // injected), which counts as a failure.
    let refused = server
        .h1(post_json(
            "/mutate",
            review("admission.k8s.io/v1", "b", "kube-system"),
        ))
        .await;
    assert_eq!(refused.status, StatusCode::OK, "{}", refused.body);
    let json: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(json["response"]["allowed"], false);

    let text = server.h1(get("/metrics")).await.body;
    for line in [
        // The metrics request itself is not a /mutate request, so the queue is empty again.
        "vault_agent_injector_request_queue_length 0",
        "vault_agent_injector_request_processing_duration_ms_count 2",
        "vault_agent_injector_request_processing_duration_seconds_count 2",
        "vault_agent_injector_injections_by_namespace_total{injection_type=\"init_and_sidecar\",namespace=\"apps\"} 1",
        "vault_agent_injector_failed_injections_by_namespace_total{namespace=\"kube-system\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_is_204_for_any_method_and_query() {
    let server = TestServer::start(|_| {}).await;
    for req in [
        get("/health/ready"),
        get("/health/ready?verbose=1"),
        post_json("/health/ready", "{}".into()),
    ] {
        let reply = server.h1(req).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert_eq!(reply.body, "");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_server_reports_not_ready_and_still_serves_reviews() {
    let server = TestServer::start_with_limits(Limits::default()).await;
    assert_eq!(
        server.h1(get("/health/ready")).await.status,
        StatusCode::NO_CONTENT
    );
    server
        .handle
        .as_ref()
        .expect("a server handle")
        .start_draining();
    let ready = server.h1(get("/health/ready")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body, "shutting down\n");
    // New connections are still accepted, and reviews answered, until the shutdown proper.
    let reply = server
        .h1(post_json(
            "/mutate",
            review("admission.k8s.io/v1", "during-drain", "default"),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(json["response"]["uid"], "during-drain");
    assert_eq!(json["response"]["allowed"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_paths_are_404_like_go() {
    let server = TestServer::start(|_| {}).await;
    for path in ["/", "/mutate/", "/health", "/metrics"] {
        let reply = server.h1(get(path)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.body, "404 page not found\n");
        assert_eq!(reply.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_requires_exactly_application_json() {
    let server = TestServer::start(|_| {}).await;
    let mut req = post_json(
        "/mutate?timeout=30s",
        review("admission.k8s.io/v1", "u", "default"),
    );
    req.headers_mut().insert(
        CONTENT_TYPE,
        "application/json; charset=utf-8".parse().unwrap(),
    );
    let reply = server.h1(req).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        "Invalid content-type: \"application/json; charset=utf-8\"\n"
    );

    let mut req = post_json("/mutate", "{}".into());
    req.headers_mut().remove(CONTENT_TYPE);
    let reply = server.h1(req).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, "Invalid content-type: \"\"\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_refuses_an_empty_body() {
    let server = TestServer::start(|_| {}).await;
    let reply = server.h1(post_json("/mutate", String::new())).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, "Empty request body\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_refuses_a_declared_oversized_body_without_reading_it() {
    let server = TestServer::start(|_| {}).await;
    // Declares 5 MiB but sends none of it: only a Content-Length check can answer.
    let (_keep_open, body) = ChannelBody::new(Some(5 * 1024 * 1024));
    let req = Request::post("/mutate")
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let reply = server.h1(req).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_stops_reading_a_streamed_body_at_the_limit() {
    let server = TestServer::start(|_| {}).await;
    // No Content-Length over HTTP/2: the limit must be enforced while streaming. The sender
    // offers 5 MiB but the reply must come before it is all accepted.
    let (tx, body) = ChannelBody::new(None);
    let feeder = tokio::spawn(async move {
        let chunk = Bytes::from(vec![b' '; 64 * 1024]);
        for _ in 0..80 {
            if tx.send(chunk.clone()).await.is_err() {
                break;
            }
        }
        // Keep the stream open: the server must answer without seeing its end.
        tx
    });
    let req = Request::post(format!("https://localhost:{}/mutate", server.addr.port()))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let reply = server.h2(req).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    feeder.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_negotiated_through_alpn() {
    let server = TestServer::start(|_| {}).await;
    let tls = server.connect(&[b"h2", b"http/1.1"]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!(
        "https://localhost:{}/health/ready",
        server.addr.port()
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let reply = into_reply(sender.send_request(req).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    drop(sender);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_telemetry_path_and_http_errors_touch_no_counter() {
    let server = TestServer::start(|s| s.server.telemetry_path = "/metrics".into()).await;
    // An HTTP-level 400 still counts in the queue/duration metrics, but in no counter.
    let mut req = post_json("/mutate", "{}".into());
    req.headers_mut().remove(CONTENT_TYPE);
    assert_eq!(server.h1(req).await.status, StatusCode::BAD_REQUEST);

    let reply = server.h1(get("/metrics?format=text")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = reply.body;
    for name in [
        "# TYPE vault_agent_injector_request_queue_length gauge",
        "# TYPE vault_agent_injector_request_processing_duration_ms histogram",
        "# TYPE vault_agent_injector_request_processing_duration_seconds histogram",
        "vault_agent_injector_request_processing_duration_ms_count 1",
        "vault_agent_injector_request_queue_length 0",
    ] {
        assert!(text.contains(name), "missing {name:?} in\n{text}");
    }
    // Go's process collector's series, which dashboards built for upstream scrape.
    #[cfg(target_os = "linux")]
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(name), "missing {name:?} in\n{text}");
    }
    assert!(!text.contains("vault_agent_injector_injections_by_namespace_total{"));
    assert!(!text.contains("vault_agent_injector_failed_injections_by_namespace_total{"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_cert_files_are_served_to_new_connections_without_dropping_old_ones() {
    let server = TestServer::start(|_| {}).await;
    let first = server.served_der().await;
    assert_eq!(first, server.leaf_der);

    // A connection made with the old certificate, kept open across the swap.
    let old_conn = server.connect(&[b"http/1.1"]).await.unwrap();
    let (mut old_sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(old_conn))
        .await
        .unwrap();
    tokio::spawn(conn);

    // Overwrite in place, certificate then key: the watcher sees a mismatched pair in between
    // and must keep serving the old one until the key arrives.
    let next = server.ca.leaf();
    std::fs::write(&server.files.cert, &next.cert_pem).unwrap();
    std::fs::write(&server.files.key, &next.key_pem).unwrap();
    server.wait_until_served(&next.der).await;

    let reply = old_sender.send_request(get("/health/ready")).await.unwrap();
    assert_eq!(
        reply.status(),
        StatusCode::NO_CONTENT,
        "old connection still serves"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_style_symlink_swap_is_picked_up() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let first = ca.leaf();
    let files = kubelet_volume(dir.path(), "..2026_01_01_00_00_00.000000001", &first, None);
    let server = TestServer::start_with(ca, dir, files, first.der.clone(), |_| {}, None).await;
    assert_eq!(server.served_der().await, first.der);

    let next = server.ca.leaf();
    kubelet_volume(
        server.dir.path(),
        "..2026_01_01_00_05_00.000000002",
        &next,
        Some("..2026_01_01_00_00_00.000000001"),
    );
    server.wait_until_served(&next.der).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight_then_returns() {
    let server = TestServer::start(|s| s.server.telemetry_path = "/metrics".into()).await;
    let payload = Bytes::from(review("admission.k8s.io/v1", "slow", "default"));
    let (tx, body) = ChannelBody::new(Some(payload.len() as u64));
    let req = Request::post("/mutate")
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let tls = server.connect(&[b"http/1.1"]).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let in_flight = tokio::spawn(async move { sender.send_request(req).await });

    // Half the body, then wait until the server is inside the handler (queue gauge at 1).
    let half = payload.len() / 2;
    tx.send(payload.slice(..half)).await.unwrap();
    server
        .wait_for_metric("vault_agent_injector_request_queue_length 1")
        .await;

    let (addr, run) = server.begin_shutdown();
    // No new connections once shutdown has begun.
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still accepting after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    tx.send(payload.slice(half..)).await.unwrap();
    let reply = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .expect("the request in flight was answered")
        .unwrap()
        .expect("the connection stayed up for the reply");
    let status = reply.status();
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        !body.starts_with("error reading request body"),
        "{status}: {body}"
    );

    let result = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("run() returned after the last request")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_do_not_disturb_the_server() {
    let server = TestServer::start(|_| {}).await;
    // Not TLS at all.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert_closed(tcp).await;
    // TLS from a client that does not trust our CA.
    let stranger = TestCa::new();
    let connector = TlsConnector::from(client_config(&stranger.der, &[b"http/1.1"], None));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    assert!(connector.connect(localhost(), tcp).await.is_err());

    assert_eq!(
        server.h1(get("/health/ready")).await.status,
        StatusCode::NO_CONTENT
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_disconnected() {
    let limits = Limits {
        tls_handshake_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let leaf = ca.leaf();
    let files = plain_files(dir.path(), &leaf);
    let server =
        TestServer::start_with(ca, dir, files, leaf.der.clone(), |_| {}, Some(limits)).await;

    // No TLS handshake.
    assert_closed(TcpStream::connect(server.addr).await.unwrap()).await;
    // Handshake, then no HTTP/1 request.
    assert_closed(server.connect(&[b"http/1.1"]).await.unwrap()).await;
    // Handshake with h2, then no connection preface.
    assert_closed(server.connect(&[b"h2"]).await.unwrap()).await;

    assert_eq!(
        server.h1(get("/health/ready")).await.status,
        StatusCode::NO_CONTENT
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimum_tls_version_13_refuses_tls12_clients() {
    let server = TestServer::start(|s| s.server.tls_min_version = TlsVersion::Tls13).await;
    let tls12 = client_config(&server.ca.der, &[b"http/1.1"], Some(Suites::Tls12(vec![])));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        TlsConnector::from(tls12)
            .connect(localhost(), tcp)
            .await
            .is_err()
    );

    let tls = server.connect(&[b"http/1.1"]).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_cipher_suites_restrict_tls12() {
    let server = TestServer::start(|s| {
        s.server.tls_cipher_suites = vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into()];
    })
    .await;
    use ring::cipher_suite::{
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 as AES128,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 as AES256,
    };

    let offered_other = client_config(
        &server.ca.der,
        &[b"http/1.1"],
        Some(Suites::Tls12(vec![AES128])),
    );
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        TlsConnector::from(offered_other)
            .connect(localhost(), tcp)
            .await
            .is_err()
    );

    let offered_both = client_config(
        &server.ca.der,
        &[b"http/1.1"],
        Some(Suites::Tls12(vec![AES128, AES256])),
    );
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls = TlsConnector::from(offered_both)
        .connect(localhost(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.negotiated_cipher_suite().map(|s| s.suite()),
        Some(AES256.suite())
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A test CA issuing `localhost` leaves, each with a fresh key (and so a fresh serial).
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "vault-injector test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let der = issuer.der().clone();
        Self { issuer, der }
    }

    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

fn plain_files(dir: &Path, leaf: &Leaf) -> CertFiles {
    let files = CertFiles::new(dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&files.cert, &leaf.cert_pem).unwrap();
    std::fs::write(&files.key, &leaf.key_pem).unwrap();
    files
}

/// Lays out a Secret volume the way the kubelet's atomic writer does: the data in a
/// timestamped directory, `..data` pointing at it, and the visible names pointing through
/// `..data`. An update writes a new directory and atomically renames a new `..data` link over
/// the old one, then removes the old directory.
fn kubelet_volume(dir: &Path, generation: &str, leaf: &Leaf, previous: Option<&str>) -> CertFiles {
    use std::os::unix::fs::symlink;
    let data = dir.join(generation);
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("tls.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(data.join("tls.key"), &leaf.key_pem).unwrap();
    let tmp = dir.join("..data_tmp");
    symlink(generation, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    if let Some(previous) = previous {
        std::fs::remove_dir_all(dir.join(previous)).unwrap();
    } else {
        symlink("..data/tls.crt", dir.join("tls.crt")).unwrap();
        symlink("..data/tls.key", dir.join("tls.key")).unwrap();
    }
    CertFiles::new(dir.join("tls.crt"), dir.join("tls.key"))
}

/// A review of an annotated pod that the injector should inject (or refuse in kube-system).
fn review(api_version: &str, uid: &str, namespace: &str) -> String {
    let pod = support::pod()
        .name("app")
        .namespace(namespace)
        .service_account("app")
        .ann("agent-inject-secret-db", "secret/data/db")
        .build();
    support::review(pod)
        .api_version(api_version)
        .uid(uid)
        .namespace(namespace)
        .into_json()
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(HOST, "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn post_json(path: &str, body: String) -> Request<Full<Bytes>> {
    Request::post(path)
        .header(HOST, "localhost")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

enum Suites {
    /// Only TLS 1.2, with these suites (empty = all of ring's TLS 1.2 suites).
    Tls12(Vec<SupportedCipherSuite>),
}

fn client_config(
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
    suites: Option<Suites>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut provider = ring::default_provider();
    let versions: &[&rustls::SupportedProtocolVersion] = match suites {
        None => rustls::DEFAULT_VERSIONS,
        Some(Suites::Tls12(list)) => {
            provider.cipher_suites = if list.is_empty() {
                provider
                    .cipher_suites
                    .iter()
                    .copied()
                    .filter(|s| s.version() == &rustls::version::TLS12)
                    .collect()
            } else {
                list
            };
            &[&rustls::version::TLS12]
        }
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Reads until the server closes the connection (EOF or error), within [`PATIENCE`].
async fn assert_closed(mut stream: impl tokio::io::AsyncRead + Unpin) {
    assert!(
        net::closed_within(&mut stream, PATIENCE).await,
        "the server kept a silent connection open"
    );
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn into_reply(resp: hyper::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// A request body fed from a channel, with an optional declared length.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    len: Option<u64>,
}

impl ChannelBody {
    fn new(len: Option<u64>) -> (mpsc::Sender<Bytes>, Self) {
        let (tx, rx) = mpsc::channel(4);
        (tx, Self { rx, len })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }

    fn size_hint(&self) -> SizeHint {
        self.len.map(SizeHint::with_exact).unwrap_or_default()
    }
}

/// A server running in this process on 127.0.0.1:0 with its certificate files watched.
struct TestServer {
    addr: SocketAddr,
    ca: TestCa,
    leaf_der: Vec<u8>,
    dir: tempfile::TempDir,
    files: CertFiles,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    /// The running server, when it was built with explicit limits.
    handle: Option<server::Server>,
    _watcher: CertWatcher,
}

impl TestServer {
    /// Plain files in a temporary directory, default limits, `configure` applied to settings.
    async fn start(configure: impl FnOnce(&mut Settings)) -> Self {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let leaf = ca.leaf();
        let files = plain_files(dir.path(), &leaf);
        Self::start_with(ca, dir, files, leaf.der, configure, None).await
    }

    /// As `start`, with these limits and a handle on the server.
    async fn start_with_limits(limits: Limits) -> Self {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let leaf = ca.leaf();
        let files = plain_files(dir.path(), &leaf);
        Self::start_with(ca, dir, files, leaf.der, |_| {}, Some(limits)).await
    }

    async fn start_with(
        ca: TestCa,
        dir: tempfile::TempDir,
        files: CertFiles,
        leaf_der: Vec<u8>,
        configure: impl FnOnce(&mut Settings),
        limits: Option<Limits>,
    ) -> Self {
        let mut settings = Settings::default();
        settings.server.tls_cert_file = files.cert.display().to_string();
        settings.server.tls_key_file = files.key.display().to_string();
        configure(&mut settings);

        let certs = CertStore::new();
        certs.set(files.load().unwrap());
        // Polling effectively off: the reloads these tests wait for must come from file-system
        // events (inotify on the parent directory), which is what makes them prompt.
        let watcher = tls::watch_every(certs.clone(), files.clone(), Duration::from_secs(3600));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let (task, handle) = match limits {
            None => (
                tokio::spawn(server::run(settings, listener, certs, shutdown)),
                None,
            ),
            Some(limits) => {
                let server = server::Server::with_limits(settings, certs, limits).unwrap();
                (
                    tokio::spawn(server.clone().run(listener, shutdown)),
                    Some(server),
                )
            }
        };
        Self {
            addr,
            ca,
            leaf_der,
            dir,
            files,
            shutdown: Some(tx),
            task: Some(task),
            handle,
            _watcher: watcher,
        }
    }

    async fn connect(&self, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        TlsConnector::from(client_config(&self.ca.der, alpn, None))
            .connect(localhost(), tcp)
            .await
    }

    /// One request on a fresh HTTP/1.1 connection.
    async fn h1<B>(&self, req: Request<B>) -> Reply
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tls = self.connect(&[b"http/1.1"]).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = tokio::time::timeout(PATIENCE, sender.send_request(req))
            .await
            .expect("reply within the test's patience")
            .unwrap();
        into_reply(resp).await
    }

    /// One request on a fresh HTTP/2 connection (the URI must be absolute).
    async fn h2<B>(&self, req: Request<B>) -> Reply
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tls = self.connect(&[b"h2"]).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let resp = tokio::time::timeout(PATIENCE, sender.send_request(req))
            .await
            .expect("reply within the test's patience")
            .unwrap();
        into_reply(resp).await
    }

    /// The DER of the certificate a fresh handshake is served.
    async fn served_der(&self) -> Vec<u8> {
        let tls = self.connect(&[b"http/1.1"]).await.unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    async fn wait_until_served(&self, der: &[u8]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.served_der().await == der {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the new certificate was not served within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_metric(&self, line: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.h1(get("/metrics")).await.body.contains(line) {
                return;
            }
            assert!(Instant::now() < deadline, "metric {line:?} never appeared");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Triggers shutdown and hands back the address and the `run` task to observe.
    fn begin_shutdown(mut self) -> (SocketAddr, JoinHandle<Result<(), ServeError>>) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (self.addr, self.task.take().unwrap())
    }

    async fn stop(self) {
        let (_, run) = self.begin_shutdown();
        let result = tokio::time::timeout(PATIENCE, run)
            .await
            .expect("shutdown within the test's patience")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}
