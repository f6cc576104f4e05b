//! The lexer: splits a template's source into text and the tokens of each action,
//! applies the `{{-`/`-}}` trim markers and drops comments. Literals (Go strings, raw
//! strings, characters, integers) are decoded here, so the parser sees values.
//!
//! Errors carry the byte offset of the offending action or literal; they quote the
//! template source at most, never a value.

use super::TemplateError;
use super::error_at;
use super::value::decode;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Str(Vec<u8>),
    Int(i64),
    Bool(bool),
    Nil,
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) pos: usize,
    /// No space between this token and the previous one (`.a.b`, `$x.y`, `(...).z`).
    pub(super) glued: bool,
}

/// One piece of the source: text, or the tokens of one action.
pub(super) enum Piece {
    Text(usize, usize),
    Action(Vec<Token>, usize),
}

pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits the source into text and actions, applying trim markers and dropping comments.
pub(super) fn lex(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let b = src.as_bytes();
    let mut pieces = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    while i < b.len() {
        let start = i;
        let open = find(b, i, b"{{");
        let text_end = open.unwrap_or(b.len());
        let mut t_start = start;
        let mut t_end = text_end;
        if trim_next {
            while t_start < t_end && is_space(b[t_start]) {
                t_start += 1;
            }
        }
        let Some(open) = open else {
            if t_start < t_end {
                pieces.push(Piece::Text(t_start, t_end));
            }
            break;
        };
        let mut j = open + 2;
        let trim_left = b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(|c| is_space(*c));
        if trim_left {
            while t_start < t_end && is_space(b[t_end - 1]) {
                t_end -= 1;
            }
            j += 2;
        }
        if t_start < t_end {
            pieces.push(Piece::Text(t_start, t_end));
        }
        // A comment must follow the delimiter (and trim marker) directly.
        let mut k = j;
        if trim_left {
            while k < b.len() && is_space(b[k]) {
                k += 1;
            }
        }
        if b[k..].starts_with(b"/*") {
            let Some(close) = find(b, k + 2, b"*/") else {
                return Err(error_at(src, open, "unclosed comment".into()));
            };
            let mut m = close + 2;
            let mut trim_right = false;
            if b[m..].starts_with(b" -}}")
                || (m < b.len() && is_space(b[m]) && b[m + 1..].starts_with(b"-}}"))
            {
                trim_right = true;
                m += 4;
            } else if b[m..].starts_with(b"}}") {
                m += 2;
            } else {
                return Err(error_at(
                    src,
                    open,
                    "comment ends before closing delimiter".into(),
                ));
            }
            trim_next = trim_right;
            i = m;
            continue;
        }
        let (tokens, end, trim_right) = lex_action(src, j, open)?;
        pieces.push(Piece::Action(tokens, open));
        trim_next = trim_right;
        i = end;
    }
    Ok(pieces)
}

