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
//! The ring also holds age identities, one per key generation, each optionally tied to
//! the RSA key of the same generation (the Secret that holds both). [`KeyRing::open`]
//! tells the formats apart by the age header ([`age_envelope::is_age`]):
//!
//! ```text
//!   blob ──is_age?──yes──▶ age identities: hinted first, then newest first ──▶ envelope
//!          │                (the scope label is checked inside the envelope)
//!          └──no──────────▶ RSA keys: hinted first, then same-size keys newest first
//! ```
//!
//! Failures stay coarse: if no key opens the blob, the result is [`Error::Decrypt`],
//! whatever each key's reason was.
//!
//! ## Which key opened a value
//!
//! [`Opened::fingerprint`] names the key generation that opened a value, so that the
//! caller can record it and pass it back as the next hint. For an RSA blob it is the
//! RSA key's fingerprint. For an age blob it is the fingerprint of the RSA key the
//! identity belongs to, or, for an identity held on its own, the identity's recipient
//! text (`age1...`) wrapped as a [`Fingerprint`]. [`Opened::age`] additionally names
//! the identity's recipient for every age blob. A hint matches an age identity by
//! either name.

use time::OffsetDateTime;

use crate::{
    AgeIdentity, AgeRecipient, Error, Fingerprint, Plaintext, PrivateKey, age_envelope, hybrid,
};

/// One key and the time that orders it (certificate NotBefore, or the key Secret's
/// creation time, as `--key-order-priority` chooses).
#[derive(Clone, Debug)]
pub struct RingEntry {
    /// The private key.
    pub key: PrivateKey,
    /// When the key was created.
    pub created: OffsetDateTime,
}

/// One age identity, the time that orders it, and the RSA key of its key generation.
#[derive(Clone, Debug)]
pub struct AgeEntry {
    /// The identity.
    pub identity: AgeIdentity,
    /// When it was created (ordered like [`RingEntry::created`]).
    pub created: OffsetDateTime,
    /// The RSA key of the same key generation, if the identity belongs to one.
    pub rsa: Option<Fingerprint>,
}

impl AgeEntry {
    /// The name [`Opened::fingerprint`] reports for this identity: its RSA key's
    /// fingerprint, or else its recipient text.
    pub fn key_id(&self) -> Fingerprint {
        self.rsa
            .clone()
            .unwrap_or_else(|| Fingerprint::from_string(self.identity.recipient().to_string()))
    }

    fn answers_to(&self, hint: &Fingerprint) -> bool {
        self.rsa.as_ref() == Some(hint) || hint.as_str() == self.identity.recipient().to_string()
    }
}

/// Many private keys, newest first: RSA keys, and age identities beside them.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    entries: Vec<RingEntry>,
    age: Vec<AgeEntry>,
}

/// A successful decryption: the plaintext and the key that produced it.
#[derive(Debug)]
pub struct Opened {
    /// The decrypted bytes.
    pub plaintext: Plaintext,
    /// Which key generation opened the blob: the RSA key's fingerprint, or for an age
    /// blob [`AgeEntry::key_id`] (see the module docs).
    pub fingerprint: Fingerprint,
    /// For an age blob, the recipient of the identity that opened it; `None` for RSA.
    pub age: Option<AgeRecipient>,
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
        insert_newest_first(&mut self.entries, RingEntry { key, created }, |e| e.created);
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

    /// The number of RSA keys (age identities are counted by [`KeyRing::age_len`]).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the ring holds no RSA key (whatever age identities it holds).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an age identity created at `created`, tied to the RSA key `rsa` of the same
    /// key generation if there is one (that key need not be in the ring). Returns
    /// `false`, and changes nothing, if an identity with the same recipient is held.
    pub fn insert_age(
        &mut self,
        identity: AgeIdentity,
        created: OffsetDateTime,
        rsa: Option<Fingerprint>,
    ) -> bool {
        if self.age_entry(identity.recipient()).is_some() {
            return false;
        }
        let entry = AgeEntry {
            identity,
            created,
            rsa,
        };
        insert_newest_first(&mut self.age, entry, |e| e.created);
        true
    }

