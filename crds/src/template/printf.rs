//! Formatting as Go prints values: `%v` (what an action and `print` show), `printf`
//! (Go's `fmt.Sprintf` for the verbs sealant supports, with Go's `%!` error markers),
//! `strconv.Quote` and `encoding/json`.
//!
//! Everything writes into a [`SecretBuf`] capped at what the budget has left, and
//! stops walking a list as soon as the buffer is over its cap, so printing a huge list
//! (or a small list of references to a huge string) costs no more than the cap. Width
//! and precision are at most [`MAX_OUTPUT`], and padding is written in place, never
//! built first. Recursion over lists is as deep as lists nest, which is capped when a
//! list is made (see [`super::budget`]).

use std::collections::BTreeMap;

use sealant_keys::Plaintext;

use super::MAX_OUTPUT;
use super::exec::Res;
use super::value::{Bytes, SecretBuf, Value, decode, decode_lossy};

/// `%v`: what `print` and an action show.
pub(super) fn fmt_value(buf: &mut SecretBuf, v: &Value<'_>, values: &BTreeMap<String, Plaintext>) {
    match v {
        Value::Nil => buf.push_str("<nil>"),
        Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => buf.push_str(&n.to_string()),
        Value::Str(s) => buf.push(s.as_slice()),
        Value::List(l) => {
            buf.push(b"[");
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    buf.push(b" ");
                }
                fmt_value(buf, e, values);
                if buf.is_over() {
                    return;
                }
            }
            buf.push(b"]");
        }
        Value::Root => {
            buf.push(b"map[");
            for (i, (k, p)) in values.iter().enumerate() {
                if i > 0 {
                    buf.push(b" ");
                }
                buf.push_str(k);
                buf.push(b":");
                buf.push(p.expose_secret());
            }
            buf.push(b"]");
        }
    }
}

