//! The passphrase of a key backup: from `--passphrase-file`, else from
//! `$SEALANT_BACKUP_PASSPHRASE`, never from the command line (where `ps` would show
//! it). Shared by `sealant keys backup|restore` and `--recovery-private-key`.

use anyhow::{Context as _, Result, bail};

/// The environment variable that may hold the passphrase of `keys backup`, `keys
/// restore` (instead of `--passphrase-file`) and of a bundle given to
/// `--recovery-private-key`.
pub const PASSPHRASE_ENV: &str = "SEALANT_BACKUP_PASSPHRASE";

/// The first line of `path`, without its line ending, else `$SEALANT_BACKUP_PASSPHRASE`;
/// `None` when neither is given. An empty passphrase is refused.
pub(crate) fn passphrase(
    path: Option<&std::path::Path>,
) -> Result<Option<zeroize::Zeroizing<String>>> {
    let text = match path {
        Some(path) => crate::files::read_text(path, crate::files::Limit::SMALL_FILE)
            .with_context(|| format!("--passphrase-file {}: cannot read it", path.display()))?,
        None => match std::env::var(PASSPHRASE_ENV) {
            Ok(value) => zeroize::Zeroizing::new(value),
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("${PASSPHRASE_ENV} is not UTF-8 text")
            }
        },
    };
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        match path {
            Some(path) => bail!(
                "--passphrase-file {}: the first line is empty",
                path.display()
            ),
            None => bail!("${PASSPHRASE_ENV} is empty"),
        }
    }
    Ok(Some(zeroize::Zeroizing::new(line.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_is_the_first_line_without_its_line_ending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pass");
        std::fs::write(&path, "correct horse\r\nsecond line\n").expect("write");
        let pass = passphrase(Some(&path)).expect("read").expect("some");
        assert_eq!(pass.as_str(), "correct horse");
        std::fs::write(&path, "\nlater\n").expect("write");
        let err = passphrase(Some(&path)).expect_err("empty first line");
        assert!(err.to_string().contains("first line is empty"), "{err}");
    }
}
