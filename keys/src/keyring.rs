//! The key ring: every private key a controller or a recovery run holds.
//!
//! Keys are kept newest first. The newest key seals; every key decrypts. Decryption
//! tries the most likely key first and then the rest:
//!
//! 1. the key named by the caller's hint (for example the fingerprint recorded in a
//!    SealedSecret's status the last time it was unsealed);
//! 2. the remaining keys whose modulus length equals the blob's RSA length, newest
//!    first. A key of another size cannot have sealed the blob and is never tried.
//!
//! Failures stay coarse: if no key opens the blob, the result is [`Error::Decrypt`],
//! whatever each key's reason was.

use time::OffsetDateTime;

use crate::{Error, Fingerprint, Plaintext, PrivateKey, hybrid};

/// One key and the time that orders it (certificate NotBefore, or the key Secret's
/// creation time, as `--key-order-priority` chooses).
#[derive(Clone, Debug)]
pub struct RingEntry {
    /// The private key.
    pub key: PrivateKey,
    /// When the key was created.
    pub created: OffsetDateTime,
}

/// Many private keys, newest first.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    entries: Vec<RingEntry>,
}

/// A successful decryption: the plaintext and the key that produced it.
#[derive(Debug)]
pub struct Opened {
    /// The decrypted bytes.
    pub plaintext: Plaintext,
    /// Which key opened the blob.
    pub fingerprint: Fingerprint,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key. Returns `false`, and changes nothing, if a key with the same
    /// fingerprint is already held.
    pub fn insert(&mut self, key: PrivateKey, created: OffsetDateTime) -> bool {
        if self.get(key.fingerprint()).is_some() {
            return false;
        }
        let at = self
            .entries
            .iter()
            .position(|e| e.created < created)
            .unwrap_or(self.entries.len());
        self.entries.insert(at, RingEntry { key, created });
        true
    }

    /// Removes the key with this fingerprint, returning it if it was held.
    pub fn remove(&mut self, fingerprint: &Fingerprint) -> Option<RingEntry> {
        let at = self
            .entries
            .iter()
            .position(|e| e.key.fingerprint() == fingerprint)?;
        Some(self.entries.remove(at))
    }

    /// The newest key: the one that seals.
    pub fn newest(&self) -> Option<&RingEntry> {
        self.entries.first()
    }

    /// The key with this fingerprint.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<&RingEntry> {
        self.entries
            .iter()
            .find(|e| e.key.fingerprint() == fingerprint)
    }

    /// All keys, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &RingEntry> {
        self.entries.iter()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Opens `blob` under `label`, trying `hint` first, then every other key that
    /// could have sealed it, newest first.
    pub fn open(
        &self,
        blob: &[u8],
        label: &[u8],
        hint: Option<&Fingerprint>,
    ) -> Result<Opened, Error> {
        let (rsa_part, _) = hybrid::split(blob).ok_or(Error::Decrypt)?;
        let fits = |e: &&RingEntry| e.key.size_bytes() == rsa_part.len();
        let hinted = hint.and_then(|fp| self.get(fp)).filter(fits);
        let rest = self
            .entries
            .iter()
            .filter(fits)
            .filter(|e| Some(e.key.fingerprint()) != hint);
        for entry in hinted.into_iter().chain(rest) {
            if let Ok(plaintext) = hybrid::open(&entry.key, blob, label) {
                return Ok(Opened {
                    plaintext,
                    fingerprint: entry.key.fingerprint().clone(),
                });
            }
        }
        Err(Error::Decrypt)
    }
}
