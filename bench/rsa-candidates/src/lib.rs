//! Loads one RSA-4096 key into both candidate libraries, so the benchmark compares the
//! same private-key operation on the same key.
//!
//! The key is sealant's committed vector key `keys/tests/testdata/rsa4096.pem`.

use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::EncodePrivateKey as _;

/// The RSA-4096 vector key as PKCS#1 PEM.
pub const KEY_PEM: &str = include_str!("../../../keys/tests/testdata/rsa4096.pem");

/// The same key in RustCrypto `rsa` and in AWS-LC.
pub struct Keys {
    /// RustCrypto.
    pub rust_crypto: rsa::PrivateKey,
    /// AWS-LC.
    pub aws_lc: OaepPrivateDecryptingKey,
    /// The public half, in AWS-LC, to make ciphertexts.
    pub public: OaepPublicEncryptingKey,
}

/// Parses [`KEY_PEM`] into both libraries.
pub fn keys() -> Result<Keys, Box<dyn std::error::Error>> {
    let rust_crypto = rsa::PrivateKey::from_pkcs1_pem(KEY_PEM)?;
    let pkcs8 = rust_crypto.to_pkcs8_der()?;
    let private = PrivateDecryptingKey::from_pkcs8(pkcs8.as_bytes()).map_err(|e| e.to_string())?;
    let public = OaepPublicEncryptingKey::new(private.public_key()).map_err(|e| e.to_string())?;
    let aws_lc = OaepPrivateDecryptingKey::new(private).map_err(|e| e.to_string())?;
    Ok(Keys {
        rust_crypto,
        aws_lc,
        public,
    })
}
