//! Self-signed certificates, made and read the way the Bitnami controller does.
//!
//! A sealing certificate only carries the public key to the people who seal; nothing
//! verifies a chain. What matters for compatibility is that both controllers and both
//! CLIs accept each other's certificates. Ours have the properties of Bitnami's:
//!
//! - RSA key (4096 bits by default), SHA-256 with RSA signature, self-signed;
//! - a random positive 128-bit serial number;
//! - subject CN from `--my-cn` (the subject is empty when the CN is empty);
//! - NotBefore = now, NotAfter = now + `--key-ttl` (about 10 years by default);
//! - basic constraints CA:TRUE, key usage "encipher only", as Bitnami sets them.
//!
//! Reading refuses an expired certificate when the caller asks for a check at a given
//! time: this crate never reads the clock itself.

use std::fmt;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, SerialNumber,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::prelude::FromDer as _;

use crate::{Error, Fingerprint, PrivateKey, PublicKey};

const PEM_CERTIFICATE: &str = "CERTIFICATE";

/// A parsed X.509 certificate holding an RSA public key.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    public: PublicKey,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    common_name: Option<String>,
}

impl Certificate {
    /// Reads the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(text: &[u8]) -> Result<Self, Error> {
        let blocks = pem::parse_many(text).map_err(Error::Pem)?;
        let block =
            blocks
                .iter()
                .find(|b| b.tag() == PEM_CERTIFICATE)
                .ok_or(Error::MissingPemBlock {
                    expected: PEM_CERTIFICATE,
                })?;
        Self::from_der(block.contents())
    }

    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let (rest, cert) =
            x509_parser::certificate::X509Certificate::from_der(der).map_err(|e| {
                Error::InvalidCertificate {
                    reason: e.to_string(),
                }
            })?;
        if !rest.is_empty() {
            return Err(Error::InvalidCertificate {
                reason: "trailing bytes after the certificate".to_owned(),
            });
        }
        let public = PublicKey::from_spki_der(cert.public_key().raw)?;
        let validity = cert.validity();
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        Ok(Self {
            der: der.to_vec(),
            public,
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            common_name,
        })
    }

    /// Makes the self-signed certificate for `key`, valid from `now` for `validity`.
    pub fn self_signed(
        key: &PrivateKey,
        validity: Duration,
        common_name: &str,
        now: OffsetDateTime,
    ) -> Result<Self, Error> {
        let pkcs8 = key.expose_pkcs8_der()?;
        let signer = KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &PKCS_RSA_SHA256,
        )
        .map_err(Error::CertificateSigning)?;

        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| Error::KeyGeneration)?;
        // Keep the serial positive and 128 bits at most, as Go's rand.Int(2^128) does.
        serial[0] &= 0x7f;

        let mut subject = DistinguishedName::new();
        if !common_name.is_empty() {
            subject.push(DnType::CommonName, common_name);
        }

        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.not_before = now;
        params.not_after = now + validity;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::EncipherOnly];
        let cert = params
            .self_signed(&signer)
            .map_err(Error::CertificateSigning)?;
        Self::from_der(cert.der())
    }

    /// Refuses a certificate whose NotAfter lies before `now`.
    pub fn check_not_expired(&self, now: OffsetDateTime) -> Result<(), Error> {
        if self.not_after < now {
            return Err(Error::CertificateExpired {
                not_after: self
                    .not_after
                    .format(&Rfc3339)
                    .unwrap_or_else(|_| self.not_after.to_string()),
            });
        }
        Ok(())
    }

    /// The certificate as PEM, with LF line endings: byte for byte what Go's
    /// `pem.Encode` writes, so `/v1/cert.pem` and `tls.crt` match Bitnami's.
    pub fn to_pem(&self) -> String {
        crate::rsa::encode_pem(&pem::Pem::new(PEM_CERTIFICATE, self.der.clone()))
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The public key to seal with.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The fingerprint of the public key.
    pub fn fingerprint(&self) -> &Fingerprint {
        self.public.fingerprint()
    }

    /// The start of validity; Bitnami orders keys by it.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The end of validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The subject's common name, if it has one.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// True when this certificate carries the public half of `key`.
    pub fn matches(&self, key: &PrivateKey) -> bool {
        self.public == *key.public_key()
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint().as_str())
            .field("common_name", &self.common_name)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}
