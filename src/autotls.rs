//! Auto-TLS certificates (server.md §5.3), pure: the generated CA, the serving leaf it signs,
//! when to renew the leaf, and the CA bundle that keeps the previous CA trusted
//! ("prepend last CA").
//!
//! No I/O and no clock of its own: every function takes `now`, so the tests can check validity
//! windows and renewal times exactly. The Kubernetes side (caBundle, leader lock, shared Secret)
//! is in [`crate::certmanager`], [`crate::webhook`] and [`crate::cluster`].

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
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use x509_parser::prelude::*;

    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
    }

    fn der_of(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn ca_matches_upstream_profile() {
        let ca = Ca::generate(now()).unwrap();
        let der = der_of(ca.pem());
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(cert.subject().to_string(), format!("CN={CA_COMMON_NAME}"));
        assert_eq!(cert.issuer(), cert.subject());
        assert_eq!(
            cert.validity().not_before.timestamp(),
            now().unix_timestamp() - 60
        );
        assert_eq!(
            cert.validity().not_after.timestamp(),
            now().unix_timestamp() + 3650 * 24 * 3600
        );
        assert!(cert.is_ca());
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.digital_signature());
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .server_auth
        );
        let skid = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .unwrap();
        assert_eq!(skid.len(), 95, "the text of 32 hex pairs joined by ':'");
        assert_eq!(
            String::from_utf8(skid).unwrap(),
            key_id_text(cert.public_key().raw)
        );
        assert!(
            cert.public_key().algorithm.algorithm
                == x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
        );
        // Serial: positive, below 2^159.
        let serial = cert.raw_serial();
        assert_eq!(serial.len(), 20);
        assert!(serial[0] < 0x80);
    }

    #[test]
    fn leaf_is_signed_by_the_ca_for_the_hosts() {
        let ca = Ca::generate(now()).unwrap();
        let leaf = ca
            .issue_leaf(
                &hosts(&["svc", "svc.ns.svc", "127.0.0.1", "::1"]),
                now(),
                LEAF_LIFETIME,
            )
            .unwrap();
        let ca_der = der_of(ca.pem());
        let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
        let der = der_of(&leaf.cert_pem);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(cert.subject().to_string(), format!("CN={LEAF_COMMON_NAME}"));
        assert_eq!(cert.issuer(), ca_cert.subject());
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert!(!cert.is_ca());
        assert_eq!(
            cert.validity().not_after.timestamp(),
            now().unix_timestamp() + 24 * 3600
        );
        assert_eq!(leaf.not_after, now() + LEAF_LIFETIME);
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            sans,
            [
                "IPAddress(7f:00:00:01)",
                "IPAddress(00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01)",
                "DNSName(svc)",
                "DNSName(svc.ns.svc)"
            ]
        );
        // The authority key id is the CA's subject key id.
        let aki = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki.len(), 95);
        // The key belongs to the certificate and rustls can serve it.
        crate::tls::CertFiles::new("leaf.crt", "leaf.key")
            .parse(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
            .unwrap();
    }

    #[test]
    fn hosts_split_into_ips_and_dns_names() {
        let (ips, names) = split_hosts(&hosts(&["a", "10.0.0.1", "b.c", "fe80::1"]));
        assert_eq!(
            ips,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert_eq!(names, ["a", "b.c"]);
        let (ips, names) = split_hosts(&[]);
        assert!(ips.is_empty());
        assert_eq!(names, [""]);
    }

    #[test]
    fn a_non_ascii_host_is_an_error_naming_it() {
        let ca = Ca::generate(now()).unwrap();
        let err = ca
            .issue_leaf(&hosts(&["héllo"]), now(), LEAF_LIFETIME)
            .unwrap_err();
        assert!(err.to_string().contains("\"héllo\""), "{err}");
    }

    #[test]
    fn renewal_is_due_with_a_tenth_of_the_lifetime_left() {
        let not_after = now() + LEAF_LIFETIME;
        // 24 h − 2 h 24 min = 21 h 36 min after issue.
        assert_eq!(
            renew_in(not_after, LEAF_LIFETIME, now()),
            Duration::from_secs(21 * 3600 + 36 * 60)
        );
        // The test lifetime of 20 s renews 18 s after issue.
        let short = Duration::from_secs(20);
        assert_eq!(
            renew_in(now() + short, short, now()),
            Duration::from_secs(18)
        );
        // Overdue: at once (1 ms).
        assert_eq!(
            renew_in(not_after, LEAF_LIFETIME, not_after),
            Duration::from_millis(1)
        );
        assert_eq!(
            renew_in(now(), LEAF_LIFETIME, now() + LEAF_LIFETIME),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn prepend_last_ca_keeps_at_most_the_previous_and_the_new_ca() {
        let a = Ca::generate(now()).unwrap();
        let b = Ca::generate(now()).unwrap();
        let new = Ca::generate(now()).unwrap();
        let new_pem = new.pem();
        // empty → [new]
        assert_eq!(prepend_last_ca(new_pem, b""), new_pem);
        // [A] → [A, new]
        assert_eq!(
            prepend_last_ca(new_pem, a.pem().as_bytes()),
            format!("{}{new_pem}", a.pem())
        );
        // [A, B] → [B, new]
        let ab = format!("{}{}", a.pem(), b.pem());
        assert_eq!(
            prepend_last_ca(new_pem, ab.as_bytes()),
            format!("{}{new_pem}", b.pem())
        );
        // garbage → [new]
        assert_eq!(prepend_last_ca(new_pem, b"garbage"), new_pem);
        // other PEM blocks are skipped
        let mixed = format!(
            "{}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            a.pem()
        );
        assert_eq!(
            prepend_last_ca(new_pem, mixed.as_bytes()),
            format!("{}{new_pem}", a.pem())
        );
        // the same CA is not doubled
        assert_eq!(prepend_last_ca(new_pem, new_pem.as_bytes()), new_pem);
    }

    #[test]
    fn a_new_leader_keeps_the_ca_of_the_leaf_it_serves() {
        let hosts = hosts(&["svc"]);
        let a = Ca::generate(now()).unwrap();
        let b = Ca::generate(now()).unwrap();
        let new = Ca::generate(now()).unwrap();
        let leaf_a = a.issue_leaf(&hosts, now(), LEAF_LIFETIME).unwrap();
        let leaf_a = CertificateDer::from(der_of(&leaf_a.cert_pem));
        let leaf_b = b.issue_leaf(&hosts, now(), LEAF_LIFETIME).unwrap();
        let leaf_b = CertificateDer::from(der_of(&leaf_b.cert_pem));
        let ab = format!("{}{}", a.pem(), b.pem());
        let norm = |s: String| s.replace("\r\n", "\n");
        // Steady state: the served leaf is signed by the last CA: [B, new].
        assert_eq!(
            norm(bundle_for_new_ca(
                new.pem(),
                ab.as_bytes(),
                Some(&leaf_b),
                now()
            )),
            norm(format!("{}{}", b.pem(), new.pem()))
        );
        // The previous leader published B but its leaf never reached the Secret: A's leaf is
        // still served, so A stays: [A, B, new].
        assert_eq!(
            norm(bundle_for_new_ca(
                new.pem(),
                ab.as_bytes(),
                Some(&leaf_a),
                now()
            )),
            norm(format!("{}{}{}", a.pem(), b.pem(), new.pem()))
        );
        // Nothing served yet, or a leaf of no CA in the bundle: as prepend_last_ca.
        assert_eq!(
            bundle_for_new_ca(new.pem(), ab.as_bytes(), None, now()),
            prepend_last_ca(new.pem(), ab.as_bytes())
        );
        assert_eq!(
            bundle_for_new_ca(new.pem(), b.pem().as_bytes(), Some(&leaf_a), now()),
            prepend_last_ca(new.pem(), b.pem().as_bytes())
        );
        // An expired leaf does not count.
        let later = now() + LEAF_LIFETIME + Duration::from_secs(3600);
        assert_eq!(
            bundle_for_new_ca(new.pem(), ab.as_bytes(), Some(&leaf_a), later),
            prepend_last_ca(new.pem(), ab.as_bytes())
        );
    }

    #[test]
    fn pem_encoding_round_trips_and_matches_rcgen() {
        let ca = Ca::generate(now()).unwrap();
        let der = CertificateDer::from(der_of(ca.pem()));
        let pem = pem_certificate(&der);
        assert_eq!(der_of(&pem), der.to_vec());
        assert_eq!(pem.replace("\r\n", "\n"), ca.pem().replace("\r\n", "\n"));
    }
}
