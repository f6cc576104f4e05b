//! The control plane's certificates, made in Rust with rcgen (no openssl, no cfssl).
//!
//! One throwaway CA signs the API server's serving certificate and the client
//! certificates. The admin identity is in `system:masters`; the controller-manager uses
//! `system:kube-controller-manager`, which the bootstrap RBAC already binds. All keys
//! are ECDSA P-256, which every component accepts and which is fast to generate.

use std::net::IpAddr;

use anyhow::{Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertPair {
    /// PEM certificate.
    pub cert_pem: String,
    /// PEM (PKCS#8) private key.
    pub key_pem: String,
}

/// Every certificate and key the control plane needs.
pub struct Pki {
    /// The CA certificate (PEM), trusted by every client and by the API server for
    /// client certificates.
    pub ca_pem: String,
    /// The API server's serving certificate.
    pub apiserver: CertPair,
    /// The admin client certificate (`O=system:masters`).
    pub admin: CertPair,
    /// The controller-manager's client certificate.
    pub controller_manager: CertPair,
    /// The service-account token signing key (PKCS#8 PEM) ...
    pub service_account_key_pem: String,
    /// ... and its public key (SPKI PEM).
    pub service_account_pub_pem: String,
}

impl Pki {
    /// Makes a fresh CA and everything it signs. `ips` are the API server's addresses.
    pub fn generate(ips: &[IpAddr]) -> Result<Self> {
        let now = OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate().context("generate CA key")?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = dn("sealant-e2e-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = now - Duration::hours(1);
        ca_params.not_after = now + Duration::days(2);
        let ca_cert = ca_params.self_signed(&ca_key).context("self-sign CA")?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut sans: Vec<SanType> = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
        // 10.0.0.1 is the first address of --service-cluster-ip-range: the in-cluster
        // name of the API server.
        sans.push(SanType::IpAddress(IpAddr::from([10, 0, 0, 1])));
        for name in [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            sans.push(SanType::DnsName(name.try_into().context("DNS SAN")?));
        }
        let apiserver = leaf(
            &issuer,
            now,
            dn("kube-apiserver", None),
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let admin = leaf(
            &issuer,
            now,
            dn("sealant-e2e-admin", Some("system:masters")),
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let controller_manager = leaf(
            &issuer,
            now,
            dn("system:kube-controller-manager", None),
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let sa = KeyPair::generate().context("generate service-account key")?;
        Ok(Self {
            ca_pem,
            apiserver,
            admin,
            controller_manager,
            service_account_key_pem: sa.serialize_pem(),
            service_account_pub_pem: sa.public_key_pem(),
        })
    }
}

fn dn(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    now: OffsetDateTime,
    subject: DistinguishedName,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertPair> {
    let key = KeyPair::generate().context("generate leaf key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(2);
    let cert = params.signed_by(&key, issuer).context("sign leaf")?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