#[derive(Default, Clone, Copy)]
pub(super) struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs sealant supports, into `buf`. Stops early when
/// `buf` is over its cap; the caller checks.
pub(super) fn sprintf(
    buf: &mut SecretBuf,
    format: &[u8],
    args: &[Value<'_>],
    values: &BTreeMap<String, Plaintext>,
) -> Res<()> {
    let mut argi = 0;
    let mut i = 0;
    while i < format.len() {
        let start = i;
        while i < format.len() && format[i] != b'%' {
            i += 1;
        }
        buf.push(&format[start..i]);
        if i >= format.len() {
            break;
        }
        i += 1; // '%'
        let mut f = Flags::default();
        while let Some(&c) = format.get(i) {
            match c {
                b'-' => f.minus = true,
                b'+' => f.plus = true,
                b'#' => f.sharp = true,
                b' ' => f.space = true,
                b'0' => f.zero = true,
                _ => break,
            }
            i += 1;
        }
        let num = |i: &mut usize, argi: &mut usize, buf: &mut SecretBuf| -> Res<Option<usize>> {
            if format.get(*i) == Some(&b'*') {
                *i += 1;
                let n = match args.get(*argi) {
                    Some(Value::Int(n)) => *n,
                    _ => {
                        buf.push_str("%!(BADWIDTH)");
                        *argi += 1;
                        return Ok(None);
                    }
                };
                *argi += 1;
                return Ok(Some(clamp_width(n)?));
            }
            let s = *i;
            while format.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            if *i == s {
                return Ok(None);
            }
            let digits = std::str::from_utf8(&format[s..*i]).unwrap_or("0");
            let n: i64 = digits.parse().unwrap_or(i64::MAX);
            Ok(Some(clamp_width(n)?))
        };
        f.width = num(&mut i, &mut argi, buf)?;
        if format.get(i) == Some(&b'.') {
            i += 1;
            f.precision = Some(num(&mut i, &mut argi, buf)?.unwrap_or(0));
        }
        if format.get(i) == Some(&b'[') {
            return Err(
                "printf argument indexes (%[n]) are not supported by sealant templates".into(),
            );
        }
        let Some((verb, n)) = decode_lossy(&format[i..]) else {
            buf.push_str("%!(NOVERB)");
            break;
        };
        i += n;
        if verb == '%' {
            buf.push(b"%");
            continue;
        }
        let Some(arg) = args.get(argi) else {
            buf.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        fmt_arg(buf, verb, f, arg, values)?;
        if buf.is_over() {
            return Ok(());
        }
    }
    if argi < args.len() {
        buf.push(b"%!(EXTRA ");
        for (k, v) in args[argi..].iter().enumerate() {
            if k > 0 {
                buf.push(b", ");
            }
            if matches!(v, Value::Nil) {
                buf.push(b"<nil>");
            } else {
                buf.push_str(v.type_name());
                buf.push(b"=");
                fmt_value(buf, v, values);
            }
            if buf.is_over() {
                return Ok(());
            }
        }
        buf.push(b")");
    }
    Ok(())
}

pub(super) fn clamp_width(n: i64) -> Res<usize> {
    let n = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    if n > MAX_OUTPUT {
        return Err(format!(
            "printf width or precision is larger than {MAX_OUTPUT}"
        ));
    }
    Ok(n)
}

pub(super) fn fmt_arg(
    buf: &mut SecretBuf,
    verb: char,
    f: Flags,
    v: &Value<'_>,
    values: &BTreeMap<String, Plaintext>,
) -> Res<()> {
    if verb == 'T' {
        let name = if matches!(v, Value::Nil) {
            "<nil>"
        } else {
            v.type_name()
        };
        pad(buf, name.as_bytes(), f, false);
        return Ok(());
    }
    if verb == 'v' && f.sharp {
        return Err("printf %#v is not supported by sealant templates".into());
    }
    match v {
        Value::Nil => {
            if verb == 'v' {
                pad(buf, b"<nil>", f, false);
            } else {
                buf.push_str(&format!("%!{verb}(<nil>)"));
            }
        }
        Value::List(l) => {
            buf.push(b"[");
            for (k, e) in l.iter().enumerate() {
                if k > 0 {
                    buf.push(b" ");
                }
                fmt_arg(buf, verb, f, e, values)?;
                if buf.is_over() {
                    return Ok(());
                }
            }
            buf.push(b"]");
        }
        Value::Root => {
            buf.push(b"map[");
            for (k, (key, p)) in values.iter().enumerate() {
                if k > 0 {
                    buf.push(b" ");
                }
                fmt_arg(
                    buf,
                    verb,
                    f,
                    &Value::Str(Bytes::Borrowed(key.as_bytes())),
                    values,
                )?;
                buf.push(b":");
                fmt_arg(
                    buf,
                    verb,
                    f,
                    &Value::Str(Bytes::Borrowed(p.expose_secret())),
                    values,
                )?;
            }
            buf.push(b"]");
        }
        Value::Str(s) => {
            let s = s.as_slice();
            match verb {
                'v' | 's' => {
                    let s = match f.precision {
                        Some(p) => truncate_chars(s, p),
                        None => s,
                    };
                    pad(buf, s, f, true);
                }
                'q' => {
                    let mut q = SecretBuf::capped(buf.room());
                    go_quote(s, &mut q);
                    pad_or_refuse(buf, &q, f, true);
                }
                'x' | 'X' => {
                    let mut h = SecretBuf::capped(buf.room());
                    if f.sharp {
                        h.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    for b in s {
                        h.push_str(&if verb == 'x' {
                            format!("{b:02x}")
                        } else {
                            format!("{b:02X}")
                        });
                    }
                    pad_or_refuse(buf, &h, f, true);
                }
                _ => bad_verb(buf, verb, v, values),
            }
        }
        Value::Int(n) => match verb {
            'v' | 'd' | 'x' | 'X' | 'o' | 'b' => {
                let digits = match verb {
                    'x' => format!("{:x}", n.unsigned_abs()),
                    'X' => format!("{:X}", n.unsigned_abs()),
                    'o' => format!("{:o}", n.unsigned_abs()),
                    'b' => format!("{:b}", n.unsigned_abs()),
                    _ => n.unsigned_abs().to_string(),
                };
                let digits: &str = if f.precision == Some(0) && *n == 0 {
                    ""
                } else {
                    &digits
                };
                // Precision pads the digits with zeros, written in place below.
                let zeros = f.precision.map_or(0, |p| p.saturating_sub(digits.len()));
                let prefix = match (f.sharp, verb) {
                    (true, 'x') => "0x",
                    (true, 'X') => "0X",
                    (true, 'o') => "0",
                    (true, 'b') => "0b",
                    _ => "",
                };
                let sign = if *n < 0 {
                    "-"
                } else if f.plus {
                    "+"
                } else if f.space {
                    " "
                } else {
                    ""
                };
                let len = sign.len() + prefix.len() + zeros + digits.len();
                let width = f.width.unwrap_or(0);
                if f.zero && !f.minus && f.precision.is_none() && width > len {
                    buf.push_str(sign);
                    buf.push_fill(b'0', width - len);
                    buf.push_str(prefix);
                    buf.push_str(digits);
                } else {
                    let mut text = SecretBuf::capped(buf.room());
                    text.push_str(sign);
                    text.push_str(prefix);
                    text.push_fill(b'0', zeros);
                    text.push_str(digits);
                    pad_or_refuse(buf, &text, Flags { zero: false, ..f }, false);
                }
            }
            'c' | 'q' => {
                let c = u32::try_from(*n)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                let text = if verb == 'c' {
                    c.to_string()
                } else {
                    quote_rune(c)
                };
                pad(buf, text.as_bytes(), f, false);
            }
            _ => bad_verb(buf, verb, v, values),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(buf, if *b { b"true" } else { b"false" }, f, false),
            _ => bad_verb(buf, verb, v, values),
        },
    }
    Ok(())
}

pub(super) fn bad_verb(
    buf: &mut SecretBuf,
    verb: char,
    v: &Value<'_>,
    values: &BTreeMap<String, Plaintext>,
) {
    buf.push_str(&format!("%!{verb}({}=", v.type_name()));
    fmt_value(buf, v, values);
    buf.push(b")");
}

/// Pads to the width in characters; Go pads strings with zeros too when asked.
pub(super) fn pad(buf: &mut SecretBuf, s: &[u8], f: Flags, zero_ok: bool) {
    let len = count_chars(s);
    let fill = f.width.unwrap_or(0).saturating_sub(len);
    let fill_byte = if f.zero && !f.minus && zero_ok {
        b'0'
    } else {
        b' '
    };
    if !f.minus {
        buf.push_fill(fill_byte, fill);
    }
    buf.push(s);
    if f.minus {
        buf.push_fill(b' ', fill);
    }
}

/// [`pad`] of a formatted temporary, or marks `buf` over when the temporary itself
/// did not fit (it was capped at `buf`'s room, so its content is incomplete).
fn pad_or_refuse(buf: &mut SecretBuf, text: &SecretBuf, f: Flags, zero_ok: bool) {
    if text.is_over() {
        buf.refuse();
    } else {
        pad(buf, text.as_slice(), f, zero_ok);
    }
}

pub(super) fn count_chars(s: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = s;
    while let Some((_, k)) = decode_lossy(rest) {
        n += 1;
        rest = &rest[k..];
    }
    n
}

pub(super) fn truncate_chars(s: &[u8], max: usize) -> &[u8] {
    let mut rest = s;
    let mut used = 0;
    for _ in 0..max {
        match decode_lossy(rest) {
            Some((_, k)) => {
                used += k;
                rest = &rest[k..];
            }
            None => break,
        }
    }
    &s[..used]
}

/// Go's `strconv.Quote`.
pub(super) fn go_quote(s: &[u8], buf: &mut SecretBuf) {
    buf.push(b"\"");
    let mut rest = s;
    while !rest.is_empty() {
        match decode(rest) {
            None => {
                buf.push_str(&format!("\\x{:02x}", rest[0]));
                rest = &rest[1..];
            }
            Some((c, n)) => {
                escape_char(c, '"', buf);
                rest = &rest[n..];
            }
        }
    }
    buf.push(b"\"");
}

/// Go's `strconv.QuoteRune`.
pub(super) fn quote_rune(c: char) -> String {
    // One quoted character is at most 12 bytes ('\U0010ffff').
    let mut buf = SecretBuf::capped(16);
    buf.push(b"'");
    escape_char(c, '\'', &mut buf);
    buf.push(b"'");
    String::from_utf8_lossy(buf.as_slice()).into_owned()
}

pub(super) fn escape_char(c: char, quote: char, buf: &mut SecretBuf) {
    if c == quote || c == '\\' {
        buf.push(b"\\");
        buf.push_char(c);
        return;
    }
    if go_is_print(c) {
        buf.push_char(c);
        return;
    }
    match c {
        '\u{7}' => buf.push_str("\\a"),
        '\u{8}' => buf.push_str("\\b"),
        '\u{c}' => buf.push_str("\\f"),
        '\n' => buf.push_str("\\n"),
        '\r' => buf.push_str("\\r"),
        '\t' => buf.push_str("\\t"),
        '\u{b}' => buf.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => buf.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => buf.push_str(&format!("\\u{:04x}", c as u32)),
        c => buf.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// An approximation of Go's `strconv.IsPrint` with Rust's tables: letters, marks,
/// numbers, punctuation, symbols and the ASCII space.
pub(super) fn go_is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !(format || private || nonchar)
}

/// Go's `json.Marshal` (which escapes HTML characters) of these values.
pub(super) fn to_json(buf: &mut SecretBuf, v: &Value<'_>, values: &BTreeMap<String, Plaintext>) {
    match v {
        Value::Nil => buf.push_str("null"),
        Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => buf.push_str(&n.to_string()),
        Value::Str(s) => json_str(buf, s.as_slice()),
        Value::List(l) => {
            buf.push(b"[");
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    buf.push(b",");
                }
                to_json(buf, e, values);
                if buf.is_over() {
                    return;
                }
            }
            buf.push(b"]");
        }
        Value::Root => {
            buf.push(b"{");
            for (i, (k, p)) in values.iter().enumerate() {
                if i > 0 {
                    buf.push(b",");
                }
                json_str(buf, k.as_bytes());
                buf.push(b":");
                json_str(buf, p.expose_secret());
            }
            buf.push(b"}");
        }
    }
}

pub(super) fn json_str(buf: &mut SecretBuf, s: &[u8]) {
    buf.push(b"\"");
    let mut rest = s;
    while !rest.is_empty() {
        let b = rest[0];
        if b < 0x80 {
            match b {
                b'"' => buf.push_str("\\\""),
                b'\\' => buf.push_str("\\\\"),
                b'\n' => buf.push_str("\\n"),
                b'\r' => buf.push_str("\\r"),
                b'\t' => buf.push_str("\\t"),
                8 => buf.push_str("\\b"),
                12 => buf.push_str("\\f"),
                b'<' | b'>' | b'&' => buf.push_str(&format!("\\u{b:04x}")),
                b if b < 0x20 => buf.push_str(&format!("\\u{b:04x}")),
                b => buf.push(&[b]),
            }
            rest = &rest[1..];
            continue;
        }
        match decode(rest) {
            None => {
                buf.push_str("\\ufffd");
                rest = &rest[1..];
            }
            Some((c, n)) => {
                if c == '\u{2028}' || c == '\u{2029}' {
                    buf.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    buf.push(&rest[..n]);
                }
                rest = &rest[n..];
            }
        }
    }
    buf.push(b"\"");
}

#[cfg(test)]
mod tests {
    use crate::template::testkit::ok;

    #[test]
    fn printf_supports_the_common_verbs_and_go_error_markers() {
        assert_eq!(
            ok(r#"{{ printf "%s:%d:%q:%v:%x:%t" .username 42 "a\"b" 7 "hi" true }}"#),
            "admin:42:\"a\\\"b\":7:6869:true"
        );
        assert_eq!(
            ok(r#"{{ printf "%5s|%-5s|%05d|%%" "ab" "ab" 42 }}"#),
            "   ab|ab   |00042|%"
        );
        assert_eq!(ok(r#"{{ printf "%d" "x" }}"#), "%!d(string=x)");
        assert_eq!(ok(r#"{{ printf "%s %s" "x" }}"#), "x %!s(MISSING)");
        assert_eq!(ok(r#"{{ printf "%s" "x" 3 }}"#), "x%!(EXTRA int=3)");
    }

    #[test]
    fn print_and_println_space_like_go() {
        assert_eq!(ok(r#"{{ print 1 2 "a" "b" 3 }}"#), "1 2ab3");
        assert_eq!(ok(r#"{{ println "a" 1 }}"#), "a 1\n");
        assert_eq!(ok("{{ print .missing }}"), "<nil>");
    }
}
