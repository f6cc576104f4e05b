//! The values a template computes with, the zeroizing buffer every made string grows
//! in, and the UTF-8 helpers that read byte strings the way Go's `range` over a string
//! does.
//!
//! Values borrow the decrypted plaintext in place ([`Bytes::Borrowed`]) and hold every
//! string made while rendering in a zeroizing box ([`Bytes::Owned`]), so no plaintext is
//! left behind in freed memory.

use std::collections::BTreeMap;
use std::rc::Rc;

use sealant_keys::Plaintext;
use zeroize::Zeroizing;

/// A byte string: borrowed from the decrypted values or from the template source, or
/// made while rendering (and then wiped when dropped).
#[derive(Clone)]
pub(super) enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Owned(Rc<Zeroizing<Vec<u8>>>),
}

impl Bytes<'_> {
    pub(super) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Owned(b) => b,
        }
    }
}

/// A value during execution. `Nil` is Go's "no value": a missing key, `nil`, or a
/// function that returned nil.
#[derive(Clone)]
pub(super) enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Str(Bytes<'a>),
    List(Rc<Vec<Value<'a>>>),
    /// The map of decrypted values (dot at the top, and `$`).
    Root,
}

impl Value<'_> {
    pub(super) fn type_name(&self) -> &'static str {
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
pub(super) enum Flow {
    Normal,
    Break,
    Continue,
}

/// A growable output buffer that wipes every buffer it leaves behind.
#[derive(Default)]
pub(super) struct SecretBuf(pub(super) Zeroizing<Vec<u8>>);

impl SecretBuf {
    pub(super) fn with_capacity(n: usize) -> Self {
        SecretBuf(Zeroizing::new(Vec::with_capacity(n)))
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        let need = self.0.len() + bytes.len();
        if need > self.0.capacity() {
            // Grow by hand so the old allocation is wiped (Vec would free it as is).
            let mut bigger = Vec::with_capacity(need.max(self.0.capacity() * 2).max(64));
            bigger.extend_from_slice(&self.0);
            self.0 = Zeroizing::new(bigger);
        }
        self.0.extend_from_slice(bytes);
    }

    pub(super) fn push_char(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        self.push(c.encode_utf8(&mut tmp).as_bytes());
    }

    pub(super) fn push_str(&mut self, s: &str) {
        self.push(s.as_bytes());
    }

    pub(super) fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut *self.0)
    }
}

pub(super) fn truth(v: &Value<'_>, values: &BTreeMap<String, Plaintext>) -> bool {
    match v {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(n) => *n != 0,
        Value::Str(s) => !s.as_slice().is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Root => !values.is_empty(),
    }
}

// ---------------------------------------------------------------------------------------
// Byte strings that are mostly UTF-8

/// The first character of `s`, if `s` starts with valid UTF-8.
pub(super) fn decode(s: &[u8]) -> Option<(char, usize)> {
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
pub(super) fn decode_lossy(s: &[u8]) -> Option<(char, usize)> {
    if s.is_empty() {
        return None;
    }
    Some(decode(s).unwrap_or(('\u{FFFD}', 1)))
}

/// The last character of `s`, if `s` ends with valid UTF-8.
pub(super) fn decode_last(s: &[u8]) -> Option<(char, usize)> {
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
