#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::routes::text_reply;
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
    let mut body = ReplyBody::new("{}").count_failure_if_undelivered(metrics.clone(), "ns".into());
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
