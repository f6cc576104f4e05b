//! Containers for secret bytes.
//!
//! Every plaintext value and session key in sealant lives in a [`Plaintext`]: the bytes
//! are wiped when it is dropped, its `Debug` output never shows them, and reading them
//! is the visible act [`Plaintext::expose_secret`], so that a reviewer can grep for
//! every place where a secret leaves its box.

use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes, zeroed on drop, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    /// Takes ownership of `bytes`; they are wiped when the `Plaintext` is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Reads the secret. Every call site is a place where plaintext leaves its box.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty value (an empty value is legal and is sealed like any other).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Plaintext {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl From<&[u8]> for Plaintext {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plaintext([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_bytes() {
        let p = Plaintext::from(b"hunter2".as_slice());
        let shown = format!("{p:?} {p:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn expose_secret_returns_the_exact_bytes() {
        let p = Plaintext::new(vec![0, 255, 7]);
        assert_eq!(p.expose_secret(), &[0, 255, 7]);
        assert_eq!(p.len(), 3);
    }
}
