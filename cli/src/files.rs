//! Every file the CLI reads or writes goes through here: one capped reader, one atomic
//! writer for public output and one writer for files that hold plaintext or keys.
//!
//! ```text
//! -f, stdin, --merge-into, --from-file, --cert, key files ──▶ read (≤ limit) ──▶ Zeroizing bytes
//! SealedSecrets, certificates (-w, --merge-into, reencrypt) ──▶ write_public  (mode kept, never s-bits)
//! plaintext and keys (--recovery-unseal -w, keygen-escrow, keys backup) ──▶ write_private (0600)
//! ```
//!
//! # Guarantees
//!
//! - **Reads are capped.** At most one byte past the limit is ever read, so
//!   `--cert /dev/zero` or a 200 MB `--from-file` fails at once with an error that
//!   names the limit (the caller names the file), never the size of what was read. The buffer is
//!   zeroizing and grows by copying into a fresh zeroizing buffer, so no partial copy
//!   of plaintext is left behind in freed memory. FIFOs may be read (`-f <(...)`).
//! - **Writes are atomic.** A temporary file beside the target (mode 0600 from
//!   creation) is written, synced, given its final mode and renamed over the target, so
//!   a reader never sees half a file and a failed write leaves the old file as it was.
//! - **Links and special files are refused, not followed.** A rename replaces a
//!   symbolic link itself rather than the file it points to, and a FIFO or a device
//!   cannot be replaced atomically at all (reading a FIFO that no one writes hangs).
//!   Rather than keep a second, non-atomic code path for them, the writers and
//!   [`read_regular`] (for `--merge-into`, which reads the file it then replaces)
//!   refuse both with an error that says what to pass instead. Links in the
//!   directories above the file are followed as usual. The check and the open are
//!   two steps: someone who can swap the path for a FIFO in between can still make a
//!   read wait, but a rename never writes through a link.
//! - **Modes.** A private file is 0600 whatever was there before: replacing a
//!   world-readable file with plaintext makes it 0600. A public file keeps the
//!   permission bits of the file it replaces, minus setuid, setgid and sticky; a new
//!   one is 0644.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use zeroize::Zeroizing;

/// How much a reader accepts, and why that much.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    bytes: usize,
    reason: &'static str,
}

impl Limit {
    /// A stream of manifests (`-f`, stdin), a `--merge-into` file, a key file or a key
    /// bundle: room for thousands of Secrets at Kubernetes' 1 MiB object limit.
    pub const MANIFESTS: Limit = Limit {
        bytes: 32 << 20,
        reason: "the limit for a file of manifests or keys",
    };
    /// One value (`--from-file`, `--raw` on stdin, `--from-env-file`): no Secret can
    /// hold more.
    pub const VALUE: Limit = Limit {
        bytes: 1 << 20,
        reason: "the most a Kubernetes Secret can hold",
    };
    /// A small file of lines: age recipients or identities, a passphrase.
    pub const SMALL_FILE: Limit = Limit {
        bytes: 1 << 20,
        reason: "the limit for a recipients, identity or passphrase file",
    };
    /// A PEM certificate, a few KiB in practice.
    pub const CERTIFICATE: Limit = Limit {
        bytes: 1 << 20,
        reason: "the limit for a certificate",
    };

    /// The limit in bytes.
    pub const fn bytes(self) -> usize {
        self.bytes
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bytes {
            b if b >= 1 << 20 && b % (1 << 20) == 0 => write!(f, "{} MiB", b >> 20),
            b if b >= 1 << 10 && b % (1 << 10) == 0 => write!(f, "{} KiB", b >> 10),
            b => write!(f, "{b} bytes"),
        }
    }
}

/// Whether a private file may replace one that is already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it (and make it 0600).
    Allow,
    /// Refuse, and tell the user about `--force`. A file that appears while this one
    /// is being written is not replaced either.
    Refuse,
}

impl Overwrite {
    /// `--force` allows replacing; without it an existing file is kept.
    pub fn when_forced(force: bool) -> Self {
        if force { Self::Allow } else { Self::Refuse }
    }
}

