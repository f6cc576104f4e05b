//! `spec.template.data`: a small interpreter for the part of Go's `text/template` that
//! SealedSecret templates use, so that a Secret rendered by sealant has the same bytes
//! as one rendered by Bitnami's controller.
//!
//! Bitnami parses each `spec.template.data[KEY]` value with Go's `text/template`, the
//! functions of sprig's `GenericFuncMap` (minus `env`, `expandenv` and
//! `getHostByName`) and the default `missingkey` option, and executes it with the map of
//! decrypted values (`map[string]string`) as dot. The result becomes `data[KEY]` of the
//! Secret, replacing a decrypted value of the same name. [`render`] does the same for one
//! template.
//!
//! ```text
//!   source ──lex/parse──▶ tree ──execute(dot = decrypted values)──▶ Plaintext (≤ 1 MiB)
//! ```
//!
//! # Supported
//!
//! - Text and actions `{{ ... }}`, trim markers `{{- ` and ` -}}`, comments `{{/* */}}`.
//! - Dot `.`, fields `.key` and chains `.a.b`, `$` and variables (`$x := ...`,
//!   `$x = ...`, scoped like Go's), pipelines `a | b`, parenthesised pipelines, and
//!   literals: Go strings (`"..."` with escapes, raw `` `...` ``), characters (`'a'`),
//!   integers (decimal, `0x`, `0o`, `0b`, leading-zero octal, `_` separators, sign),
//!   `true`, `false`, `nil`.
//! - `if`/`else if`/`else`, `with`/`else with`/`else`, `range` over a list, over dot
//!   (keys in sorted order) and over an integer, with `$i, $v :=`, `else`, `break` and
//!   `continue`.
//! - Go's builtins: `and`, `or` (short-circuit, returning an operand), `not`, `len`,
//!   `index`, `print`, `printf`, `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`,
//!   `html`, `urlquery`.
//! - sprig: `upper`, `lower`, `title`, `trim`, `trimAll`, `trimPrefix`, `trimSuffix`,
//!   `nospace`, `replace`, `repeat`, `contains`, `hasPrefix`, `hasSuffix`, `quote`,
//!   `squote`, `cat`, `indent`, `nindent`, `default`, `empty`, `coalesce`, `ternary`,
//!   `toString`, `toJson`, `b64enc`, `b64dec`, `list`, `join`, `splitList`.
//!
//! `printf` knows the verbs `%v %s %q %d %x %X %c %t %T %%`, the flags `- + # 0` and
//! space, width and precision (also `*`), and Go's `%!verb(type=value)`,
//! `%!verb(MISSING)` and `%!(EXTRA ...)` markers.
//!
//! A missing key prints `<no value>`, as Go does for a map without `missingkey=error`
//! (Bitnami sets no option); `index . "missing"` gives the empty string.
//!
//! # Differences from Go
//!
//! Every difference is an error, never a silently different value:
//! - any function not listed above (for example `sha256sum`, `randAlphaNum`, `now`,
//!   `dict`, `fail`) is refused when the template is parsed, naming the function;
//! - `define`, `template` and `block` are refused;
//! - floating-point and imaginary constants, and `printf` argument indexes (`%[1]s`),
//!   are refused;
//! - `b64dec` of invalid base64 is an error (sprig returns the decoder's error text as
//!   the value, which would put `illegal base64 data at input byte 4` into a Secret);
//! - error messages are sealant's own, with the line and column of the action: they
//!   never quote a value (Go's sometimes do, as in `range can't iterate over VALUE`);
//! - Unicode classes follow Rust's tables where Go's differ (`%q` treats unassigned
//!   code points as printable; case mapping keeps a character whose upper or lower case
//!   is more than one character, as Go's simple mapping does).
//!
//! # Limits
//!
//! Hostile input cannot exhaust memory, stack or time: the source is at most
//! [`MAX_SOURCE`] bytes, the output and every intermediate string at most
//! [`MAX_OUTPUT`], the strings made during one render at most 16 MiB in total, nesting
//! at most 100 deep, and execution at most one million steps. Nothing panics.
//!
//! # Secrets
//!
//! Decrypted values are read in place, never copied into plain `String`s; strings made
//! while rendering and the output live in zeroizing buffers. Errors carry a position and
//! a reason written by this module, never a value.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use base64::Engine as _;
use sealant_keys::Plaintext;
use zeroize::Zeroizing;

/// The largest rendered value, and the largest intermediate string (1 MiB, Bitnami's
/// and the apiserver's practical limit for a whole Secret).
pub const MAX_OUTPUT: usize = 1 << 20;
/// The largest template source.
pub const MAX_SOURCE: usize = 1 << 20;
/// The most bytes all strings made during one render may add up to.
const MAX_ALLOCATED: usize = 16 << 20;
/// How deep parentheses and control structures may nest.
const MAX_DEPTH: usize = 100;
/// How many nodes, commands and loop iterations one render may execute.
const MAX_STEPS: u64 = 1_000_000;

/// Why a template could not be parsed or executed: a position in the template source
/// and a reason. It never holds a decrypted value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    line: usize,
    column: usize,
    reason: String,
}

impl TemplateError {
    /// The 1-based line in the template source.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column (in characters) in the template source.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What went wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.reason
        )
    }
}

impl std::error::Error for TemplateError {}

/// Renders one `spec.template.data` value, with `values` (the decrypted values, by key)
/// as dot, as Bitnami's controller does.
pub fn render(
    source: &str,
    values: &BTreeMap<String, Plaintext>,
) -> Result<Plaintext, TemplateError> {
    if source.len() > MAX_SOURCE {
        return Err(TemplateError {
            line: 1,
            column: 1,
            reason: format!("template is longer than {MAX_SOURCE} bytes"),
        });
    }
    let nodes = Parser::new(source).parse()?;
    let mut exec = Exec {
        source,
        values,
        vars: Vec::new(),
        out: SecretBuf::default(),
        steps: 0,
        allocated: 0,
    };
    exec.vars.push(("$".to_owned(), Value::Root));
    // The parser accepts break and continue only inside range, so the flow is normal.
    exec.walk(&nodes, &Value::Root)?;
    Ok(Plaintext::new(exec.out.into_vec()))
}

// ---------------------------------------------------------------------------------------
// Values

/// A byte string: borrowed from the decrypted values or from the template source, or
/// made while rendering (and then wiped when dropped).
#[derive(Clone)]
enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Owned(Rc<Zeroizing<Vec<u8>>>),
}

impl Bytes<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Owned(b) => b,
        }
    }
}

/// A value during execution. `Nil` is Go's "no value": a missing key, `nil`, or a
/// function that returned nil.
#[derive(Clone)]
enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Str(Bytes<'a>),
    List(Rc<Vec<Value<'a>>>),
    /// The map of decrypted values (dot at the top, and `$`).
    Root,
}

impl Value<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Root => "map[string]string",
        }
    }
}

/// What a walk over a list of nodes ended with.
enum Flow {
    Normal,
    Break,
    Continue,
}

/// A growable output buffer that wipes every buffer it leaves behind.
#[derive(Default)]
struct SecretBuf(Zeroizing<Vec<u8>>);