    /// Removes the age identity with this recipient, returning it if it was held.
    /// Removing an RSA key with [`KeyRing::remove`] leaves its age identity in place.
    pub fn remove_age(&mut self, recipient: &AgeRecipient) -> Option<AgeEntry> {
        let at = self
            .age
            .iter()
            .position(|e| e.identity.recipient() == recipient)?;
        Some(self.age.remove(at))
    }

    /// The newest age identity: the one whose recipient new values are sealed to.
    pub fn newest_age(&self) -> Option<&AgeEntry> {
        self.age.first()
    }

    /// The age identity with this recipient.
    pub fn age_entry(&self, recipient: &AgeRecipient) -> Option<&AgeEntry> {
        self.age
            .iter()
            .find(|e| e.identity.recipient() == recipient)
    }

    /// The age identity of the key generation whose RSA key has this fingerprint.
    pub fn age_for_rsa(&self, fingerprint: &Fingerprint) -> Option<&AgeEntry> {
        self.age
            .iter()
            .find(|e| e.rsa.as_ref() == Some(fingerprint))
    }

    /// All age identities, newest first.
    pub fn iter_age(&self) -> impl Iterator<Item = &AgeEntry> {
        self.age.iter()
    }

    /// The number of age identities.
    pub fn age_len(&self) -> usize {
        self.age.len()
    }

    /// Opens `blob` under `label`, trying `hint` first, then every other key that
    /// could have sealed it, newest first. An age blob ([`age_envelope::is_age`]) is
    /// opened with the age identities, anything else with the RSA keys.
    pub fn open(
        &self,
        blob: &[u8],
        label: &[u8],
        hint: Option<&Fingerprint>,
    ) -> Result<Opened, Error> {
        if age_envelope::is_age(blob) {
            return self.open_age(blob, label, hint);
        }
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
                    age: None,
                });
            }
        }
        Err(Error::Decrypt)
    }

    /// The age half of [`KeyRing::open`]: the identity the hint names first, then the
    /// others, newest first.
    fn open_age(
        &self,
        blob: &[u8],
        label: &[u8],
        hint: Option<&Fingerprint>,
    ) -> Result<Opened, Error> {
        let first = hint.and_then(|h| self.age.iter().position(|e| e.answers_to(h)));
        let rest = (0..self.age.len()).filter(|&i| Some(i) != first);
        for entry in first.into_iter().chain(rest).map(|i| &self.age[i]) {
            if let Ok(plaintext) = age_envelope::open_one(&entry.identity, label, blob) {
                return Ok(Opened {
                    plaintext,
                    fingerprint: entry.key_id(),
                    age: Some(entry.identity.recipient().clone()),
                });
            }
        }
        Err(Error::Decrypt)
    }
}

/// Inserts `item` into `list`, which is ordered newest first by `created`: after every
/// item at least as new, so that on equal times the item inserted first stays newer
/// (Bitnami's rule: it registers keys in creation order and replaces the newest only
/// on a strictly later time). The one ordering rule of RSA keys and age identities.
fn insert_newest_first<T>(list: &mut Vec<T>, item: T, created: impl Fn(&T) -> OffsetDateTime) {
    let time = created(&item);
    let at = list
        .iter()
        .position(|e| created(e) < time)
        .unwrap_or(list.len());
    list.insert(at, item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_insertion_keeps_the_first_inserted_ahead_on_equal_times() {
        let t = |s: i64| OffsetDateTime::from_unix_timestamp(s).expect("time");
        let mut list: Vec<(OffsetDateTime, &str)> = Vec::new();
        for item in [
            (t(10), "a"),
            (t(30), "b"),
            (t(20), "c"),
            (t(30), "d"),
            (t(5), "e"),
        ] {
            insert_newest_first(&mut list, item, |e| e.0);
        }
        let names: Vec<&str> = list.iter().map(|e| e.1).collect();
        assert_eq!(names, ["b", "d", "c", "a", "e"]);
    }
}
