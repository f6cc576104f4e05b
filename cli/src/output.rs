//! Where results go, and in which shape.
//!
//! Every command renders its whole result into memory first and only then writes it,
//! so a failure halfway through (the third of five documents is broken) prints
//! nothing and leaves `-w`/`--merge-into` files exactly as they were. Files are
//! written by [`crate::files`]: atomically, plaintext with mode 0600, never through a
//! symbolic link or into a special file.
//!
//! Shapes match kubeseal: JSON is pretty-printed with a trailing newline; YAML starts
//! each document with `---`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use zeroize::Zeroizing;

use crate::args::{Format, OutputArgs};
use crate::files::{self, Overwrite};

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

    /// Writes `bytes` to the destination. A `private` file (plaintext) is 0600 even
    /// when it replaces a file that was readable by others.
    pub fn write(&self, bytes: &[u8], private: bool) -> Result<()> {
        match &self.destination {
            Destination::Stdout => write_stdout(bytes),
            Destination::File(path) if private => {
                files::write_private(path, bytes, Overwrite::Allow)
            }
            Destination::File(path) => files::write_public(path, bytes),
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
}