impl SecretBuf {
    fn with_capacity(n: usize) -> Self {
        SecretBuf(Zeroizing::new(Vec::with_capacity(n)))
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn push(&mut self, bytes: &[u8]) {
        let need = self.0.len() + bytes.len();
        if need > self.0.capacity() {
            // Grow by hand so the old allocation is wiped (Vec would free it as is).
            let mut bigger = Vec::with_capacity(need.max(self.0.capacity() * 2).max(64));
            bigger.extend_from_slice(&self.0);
            self.0 = Zeroizing::new(bigger);
        }
        self.0.extend_from_slice(bytes);
    }

    fn push_char(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        self.push(c.encode_utf8(&mut tmp).as_bytes());
    }

    fn push_str(&mut self, s: &str) {
        self.push(s.as_bytes());
    }

    fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut *self.0)
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
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
struct Token {
    tok: Tok,
    pos: usize,
    /// No space between this token and the previous one (`.a.b`, `$x.y`, `(...).z`).
    glued: bool,
}

/// One piece of the source: text, or the tokens of one action.
enum Piece {
    Text(usize, usize),
    Action(Vec<Token>, usize),
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits the source into text and actions, applying trim markers and dropping comments.
fn lex(src: &str) -> Result<Vec<Piece>, TemplateError> {
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

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
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
fn lex_action(
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
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b':' => {
                if b.get(i + 1) != Some(&b'=') {
                    return Err(error_at(src, pos, "expected :=".into()));
                }
                i += 2;
                Tok::Declare
            }
            b'"' => {
                let (s, end) = lex_quoted(src, i)?;
                i = end;
                Tok::Str(s)
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
                i = end + 1;
                Tok::Str(raw)
            }
            b'\'' => {
                let (v, end) = lex_char(src, i)?;
                i = end;
                Tok::Int(v)
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
                    i += 1;
                    Tok::Dot
                } else {
                    let name = src[i + 1..name_end].to_owned();
                    i = name_end;
                    Tok::Field(name)
                }
            }
            b'$' => {
                let name_end = ident_end(b, i + 1);
                let name = src[i..name_end].to_owned();
                i = name_end;
                Tok::Var(name)
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let (v, end) = lex_number(src, i)?;
                i = end;
                Tok::Int(v)
            }
            c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let end = ident_end(b, i);
                if end == i {
                    return Err(error_at(src, pos, "unexpected character in action".into()));
                }
                let word = &src[i..end];
                i = end;
                match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(word.to_owned()),
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(error_at(src, pos, format!("unexpected {ch:?} in action")));
            }
        };
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
fn ident_end(b: &[u8], mut i: usize) -> usize {
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

fn lex_number(src: &str, start: usize) -> Result<(i64, usize), TemplateError> {
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
fn lex_escape(src: &str, i: usize, quote: u8) -> Result<(Vec<u8>, usize), TemplateError> {
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

fn lex_quoted(src: &str, start: usize) -> Result<(Vec<u8>, usize), TemplateError> {
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

fn lex_char(src: &str, start: usize) -> Result<(i64, usize), TemplateError> {
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

// ---------------------------------------------------------------------------------------
// Parser

enum Node {
    Text(usize, usize),
    Action(Pipe),
    If(Vec<(Pipe, Vec<Node>)>, Option<Vec<Node>>),
    With(Vec<(Pipe, Vec<Node>)>, Option<Vec<Node>>),
    Range(Pipe, Vec<Node>, Option<Vec<Node>>),
    Break,
    Continue,
}

struct Pipe {
    pos: usize,
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Cmd>,
}

struct Cmd {
    pos: usize,
    args: Vec<Operand>,
}

struct Operand {
    pos: usize,
    term: Term,
    fields: Vec<String>,
}

enum Term {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Str(Rc<Zeroizing<Vec<u8>>>),
    Var(String),
    Func(&'static str),
    Paren(Box<Pipe>),
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else(Vec<Token>, usize),
}

struct Parser<'s> {
    src: &'s str,
    pieces: std::vec::IntoIter<Piece>,
    /// Declared variable names, for Go's parse-time "undefined variable" check.
    vars: Vec<String>,
    depth: usize,
    range_depth: usize,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str) -> Self {
        Parser {
            src,
            pieces: Vec::new().into_iter(),
            vars: vec!["$".to_owned()],
            depth: 0,
            range_depth: 0,
        }
    }

    fn parse(mut self) -> Result<Vec<Node>, TemplateError> {
        self.pieces = lex(self.src)?.into_iter();
        let (nodes, end) = self.list()?;
        match end {
            Stop::Eof => Ok(nodes),
            Stop::End => Err(self.err(self.src.len(), "unexpected {{end}}")),
            Stop::Else(_, pos) => Err(self.err(pos, "unexpected {{else}}")),
        }
    }

    fn err(&self, pos: usize, reason: &str) -> TemplateError {
        error_at(self.src, pos, reason.to_owned())
    }

    fn enter(&mut self, pos: usize) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(pos, "template nests too deeply"));
        }
        Ok(())
    }

    /// Nodes up to `{{end}}`, `{{else ...}}` or the end of the source.
    fn list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(piece) = self.pieces.next() {
            let (toks, pos) = match piece {
                Piece::Text(a, b) => {
                    nodes.push(Node::Text(a, b));
                    continue;
                }
                Piece::Action(toks, pos) => (toks, pos),
            };
            let keyword = match toks.first() {
                Some(Token {
                    tok: Tok::Ident(w), ..
                }) => w.as_str(),
                _ => "",
            };
            match keyword {
                "end" => {
                    if toks.len() > 1 {
                        return Err(self.err(pos, "unexpected tokens in {{end}}"));
                    }
                    return Ok((nodes, Stop::End));
                }
                "else" => return Ok((nodes, Stop::Else(toks, pos))),
                "if" | "with" => {
                    let node = self.if_or_with(keyword == "if", toks, pos)?;
                    nodes.push(node);
                }
                "range" => {
                    let node = self.range(toks, pos)?;
                    nodes.push(node);
                }
                "break" | "continue" => {
                    if toks.len() > 1 {
                        return Err(
                            self.err(pos, &format!("unexpected tokens in {{{{{keyword}}}}}"))
                        );
                    }
                    if self.range_depth == 0 {
                        return Err(
                            self.err(pos, &format!("{{{{{keyword}}}}} outside {{{{range}}}}"))
                        );
                    }
                    nodes.push(if keyword == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                "define" | "template" | "block" => {
                    return Err(self.err(
                        pos,
                        &format!("{{{{{keyword}}}}} is not supported by sealant templates"),
                    ));
                }
                _ => {
                    let pipe = self.pipeline(&toks, pos, "command")?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn if_or_with(
        &mut self,
        is_if: bool,
        toks: Vec<Token>,
        pos: usize,
    ) -> Result<Node, TemplateError> {
        self.enter(pos)?;
        let mark = self.vars.len();
        let word = if is_if { "if" } else { "with" };
        let mut branches = Vec::new();
        let mut else_list = None;
        let mut pipe = self.pipeline(&toks[1..], pos, word)?;
        loop {
            let (body, end) = self.list()?;
            branches.push((pipe, body));
            match end {
                Stop::Eof => return Err(self.err(self.src.len(), "unexpected EOF")),
                Stop::End => break,
                Stop::Else(etoks, epos) => {
                    // `{{else if ...}}` / `{{else with ...}}` chains.
                    if let Some(Token {
                        tok: Tok::Ident(w), ..
                    }) = etoks.get(1)
                        && w == word
                    {
                        pipe = self.pipeline(&etoks[2..], epos, word)?;
                        continue;
                    }
                    if etoks.len() > 1 {
                        return Err(self.err(epos, "unexpected tokens in {{else}}"));
                    }
                    let (body, end) = self.list()?;
                    match end {
                        Stop::End => {}
                        Stop::Eof => return Err(self.err(self.src.len(), "unexpected EOF")),
                        Stop::Else(_, p) => return Err(self.err(p, "expected end; found {{else}}")),
                    }
                    else_list = Some(body);
                    break;
                }
            }
        }
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(if is_if {
            Node::If(branches, else_list)
        } else {
            Node::With(branches, else_list)
        })
    }

    fn range(&mut self, toks: Vec<Token>, pos: usize) -> Result<Node, TemplateError> {
        self.enter(pos)?;
        let mark = self.vars.len();
        let pipe = self.pipeline(&toks[1..], pos, "range")?;
        self.range_depth += 1;
        let (body, end) = self.list()?;
        self.range_depth -= 1;
        let else_list = match end {
            Stop::End => None,
            Stop::Eof => return Err(self.err(self.src.len(), "unexpected EOF")),
            Stop::Else(etoks, epos) => {
                if etoks.len() > 1 {
                    return Err(self.err(epos, "unexpected tokens in {{else}}"));
                }
                let (body, end) = self.list()?;
                match end {
                    Stop::End => {}
                    Stop::Eof => return Err(self.err(self.src.len(), "unexpected EOF")),
                    Stop::Else(_, p) => return Err(self.err(p, "expected end; found {{else}}")),
                }
                Some(body)
            }
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(Node::Range(pipe, body, else_list))
    }

    /// `[$x[, $y] (:=|=)] command (| command)*`
    fn pipeline(
        &mut self,
        toks: &[Token],
        pos: usize,
        context: &str,
    ) -> Result<Pipe, TemplateError> {
        let mut rest = toks;
        let mut decl = Vec::new();
        let mut assign = false;
        // Declarations: `$x :=`, `$x =`, `$i, $v :=` (the last only in range).
        let names_then_op = |ts: &[Token]| -> Option<(Vec<String>, bool, usize)> {
            let mut names = Vec::new();
            let mut k = 0;
            loop {
                match ts.get(k).map(|t| &t.tok) {
                    Some(Tok::Var(v)) => names.push(v.clone()),
                    _ => return None,
                }
                k += 1;
                match ts.get(k).map(|t| &t.tok) {
                    Some(Tok::Declare) => return Some((names, false, k + 1)),
                    Some(Tok::Assign) => return Some((names, true, k + 1)),
                    Some(Tok::Comma) if names.len() < 3 => k += 1,
                    _ => return None,
                }
            }
        };
        if let Some((names, is_assign, used)) = names_then_op(rest) {
            if names.len() > 1 && context != "range" {
                return Err(self.err(rest[0].pos, "too many declarations"));
            }
            if names.len() > 2 {
                return Err(self.err(rest[0].pos, "too many declarations in range"));
            }
            if is_assign {
                for n in &names {
                    if !self.vars.contains(n) {
                        return Err(self.err(rest[0].pos, &format!("undefined variable {n:?}")));
                    }
                }
            }
            decl = names;
            assign = is_assign;
            rest = &rest[used..];
        }
        if rest.is_empty() {
            return Err(self.err(pos, &format!("missing value for {context}")));
        }
        let mut cmds = Vec::new();
        let mut i = 0;
        loop {
            let (cmd, next) = self.command(rest, i, pos)?;
            cmds.push(cmd);
            i = next;
            match rest.get(i) {
                None => break,
                Some(Token { tok: Tok::Pipe, .. }) => {
                    i += 1;
                    if i >= rest.len() {
                        // Go accepts a trailing `|` before `}}`.
                        break;
                    }
                }
                Some(t) => return Err(self.err(t.pos, "unexpected token in pipeline")),
            }
        }
        // Declared after the pipeline is parsed: `$x := $x` refers to an outer `$x`.
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        for (n, cmd) in cmds.iter().enumerate() {
            let first = &cmd.args[0];
            let inert = first.fields.is_empty()
                && matches!(
                    first.term,
                    Term::Dot | Term::Nil | Term::Bool(_) | Term::Int(_) | Term::Str(_)
                );
            if n > 0 && inert {
                return Err(self.err(
                    cmd.pos,
                    &format!("non executable command in pipeline stage {}", n + 1),
                ));
            }
            if cmd.args.len() == 1 && matches!(cmd.args[0].term, Term::Nil) {
                return Err(self.err(cmd.pos, "nil is not a command"));
            }
        }
        Ok(Pipe {
            pos,
            decl,
            assign,
            cmds,
        })
    }

    /// One command: operands up to `|`, `)` or the end.
    fn command(
        &mut self,
        toks: &[Token],
        mut i: usize,
        pos: usize,
    ) -> Result<(Cmd, usize), TemplateError> {
        let cmd_pos = toks.get(i).map_or(pos, |t| t.pos);
        let mut args = Vec::new();
        while let Some(t) = toks.get(i) {
            match t.tok {
                Tok::Pipe | Tok::RParen => break,
                _ => {}
            }
            let (op, next) = self.operand(toks, i)?;
            args.push(op);
            i = next;
        }
        if args.is_empty() {
            return Err(self.err(cmd_pos, "missing value for command"));
        }
        Ok((Cmd { pos: cmd_pos, args }, i))
    }

    fn operand(&mut self, toks: &[Token], mut i: usize) -> Result<(Operand, usize), TemplateError> {
        let t = &toks[i];
        let pos = t.pos;
        let mut fields = Vec::new();
        let term = match &t.tok {
            Tok::Dot => Term::Dot,
            Tok::Field(name) => {
                fields.push(name.clone());
                Term::Dot
            }
            Tok::Var(name) => {
                if !self.vars.contains(name) {
                    return Err(self.err(pos, &format!("undefined variable {name:?}")));
                }
                Term::Var(name.clone())
            }
            Tok::Ident(name) => match function(name) {
                Some(f) => Term::Func(f.name),
                None if name == "else"
                    || name == "end"
                    || name == "if"
                    || name == "range"
                    || name == "with" =>
                {
                    return Err(self.err(pos, &format!("unexpected {name:?} in command")));
                }
                None => {
                    let reason = if UNSUPPORTED_SPRIG.contains(&name.as_str()) {
                        format!("function {name:?} is not supported by sealant templates")
                    } else {
                        format!("function {name:?} not defined")
                    };
                    return Err(self.err(pos, &reason));
                }
            },
            Tok::Str(s) => Term::Str(Rc::new(Zeroizing::new(s.clone()))),
            Tok::Int(v) => Term::Int(*v),
            Tok::Bool(v) => Term::Bool(*v),
            Tok::Nil => Term::Nil,
            Tok::LParen => {
                self.enter(pos)?;
                // Find the matching parenthesis.
                let mut level = 0usize;
                let mut close = None;
                for (k, tk) in toks.iter().enumerate().skip(i) {
                    match tk.tok {
                        Tok::LParen => level += 1,
                        Tok::RParen => {
                            level -= 1;
                            if level == 0 {
                                close = Some(k);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let Some(close) = close else {
                    return Err(self.err(pos, "unclosed left paren"));
                };
                let inner = self.pipeline(&toks[i + 1..close], pos, "parenthesized pipeline")?;
                if !inner.decl.is_empty() {
                    return Err(self.err(pos, "declaration inside parentheses is not supported"));
                }
                self.depth -= 1;
                i = close;
                Term::Paren(Box::new(inner))
            }
            Tok::RParen => return Err(self.err(pos, "unexpected right paren")),
            Tok::Pipe => return Err(self.err(pos, "unexpected \"|\" in command")),
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return Err(self.err(pos, "unexpected declaration or assignment"));
            }
        };
        i += 1;
        while let Some(Token {
            tok: Tok::Field(name),
            glued: true,
            ..
        }) = toks.get(i)
        {
            if matches!(
                term,
                Term::Func(_) | Term::Int(_) | Term::Str(_) | Term::Bool(_) | Term::Nil
            ) {
                return Err(self.err(toks[i].pos, "unexpected field after a non-value"));
            }
            fields.push(name.clone());
            i += 1;
        }
        Ok((Operand { pos, term, fields }, i))
    }
}

/// 1-based line and column (in characters) of byte offset `pos`.
fn error_at(src: &str, pos: usize, reason: String) -> TemplateError {
    let pos = pos.min(src.len());
    let before = src.get(..pos).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = before[line_start..].chars().count() + 1;
    TemplateError {
        line,
        column,
        reason,
    }
}

// ---------------------------------------------------------------------------------------
// Functions

/// A function sealant implements; `name` is Go's spelling.
struct FuncDef {
    name: &'static str,
}

const FUNCS: &[FuncDef] = &[
    // Go's builtins.
    FuncDef { name: "and" },
    FuncDef { name: "or" },
    FuncDef { name: "not" },
    FuncDef { name: "len" },
    FuncDef { name: "index" },
    FuncDef { name: "print" },
    FuncDef { name: "printf" },
    FuncDef { name: "println" },
    FuncDef { name: "eq" },
    FuncDef { name: "ne" },
    FuncDef { name: "lt" },
    FuncDef { name: "le" },
    FuncDef { name: "gt" },
    FuncDef { name: "ge" },
    FuncDef { name: "html" },
    FuncDef { name: "urlquery" },
    // sprig.
    FuncDef { name: "upper" },
    FuncDef { name: "lower" },
    FuncDef { name: "title" },
    FuncDef { name: "trim" },
    FuncDef { name: "trimAll" },
    FuncDef { name: "trimPrefix" },
    FuncDef { name: "trimSuffix" },
    FuncDef { name: "nospace" },
    FuncDef { name: "replace" },
    FuncDef { name: "repeat" },
    FuncDef { name: "contains" },
    FuncDef { name: "hasPrefix" },
    FuncDef { name: "hasSuffix" },
    FuncDef { name: "quote" },
    FuncDef { name: "squote" },
    FuncDef { name: "cat" },
    FuncDef { name: "indent" },
    FuncDef { name: "nindent" },
    FuncDef { name: "default" },
    FuncDef { name: "empty" },
    FuncDef { name: "coalesce" },
    FuncDef { name: "ternary" },
    FuncDef { name: "toString" },
    FuncDef { name: "toJson" },
    FuncDef { name: "b64enc" },
    FuncDef { name: "b64dec" },
    FuncDef { name: "list" },
    FuncDef { name: "join" },
    FuncDef { name: "splitList" },
];

/// Functions that Bitnami's controller has (Go's builtins and sprig's generic map) but
/// sealant does not implement; naming them gives a clearer error than "not defined".
const UNSUPPORTED_SPRIG: &[&str] = &[
    "js",
    "slice",
    "call",
    "abbrev",
    "abbrevboth",
    "trunc",
    "substr",
    "initials",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "randBytes",
    "randInt",
    "wrap",
    "wrapWith",
    "plural",
    "snakecase",
    "camelcase",
    "kebabcase",
    "swapcase",
    "shuffle",
    "untitle",
    "regexMatch",
    "mustRegexMatch",
    "regexFindAll",
    "mustRegexFindAll",
    "regexFind",
    "mustRegexFind",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    "toStrings",
    "split",
    "splitn",
    "toDecimal",
    "atoi",
    "int",
    "int64",
    "float64",
    "seq",
    "until",
    "untilStep",
    "add",
    "add1",
    "sub",
    "div",
    "mod",
    "mul",
    "max",
    "min",
    "biggest",
    "ceil",
    "floor",
    "round",
    "addf",
    "add1f",
    "subf",
    "divf",
    "mulf",
    "maxf",
    "minf",
    "b32enc",
    "b32dec",
    "toPrettyJson",
    "toRawJson",
    "mustToJson",
    "mustToPrettyJson",
    "mustToRawJson",
    "fromJson",
    "mustFromJson",
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "keys",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
    "values",
    "deepCopy",
    "mustDeepCopy",
    "dig",
    "append",
    "push",
    "mustAppend",
    "mustPush",
    "prepend",
    "mustPrepend",
    "first",
    "mustFirst",
    "rest",
    "mustRest",
    "last",
    "mustLast",
    "initial",
    "mustInitial",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "compact",
    "mustCompact",
    "concat",
    "chunk",
    "mustChunk",
    "sortAlpha",
    "fail",
    "now",
    "ago",
    "date",
    "date_in_zone",
    "date_modify",
    "dateInZone",
    "dateModify",
    "duration",
    "durationRound",
    "htmlDate",
    "htmlDateInZone",
    "must_date_modify",
    "mustDateModify",
    "mustToDate",
    "toDate",
    "unixEpoch",
    "typeOf",
    "typeIs",
    "typeIsLike",
    "kindOf",
    "kindIs",
    "deepEqual",
    "base",
    "dir",
    "clean",
    "ext",
    "isAbs",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    "semver",
    "semverCompare",
    "uuidv4",
    "genPrivateKey",
    "derivePassword",
    "buildCustomCert",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "encryptAES",
    "decryptAES",
    "randInt",
    "urlParse",
    "urlJoin",
    "bcrypt",
    "htpasswd",
    "list",
    "tuple",
    "regexp",
    "nindent",
    "empty",
    "all",
    "any",
    "fromJsonArray",
    "mustFromJsonArray",
    "sortAlpha",
    "trimall",
    "title",
    "ternary",
];

fn function(name: &str) -> Option<&'static FuncDef> {
    FUNCS.iter().find(|f| f.name == name)
}

fn arity(name: &str, a: &[Value<'_>], n: usize) -> Result<(), String> {
    if a.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            a.len()
        ));
    }
    Ok(())
}

fn at_least(name: &str, a: &[Value<'_>], n: usize) -> Result<(), String> {
    if a.len() < n {
        return Err(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            a.len()
        ));
    }
    Ok(())
}

fn want_str<'v>(name: &str, a: &'v [Value<'_>], i: usize) -> Result<&'v [u8], String> {
    match &a[i] {
        Value::Str(b) => Ok(b.as_slice()),
        Value::Nil => Err(format!(
            "argument {} of {name}: invalid value; expected string",
            i + 1
        )),
        v => Err(format!(
            "argument {} of {name}: wrong type for value; expected string; got {}",
            i + 1,
            v.type_name()
        )),
    }
}

fn want_int(name: &str, a: &[Value<'_>], i: usize) -> Result<i64, String> {
    match &a[i] {
        Value::Int(n) => Ok(*n),
        Value::Nil => Err(format!(
            "argument {} of {name}: invalid value; expected int",
            i + 1
        )),
        v => Err(format!(
            "argument {} of {name}: wrong type for value; expected int; got {}",
            i + 1,
            v.type_name()
        )),
    }
}

fn want_bool(name: &str, a: &[Value<'_>], i: usize) -> Result<bool, String> {
    match &a[i] {
        Value::Bool(b) => Ok(*b),
        Value::Nil => Err(format!(
            "argument {} of {name}: invalid value; expected bool",
            i + 1
        )),
        v => Err(format!(
            "argument {} of {name}: wrong type for value; expected bool; got {}",
            i + 1,
            v.type_name()
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Execution

struct Exec<'a> {
    source: &'a str,
    values: &'a BTreeMap<String, Plaintext>,
    vars: Vec<(String, Value<'a>)>,
    out: SecretBuf,
    steps: u64,
    allocated: usize,
}

/// An execution error before it is given a position.
type Res<T> = Result<T, String>;

impl<'a> Exec<'a> {
    fn at(&self, pos: usize, reason: String) -> TemplateError {
        error_at(self.source, pos, reason)
    }

    fn step(&mut self) -> Res<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(format!(
                "template takes more than {MAX_STEPS} execution steps"
            ));
        }
        Ok(())
    }

    fn emit(&mut self, bytes: &[u8]) -> Res<()> {
        if self.out.len() + bytes.len() > MAX_OUTPUT {
            return Err(format!("rendered value is larger than {MAX_OUTPUT} bytes"));
        }
        self.out.push(bytes);
        Ok(())
    }

    /// A string made while rendering, counted against the limits.
    fn owned(&mut self, buf: SecretBuf) -> Res<Value<'a>> {
        if buf.len() > MAX_OUTPUT {
            return Err(format!(
                "a string made by the template is larger than {MAX_OUTPUT} bytes"
            ));
        }
        self.allocated += buf.len();
        if self.allocated > MAX_ALLOCATED {
            return Err(format!(
                "the template makes more than {MAX_ALLOCATED} bytes of strings"
            ));
        }
        Ok(Value::Str(Bytes::Owned(Rc::new(Zeroizing::new(
            buf.into_vec(),
        )))))
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value<'a>) -> Result<Flow, TemplateError> {
        for node in nodes {
            match node {
                Node::Text(a, b) => {
                    let text = &self.source.as_bytes()[*a..*b];
                    self.step()
                        .and_then(|()| self.emit(text))
                        .map_err(|e| self.at(*a, e))?;
                }
                Node::Action(pipe) => {
                    self.step().map_err(|e| self.at(pipe.pos, e))?;
                    let v = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        let mut buf = SecretBuf::default();
                        match &v {
                            Value::Nil => buf.push_str("<no value>"),
                            v => fmt_value(&mut buf, v, self.values),
                        }
                        self.emit(&buf.0).map_err(|e| self.at(pipe.pos, e))?;
                    }
                }
                Node::If(branches, else_list) | Node::With(branches, else_list) => {
                    let with = matches!(node, Node::With(..));
                    let mark = self.vars.len();
                    let mut flow = None;
                    for (pipe, body) in branches {
                        let v = self.pipe(pipe, dot)?;
                        if truth(&v, self.values) {
                            let inner = if with { v } else { dot.clone() };
                            flow = Some(self.walk(body, &inner)?);
                            break;
                        }
                    }
                    let flow = match (flow, else_list) {
                        (Some(f), _) => f,
                        (None, Some(body)) => self.walk(body, dot)?,
                        (None, None) => Flow::Normal,
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(pipe, body, else_list) => {
                    let mark = self.vars.len();
                    let flow = self.range(pipe, body, else_list.as_deref(), dot)?;
                    self.vars.truncate(mark);
                    if let Some(flow) = flow {
                        return Ok(flow);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs a range; `Some(flow)` only to pass a flow outwards (never, as break and
    /// continue stop at the innermost range).
    fn range(
        &mut self,
        pipe: &Pipe,
        body: &[Node],
        else_list: Option<&[Node]>,
        dot: &Value<'a>,
    ) -> Result<Option<Flow>, TemplateError> {
        let v = self.pipe_value(pipe, dot)?;
        let root: Vec<(&'a String, &'a Plaintext)> = match &v {
            Value::Root => self.values.iter().collect(),
            _ => Vec::new(),
        };
        let len = match &v {
            Value::Nil => 0,
            Value::List(l) => l.len(),
            Value::Root => root.len(),
            Value::Int(n) => {
                if pipe.decl.len() > 1 {
                    return Err(self.at(
                        pipe.pos,
                        "can't iterate over an integer with two variables".into(),
                    ));
                }
                usize::try_from(*n).unwrap_or(0)
            }
            other => {
                return Err(self.at(
                    pipe.pos,
                    format!(
                        "range can't iterate over a value of type {}",
                        other.type_name()
                    ),
                ));
            }
        };
        if len == 0 {
            if let Some(body) = else_list {
                self.walk(body, dot)?;
            }
            return Ok(None);
        }
        let item = |i: usize| -> (Value<'a>, Value<'a>) {
            match &v {
                Value::List(l) => (Value::Int(i as i64), l[i].clone()),
                Value::Root => (
                    Value::Str(Bytes::Borrowed(root[i].0.as_bytes())),
                    Value::Str(Bytes::Borrowed(root[i].1.expose_secret())),
                ),
                _ => (Value::Int(i as i64), Value::Int(i as i64)),
            }
        };
        let base = self.vars.len();
        for i in 0..len {
            let (key, elem) = item(i);
            self.step().map_err(|e| self.at(pipe.pos, e))?;
            self.vars.truncate(base);
            match pipe.decl.as_slice() {
                [] => {}
                [v] => self.vars.push((v.clone(), elem.clone())),
                [k, v, ..] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), elem.clone()));
                }
            }
            let flow = self.walk(body, &elem)?;
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        Ok(None)
    }

    /// Evaluates a pipeline and applies its declaration or assignment.
    fn pipe(&mut self, pipe: &Pipe, dot: &Value<'a>) -> Result<Value<'a>, TemplateError> {
        let v = self.pipe_value(pipe, dot)?;
        for name in &pipe.decl {
            if pipe.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(self.at(pipe.pos, format!("undefined variable: {name}"))),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn pipe_value(&mut self, pipe: &Pipe, dot: &Value<'a>) -> Result<Value<'a>, TemplateError> {
        let mut val: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            val = Some(self.command(cmd, dot, val)?);
        }
        Ok(val.unwrap_or(Value::Nil))
    }

    fn command(
        &mut self,
        cmd: &Cmd,
        dot: &Value<'a>,
        last: Option<Value<'a>>,
    ) -> Result<Value<'a>, TemplateError> {
        self.step().map_err(|e| self.at(cmd.pos, e))?;
        let first = &cmd.args[0];
        if let (Term::Func(name), true) = (&first.term, first.fields.is_empty()) {
            return self.call(name, &cmd.args[1..], dot, last, cmd.pos);
        }
        if cmd.args.len() > 1 || last.is_some() {
            let reason = match first.fields.last() {
                Some(f) => format!("{f} is not a method but has arguments"),
                None => "can't give argument to non-function".to_owned(),
            };
            return Err(self.at(first.pos, reason));
        }
        self.operand(first, dot)
    }

    fn operand(&mut self, op: &Operand, dot: &Value<'a>) -> Result<Value<'a>, TemplateError> {
        let mut v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Nil => Value::Nil,
            Term::Bool(b) => Value::Bool(*b),
            Term::Int(n) => Value::Int(*n),
            Term::Str(s) => Value::Str(Bytes::Owned(Rc::clone(s))),
            Term::Var(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => return Err(self.at(op.pos, format!("undefined variable: {name}"))),
            },
            Term::Func(name) => self.call(name, &[], dot, None, op.pos)?,
            Term::Paren(pipe) => self.pipe_value(pipe, dot)?,
        };
        for field in &op.fields {
            v = match v {
                Value::Nil => Value::Nil,
                Value::Root => match self.values.get(field) {
                    Some(p) => Value::Str(Bytes::Borrowed(p.expose_secret())),
                    None => Value::Nil,
                },
                other => {
                    return Err(self.at(
                        op.pos,
                        format!("can't evaluate field {field} in type {}", other.type_name()),
                    ));
                }
            };
        }
        Ok(v)
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Operand],
        dot: &Value<'a>,
        last: Option<Value<'a>>,
        pos: usize,
    ) -> Result<Value<'a>, TemplateError> {
        // and/or stop at the first operand that decides the result.
        if name == "and" || name == "or" {
            let count = args.len() + usize::from(last.is_some());
            if count == 0 {
                return Err(self.at(
                    pos,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut result = Value::Nil;
            for op in args {
                result = self.operand(op, dot)?;
                let t = truth(&result, self.values);
                if (name == "and" && !t) || (name == "or" && t) {
                    return Ok(result);
                }
            }
            if let Some(v) = last {
                result = v;
            }
            return Ok(result);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for op in args {
            vals.push(self.operand(op, dot)?);
        }
        vals.extend(last);
        self.apply(name, vals)
            .map_err(|reason| self.at(pos, format!("error calling {name}: {reason}")))
    }

    fn apply(&mut self, name: &str, a: Vec<Value<'a>>) -> Res<Value<'a>> {
        let values = self.values;
        let str_fn = |a: &[Value<'_>], f: &dyn Fn(&[u8], &mut SecretBuf)| -> Res<SecretBuf> {
            arity(name, a, 1)?;
            let s = want_str(name, a, 0)?;
            let mut buf = SecretBuf::with_capacity(s.len());
            f(s, &mut buf);
            Ok(buf)
        };
        let v = match name {
            "not" => {
                arity(name, &a, 1)?;
                Value::Bool(!truth(&a[0], values))
            }
            "len" => {
                arity(name, &a, 1)?;
                let n = match &a[0] {
                    Value::Str(s) => s.as_slice().len(),
                    Value::List(l) => l.len(),
                    Value::Root => values.len(),
                    Value::Nil => return Err("len of nil value".into()),
                    v => return Err(format!("len of type {}", v.type_name())),
                };
                Value::Int(n as i64)
            }
            "index" => {
                at_least(name, &a, 1)?;
                let mut item = a[0].clone();
                for idx in &a[1..] {
                    item = index(item, idx, values)?;
                }
                item
            }
            "print" | "println" => {
                let mut buf = SecretBuf::default();
                for (i, v) in a.iter().enumerate() {
                    let is_str = matches!(v, Value::Str(_));
                    let prev_str = i > 0 && matches!(a[i - 1], Value::Str(_));
                    if i > 0 && (name == "println" || (!is_str && !prev_str)) {
                        buf.push(b" ");
                    }
                    fmt_value(&mut buf, v, values);
                }
                if name == "println" {
                    buf.push(b"\n");
                }
                return self.owned(buf);
            }
            "printf" => {
                at_least(name, &a, 1)?;
                let format = want_str(name, &a, 0)?;
                let buf = sprintf(format, &a[1..], values)?;
                return self.owned(buf);
            }
            "html" | "urlquery" => {
                let mut text = SecretBuf::default();
                match a.as_slice() {
                    [Value::Str(s)] => text.push(s.as_slice()),
                    _ => {
                        for (i, v) in a.iter().enumerate() {
                            let is_str = matches!(v, Value::Str(_) | Value::Nil);
                            let prev_str = i > 0 && matches!(a[i - 1], Value::Str(_) | Value::Nil);
                            if i > 0 && !is_str && !prev_str {
                                text.push(b" ");
                            }
                            match v {
                                Value::Nil => text.push(b"<no value>"),
                                v => fmt_value(&mut text, v, values),
                            }
                        }
                    }
                }
                let mut buf = SecretBuf::with_capacity(text.len());
                if name == "html" {
                    html_escape(&text.0, &mut buf);
                } else {
                    query_escape(&text.0, &mut buf);
                }
                return self.owned(buf);
            }
            "eq" => {
                at_least(name, &a, 1)?;
                if a.len() == 1 {
                    return Err("missing argument for comparison".into());
                }
                let mut any = false;
                for other in &a[1..] {
                    if equal(&a[0], other)? {
                        any = true;
                        break;
                    }
                }
                Value::Bool(any)
            }
            "ne" => {
                arity(name, &a, 2)?;
                Value::Bool(!equal(&a[0], &a[1])?)
            }
            "lt" | "le" | "gt" | "ge" => {
                arity(name, &a, 2)?;
                let ord = order(&a[0], &a[1])?;
                Value::Bool(match name {
                    "lt" => ord.is_lt(),
                    "le" => ord.is_le(),
                    "gt" => ord.is_gt(),
                    _ => ord.is_ge(),
                })
            }
            "upper" => {
                return str_fn(&a, &|s, b| map_chars(s, b, upper_char)).and_then(|b| self.owned(b));
            }
            "lower" => {
                return str_fn(&a, &|s, b| map_chars(s, b, lower_char)).and_then(|b| self.owned(b));
            }
            "title" => return str_fn(&a, &title).and_then(|b| self.owned(b)),
            "trim" => {
                return str_fn(&a, &|s, b| b.push(trim_by(s, &|c| c.is_whitespace())))
                    .and_then(|b| self.owned(b));
            }
            "nospace" => {
                return str_fn(&a, &|s, b| {
                    let mut rest = s;
                    while let Some((c, n)) = decode_lossy(rest) {
                        if !c.is_whitespace() {
                            b.push_char(c);
                        }
                        rest = &rest[n..];
                    }
                })
                .and_then(|b| self.owned(b));
            }
            "trimAll" => {
                arity(name, &a, 2)?;
                let cutset = want_str(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let set: Vec<char> = String::from_utf8_lossy(cutset).chars().collect();
                let mut buf = SecretBuf::default();
                buf.push(trim_by(s, &|c| set.contains(&c)));
                return self.owned(buf);
            }
            "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix" => {
                arity(name, &a, 2)?;
                let x = want_str(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let out: &[u8] = match name {
                    "trimPrefix" => s.strip_prefix(x).unwrap_or(s),
                    "trimSuffix" => s.strip_suffix(x).unwrap_or(s),
                    "contains" => {
                        return Ok(Value::Bool(
                            x.is_empty() || s.windows(x.len()).any(|w| w == x),
                        ));
                    }
                    "hasPrefix" => return Ok(Value::Bool(s.starts_with(x))),
                    _ => return Ok(Value::Bool(s.ends_with(x))),
                };
                let mut buf = SecretBuf::default();
                buf.push(out);
                return self.owned(buf);
            }
            "replace" => {
                arity(name, &a, 3)?;
                let old = want_str(name, &a, 0)?;
                let new = want_str(name, &a, 1)?;
                let src = want_str(name, &a, 2)?;
                let buf = replace_all(src, old, new)?;
                return self.owned(buf);
            }
            "repeat" => {
                arity(name, &a, 2)?;
                let count = want_int(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let count =
                    usize::try_from(count).map_err(|_| "negative repeat count".to_owned())?;
                if s.len().saturating_mul(count) > MAX_OUTPUT {
                    return Err(format!(
                        "the repeated string would be larger than {MAX_OUTPUT} bytes"
                    ));
                }
                let mut buf = SecretBuf::with_capacity(s.len() * count);
                for _ in 0..count {
                    buf.push(s);
                }
                return self.owned(buf);
            }
            "indent" | "nindent" => {
                arity(name, &a, 2)?;
                let n = want_int(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let n = usize::try_from(n).map_err(|_| "negative indent".to_owned())?;
                let lines = s.iter().filter(|c| **c == b'\n').count() + 1;
                if n.saturating_mul(lines).saturating_add(s.len()) > MAX_OUTPUT {
                    return Err(format!(
                        "the indented string would be larger than {MAX_OUTPUT} bytes"
                    ));
                }
                let pad = vec![b' '; n];
                let mut buf = SecretBuf::with_capacity(s.len() + n * lines + 1);
                if name == "nindent" {
                    buf.push(b"\n");
                }
                buf.push(&pad);
                for &c in s {
                    buf.push(&[c]);
                    if c == b'\n' {
                        buf.push(&pad);
                    }
                }
                return self.owned(buf);
            }
            "quote" | "squote" | "cat" => {
                let mut buf = SecretBuf::default();
                let mut first = true;
                for v in a.iter().filter(|v| !matches!(v, Value::Nil)) {
                    if !first {
                        buf.push(b" ");
                    }
                    first = false;
                    match name {
                        "quote" => {
                            let mut inner = SecretBuf::default();
                            fmt_value(&mut inner, v, values);
                            go_quote(&inner.0, &mut buf);
                        }
                        "squote" => {
                            buf.push(b"'");
                            fmt_value(&mut buf, v, values);
                            buf.push(b"'");
                        }
                        _ => fmt_value(&mut buf, v, values),
                    }
                }
                return self.owned(buf);
            }
            "default" => {
                at_least(name, &a, 1)?;
                match a.get(1) {
                    Some(given) if truth(given, values) => given.clone(),
                    _ => a[0].clone(),
                }
            }
            "empty" => {
                arity(name, &a, 1)?;
                Value::Bool(!truth(&a[0], values))
            }
            "coalesce" => a
                .iter()
                .find(|v| truth(v, values))
                .cloned()
                .unwrap_or(Value::Nil),
            "ternary" => {
                arity(name, &a, 3)?;
                if want_bool(name, &a, 2)? {
                    a[0].clone()
                } else {
                    a[1].clone()
                }
            }
            "toString" => {
                arity(name, &a, 1)?;
                let mut buf = SecretBuf::default();
                fmt_value(&mut buf, &a[0], values);
                return self.owned(buf);
            }
            "toJson" => {
                arity(name, &a, 1)?;
                let mut buf = SecretBuf::default();
                to_json(&mut buf, &a[0], values);
                return self.owned(buf);
            }
            "b64enc" => {
                arity(name, &a, 1)?;
                let s = want_str(name, &a, 0)?;
                let mut buf = SecretBuf::with_capacity(s.len().div_ceil(3) * 4);
                let mut chunk = [0u8; 4];
                for three in s.chunks(3) {
                    let n = base64::engine::general_purpose::STANDARD
                        .encode_slice(three, &mut chunk)
                        .map_err(|_| "cannot encode base64".to_owned())?;
                    buf.push(&chunk[..n]);
                }
                return self.owned(buf);
            }
            "b64dec" => {
                arity(name, &a, 1)?;
                let s = want_str(name, &a, 0)?;
                // Go's decoder skips line breaks.
                let clean: Zeroizing<Vec<u8>> = Zeroizing::new(
                    s.iter()
                        .copied()
                        .filter(|c| *c != b'\r' && *c != b'\n')
                        .collect(),
                );
                let mut out = Zeroizing::new(vec![0u8; clean.len() / 4 * 3 + 3]);
                let n = B64_GO
                    .decode_slice(&clean[..], &mut out[..])
                    .map_err(|_| "the argument is not valid base64 (sealant refuses it; sprig would render the decoder's error text)".to_owned())?;
                let mut buf = SecretBuf::with_capacity(n);
                buf.push(&out[..n]);
                return self.owned(buf);
            }
            "list" => Value::List(Rc::new(a)),
            "join" => {
                arity(name, &a, 2)?;
                let sep = want_str(name, &a, 0)?;
                let parts: Vec<&Value<'_>> = match &a[1] {
                    Value::List(l) => l.iter().filter(|v| !matches!(v, Value::Nil)).collect(),
                    Value::Nil => Vec::new(),
                    v => vec![v],
                };
                let mut buf = SecretBuf::default();
                for (i, v) in parts.iter().enumerate() {
                    if i > 0 {
                        buf.push(sep);
                    }
                    fmt_value(&mut buf, v, values);
                    if buf.len() > MAX_OUTPUT {
                        break;
                    }
                }
                return self.owned(buf);
            }
            "splitList" => {
                arity(name, &a, 2)?;
                let sep = want_str(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let mut pieces = Vec::new();
                if sep.is_empty() {
                    let mut rest = s;
                    while !rest.is_empty() {
                        let n = decode(rest).map_or(1, |(_, n)| n);
                        pieces.push(&rest[..n]);
                        rest = &rest[n..];
                    }
                } else {
                    let mut rest = s;
                    while let Some(p) = rest.windows(sep.len()).position(|w| w == sep) {
                        pieces.push(&rest[..p]);
                        rest = &rest[p + sep.len()..];
                    }
                    pieces.push(rest);
                }
                let mut list = Vec::with_capacity(pieces.len());
                for p in pieces {
                    self.step()?;
                    let mut buf = SecretBuf::with_capacity(p.len());
                    buf.push(p);
                    list.push(self.owned(buf)?);
                }
                Value::List(Rc::new(list))
            }
            other => return Err(format!("function {other:?} is not implemented")),
        };
        Ok(v)
    }
}

/// Go's `StdEncoding`: padded, tolerant of non-zero trailing bits.
const B64_GO: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

fn index<'a>(
    item: Value<'a>,
    idx: &Value<'a>,
    values: &'a BTreeMap<String, Plaintext>,
) -> Res<Value<'a>> {
    match (&item, idx) {
        (Value::Nil, _) => Err("index of untyped nil".into()),
        (Value::Root, Value::Str(k)) => {
            let key = std::str::from_utf8(k.as_slice()).ok();
            Ok(match key.and_then(|k| values.get(k)) {
                Some(p) => Value::Str(Bytes::Borrowed(p.expose_secret())),
                // Go's index gives the zero value for a missing map key.
                None => Value::Str(Bytes::Borrowed(b"")),
            })
        }
        (Value::Root, v) => Err(format!(
            "value has type {}; should be string",
            v.type_name()
        )),
        (Value::Str(s), Value::Int(i)) => {
            let s = s.as_slice();
            usize::try_from(*i)
                .ok()
                .and_then(|i| s.get(i))
                .map(|b| Value::Int(i64::from(*b)))
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        (Value::List(l), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| l.get(i))
            .cloned()
            .ok_or_else(|| format!("index out of range: {i}")),
        (Value::Str(_) | Value::List(_), v) => Err(format!(
            "cannot index slice/array with type {}",
            v.type_name()
        )),
        (v, _) => Err(format!("can't index item of type {}", v.type_name())),
    }
}

fn truth(v: &Value<'_>, values: &BTreeMap<String, Plaintext>) -> bool {
    match v {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(n) => *n != 0,
        Value::Str(s) => !s.as_slice().is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Root => !values.is_empty(),
    }
}

fn equal(a: &Value<'_>, b: &Value<'_>) -> Res<bool> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x.as_slice() == y.as_slice(),
        (Value::List(_) | Value::Root, _) | (_, Value::List(_) | Value::Root) => {
            return Err("non-comparable type".into());
        }
        (x, y) => {
            return Err(format!(
                "incompatible types for comparison: {} and {}",
                x.type_name(),
                y.type_name()
            ));
        }
    })
}

fn order(a: &Value<'_>, b: &Value<'_>) -> Res<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Ok(x.as_slice().cmp(y.as_slice())),
        (Value::Int(_) | Value::Str(_), Value::Int(_) | Value::Str(_)) => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
        _ => Err("invalid type for comparison".into()),
    }
}

// ---------------------------------------------------------------------------------------
// Formatting, as Go's fmt and encoding/json print these values

/// `%v`: what `print` and an action show.
fn fmt_value(buf: &mut SecretBuf, v: &Value<'_>, values: &BTreeMap<String, Plaintext>) {
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
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs sealant supports.
fn sprintf(
    format: &[u8],
    args: &[Value<'_>],
    values: &BTreeMap<String, Plaintext>,
) -> Res<SecretBuf> {
    let mut buf = SecretBuf::default();
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
        f.width = num(&mut i, &mut argi, &mut buf)?;
        if format.get(i) == Some(&b'.') {
            i += 1;
            f.precision = Some(num(&mut i, &mut argi, &mut buf)?.unwrap_or(0));
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
        fmt_arg(&mut buf, verb, f, arg, values)?;
        if buf.len() > MAX_OUTPUT {
            return Err(format!("printf output is larger than {MAX_OUTPUT} bytes"));
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
                fmt_value(&mut buf, v, values);
            }
        }
        buf.push(b")");
    }
    Ok(buf)
}

fn clamp_width(n: i64) -> Res<usize> {
    let n = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    if n > MAX_OUTPUT {
        return Err(format!(
            "printf width or precision is larger than {MAX_OUTPUT}"
        ));
    }
    Ok(n)
}

fn fmt_arg(
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
                    let mut q = SecretBuf::default();
                    go_quote(s, &mut q);
                    pad(buf, &q.0, f, true);
                }
                'x' | 'X' => {
                    let mut h = SecretBuf::default();
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
                    pad(buf, &h.0, f, true);
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
                let mut digits = digits;
                if let Some(p) = f.precision {
                    while digits.len() < p {
                        digits.insert(0, '0');
                    }
                    if p == 0 && *n == 0 {
                        digits.clear();
                    }
                }
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
                let body = format!("{prefix}{digits}");
                let len = sign.len() + body.len();
                let width = f.width.unwrap_or(0);
                if f.zero && !f.minus && f.precision.is_none() && width > len {
                    buf.push_str(sign);
                    buf.push(&vec![b'0'; width - len]);
                    buf.push_str(&body);
                } else {
                    let text = format!("{sign}{body}");
                    pad(buf, text.as_bytes(), Flags { zero: false, ..f }, false);
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

fn bad_verb(buf: &mut SecretBuf, verb: char, v: &Value<'_>, values: &BTreeMap<String, Plaintext>) {
    buf.push_str(&format!("%!{verb}({}=", v.type_name()));
    fmt_value(buf, v, values);
    buf.push(b")");
}

/// Pads to the width in characters; Go pads strings with zeros too when asked.
fn pad(buf: &mut SecretBuf, s: &[u8], f: Flags, zero_ok: bool) {
    let len = count_chars(s);
    let fill = f.width.unwrap_or(0).saturating_sub(len);
    let fill_byte = if f.zero && !f.minus && zero_ok {
        b'0'
    } else {
        b' '
    };
    if !f.minus {
        buf.push(&vec![fill_byte; fill]);
    }
    buf.push(s);
    if f.minus {
        buf.push(&vec![b' '; fill]);
    }
}

fn count_chars(s: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = s;
    while let Some((_, k)) = decode_lossy(rest) {
        n += 1;
        rest = &rest[k..];
    }
    n
}

fn truncate_chars(s: &[u8], max: usize) -> &[u8] {
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
fn go_quote(s: &[u8], buf: &mut SecretBuf) {
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
fn quote_rune(c: char) -> String {
    let mut buf = SecretBuf::default();
    buf.push(b"'");
    escape_char(c, '\'', &mut buf);
    buf.push(b"'");
    String::from_utf8_lossy(&buf.0).into_owned()
}

fn escape_char(c: char, quote: char, buf: &mut SecretBuf) {
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
fn go_is_print(c: char) -> bool {
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
fn to_json(buf: &mut SecretBuf, v: &Value<'_>, values: &BTreeMap<String, Plaintext>) {
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

fn json_str(buf: &mut SecretBuf, s: &[u8]) {
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

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &[u8], buf: &mut SecretBuf) {
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
fn query_escape(s: &[u8], buf: &mut SecretBuf) {
    for &b in s {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => buf.push(&[b]),
            b' ' => buf.push(b"+"),
            b => buf.push_str(&format!("%{b:02X}")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Byte strings that are mostly UTF-8

/// The first character of `s`, if `s` starts with valid UTF-8.
fn decode(s: &[u8]) -> Option<(char, usize)> {
    let first = *s.first()?;
    let n = match first {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let chunk = s.get(..n)?;
    let c = std::str::from_utf8(chunk).ok()?.chars().next()?;
    Some((c, n))
}

/// Like [`decode`], but an invalid byte reads as U+FFFD of length 1, as Go's
/// `range` over a string does. `None` only for an empty slice.
fn decode_lossy(s: &[u8]) -> Option<(char, usize)> {
    if s.is_empty() {
        return None;
    }
    Some(decode(s).unwrap_or(('\u{FFFD}', 1)))
}

/// The last character of `s`, if `s` ends with valid UTF-8.
fn decode_last(s: &[u8]) -> Option<(char, usize)> {
    let len = s.len();
    for n in 1..=4.min(len) {
        if let Some((c, k)) = decode(&s[len - n..])
            && k == n
        {
            return Some((c, n));
        }
    }
    None
}

fn trim_by<'s>(s: &'s [u8], pred: &dyn Fn(char) -> bool) -> &'s [u8] {
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
fn map_chars(s: &[u8], buf: &mut SecretBuf, f: fn(char) -> char) {
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
fn upper_char(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn lower_char(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn title_char(c: char) -> char {
    match c as u32 {
        0x1C4..=0x1C6 => '\u{1C5}',
        0x1C7..=0x1C9 => '\u{1C8}',
        0x1CA..=0x1CC => '\u{1CB}',
        0x1F1..=0x1F3 => '\u{1F2}',
        _ => upper_char(c),
    }
}

/// Go's deprecated `strings.Title`, which sprig's `title` uses.
fn title(s: &[u8], buf: &mut SecretBuf) {
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

/// Go's `strings.Replace(src, old, new, -1)`.
fn replace_all(src: &[u8], old: &[u8], new: &[u8]) -> Res<SecretBuf> {
    let too_big = || format!("the replaced string would be larger than {MAX_OUTPUT} bytes");
    let mut buf = SecretBuf::default();
    if old.is_empty() {
        let chars = count_chars(src);
        if new
            .len()
            .saturating_mul(chars + 1)
            .saturating_add(src.len())
            > MAX_OUTPUT
        {
            return Err(too_big());
        }
        let mut rest = src;
        buf.push(new);
        while let Some((_, n)) = decode_lossy(rest) {
            buf.push(&rest[..n]);
            buf.push(new);
            rest = &rest[n..];
        }
        return Ok(buf);
    }
    let mut rest = src;
    while let Some(p) = rest.windows(old.len()).position(|w| w == old) {
        buf.push(&rest[..p]);
        buf.push(new);
        if buf.len() > MAX_OUTPUT {
            return Err(too_big());
        }
        rest = &rest[p + old.len()..];
    }
    buf.push(rest);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values() -> BTreeMap<String, Plaintext> {
        [
            ("username", "admin"),
            ("password", "hunter2"),
            ("db-host", "db.example"),
            ("empty", ""),
            ("multi", "a\nb"),
            ("b64", "aGVsbG8="),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Plaintext::new(v.as_bytes().to_vec())))
        .collect()
    }

    fn ok(src: &str) -> String {
        match render(src, &values()) {
            Ok(p) => String::from_utf8(p.expose_secret().to_vec()).unwrap(),
            Err(e) => panic!("{src:?} failed: {e}"),
        }
    }

    fn err(src: &str) -> TemplateError {
        match render(src, &values()) {
            Ok(p) => panic!(
                "{src:?} rendered {:?}",
                String::from_utf8_lossy(p.expose_secret())
            ),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    !text.contains("hunter2") && !text.contains("admin"),
                    "{text}"
                );
                e
            }
        }
    }

    #[test]
    fn text_without_actions_is_copied() {
        assert_eq!(ok("plain { text } here"), "plain { text } here");
        assert_eq!(ok(""), "");
    }

    #[test]
    fn fields_index_and_missing_keys_behave_like_a_go_map() {
        assert_eq!(ok("{{ .username }}/{{ .password }}"), "admin/hunter2");
        assert_eq!(ok(r#"{{ index . "db-host" }}"#), "db.example");
        assert_eq!(ok("{{ .missing }}"), "<no value>");
        assert_eq!(ok(r#"[{{ index . "missing" }}]"#), "[]");
        assert_eq!(ok("{{ .missing.deeper }}"), "<no value>");
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

    #[test]
    fn variables_are_scoped_like_go() {
        assert_eq!(ok("{{ $u := .username }}{{ $u }}"), "admin");
        assert_eq!(ok("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
        assert_eq!(
            ok("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ end }}{{ $x }}"),
            "1"
        );
        assert_eq!(
            ok("{{ with .username }}{{ $.password }}{{ end }}"),
            "hunter2"
        );
        assert!(err("{{ $nope }}").reason().contains("undefined variable"));
        assert!(
            err("{{ if $x := 1 }}{{ end }}{{ $x }}")
                .reason()
                .contains("undefined")
        );
    }

    #[test]
    fn pipelines_pass_the_value_as_the_last_argument() {
        assert_eq!(ok(r#"{{ .username | printf "%s-%s" "x" }}"#), "x-admin");
        assert_eq!(ok("{{ .username | upper | lower }}"), "admin");
        assert_eq!(ok(r#"{{ (printf "%s" .username) | len }}"#), "5");
    }

    #[test]
    fn if_else_with_and_range_control_flow() {
        assert_eq!(
            ok("{{ if .empty }}y{{ else if .username }}u{{ else }}n{{ end }}"),
            "u"
        );
        assert_eq!(ok("{{ with .missing }}y{{ else }}n{{ end }}"), "n");
        assert_eq!(ok("{{ with .username }}<{{ . }}>{{ end }}"), "<admin>");
        assert_eq!(
            ok(r#"{{ range $i, $v := list "a" "b" }}{{ $i }}{{ $v }}{{ end }}"#),
            "0a1b"
        );
        assert_eq!(ok("{{ range list }}x{{ else }}none{{ end }}"), "none");
        assert_eq!(
            ok("{{ range $k, $v := . }}{{ $k }};{{ end }}"),
            "b64;db-host;empty;multi;password;username;"
        );
        assert_eq!(ok("{{ range 3 }}{{ . }}{{ end }}"), "012");
        assert_eq!(
            ok("{{ range list 1 2 3 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}"),
            "13"
        );
        assert_eq!(
            ok("{{ range list 1 2 3 }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}"),
            "1"
        );
    }

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

    #[test]
    fn comparison_and_logic_builtins() {
        assert_eq!(
            ok(r#"{{ eq .username "admin" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ ge "a" "b" }}"#),
            "true true true false"
        );
        assert_eq!(ok(r#"{{ eq "x" "a" "x" }}"#), "true");
        assert_eq!(
            ok(r#"{{ and 1 "x" }}|{{ or 0 "" }}|{{ not .empty }}"#),
            "x||true"
        );
        assert_eq!(ok("{{ len .username }} {{ len . }}"), "5 6");
        assert!(
            err(r#"{{ eq .username 1 }}"#)
                .reason()
                .contains("incompatible types")
        );
    }

    #[test]
    fn sprig_string_functions() {
        assert_eq!(
            ok("{{ upper .username }} {{ lower \"ABC\" }} {{ title \"hello world\" }}"),
            "ADMIN abc Hello World"
        );
        assert_eq!(
            ok(
                r#"[{{ trim "  x  " }}] {{ trimSuffix "in" .username }} {{ trimPrefix "ad" .username }}"#
            ),
            "[x] adm min"
        );
        assert_eq!(
            ok(r#"{{ replace "a" "4" .username }} {{ repeat 2 "ab" }} {{ nospace " a b " }}"#),
            "4dmin abab ab"
        );
        assert_eq!(
            ok(
                r#"{{ contains "dm" .username }} {{ hasPrefix "ad" .username }} {{ hasSuffix "x" .username }}"#
            ),
            "true true false"
        );
        assert_eq!(
            ok(r#"{{ quote .password }} {{ squote .username }} {{ cat "a" 1 }}"#),
            "\"hunter2\" 'admin' a 1"
        );
        assert_eq!(ok(r#"{{ toJson "<a\"\n>" }}"#), r#""\u003ca\"\n\u003e""#);
        assert_eq!(
            ok(r#"{{ urlquery "a b&c" }} {{ html "<&>" }}"#),
            "a+b%26c &lt;&amp;&gt;"
        );
    }

    #[test]
    fn sprig_defaults_and_lists() {
        assert_eq!(
            ok(
                r#"{{ default "d" .missing }} {{ .empty | default "e" }} {{ default "d" .username }}"#
            ),
            "d e admin"
        );
        assert_eq!(
            ok("{{ empty .empty }} {{ coalesce .empty .username }} {{ ternary 1 2 false }}"),
            "true admin 2"
        );
        assert_eq!(
            ok(
                r#"{{ join "," (list "a" 1 .missing) }} {{ splitList ":" "x:y" }} {{ toString 3 }}"#
            ),
            "a,1 [x y] 3"
        );
    }

    #[test]
    fn base64_and_indentation() {
        assert_eq!(
            ok("{{ b64enc .username }} {{ b64dec .b64 }}"),
            "YWRtaW4= hello"
        );
        assert_eq!(ok("{{ .multi | indent 2 }}"), "  a\n  b");
        assert_eq!(ok("x:{{ .multi | nindent 2 }}"), "x:\n  a\n  b");
    }

    #[test]
    fn bad_b64dec_input_is_an_error_not_a_value() {
        assert!(
            err(r#"{{ b64dec "!!not base64" }}"#)
                .reason()
                .contains("base64")
        );
    }

    #[test]
    fn unterminated_action_is_an_error_with_a_position() {
        let e = err("line1\n  {{ .username");
        assert_eq!((e.line(), e.column()), (2, 3));
        assert!(e.reason().contains("unclosed action"));
        assert!(err("{{ if 1 }}").reason().contains("EOF"));
        assert!(err("{{ end }}").reason().contains("{{end}}"));
        assert!(err(r#"{{ "open }}"#).reason().contains("unterminated"));
        assert!(err("{{/* open").reason().contains("comment"));
    }

    #[test]
    fn unknown_and_removed_functions_are_errors_naming_the_function() {
        assert!(err("{{ nosuch 1 }}").reason().contains("\"nosuch\""));
        assert!(err(r#"{{ env "HOME" }}"#).reason().contains("\"env\""));
        let e = err("{{ sha256sum .username }}");
        assert!(
            e.reason().contains("\"sha256sum\"") && e.reason().contains("not supported"),
            "{e}"
        );
        assert!(
            err(r#"{{ define "x" }}{{ end }}"#)
                .reason()
                .contains("define")
        );
    }

    #[test]
    fn wrong_argument_count_or_type_is_an_error() {
        assert!(err("{{ upper }}").reason().contains("want 1 got 0"));
        assert!(
            err(r#"{{ upper "a" "b" }}"#)
                .reason()
                .contains("want 1 got 2")
        );
        assert!(
            err(r#"{{ indent "x" "y" }}"#)
                .reason()
                .contains("expected int")
        );
        assert!(
            err("{{ .missing | upper }}")
                .reason()
                .contains("invalid value")
        );
        assert!(
            err("{{ .username.field }}")
                .reason()
                .contains("can't evaluate field")
        );
        assert!(err(r#"{{ "a" "b" }}"#).reason().contains("non-function"));
    }

    #[test]
    fn output_larger_than_the_cap_is_an_error() {
        let e = err(r#"{{ range 2000 }}{{ repeat 1000 "x" }}{{ end }}"#);
        assert!(e.reason().contains("larger than"), "{e}");
        let e = err(r#"{{ repeat 2000000 "xx" }}"#);
        assert!(e.reason().contains("larger than"), "{e}");
        let e = err(r#"{{ printf "%2000000d" 1 }}"#);
        assert!(e.reason().contains("larger than"), "{e}");
        let e = err(r#"{{ range 100 }}{{ $x := repeat 1000000 "x" }}{{ end }}"#);
        assert!(e.reason().contains("bytes of strings"), "{e}");
    }

    #[test]
    fn runaway_loops_and_deep_nesting_are_errors() {
        let e = err("{{ range 900000 }}{{ range 900000 }}{{ end }}{{ end }}");
        assert!(e.reason().contains("steps"), "{e}");
        let parens = format!("{{{{ {}1{} }}}}", "(".repeat(500), ")".repeat(500));
        assert!(err(&parens).reason().contains("nests too deeply"));
        let ifs = format!("{}x{}", "{{ if 1 }}".repeat(500), "{{ end }}".repeat(500));
        assert!(err(&ifs).reason().contains("nests too deeply"));
    }

    #[test]
    fn errors_never_quote_values() {
        for src in [
            "{{ range .password }}{{ end }}",
            "{{ .password.x }}",
            "{{ index .password 99 }}",
            "{{ b64dec .password }}",
            "{{ eq .password 1 }}",
        ] {
            err(src);
        }
    }

    proptest! {
        #[test]
        fn random_templates_never_panic(src in "[ -~\n]{0,80}") {
            let _ = render(&src, &values());
        }

        #[test]
        fn random_actions_never_panic(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("{{"), Just("}}"), Just("{{-"), Just("-}}"), Just(" "), Just("."),
                    Just("username"), Just("$"), Just("$x"), Just(":="), Just("="), Just("|"),
                    Just("("), Just(")"), Just("\""), Just("`"), Just("'"), Just("if"),
                    Just("else"), Just("end"), Just("range"), Just("with"), Just("break"),
                    Just("printf"), Just("\"%s%d%q%5.2v%*d%\""), Just("index"), Just("len"),
                    Just("list"), Just("1"), Just("-7"), Just("0x"), Just("nil"), Just("true"),
                    Just("/*"), Just("*/"), Just("upper"), Just("b64dec"), Just("repeat"),
                    Just("indent"), Just("eq"), Just("and"), Just("default"), Just(","),
                    Just("é"), Just("\\"), Just("\n"),
                ],
                0..40,
            )
        ) {
            let src: String = parts.concat();
            let _ = render(&src, &values());
        }
    }
}
