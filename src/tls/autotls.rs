//! Auto-TLS certificates, pure: the generated CA, the serving leaf it signs,
//! when to renew the leaf, and the CA bundle that keeps the previous CA trusted
//! ("prepend last CA").
//!
//! No I/O and no clock of its own: every function takes `now`, so the tests can check validity
//! windows and renewal times exactly. The Kubernetes side (caBundle, leader lock, shared Secret)
//! is in [`crate::tls::certmanager`], [`crate::cluster::webhook`] and [`crate::cluster`].

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType,
    SerialNumber,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use thiserror::Error;
use time::OffsetDateTime;

/// Upstream's leaf lifetime.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Upstream's CA lifetime: 3650 × 24 h.
pub const CA_LIFETIME: Duration = Duration::from_secs(3650 * 24 * 3600);

/// Certificates are valid from one minute before their issue, for clocks slightly behind ours.
pub const BACKDATE: Duration = Duration::from_secs(60);

/// Subject common name of the generated CA.
pub const CA_COMMON_NAME: &str = "Agent Inject CA";

/// Subject common name of the serving leaf.
pub const LEAF_COMMON_NAME: &str = "Agent Inject Service";

/// A certificate could not be generated.
#[derive(Debug, Error)]
pub enum AutoTlsError {
    /// rcgen refused the parameters or failed to sign.
    #[error("could not generate the {what}: {source}")]
    Generate {
        /// `CA` or `serving certificate`.
        what: &'static str,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// A host of `AGENT_INJECT_TLS_AUTO_HOSTS` is neither an IP address nor an ASCII DNS name.
    #[error("invalid AGENT_INJECT_TLS_AUTO_HOSTS entry {host:?}: {source}")]
    Host {
        /// The entry.
        host: String,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// The system random source failed.
    #[error("could not read random bytes for a certificate serial number")]
    Random,
}

/// A generated CA: its certificate, and the issuer that signs leaves with its key.
pub struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("pem", &self.pem)
            .finish_non_exhaustive()
    }
}

