//! The byte-string work behind sprig's string functions and Go's escapers: case
//! mapping, trimming, HTML and query escaping, replacing. Each is linear in its input
//! and writes into a capped [`SecretBuf`], stopping once it is over its cap.

use super::value::{Finder, SecretBuf, decode, decode_last, decode_lossy};

/// Go's `template.HTMLEscapeString`.
pub(super) fn html_escape(s: &[u8], buf: &mut SecretBuf) {
    for &b in s {
        match b {
            b'<' => buf.push_str("&lt;"),
            b'>' => buf.push_str("&gt;"),
            b'&' => buf.push_str("&amp;"),
            b'\'' => buf.push_str("&#39;"),
            b'"' => buf.push_str("&#34;"),
            0 => buf.push_char('\u{FFFD}'),
            b => buf.push(&[b]),
        }
    }
}

/// Go's `url.QueryEscape`.
pub(super) fn query_escape(s: &[u8], buf: &mut SecretBuf) {
    for &b in s {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => buf.push(&[b]),
            b' ' => buf.push(b"+"),
            b => buf.push_str(&format!("%{b:02X}")),
        }
    }
}

pub(super) fn trim_by<'s>(s: &'s [u8], pred: &dyn Fn(char) -> bool) -> &'s [u8] {
    let mut start = 0;
    while let Some((c, n)) = decode(&s[start..]) {
        if !pred(c) {
            break;
        }
        start += n;
    }
    let mut end = s.len();
    while end > start {
        match decode_last(&s[start..end]) {
            Some((c, n)) if pred(c) => end -= n,
            _ => break,
        }
    }
    &s[start..end]
}

/// Go's `strings.Map` with a case mapping: invalid bytes become U+FFFD.
pub(super) fn map_chars(s: &[u8], buf: &mut SecretBuf, f: fn(char) -> char) {
    if s.is_ascii() {
        for &b in s {
            buf.push(&[f(b as char) as u8]);
        }
        return;
    }
    let mut rest = s;
    while let Some((c, n)) = decode_lossy(rest) {
        buf.push_char(f(c));
        rest = &rest[n..];
    }
}

/// Simple (one-to-one) upper case, as Go's `unicode.ToUpper`.
pub(super) fn upper_char(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

pub(super) fn lower_char(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

pub(super) fn title_char(c: char) -> char {
    match c as u32 {
        0x1C4..=0x1C6 => '\u{1C5}',
        0x1C7..=0x1C9 => '\u{1C8}',
        0x1CA..=0x1CC => '\u{1CB}',
        0x1F1..=0x1F3 => '\u{1F2}',
        _ => upper_char(c),
    }
}

/// Go's deprecated `strings.Title`, which sprig's `title` uses.
pub(super) fn title(s: &[u8], buf: &mut SecretBuf) {
    let separator = |c: char| -> bool {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    let mut rest = s;
    while let Some((c, n)) = decode_lossy(rest) {
        buf.push_char(if separator(prev) { title_char(c) } else { c });
        prev = c;
        rest = &rest[n..];
    }
}

/// Go's `strings.Replace(src, old, new, -1)`, into `buf` (which may end up over its
/// cap; the caller checks).
pub(super) fn replace_all(buf: &mut SecretBuf, src: &[u8], old: &[u8], new: &[u8]) {
    if old.is_empty() {
        let mut rest = src;
        buf.push(new);
        while let Some((_, n)) = decode_lossy(rest) {
            buf.push(&rest[..n]);
            buf.push(new);
            if buf.is_over() {
                return;
            }
            rest = &rest[n..];
        }
        return;
    }
    let finder = Finder::new(old);
    let mut rest = src;
    while let Some(p) = finder.find(rest) {
        buf.push(&rest[..p]);
        buf.push(new);
        if buf.is_over() {
            return;
        }
        rest = &rest[p + old.len()..];
    }
    buf.push(rest);
}
