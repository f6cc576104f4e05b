//! Where results go, and in which shape.
//!
//! Every command renders its whole result into memory first and only then writes it,
//! so a failure halfway through (the third of five documents is broken) prints
//! nothing and leaves `-w`/`--merge-into` files exactly as they were. Files are
//! replaced atomically: a temporary file in the same directory is written, synced and
//! renamed over the target, so a reader never sees half a file.
//!
//! Shapes match kubeseal: JSON is pretty-printed with a trailing newline; YAML starts
//! each document with `---`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use zeroize::Zeroizing;

use crate::args::{Format, OutputArgs};

/// Where the rendered result is written.
#[derive(Debug)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, replaced atomically.
    File(PathBuf),
}

/// A resolved output: format and destination.
#[derive(Debug)]
pub struct Output {
    /// The format to render in.
    pub format: Format,
    /// Where to write.
    pub destination: Destination,
}

impl Output {
    /// Resolves `-o` and `-w`: an explicit `-o` wins, else a `-w` name ending in
    /// `.yaml`/`.yml` means YAML, else JSON.
    pub fn from_args(args: &OutputArgs) -> Self {
        let format = args
            .format
            .unwrap_or_else(|| match &args.sealed_secret_file {
                Some(path) if has_yaml_extension(path) => Format::Yaml,
                _ => Format::Json,
            });
        let destination = match &args.sealed_secret_file {
            Some(path) => Destination::File(path.clone()),
            None => Destination::Stdout,
        };
        Self {
            format,
            destination,
        }
    }

    /// Writes `bytes` to the destination. `private` files (plaintext) are created
    /// with mode 0600.
    pub fn write(&self, bytes: &[u8], private: bool) -> Result<()> {
        match &self.destination {
            Destination::Stdout => write_stdout(bytes),
            Destination::File(path) => write_atomically(path, bytes, private),
        }
    }
}

/// True for `x.yaml` and `x.yml`.
pub fn has_yaml_extension(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Brings text rendered elsewhere (for example by `sealant-crds`) to kubeseal's shape.
pub fn normalize(text: Zeroizing<String>, format: Format) -> Zeroizing<String> {
    let body = text.trim_end_matches('\n');
    let mut out = Zeroizing::new(String::with_capacity(body.len() + 8));
    match format {
        Format::Json => {}
        Format::Yaml => {
            if !(body.starts_with("---\n") || body == "---") {
                out.push_str("---\n");
            }
        }
    }
    out.push_str(body);
    out.push('\n');
    out
}

/// Writes to stdout in one go. A closed pipe surfaces as an `io::Error` of kind
/// `BrokenPipe`, which `main` turns into a quiet success.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")
}

/// Replaces `path` with `bytes` atomically: write a temporary file beside it, sync
/// it, rename it over `path`. An existing file keeps its permissions; a new one is
/// 0600 when `private`, else 0644.
pub fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".sealant-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    set_permissions(tmp.as_file(), path, private)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(unix)]
fn set_permissions(file: &fs::File, target: &Path, private: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = match fs::metadata(target) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(_) if private => 0o600,
        Err(_) => 0o644,
    };
    file.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions for {}", target.display()))
}

#[cfg(not(unix))]
fn set_permissions(_file: &fs::File, _target: &Path, _private: bool) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_gets_a_document_marker_and_json_a_trailing_newline() {
        let yaml = normalize(Zeroizing::new("a: 1\n".to_owned()), Format::Yaml);
        assert_eq!(yaml.as_str(), "---\na: 1\n");
        let again = normalize(Zeroizing::new("---\na: 1".to_owned()), Format::Yaml);
        assert_eq!(again.as_str(), "---\na: 1\n");
        let json = normalize(Zeroizing::new("{}".to_owned()), Format::Json);
        assert_eq!(json.as_str(), "{}\n");
    }

    #[test]
    fn yaml_extension_of_the_output_file_selects_yaml_unless_o_is_given() {
        let args = OutputArgs {
            format: None,
            sealed_secret_file: Some("x/sealed.yml".into()),
        };
        assert_eq!(Output::from_args(&args).format, Format::Yaml);
        let args = OutputArgs {
            format: Some(Format::Json),
            sealed_secret_file: Some("sealed.yaml".into()),
        };
        assert_eq!(Output::from_args(&args).format, Format::Json);
        let args = OutputArgs {
            format: None,
            sealed_secret_file: None,
        };
        assert_eq!(Output::from_args(&args).format, Format::Json);
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        fs::write(&path, "old").expect("seed");
        write_atomically(&path, b"new", false).expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
    }
}