pub(super) fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Lexes one action from `i` (just after `{{` and any left trim marker) to its `}}`.
/// Returns the tokens, the index after the closing delimiter and whether it trims.
pub(super) fn lex_action(
    src: &str,
    mut i: usize,
    open: usize,
) -> Result<(Vec<Token>, usize, bool), TemplateError> {
    let b = src.as_bytes();
    let mut toks: Vec<Token> = Vec::new();
    let mut glued = false;
    loop {
        let mut spaced = false;
        while i < b.len() && is_space(b[i]) {
            i += 1;
            spaced = true;
        }
        if i >= b.len() {
            return Err(error_at(src, open, "unclosed action".into()));
        }
        if spaced && b[i..].starts_with(b"-}}") {
            return Ok((toks, i + 3, true));
        }
        if b[i..].starts_with(b"}}") {
            return Ok((toks, i + 2, false));
        }
        let glue = glued && !spaced;
        let pos = i;
        let c = b[i];
        // Each arm yields the token and the index just after it.
        let (tok, end) = match c {
            b'(' => (Tok::LParen, i + 1),
            b')' => (Tok::RParen, i + 1),
            b'|' => (Tok::Pipe, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'=' => (Tok::Assign, i + 1),
            b':' => {
                if b.get(i + 1) != Some(&b'=') {
                    return Err(error_at(src, pos, "expected :=".into()));
                }
                (Tok::Declare, i + 2)
            }
            b'"' => {
                let (s, end) = lex_quoted(src, i)?;
                (Tok::Str(s), end)
            }
            b'`' => {
                let Some(end) = find(b, i + 1, b"`") else {
                    return Err(error_at(src, pos, "unterminated raw quoted string".into()));
                };
                let raw: Vec<u8> = b[i + 1..end]
                    .iter()
                    .copied()
                    .filter(|c| *c != b'\r')
                    .collect();
                (Tok::Str(raw), end + 1)
            }
            b'\'' => {
                let (v, end) = lex_char(src, i)?;
                (Tok::Int(v), end)
            }
            b'.' => {
                let name_end = ident_end(b, i + 1);
                if name_end == i + 1 {
                    if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        return Err(error_at(
                            src,
                            pos,
                            "floating-point constants are not supported".into(),
                        ));
                    }
                    (Tok::Dot, i + 1)
                } else {
                    (Tok::Field(src[i + 1..name_end].to_owned()), name_end)
                }
            }
            b'$' => {
                let name_end = ident_end(b, i + 1);
                (Tok::Var(src[i..name_end].to_owned()), name_end)
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let (v, end) = lex_number(src, i)?;
                (Tok::Int(v), end)
            }
            c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let end = ident_end(b, i);
                if end == i {
                    return Err(error_at(src, pos, "unexpected character in action".into()));
                }
                let tok = match &src[i..end] {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    word => Tok::Ident(word.to_owned()),
                };
                (tok, end)
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(error_at(src, pos, format!("unexpected {ch:?} in action")));
            }
        };
        i = end;
        toks.push(Token {
            tok,
            pos,
            glued: glue,
        });
        // Only a term can have fields glued to it.
        glued = matches!(
            toks.last().map(|t| &t.tok),
            Some(Tok::Field(_) | Tok::Var(_) | Tok::RParen | Tok::Dot)
        );
    }
}

/// The end of a Go identifier (letters, digits, `_`) starting at `i`.
pub(super) fn ident_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let c = b[i];
        if c == b'_' || c.is_ascii_alphanumeric() {
            i += 1;
        } else if c >= 0x80 {
            let Some((ch, n)) = decode(&b[i..]) else {
                break;
            };
            if ch.is_alphanumeric() {
                i += n;
            } else {
                break;
            }
        } else {
            break;
        }
    }
    i
}

pub(super) fn lex_number(src: &str, start: usize) -> Result<(i64, usize), TemplateError> {
    let b = src.as_bytes();
    let mut i = start;
    let neg = b[i] == b'-';
    if b[i] == b'-' || b[i] == b'+' {
        i += 1;
    }
    let digits_start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
        i += 1;
    }
    let text = &src[digits_start..i];
    let bad = || {
        error_at(
            src,
            start,
            format!("bad number syntax: {:?}", &src[start..i]),
        )
    };
    if text.is_empty() {
        return Err(bad());
    }
    let lower = text.to_ascii_lowercase();
    let (radix, body) = if let Some(r) = lower.strip_prefix("0x") {
        (16, r.to_owned())
    } else if let Some(r) = lower.strip_prefix("0o") {
        (8, r.to_owned())
    } else if let Some(r) = lower.strip_prefix("0b") {
        (2, r.to_owned())
    } else if lower.len() > 1
        && lower.starts_with('0')
        && lower.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        (8, lower[1..].to_owned())
    } else {
        (10, lower.clone())
    };
    if radix == 10 && (body.contains('.') || body.contains('e') || body.ends_with('i')) {
        return Err(error_at(
            src,
            start,
            "floating-point and imaginary constants are not supported".into(),
        ));
    }
    if body.starts_with('_') || body.ends_with('_') || body.contains("__") && radix == 10 {
        return Err(bad());
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return Err(bad());
    }
    let magnitude = u64::from_str_radix(&clean, radix).map_err(|e| {
        if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
            error_at(
                src,
                start,
                format!("integer overflow: {:?}", &src[start..i]),
            )
        } else {
            bad()
        }
    })?;
    let value = if neg {
        if magnitude > i64::MAX as u64 + 1 {
            return Err(error_at(src, start, "integer overflow".into()));
        }
        (magnitude as i128).wrapping_neg() as i64
    } else {
        i64::try_from(magnitude).map_err(|_| error_at(src, start, "integer overflow".into()))?
    };
    Ok((value, i))
}

