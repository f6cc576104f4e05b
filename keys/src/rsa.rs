//! RSA key material, backed by AWS-LC.
//!
//! [`PrivateKey`] is the only type in sealant that holds a private key. It keeps the
//! AWS-LC key object (which wipes itself when freed) and the PKCS#1 encoding in a
//! zeroizing buffer, so the key can be written back out as Bitnami writes it. Its
//! `Debug` shows only the fingerprint.
//!
//! Keys are read from PEM as PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`) and
//! written as PKCS#1, which is what the Bitnami controller stores in `tls.key`.
//!
//! The [`Fingerprint`] of a key is the one Bitnami's controller computes: the SHA-256
//! of the SSH wire encoding of the public key, as `SHA256:` plus unpadded base64. Both
//! controllers name the same key the same way.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use base64::Engine as _;
use pkcs8::der::Decode as _;
use zeroize::Zeroizing;

use crate::Error;

const PEM_PKCS1: &str = "RSA PRIVATE KEY";
const PEM_PKCS8: &str = "PRIVATE KEY";

/// The `rsaEncryption` algorithm identifier, as it appears in PKCS#8.
const RSA_ENCRYPTION_OID: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Names one RSA public key: `SHA256:` plus the unpadded base64 of the SHA-256 of the
/// key's SSH wire encoding (as `ssh-keygen -l` and the Bitnami controller print it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a fingerprint that was stored as text (for example in a status field).
    pub fn from_string(text: String) -> Self {
        Self(text)
    }

    fn of_rsa(modulus: &[u8], exponent: &[u8]) -> Self {
        let mut wire = Vec::with_capacity(modulus.len() + 32);
        ssh_string(&mut wire, b"ssh-rsa");
        ssh_mpint(&mut wire, exponent);
        ssh_mpint(&mut wire, modulus);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &wire);
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref());
        Self(format!("SHA256:{b64}"))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    // An RSA modulus is at most a few KiB, far below u32::MAX.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn ssh_mpint(out: &mut Vec<u8>, big_endian: &[u8]) {
    let trimmed = match big_endian.iter().position(|&b| b != 0) {
        Some(first) => &big_endian[first..],
        None => &[],
    };
    if trimmed.first().is_some_and(|&b| b & 0x80 != 0) {
        let mut padded = Vec::with_capacity(trimmed.len() + 1);
        padded.push(0);
        padded.extend_from_slice(trimmed);
        ssh_string(out, &padded);
    } else {
        ssh_string(out, trimmed);
    }
}

/// An RSA public key that can seal values with RSA-OAEP-SHA256.
#[derive(Clone)]
pub struct PublicKey {
    inner: Arc<PublicInner>,
}

struct PublicInner {
    oaep: OaepPublicEncryptingKey,
    spki_der: Vec<u8>,
    fingerprint: Fingerprint,
    bits: usize,
}

impl PublicKey {
    /// Reads a DER `SubjectPublicKeyInfo` (the public key inside a certificate).
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, Error> {
        let (modulus, exponent) = rsa_numbers_from_spki(spki_der)?;
        let key = PublicEncryptingKey::from_der(spki_der).map_err(|_| Error::InvalidPublicKey {
            reason: "AWS-LC rejected the key (it must be RSA, 2048 to 8192 bits)",
        })?;
        let bits = key.key_size_bits();
        let oaep = OaepPublicEncryptingKey::new(key).map_err(|_| Error::InvalidPublicKey {
            reason: "the key cannot be used for RSA-OAEP",
        })?;
        Ok(Self {
            inner: Arc::new(PublicInner {
                oaep,
                spki_der: spki_der.to_vec(),
                fingerprint: Fingerprint::of_rsa(&modulus, &exponent),
                bits,
            }),
        })
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.inner.fingerprint
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.inner.bits
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.inner.spki_der
    }

    pub(crate) fn oaep(&self) -> &OaepPublicEncryptingKey {
        &self.inner.oaep
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner.spki_der == other.inner.spki_der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &self.inner.bits)
            .field("fingerprint", &self.inner.fingerprint.as_str())
            .finish()
    }
}

/// An RSA private key. Cheap to clone (shared), wiped when the last clone is dropped,
/// and never shown by `Debug`.
#[derive(Clone)]
pub struct PrivateKey {
    inner: Arc<PrivateInner>,
}

struct PrivateInner {
    oaep: OaepPrivateDecryptingKey,
    pkcs1_der: Zeroizing<Vec<u8>>,
    public: PublicKey,
}

