#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub(super) struct Pair {
    pub(super) cert_pem: String,
    pub(super) key_pem: String,
    pub(super) der: Vec<u8>,
}

pub(super) fn self_signed() -> Pair {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

pub(super) fn write(dir: &std::path::Path, pair: &Pair) -> CertFiles {
    let files = CertFiles::new(dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&files.cert, &pair.cert_pem).unwrap();
    std::fs::write(&files.key, &pair.key_pem).unwrap();
    files
}

pub(super) fn served_der(store: &CertStore) -> Vec<u8> {
    store.current().unwrap().cert[0].to_vec()
}

#[test]
fn loads_a_pem_pair() {
    let dir = tempfile::tempdir().unwrap();
    let pair = self_signed();
    let key = write(dir.path(), &pair).load().unwrap();
    assert_eq!(key.cert[0].as_ref(), pair.der.as_slice());
}

#[test]
fn every_private_key_pem_label_is_recognised() {
    // rcgen only writes PKCS#8, so check with dummy contents that each label the injector
    // can meet (PKCS#8, RSA, SEC1) reaches the key parser rather than "no key found".
    let files = CertFiles::new("c.pem", "k.pem");
    for label in ["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"] {
        let pem = format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
        let err = files
            .parse(self_signed().cert_pem.as_bytes(), pem.as_bytes())
            .unwrap_err();
        // The label is recognised (the failure is about the key bytes, not "no key").
        assert!(
            matches!(err, TlsError::UnusableKey { .. }),
            "{label}: {err}"
        );
    }
}

#[test]
fn a_missing_file_is_named_in_the_error() {
    let files = CertFiles::new("/nonexistent/tls.crt", "/nonexistent/tls.key");
    let err = files.load().unwrap_err().to_string();
    assert!(
        err.starts_with("could not read certificate file /nonexistent/tls.crt:"),
        "{err}"
    );
}

#[test]
fn garbage_is_refused_naming_the_file() {
    let files = CertFiles::new("a.crt", "a.key");
    let pair = self_signed();
    let err = files
        .parse(b"not pem", pair.key_pem.as_bytes())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no PEM CERTIFICATE block found in certificate file a.crt"
    );
    let err = files
        .parse(pair.cert_pem.as_bytes(), b"nothing")
        .unwrap_err();
    assert!(err.to_string().starts_with("no PEM private key"), "{err}");
    assert!(err.to_string().contains("a.key"), "{err}");
}

#[test]
fn a_key_from_another_pair_is_a_mismatch() {
    let files = CertFiles::new("a.crt", "b.key");
    let (one, two) = (self_signed(), self_signed());
    let err = files
        .parse(one.cert_pem.as_bytes(), two.key_pem.as_bytes())
        .unwrap_err();
    assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("the private key in b.key does not match the certificate in a.crt"),
        "{err}"
    );
}

#[test]
fn store_starts_empty_and_serves_what_is_set() {
    let store = CertStore::new();
    assert!(!store.is_loaded());
    assert!(store.current().is_none());
    let pair = self_signed();
    let key = CertFiles::new("a", "b")
        .parse(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes())
        .unwrap();
    let clone = store.clone();
    store.set(key);
    assert!(clone.is_loaded());
    assert_eq!(served_der(&clone), pair.der);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_the_first_certificate_wakes_when_it_is_set() {
    let store = CertStore::new();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.loaded().await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    let pair = self_signed();
    store.set(
        CertFiles::new("a", "b")
            .parse(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes())
            .unwrap(),
    );
    // The clock stands still: only the store's news can end the wait, not a poll.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert!(waiting.is_finished());
    // Once loaded, waiting returns at once.
    store.loaded().await;
}

fn settings_with(min: TlsVersion, suites: &[&str]) -> ServerSettings {
    let mut server = crate::settings::Settings::default().server;
    server.tls_min_version = min;
    server.tls_cipher_suites = suites.iter().map(|s| (*s).to_owned()).collect();
    server
}

#[test]
fn config_offers_alpn_h2_and_http11() {
    let config = server_config(&settings_with(TlsVersion::Tls12, &[]), &CertStore::new()).unwrap();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

#[test]
fn cipher_names_map_to_rustls_suites_without_duplicates() {
    let suites = tls12_suites(&[
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".to_owned(),
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".to_owned(),
        "TLS_RSA_WITH_AES_128_CBC_SHA".to_owned(),
        "TLS_AES_128_GCM_SHA256".to_owned(),
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_owned(),
    ]);
    let names: Vec<String> = suites.iter().map(|s| format!("{:?}", s.suite())).collect();
    assert_eq!(
        names,
        [
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        ]
    );
}

#[test]
fn every_name_rustls_offers_is_mapped() {
    for name in crate::settings::KNOWN_CIPHER_SUITES {
        let offered = crate::settings::rustls_offers(name);
        let tls13 = name.starts_with("TLS_AES_") || name.starts_with("TLS_CHACHA20_");
        let mapped = !tls12_suites(&[(*name).to_owned()]).is_empty();
        assert_eq!(offered, mapped || tls13, "{name}");
    }
}

#[test]
fn only_unavailable_tls12_suites_leave_tls13_only() {
    // Only a CBC suite: rustls cannot do it, so TLS 1.2 is off rather than widened.
    let config = server_config(
        &settings_with(TlsVersion::Tls12, &["TLS_RSA_WITH_AES_128_CBC_SHA"]),
        &CertStore::new(),
    )
    .unwrap();
    assert!(
        config
            .crypto_provider()
            .cipher_suites
            .iter()
            .all(|s| s.version() == &rustls::version::TLS13)
    );
}