/// Reads one escape sequence after a backslash at `i`; returns the bytes and the end.
pub(super) fn lex_escape(
    src: &str,
    i: usize,
    quote: u8,
) -> Result<(Vec<u8>, usize), TemplateError> {
    let b = src.as_bytes();
    let bad = || error_at(src, i, "invalid escape sequence in quoted string".into());
    let c = *b.get(i + 1).ok_or_else(bad)?;
    let simple = match c {
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(11),
        b'\\' => Some(b'\\'),
        c if c == quote => Some(c),
        _ => None,
    };
    if let Some(s) = simple {
        return Ok((vec![s], i + 2));
    }
    let hex = |from: usize, n: usize| -> Result<u32, TemplateError> {
        let digits = src.get(from..from + n).ok_or_else(bad)?;
        if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u32::from_str_radix(digits, 16).map_err(|_| bad())
    };
    match c {
        b'x' => Ok((vec![hex(i + 2, 2)? as u8], i + 4)),
        b'0'..=b'7' => {
            let digits = src.get(i + 1..i + 4).ok_or_else(bad)?;
            if !digits.bytes().all(|d| (b'0'..=b'7').contains(&d)) {
                return Err(bad());
            }
            let v = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
            let byte = u8::try_from(v).map_err(|_| bad())?;
            Ok((vec![byte], i + 4))
        }
        b'u' | b'U' => {
            let n = if c == b'u' { 4 } else { 8 };
            let ch = char::from_u32(hex(i + 2, n)?).ok_or_else(bad)?;
            let mut tmp = [0u8; 4];
            Ok((ch.encode_utf8(&mut tmp).as_bytes().to_vec(), i + 2 + n))
        }
        _ => Err(bad()),
    }
}

pub(super) fn lex_quoted(src: &str, start: usize) -> Result<(Vec<u8>, usize), TemplateError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = start + 1;
    loop {
        match b.get(i) {
            None | Some(b'\n') => {
                return Err(error_at(src, start, "unterminated quoted string".into()));
            }
            Some(b'"') => return Ok((out, i + 1)),
            Some(b'\\') => {
                let (bytes, end) = lex_escape(src, i, b'"')?;
                out.extend_from_slice(&bytes);
                i = end;
            }
            Some(c) => {
                out.push(*c);
                i += 1;
            }
        }
    }
}

pub(super) fn lex_char(src: &str, start: usize) -> Result<(i64, usize), TemplateError> {
    let b = src.as_bytes();
    let bad = || error_at(src, start, "malformed character constant".into());
    let i = start + 1;
    let (value, end) = match b.get(i) {
        None | Some(b'\'') | Some(b'\n') => return Err(bad()),
        Some(b'\\') => {
            let (bytes, end) = lex_escape(src, i, b'\'')?;
            let v = match decode(&bytes) {
                Some((ch, n)) if n == bytes.len() && bytes.len() > 1 => ch as i64,
                _ if bytes.len() == 1 => i64::from(bytes[0]),
                _ => return Err(bad()),
            };
            (v, end)
        }
        Some(_) => {
            let (ch, n) = decode(&b[i..]).ok_or_else(bad)?;
            (ch as i64, i + n)
        }
    };
    if b.get(end) != Some(&b'\'') {
        return Err(bad());
    }
    Ok((value, end + 1))
}

#[cfg(test)]
mod tests {
    use crate::template::testkit::ok;

    #[test]
    fn text_without_actions_is_copied() {
        assert_eq!(ok("plain { text } here"), "plain { text } here");
        assert_eq!(ok(""), "");
    }

    #[test]
    fn trim_markers_remove_surrounding_whitespace() {
        assert_eq!(ok("a \n {{- .username -}} \n b"), "aadminb");
        assert_eq!(ok("{{-3}}"), "-3");
        assert_eq!(ok("x {{- /* note */ -}} y"), "xy");
        assert_eq!(ok("{{/* note */}}z"), "z");
    }

    #[test]
    fn literals_follow_go_syntax() {
        assert_eq!(ok(r#"{{ "a\tb\x41\u00e9" }}"#), "a\tbAé");
        assert_eq!(ok("{{ `raw\\n` }}"), "raw\\n");
        assert_eq!(
            ok("{{ 'a' }} {{ 0x1F }} {{ -2 }} {{ 0o7 }} {{ 1_000 }}"),
            "97 31 -2 7 1000"
        );
        assert_eq!(ok("{{ true }} {{ false }}"), "true false");
    }
}
