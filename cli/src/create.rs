//! `sealant create NAME`: build a Secret in memory from literals, files and env files.
//!
//! The usual recipe, `kubectl create secret generic --dry-run=client -o yaml >
//! secret.yaml && kubeseal < secret.yaml`, leaves a plaintext manifest on disk (and
//! often in shell history or Git). Here the Secret only ever exists in this process,
//! its values are wiped after sealing, and only the SealedSecret is written.
//!
//! The flags follow `kubectl create secret generic`: `--from-literal KEY=VALUE`,
//! `--from-file [KEY=]PATH` (a directory adds each regular file in it) and
//! `--from-env-file FILE`. A key may appear only once.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use zeroize::{Zeroize as _, Zeroizing};

use crate::args::CreateArgs;
use crate::files::{self, Limit};

/// Builds the Secret described by `args`. The namespace is left to the sealing step.
pub fn build_secret(args: &CreateArgs) -> Result<Secret> {
    let mut data = Values::default();
    for literal in &args.from_literal {
        let (key, value) = literal
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .with_context(|| "--from-literal must be KEY=VALUE".to_owned())?;
        data.insert(key, value.as_bytes().to_vec(), "--from-literal")?;
    }
    for source in &args.from_file {
        add_from_file(&mut data, source)?;
    }
    for path in &args.from_env_file {
        add_from_env_file(&mut data, path)?;
    }
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(args.name.clone()),
            namespace: args.sealing.to.cluster.namespace.clone(),
            ..ObjectMeta::default()
        },
        type_: Some(args.secret_type.clone()),
        data: Some(std::mem::take(&mut data.0)),
        ..Secret::default()
    })
}

/// The Secret's values, with kubectl's rules for keys.
#[derive(Default)]
struct Values(BTreeMap<String, ByteString>);

impl Values {
    fn insert(&mut self, key: &str, value: Vec<u8>, flag: &str) -> Result<()> {
        let value = Zeroizing::new(value);
        check_key(key).with_context(|| format!("{flag}: invalid key {key:?}"))?;
        if self.0.contains_key(key) {
            bail!("{flag}: cannot add key {key:?}, another key by that name already exists");
        }
        self.0.insert(key.to_owned(), ByteString(value.to_vec()));
        Ok(())
    }
}

impl Drop for Values {
    /// Wipes what was read so far when building the Secret fails halfway.
    fn drop(&mut self) {
        self.0.values_mut().for_each(|v| v.0.zeroize());
    }
}

/// A Secret key is made of alphanumerics, `-`, `_` and `.`, and is not `.` or `..`.
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 253 {
        bail!("a key must be 1 to 253 characters long");
    }
    if key == "." || key == ".." {
        bail!("a key must not be '.' or '..'");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        bail!("a key may only contain alphanumerics, '-', '_' and '.'");
    }
    Ok(())
}

fn add_from_file(data: &mut Values, source: &str) -> Result<()> {
    let (key, path) = match source.split_once('=') {
        Some((key, path)) => (Some(key), Path::new(path)),
        None => (None, Path::new(source)),
    };
    if key.is_none() && path.is_dir() {
        let entries = std::fs::read_dir(path)
            .with_context(|| format!("--from-file: cannot list {}", path.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry =
                entry.with_context(|| format!("--from-file: cannot list {}", path.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                files.push(entry.path());
            }
        }
        files.sort();
        for file in files {
            add_one_file(data, None, &file)?;
        }
        return Ok(());
    }
    add_one_file(data, key, path)
}

fn add_one_file(data: &mut Values, key: Option<&str>, path: &Path) -> Result<()> {
    let key = match key {
        Some(key) => key.to_owned(),
        None => path
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("--from-file: {} has no usable file name", path.display()))?
            .to_owned(),
    };
    let mut value = files::read(path, Limit::VALUE)
        .with_context(|| format!("--from-file: cannot read {}", path.display()))?;
    data.insert(&key, std::mem::take(&mut *value), "--from-file")
}

/// `KEY=VALUE` per line; blank lines and `#` comments are skipped; a bare `KEY` takes
/// its value from the environment, as kubectl does.
fn add_from_env_file(data: &mut Values, path: &Path) -> Result<()> {
    let bytes = files::read(path, Limit::VALUE)
        .with_context(|| format!("--from-env-file: cannot read {}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("--from-env-file: {} is not UTF-8", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, line) in text.lines().enumerate() {
        let where_ = || format!("--from-env-file: {} line {}", path.display(), index + 1);
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, value.as_bytes().to_vec()),
            None => {
                let key = line.trim_end();
                let value = std::env::var_os(key).with_context(|| {
                    format!(
                        "{}: {key:?} has no '=' and no such environment variable",
                        where_()
                    )
                })?;
                (key, value.into_encoded_bytes())
            }
        };
        data.insert(key, value, "--from-env-file")
            .with_context(where_)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_kubectl_rules() {
        assert!(check_key("tls.crt").is_ok());
        assert!(check_key("A_b-9").is_ok());
        assert!(check_key("a/b").is_err());
        assert!(check_key("..").is_err());
        assert!(check_key("").is_err());
    }

    #[test]
    fn env_file_skips_comments_and_keeps_values_verbatim() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.env");
        std::fs::write(&path, "# comment\n\nA=1=2\n  B= spaced \n").expect("write");
        let mut values = Values::default();
        add_from_env_file(&mut values, &path).expect("parse");
        assert_eq!(values.0["A"].0, b"1=2");
        assert_eq!(values.0["B"].0, b" spaced ");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let mut values = Values::default();
        values
            .insert("a", b"1".to_vec(), "--from-literal")
            .expect("first");
        let err = values
            .insert("a", b"2".to_vec(), "--from-literal")
            .expect_err("duplicate");
        assert!(err.to_string().contains("already exists"), "{err}");
    }
}