/// A serving certificate and its key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The leaf certificate (only the leaf, as upstream: the CA is in the webhook's caBundle).
    pub cert_pem: String,
    /// Its private key (PKCS#8 `PRIVATE KEY`; Go's `tls.X509KeyPair` reads it as well as the
    /// SEC1 `EC PRIVATE KEY` upstream writes, so old and new replicas can share the Secret).
    pub key_pem: String,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key.
        f.debug_struct("Leaf")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Generates a CA as upstream does: ECDSA P-256, `CN=Agent Inject CA`, valid from `now` − 1
    /// min for [`CA_LIFETIME`], CA true, certSign + digitalSignature, serverAuth, and a subject
    /// key id that is the *text* of the SHA-256 of its public key (hex pairs joined by `:`).
    pub fn generate(now: OffsetDateTime) -> Result<Self, AutoTlsError> {
        let gen_err = |source| AutoTlsError::Generate { what: "CA", source };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(CA_COMMON_NAME);
        params.serial_number = Some(serial_number()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_LIFETIME;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_identifier_method =
            KeyIdMethod::PreSpecified(key_id_text(&key.subject_public_key_info()).into_bytes());
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Issues a serving certificate valid from `now` − 1 min for `lifetime`, for `hosts`
    /// (IP SANs for addresses, DNS SANs otherwise; one empty DNS SAN when there are none).
    pub fn issue_leaf(
        &self,
        hosts: &[String],
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<Leaf, AutoTlsError> {
        let gen_err = |source| AutoTlsError::Generate {
            what: "serving certificate",
            source,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(LEAF_COMMON_NAME);
        params.serial_number = Some(serial_number()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + lifetime;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.subject_alt_names = subject_alt_names(hosts)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: params.not_after,
        })
    }
}

/// A development CA and a serving certificate it signed, for disk mode
/// (`vault-injector gen-certs`): the CA lives [`CA_LIFETIME`], the leaf `lifetime`.
pub fn dev_certs(
    hosts: &[String],
    now: OffsetDateTime,
    lifetime: Duration,
) -> Result<(String, Leaf), AutoTlsError> {
    let ca = Ca::generate(now)?;
    let leaf = ca.issue_leaf(hosts, now, lifetime)?;
    Ok((ca.pem, leaf))
}

/// Splits the hosts setting as upstream: what parses as an IP address is an IP SAN, the rest
/// DNS SANs, in order. An empty list gives one empty DNS name.
pub fn split_hosts(hosts: &[String]) -> (Vec<IpAddr>, Vec<String>) {
    let mut ips = Vec::new();
    let mut names = Vec::new();
    for host in hosts {
        match host.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => names.push(host.clone()),
        }
    }
    if hosts.is_empty() {
        names.push(String::new());
    }
    (ips, names)
}

fn subject_alt_names(hosts: &[String]) -> Result<Vec<SanType>, AutoTlsError> {
    let (ips, names) = split_hosts(hosts);
    let mut sans: Vec<SanType> = ips.into_iter().map(SanType::IpAddress).collect();
    for name in names {
        let dns = name
            .as_str()
            .try_into()
            .map_err(|source| AutoTlsError::Host {
                host: name.clone(),
                source,
            })?;
        sans.push(SanType::DnsName(dns));
    }
    Ok(sans)
}

/// When a leaf valid until `not_after` with total `lifetime` must be replaced: once less than
/// 10 % of the lifetime is left (2 h 24 min of 24 h). Returns how long to wait from `now`;
/// a time already past gives 1 ms, as upstream.
pub fn renew_in(not_after: OffsetDateTime, lifetime: Duration, now: OffsetDateTime) -> Duration {
    let margin = lifetime / 10;
    let due = not_after - margin;
    let wait = due - now;
    if wait.is_positive() {
        Duration::try_from(wait).unwrap_or(Duration::from_millis(1))
    } else {
        Duration::from_millis(1)
    }
}

/// The CA bundle to publish: the **last** certificate of the previous bundle (the webhook's
/// caBundle when this process first generated its CA), then the new CA. Anything that is not a
/// PEM `CERTIFICATE` is dropped; no readable certificate means just the new CA. The bundle
/// thus never holds more than two certificates, and a restart or a new leader keeps the
/// certificates signed by the previous CA trusted until they are replaced.
pub fn prepend_last_ca(new_ca_pem: &str, old_bundle: &[u8]) -> String {
    let last = CertificateDer::pem_slice_iter(old_bundle)
        .filter_map(Result::ok)
        .last();
    match last.map(|old| pem_certificate(&old)) {
        Some(old_pem) if old_pem != new_ca_pem => format!("{old_pem}{new_ca_pem}"),
        _ => new_ca_pem.to_owned(),
    }
}

/// The CA bundle a replica publishes when it starts leading while it serves `served` (the
/// leaf it took from the Secret, or its own previous one): [`prepend_last_ca`], plus, first,
/// the certificate of the previous bundle that signed `served` when that is not the last one.
///
/// In the steady state the leaf being served was signed by the previous bundle's last CA, and
/// this is exactly `[previous CA, new CA]`. The third certificate only appears when the
/// previous leader published its CA and stopped before its leaf reached the Secret: the
/// replicas still serve the leaf of the leader before it, which must stay trusted until the
/// new leaf replaces it.
pub fn bundle_for_new_ca(
    new_ca_pem: &str,
    old_bundle: &[u8],
    served: Option<&CertificateDer<'_>>,
    now: OffsetDateTime,
) -> String {
    let bundle = prepend_last_ca(new_ca_pem, old_bundle);
    let Some(signer) = served.and_then(|leaf| signer_of(leaf, old_bundle, now)) else {
        return bundle;
    };
    let signer_pem = pem_certificate(&signer);
    if bundle.contains(&signer_pem) {
        bundle
    } else {
        format!("{signer_pem}{bundle}")
    }
}

/// The certificate in `bundle` that `leaf` chains to (signature, validity at `now`, serverAuth).
fn signer_of(
    leaf: &CertificateDer<'_>,
    bundle: &[u8],
    now: OffsetDateTime,
) -> Option<CertificateDer<'static>> {
    let parsed = rustls::server::ParsedCertificate::try_from(leaf).ok()?;
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let now = rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now.unix_timestamp()).ok()?,
    ));
    CertificateDer::pem_slice_iter(bundle)
        .filter_map(Result::ok)
        .find(|ca| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.clone()).is_ok()
                && rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &roots,
                    &[],
                    now,
                    algs,
                )
                .is_ok()
        })
}

/// PEM-encodes one DER certificate (64-column base64, as Go's `pem.Encode`).
pub fn pem_certificate(der: &CertificateDer<'_>) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Upstream's key id: the SHA-256 of the DER SubjectPublicKeyInfo written as lowercase hex pairs
/// joined by `:` (the 95-byte text, not the 32-byte digest).
fn key_id_text(spki: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A random positive serial below 2^159, as upstream.
fn serial_number() -> Result<SerialNumber, AutoTlsError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0_u8; 20];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AutoTlsError::Random)?;
    // Clear the top bit (positive, below 2^159) and make sure the first byte is not zero so
    // the DER integer keeps its 20 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests;
