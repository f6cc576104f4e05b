//! Scope labels: what binds a sealed value to the place it may be unsealed.
//!
//! The label is the RSA-OAEP label of the Bitnami format, so a value sealed for
//! `prod/db` cannot be decrypted as `dev/db` or `prod/other`: OAEP checks the label's
//! hash, and a mismatch is an ordinary decryption failure. A value sealed to age
//! recipients carries the same label inside its authenticated payload (see
//! [`crate::age`]), and a mismatch there fails the same way.
//!
//! | scope            | label              |
//! |------------------|--------------------|
//! | `strict`         | `namespace/name`   |
//! | `namespace-wide` | `namespace`        |
//! | `cluster-wide`   | empty              |

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// Where a sealed value may be unsealed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Only as a Secret with exactly this name in exactly this namespace.
    #[default]
    Strict,
    /// As a Secret of any name in this namespace.
    NamespaceWide,
    /// As any Secret in any namespace.
    ClusterWide,
}

impl Scope {
    /// All scopes, in the order `kubeseal --scope` lists them.
    pub const ALL: [Scope; 3] = [Scope::Strict, Scope::NamespaceWide, Scope::ClusterWide];

    /// The OAEP label for a Secret called `name` in `namespace`.
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Scope::Strict => format!("{namespace}/{name}").into_bytes(),
            Scope::NamespaceWide => namespace.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        }
    }

    /// The name used by `--scope` and in documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| Error::InvalidScope {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_the_bitnami_rules() {
        assert_eq!(Scope::Strict.label("prod", "db"), b"prod/db");
        assert_eq!(Scope::NamespaceWide.label("prod", "db"), b"prod");
        assert_eq!(Scope::ClusterWide.label("prod", "db"), b"");
    }

    #[test]
    fn scope_names_round_trip_and_unknown_names_are_rejected() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().ok(), Some(scope));
        }
        assert!("Strict".parse::<Scope>().is_err());
        assert!("".parse::<Scope>().is_err());
    }
}
