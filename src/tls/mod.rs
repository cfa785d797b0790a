//! Serving certificates: a hot-swappable [`CertStore`] read by rustls on every handshake, PEM
//! loading from `AGENT_INJECT_TLS_CERT_FILE`/`KEY_FILE`, a watcher that reloads them when they
//! change, and the rustls server configuration built from the settings.
//!
//! Reloading never restarts the listener: each new handshake asks the store for the current
//! certificate, and established connections keep the one they negotiated.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::{self, cipher_suite};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::sync::watch;

use crate::settings::{ServerSettings, TlsVersion};

pub mod autotls;
pub mod certmanager;
mod reload;
pub use reload::{CertWatcher, POLL_INTERVAL, ReloadOutcome, Reloader, watch, watch_every};

/// A certificate or key could not be loaded, or the TLS configuration could not be built.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("could not read {what} file {}: {source}", .path.display())]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no readable PEM `CERTIFICATE` block.
    #[error("no PEM CERTIFICATE block found in certificate file {}{}", .path.display(), detail(.reason))]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser reported, if anything.
        reason: Option<String>,
    },
    /// The key file holds no readable PKCS#8, RSA or EC private key.
    #[error("no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) found in key file {}{}", .path.display(), detail(.reason))]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM parser reported, if anything.
        reason: Option<String>,
    },
    /// rustls cannot use the key (unsupported algorithm or malformed).
    #[error("unsupported or malformed private key in {}: {source}", .path.display())]
    UnusableKey {
        /// The key file.
        path: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The key does not belong to the first certificate of the chain.
    #[error("the private key in {} does not match the certificate in {}: {source}", .key.display(), .cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the protocol versions / cipher suites.
    #[error("could not build the TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

fn detail(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

/// The certificate served to new handshakes. Cloning is cheap and every clone sees the same
/// certificate, so the file watcher, auto-TLS and the server share one.
#[derive(Clone)]
pub struct CertStore {
    /// Read on every handshake, hence a lock-free swap rather than the channel below.
    current: Arc<ArcSwapOption<CertifiedKey>>,
    /// Told of every [`set`](Self::set), so that startup can wait for the first certificate
    /// without polling.
    published: Arc<watch::Sender<()>>,
}

impl Default for CertStore {
    fn default() -> Self {
        Self {
            current: Arc::default(),
            published: Arc::new(watch::Sender::new(())),
        }
    }
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

impl CertStore {
    /// An empty store: handshakes fail until a certificate is [`set`](Self::set).
    pub fn new() -> Self {
        Self::default()
    }

    /// The certificate new handshakes get, if one is loaded.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    /// Whether a certificate is loaded (what `/health/ready` reports).
    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// Returns once a certificate is loaded (at once if one is).
    pub async fn loaded(&self) {
        let mut published = self.published.subscribe();
        // `set` stores before it publishes, so a certificate set after this first look still
        // wakes the wait. The sender lives as long as `self`: the wait cannot fail.
        let _ = published.wait_for(|()| self.is_loaded()).await;
    }

    /// Serves `key` to every handshake from now on. Connections already established keep theirs.
    pub fn set(&self, key: CertifiedKey) {
        self.current.store(Some(Arc::new(key)));
        self.published.send_replace(());
    }

    /// A rustls resolver reading this store on every handshake.
    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        Arc::new(StoreResolver(self.clone()))
    }
}

/// Resolves every ClientHello to the store's current certificate. With no certificate the
/// handshake is aborted, as upstream's `no certificate available`.
#[derive(Debug)]
struct StoreResolver(CertStore);

impl ResolvesServerCert for StoreResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.current()
    }
}

/// The certificate and key files of disk mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// `AGENT_INJECT_TLS_CERT_FILE`: the PEM chain, leaf first.
    pub cert: PathBuf,
    /// `AGENT_INJECT_TLS_KEY_FILE`: the PEM private key.
    pub key: PathBuf,
}