/// Reads `path` whole, refusing more than `limit` bytes. Any file type that can be
/// read is accepted, FIFOs included. Errors say what went wrong but not which file:
/// the caller names it, with the flag it came from.
pub fn read(path: &Path, limit: Limit) -> Result<Zeroizing<Vec<u8>>> {
    let file = File::open(path)?;
    let hint = file.metadata().map_or(0, |m| usize_len(&m));
    read_capped(file, limit, hint)?.ok_or_else(|| too_large(limit))
}

/// Reads `path` whole like [`read`], as UTF-8 text.
pub fn read_text(path: &Path, limit: Limit) -> Result<Zeroizing<String>> {
    let mut bytes = read(path, limit)?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(err) => {
            // The bytes may be a secret: wipe them before they are dropped.
            drop(Zeroizing::new(err.into_bytes()));
            bail!("not UTF-8 text")
        }
    }
}

/// Reads `path` whole like [`read`], but only when it is a regular file: a symbolic
/// link or a special file (FIFO, device, socket, directory) is refused before it is
/// opened. For files that are read and then replaced (`--merge-into`).
pub fn read_regular(path: &Path, limit: Limit) -> Result<Zeroizing<Vec<u8>>> {
    refuse_unless_regular(path, &fs::symlink_metadata(path)?)?;
    read(path, limit)
}

/// Reads all of stdin, refusing more than `limit` bytes.
pub fn read_stdin(limit: Limit) -> Result<Zeroizing<Vec<u8>>> {
    read_capped(io::stdin().lock(), limit, 0)?.ok_or_else(|| too_large(limit))
}

/// Replaces `path` atomically with public content (a SealedSecret, a certificate).
/// An existing file keeps its permission bits minus setuid, setgid and sticky; a new
/// one is 0644. Errors name the file.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    let mode = match existing(path)? {
        Some(meta) => permission_bits(&meta) & 0o777,
        None => 0o644,
    };
    replace(path, bytes, mode, Overwrite::Allow)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes plaintext or key material to `path` atomically, with mode 0600 from the
/// moment the file exists. With [`Overwrite::Refuse`] an existing file is kept and
/// the error points at `--force`. Errors name the file.
pub fn write_private(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<()> {
    if overwrite == Overwrite::Refuse {
        refuse_existing(path)?;
    }
    existing(path)?;
    replace(path, bytes, 0o600, overwrite)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Fails early, before any work, when [`write_private`] with `Overwrite::Refuse`
/// would refuse `path`.
pub fn refuse_existing(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(already_exists(path));
    }
    Ok(())
}

/// The metadata of the file at `path` if there is one, refusing links and special
/// files.
fn existing(path: &Path) -> Result<Option<Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            refuse_unless_regular(path, &meta)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(Some(meta))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// The one atomic writer: temporary file beside `path`, `mode` set, written, synced,
/// renamed.
fn replace(path: &Path, bytes: &[u8], mode: u32, overwrite: Overwrite) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // tempfile creates the file with mode 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".sealant-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    set_mode(tmp.as_file(), mode).context("cannot set the mode of the temporary file")?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    match overwrite {
        Overwrite::Allow => tmp.persist(path).map_err(|e| e.error)?,
        Overwrite::Refuse => tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                already_exists(path)
            } else {
                e.error.into()
            }
        })?,
    };
    // Make the rename durable; a directory that cannot be synced (some network file
    // systems) still holds the complete file.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Reads to the end, or returns `None` as soon as more than `limit` bytes arrive.
///
/// The buffer only ever grows into a new zeroizing buffer, so no copy of the input is
/// left in freed memory. `hint` (a regular file's length) sizes the first buffer.
fn read_capped(
    mut reader: impl Read,
    limit: Limit,
    hint: usize,
) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let cap = limit.bytes.saturating_add(1);
    let mut buf = Zeroizing::new(vec![0u8; hint.saturating_add(1).max(8 << 10).min(cap)]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len >= cap {
                return Ok(None);
            }
            let mut bigger = Zeroizing::new(vec![0u8; len.saturating_mul(2).min(cap)]);
            bigger[..len].copy_from_slice(&buf[..len]);
            buf = bigger;
        }
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if len > limit.bytes {
        return Ok(None);
    }
    buf.truncate(len);
    Ok(Some(buf))
}