impl PrivateKey {
    /// Generates a fresh key pair. `bits` must be 2048, 3072, 4096 (Bitnami's default)
    /// or 8192.
    pub fn generate(bits: usize) -> Result<Self, Error> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            _ => return Err(Error::UnsupportedKeySize { bits }),
        };
        let key = PrivateDecryptingKey::generate(size).map_err(|_| Error::KeyGeneration)?;
        let pkcs8 = key.as_der().map_err(|_| Error::KeyGeneration)?;
        let pkcs1 = pkcs1_from_pkcs8(pkcs8.as_ref())?;
        Self::from_parts(key, pkcs1)
    }

    /// Reads a PEM private key: PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`).
    /// Other PEM blocks in the text (a certificate, say) are skipped.
    pub fn from_pem(text: &[u8]) -> Result<Self, Error> {
        let blocks = pem::parse_many(text).map_err(Error::Pem)?;
        for block in blocks {
            // Copy the DER out of the PEM block into a zeroizing buffer right away.
            let der = Zeroizing::new(block.contents().to_vec());
            match block.tag() {
                PEM_PKCS1 => return Self::from_pkcs1_der(&der),
                PEM_PKCS8 => return Self::from_pkcs8_der(&der),
                _ => continue,
            }
        }
        Err(Error::MissingPemBlock {
            expected: "RSA PRIVATE KEY (PKCS#1) or PRIVATE KEY (PKCS#8)",
        })
    }

    /// Reads a DER PKCS#1 `RSAPrivateKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, Error> {
        let pkcs8 = pkcs8_from_pkcs1(der)?;
        let key =
            PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| Error::InvalidPrivateKey {
                reason: "not a valid PKCS#1 RSA key of 2048 to 8192 bits",
            })?;
        Self::from_parts(key, Zeroizing::new(der.to_vec()))
    }

    /// Reads a DER PKCS#8 `PrivateKeyInfo` holding an RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let pkcs1 = pkcs1_from_pkcs8(der)?;
        let key = PrivateDecryptingKey::from_pkcs8(der).map_err(|_| Error::InvalidPrivateKey {
            reason: "not a valid PKCS#8 RSA key of 2048 to 8192 bits",
        })?;
        Self::from_parts(key, pkcs1)
    }

    fn from_parts(key: PrivateDecryptingKey, pkcs1_der: Zeroizing<Vec<u8>>) -> Result<Self, Error> {
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| Error::InvalidPrivateKey {
                reason: "cannot encode its public key",
            })?;
        let public = PublicKey::from_spki_der(spki.as_ref())?;
        let oaep = OaepPrivateDecryptingKey::new(key).map_err(|_| Error::InvalidPrivateKey {
            reason: "the key cannot be used for RSA-OAEP",
        })?;
        Ok(Self {
            inner: Arc::new(PrivateInner {
                oaep,
                pkcs1_der,
                public,
            }),
        })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.inner.public
    }

    /// The fingerprint of the public key.
    pub fn fingerprint(&self) -> &Fingerprint {
        self.inner.public.fingerprint()
    }

    /// The modulus size in bytes, which is also the RSA ciphertext length.
    pub fn size_bytes(&self) -> usize {
        self.inner.oaep.key_size_bytes()
    }

    /// The key as PEM PKCS#1 (`RSA PRIVATE KEY`, LF line endings), the form Bitnami
    /// stores in `tls.key`.
    /// Exposes the private key: only for writing it to a key Secret or backup file.
    pub fn expose_pkcs1_pem(&self) -> Zeroizing<String> {
        let block = pem::Pem::new(PEM_PKCS1, self.inner.pkcs1_der.to_vec());
        let text = Zeroizing::new(encode_pem(&block));
        // `Pem` owns a copy of the DER; wipe it before it is dropped.
        let mut contents = block.into_contents();
        zeroize::Zeroize::zeroize(&mut contents);
        text
    }

    /// The key as DER PKCS#8, for signing the certificate. Exposes the private key.
    pub(crate) fn expose_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        pkcs8_from_pkcs1(&self.inner.pkcs1_der)
    }

    pub(crate) fn oaep(&self) -> &OaepPrivateDecryptingKey {
        &self.inner.oaep
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("bits", &self.inner.public.bits())
            .field("fingerprint", &self.fingerprint().as_str())
            .finish_non_exhaustive()
    }
}

/// PEM with LF line endings, as Go's `pem.Encode` writes it (the `pem` crate's default
/// is CRLF).
pub(crate) fn encode_pem(block: &pem::Pem) -> String {
    pem::encode_config(
        block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Unwraps the PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`.
fn pkcs1_from_pkcs8(der: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|_| Error::InvalidPrivateKey {
        reason: "not a DER PKCS#8 PrivateKeyInfo",
    })?;
    if info.algorithm.oid != RSA_ENCRYPTION_OID {
        return Err(Error::InvalidPrivateKey {
            reason: "the PKCS#8 key is not an RSA key",
        });
    }
    Ok(Zeroizing::new(info.private_key.to_vec()))
}

/// Wraps a PKCS#1 `RSAPrivateKey` in a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_from_pkcs1(der: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    use pkcs8::der::Encode as _;
    let info = pkcs8::PrivateKeyInfo {
        algorithm: pkcs8::AlgorithmIdentifierRef {
            oid: RSA_ENCRYPTION_OID,
            parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
        },
        private_key: der,
        public_key: None,
    };
    let mut out = Zeroizing::new(Vec::new());
    info.encode_to_vec(&mut out)
        .map_err(|_| Error::InvalidPrivateKey {
            reason: "cannot wrap the PKCS#1 key as PKCS#8",
        })?;
    Ok(out)
}

/// The big-endian modulus and exponent of an RSA `SubjectPublicKeyInfo`.
fn rsa_numbers_from_spki(spki_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    use x509_parser::prelude::FromDer as _;
    use x509_parser::public_key::PublicKey as Parsed;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| {
        Error::InvalidPublicKey {
            reason: "not a DER SubjectPublicKeyInfo",
        }
    })?;
    match spki.parsed() {
        Ok(Parsed::RSA(rsa)) => Ok((rsa.modulus.to_vec(), rsa.exponent.to_vec())),
        Ok(_) => Err(Error::InvalidPublicKey {
            reason: "the key is not an RSA key",
        }),
        Err(_) => Err(Error::InvalidPublicKey {
            reason: "the RSA public key is malformed",
        }),
    }
}
