//! The Bitnami hybrid format, byte for byte.
//!
//! ```text
//! +---------+---------------------------+----------------------------------+
//! | u16 BE  | RSA-OAEP(SHA-256, MGF1-   | AES-256-GCM(session key,         |
//! | L       | SHA-256, label = scope)   |   nonce = 12 zero bytes, no AAD) |
//! |         | of a fresh 32-byte        |   of the plaintext, 16-byte tag  |
//! |         | session key  (L bytes)    |   at the end                     |
//! +---------+---------------------------+----------------------------------+
//! ```
//!
//! The all-zero nonce is safe because every session key is fresh and used for exactly
//! one message.
//!
//! Guarantees:
//! - [`seal`] never reuses a session key and wipes it after use.
//! - [`open`] never panics on any input, and every failure is [`Error::Decrypt`]:
//!   a short blob, a length prefix past the end, an OAEP or label mismatch and a bad
//!   GCM tag are indistinguishable to the caller.
//! - The session key and the plaintext only ever sit in zeroizing buffers.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256;
use zeroize::Zeroizing;

use crate::{Error, Plaintext, PrivateKey, PublicKey};

/// Session key length: AES-256.
pub const SESSION_KEY_LEN: usize = 32;

/// Length of the AES-GCM tag at the end of every blob.
pub const TAG_LEN: usize = 16;

/// Seals `plaintext` to `key` under the OAEP `label`.
pub fn seal(key: &PublicKey, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>, Error> {
    let mut session_key = Zeroizing::new([0u8; SESSION_KEY_LEN]);
    aws_lc_rs::rand::fill(session_key.as_mut()).map_err(|_| Error::Encrypt)?;

    let oaep = key.oaep();
    let rsa_len = oaep.ciphertext_size();
    let prefix = u16::try_from(rsa_len).map_err(|_| Error::Encrypt)?;

    let mut blob = Vec::with_capacity(2 + rsa_len + plaintext.len() + TAG_LEN);
    blob.extend_from_slice(&prefix.to_be_bytes());
    blob.resize(2 + rsa_len, 0);
    let written = oaep
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            session_key.as_ref(),
            &mut blob[2..],
            Some(label),
        )
        .map_err(|_| Error::Encrypt)?
        .len();
    if written != rsa_len {
        return Err(Error::Encrypt);
    }

    let aead = aead_key(session_key.as_ref()).map_err(|_| Error::Encrypt)?;
    let mut body = Zeroizing::new(plaintext.to_vec());
    let tag = aead
        .seal_in_place_separate_tag(zero_nonce(), Aad::empty(), &mut body)
        .map_err(|_| Error::Encrypt)?;
    // `body` now holds ciphertext, which is not secret, but it is wiped anyway.
    blob.extend_from_slice(&body);
    blob.extend_from_slice(tag.as_ref());
    Ok(blob)
}

/// Opens a blob with one private key. Every failure is [`Error::Decrypt`].
pub fn open(key: &PrivateKey, blob: &[u8], label: &[u8]) -> Result<Plaintext, Error> {
    let (rsa_part, aes_part) = split(blob).ok_or(Error::Decrypt)?;
    let oaep = key.oaep();
    if rsa_part.len() != oaep.key_size_bytes() {
        return Err(Error::Decrypt);
    }

    let mut session_key = Zeroizing::new(vec![0u8; oaep.min_output_size()]);
    let recovered = oaep
        .decrypt(
            &OAEP_SHA256_MGF1SHA256,
            rsa_part,
            &mut session_key,
            Some(label),
        )
        .map_err(|_| Error::Decrypt)?;
    if recovered.len() != SESSION_KEY_LEN {
        return Err(Error::Decrypt);
    }

    let aead = aead_key(recovered).map_err(|_| Error::Decrypt)?;
    let mut body = Zeroizing::new(aes_part.to_vec());
    let len = aead
        .open_in_place(zero_nonce(), Aad::empty(), &mut body)
        .map_err(|_| Error::Decrypt)?
        .len();
    body.truncate(len);
    Ok(Plaintext::new(std::mem::take(&mut *body)))
}

/// Splits a blob into its RSA and AES parts, or `None` when the length prefix does not
/// fit. The AES part must at least hold a tag.
pub(crate) fn split(blob: &[u8]) -> Option<(&[u8], &[u8])> {
    let (prefix, rest) = blob.split_first_chunk::<2>()?;
    let rsa_len = usize::from(u16::from_be_bytes(*prefix));
    if rest.len() < rsa_len + TAG_LEN {
        return None;
    }
    Some(rest.split_at(rsa_len))
}

fn aead_key(session_key: &[u8]) -> Result<LessSafeKey, aws_lc_rs::error::Unspecified> {
    Ok(LessSafeKey::new(UnboundKey::new(
        &AES_256_GCM,
        session_key,
    )?))
}

fn zero_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rejects_blobs_shorter_than_their_prefix() {
        assert!(split(&[]).is_none());
        assert!(split(&[0]).is_none());
        assert!(split(&[0, 4, 1, 2, 3]).is_none());
        let mut ok = vec![0, 2, 9, 9];
        ok.extend_from_slice(&[0; TAG_LEN]);
        let (rsa, aes) = split(&ok).expect("fits");
        assert_eq!(rsa, &[9, 9]);
        assert_eq!(aes.len(), TAG_LEN);
    }
}