fn too_large(limit: Limit) -> anyhow::Error {
    anyhow!("larger than {limit}, {}", limit.reason)
}

fn already_exists(path: &Path) -> anyhow::Error {
    anyhow!(
        "{} already exists; pass --force to replace it",
        path.display()
    )
}

/// Refuses a symbolic link or a special file, saying which it is; the caller names
/// the path.
fn refuse_unless_regular(path: &Path, meta: &Metadata) -> Result<()> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_symlink() {
        let target = fs::read_link(path)
            .map(|t| format!(" to {}", t.display()))
            .unwrap_or_default();
        bail!(
            "a symbolic link{target}; sealant replaces files atomically and does not follow \
             links: give the path of the file itself"
        );
    }
    bail!(
        "{}, not a regular file; sealant only reads back and replaces regular files (write to \
         stdout to send output elsewhere)",
        special_kind(meta)
    );
}

fn usize_len(meta: &Metadata) -> usize {
    usize::try_from(meta.len()).unwrap_or(usize::MAX)
}

#[cfg(unix)]
fn special_kind(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(meta: &Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

#[cfg(unix)]
fn permission_bits(meta: &Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode()
}

#[cfg(not(unix))]
fn permission_bits(_meta: &Metadata) -> u32 {
    0o644
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limit = Limit {
        bytes: 10,
        reason: "the test limit",
    };

    fn mode(path: &Path) -> u32 {
        permission_bits(&fs::metadata(path).expect("stat")) & 0o7777
    }

    #[test]
    fn capped_read_accepts_exactly_the_limit_and_refuses_one_byte_more() {
        let ok = read_capped(&[7u8; 10][..], SMALL, 0).expect("read");
        assert_eq!(ok.as_ref().map(|b| b.as_slice()), Some(&[7u8; 10][..]));
        assert!(
            read_capped(&[7u8; 11][..], SMALL, 0)
                .expect("read")
                .is_none()
        );
        let big = read_capped(io::repeat(1), Limit::VALUE, 0).expect("read");
        assert!(big.is_none(), "an endless reader stops at the limit");
        let grown = read_capped(&vec![3u8; 100_000][..], Limit::VALUE, 10).expect("read");
        assert_eq!(grown.map(|b| b.len()), Some(100_000));
    }

    #[test]
    fn limits_print_in_binary_units() {
        assert_eq!(Limit::VALUE.to_string(), "1 MiB");
        assert_eq!(Limit::MANIFESTS.to_string(), "32 MiB");
        assert_eq!(SMALL.to_string(), "10 bytes");
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        fs::write(&path, "old").expect("seed");
        write_public(&path, b"new").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn public_write_keeps_permission_bits_but_drops_setuid_setgid_and_sticky() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sealed.yaml");
        write_public(&path, b"a").expect("create");
        assert_eq!(mode(&path), 0o644);
        set_mode(&File::open(&path).expect("open"), 0o7640).expect("chmod");
        write_public(&path, b"b").expect("replace");
        assert_eq!(mode(&path), 0o640);
    }

    #[cfg(unix)]
    #[test]
    fn private_write_is_0600_and_refuses_to_replace_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("escrow.key");
        write_private(&path, b"first", Overwrite::Refuse).expect("create");
        assert_eq!(mode(&path), 0o600);
        let err = write_private(&path, b"second", Overwrite::Refuse).expect_err("exists");
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(fs::read(&path).expect("read"), b"first");
        set_mode(&File::open(&path).expect("open"), 0o4755).expect("chmod");
        write_private(&path, b"second", Overwrite::Allow).expect("replace");
        assert_eq!(fs::read(&path).expect("read"), b"second");
        assert_eq!(mode(&path), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn writers_refuse_symlinks_and_leave_link_and_target_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("real.yaml");
        let link = dir.path().join("link.yaml");
        fs::write(&target, "kept").expect("seed");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = write_public(&link, b"new").expect_err("symlink");
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        let err = write_private(&link, b"new", Overwrite::Allow).expect_err("symlink");
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        let err = read_regular(&link, SMALL).expect_err("symlink");
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        assert!(fs::symlink_metadata(&link).expect("lstat").is_symlink());
        assert_eq!(fs::read_to_string(&target).expect("read"), "kept");
    }
}
