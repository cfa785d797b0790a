//! The generated CA and leaf checked with an X.509 parser, and the renewal and bundle rules on
//! fixed clocks.

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