impl CertFiles {
    /// Pairs the two paths.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
        }
    }

    /// Reads and parses both files.
    pub fn load(&self) -> Result<CertifiedKey, TlsError> {
        let (cert_pem, key_pem) = self.read()?;
        self.parse(&cert_pem, &key_pem)
    }

    fn read(&self) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
        let cert = std::fs::read(&self.cert).map_err(|source| TlsError::Read {
            what: "certificate",
            path: self.cert.clone(),
            source,
        })?;
        let key = std::fs::read(&self.key).map_err(|source| TlsError::Read {
            what: "private key",
            path: self.key.clone(),
            source,
        })?;
        Ok((cert, key))
    }

    /// Parses a PEM chain and key, checking that the key belongs to the leaf.
    pub fn parse(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::NoCertificate {
                path: self.cert.clone(),
                reason: Some(e.to_string()),
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
                reason: None,
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::NoKey {
            path: self.key.clone(),
            reason: match e {
                rustls_pki_types::pem::Error::NoItemsFound => None,
                other => Some(other.to_string()),
            },
        })?;
        let signing_key =
            ring::sign::any_supported_type(&key).map_err(|source| TlsError::UnusableKey {
                path: self.key.clone(),
                source,
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        // ring keys always expose their public key, so "unknown" cannot hide a mismatch here.
        certified
            .keys_match()
            .map_err(|source| TlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
                source,
            })?;
        Ok(certified)
    }
}

/// Builds the server configuration: the store's certificate per handshake, no client
/// authentication, ALPN `h2` and `http/1.1`, the minimum version and the TLS 1.2 cipher
/// suites from the settings.
///
/// Like Go's `tls.Config.CipherSuites`, the cipher list only restricts TLS 1.2; the TLS 1.3
/// suites are always offered. If the list names no TLS 1.2 suite rustls implements (only
/// CBC/RC4/3DES ones, say), TLS 1.2 is switched off rather than widened to defaults the
/// operator did not ask for; this is logged.
pub fn server_config(server: &ServerSettings, store: &CertStore) -> Result<ServerConfig, TlsError> {
    let base = ring::default_provider();
    let tls12_suites = tls12_suites(&server.tls_cipher_suites);
    let tls13_suites: Vec<SupportedCipherSuite> = base
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .collect();

    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    let tls12_wanted = server.tls_min_version == TlsVersion::Tls12;
    let tls12_possible = server.tls_cipher_suites.is_empty() || !tls12_suites.is_empty();
    if tls12_wanted && tls12_possible {
        versions.push(&rustls::version::TLS12);
    } else if tls12_wanted {
        tracing::warn!(
            target: crate::telemetry::logging::HANDLER,
            "none of the configured TLS cipher suites is available for TLS 1.2; only TLS 1.3 will be offered"
        );
    }
    versions.push(&rustls::version::TLS13);

    let cipher_suites = if server.tls_cipher_suites.is_empty() {
        base.cipher_suites.clone()
    } else {
        // TLS 1.3 first: rustls keeps the order as its preference.
        tls13_suites.into_iter().chain(tls12_suites).collect()
    };
    let provider = CryptoProvider {
        cipher_suites,
        ..base
    };

    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(store.resolver());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Maps Go/IANA names to rustls' TLS 1.2 suites, in the configured order, without duplicates
/// (Go has two names for each ChaCha20 suite). TLS 1.3 and unimplemented names map to nothing;
/// the settings layer already warned about the latter.
fn tls12_suites(names: &[String]) -> Vec<SupportedCipherSuite> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .filter_map(|name| {
            let suite = match name.as_str() {
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
                    cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
                }
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                }
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
                    cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                }
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                }
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"
                | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
                    cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
                }
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
                | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                }
                _ => return None,
            };
            seen.insert(u16::from(suite.suite())).then_some(suite)
        })
        .collect()
}

#[cfg(test)]
mod tests;
