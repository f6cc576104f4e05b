//! The values a template computes with, the zeroizing buffer every made string grows
//! in, and the UTF-8 helpers that read byte strings the way Go's `range` over a string
//! does.
//!
//! Values borrow the decrypted plaintext in place ([`Bytes::Borrowed`]) and hold every
//! string made while rendering in a zeroizing box ([`Bytes::Owned`]), so no plaintext is
//! left behind in freed memory.
//!
//! Two guards against hostile templates live here: a [`List`] knows how deeply it
//! nests and cannot be made deeper than the cap, and a [`SecretBuf`] never grows past
//! its cap. [`Finder`] searches in linear time.

use std::collections::BTreeMap;
use std::rc::Rc;

use sealant_keys::Plaintext;
use zeroize::Zeroizing;

use super::budget::MAX_VALUE_DEPTH;

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
    List(Rc<List<'a>>),
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

    /// How many lists deep this value is: 0 for anything but a list.
    pub(super) fn depth(&self) -> usize {
        match self {
            Value::List(l) => l.depth,
            _ => 0,
        }
    }
}

/// A list and how deeply lists nest in it, known when it is made, so that nothing
/// has to walk a list to learn it. Every recursion over a value (printing, dropping)
/// is at most [`MAX_VALUE_DEPTH`] deep, because no deeper list can be made.
pub(super) struct List<'a> {
    items: Vec<Value<'a>>,
    depth: usize,
}

impl<'a> List<'a> {
    /// A list of `items`; `None` when it would nest more than [`MAX_VALUE_DEPTH`] deep.
    pub(super) fn new(items: Vec<Value<'a>>) -> Option<Self> {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        (depth <= MAX_VALUE_DEPTH).then_some(List { items, depth })
    }
}

impl<'a> std::ops::Deref for List<'a> {
    type Target = [Value<'a>];

    fn deref(&self) -> &[Value<'a>] {
        &self.items
    }
}

/// What a walk over a list of nodes ended with.
pub(super) enum Flow {
    Normal,
    Break,
    Continue,
}

/// A growable buffer that wipes every buffer it leaves behind and never grows past its
/// cap: a push that would pass the cap is dropped and marks the buffer as over, so the
/// memory a template can make is bounded before it is allocated. Whoever keeps the
/// bytes checks [`SecretBuf::is_over`] and fails.
pub(super) struct SecretBuf {
    bytes: Zeroizing<Vec<u8>>,
    cap: usize,
    over: bool,
}

impl SecretBuf {
    /// An empty buffer that holds at most `cap` bytes.
    pub(super) fn capped(cap: usize) -> Self {
        SecretBuf {
            bytes: Zeroizing::new(Vec::new()),
            cap,
            over: false,
        }
    }

    /// Like [`SecretBuf::capped`], with room for `hint` bytes (at most the cap).
    pub(super) fn capped_with(cap: usize, hint: usize) -> Self {
        SecretBuf {
            bytes: Zeroizing::new(Vec::with_capacity(hint.min(cap))),
            cap,
            over: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The most bytes this buffer holds.
    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    /// How many more bytes fit.
    pub(super) fn room(&self) -> usize {
        self.cap - self.bytes.len()
    }

    /// A push was refused: the content is incomplete and must not be used.
    pub(super) fn is_over(&self) -> bool {
        self.over
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// Marks the buffer as over without pushing, for a caller that knows in advance
    /// that what it would push cannot fit.
    pub(super) fn refuse(&mut self) {
        self.over = true;
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        if self.over || bytes.len() > self.room() {
            self.over = true;
            return;
        }
        self.reserve(bytes.len());
        self.bytes.extend_from_slice(bytes);
    }

    /// Pushes `n` copies of `byte` (padding), without a temporary buffer.
    pub(super) fn push_fill(&mut self, byte: u8, n: usize) {
        if self.over || n > self.room() {
            self.over = true;
            return;
        }
        self.reserve(n);
        let len = self.bytes.len();
        self.bytes.resize(len + n, byte);
    }

    /// Pushes `count` copies of `bytes`, doubling what is already copied, so the work
    /// is a few large copies however large `count` is.
    pub(super) fn push_repeated(&mut self, bytes: &[u8], count: usize) {
        let total = bytes.len().saturating_mul(count);
        if self.over || total > self.room() {
            self.over = true;
            return;
        }
        if total == 0 {
            return;
        }
        self.reserve(total);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        while self.bytes.len() - start < total {
            let done = self.bytes.len() - start;
            self.bytes
                .extend_from_within(start..start + done.min(total - done));
        }
    }

    pub(super) fn push_char(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        self.push(c.encode_utf8(&mut tmp).as_bytes());
    }

    pub(super) fn push_str(&mut self, s: &str) {
        self.push(s.as_bytes());
    }

    pub(super) fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut *self.bytes)
    }

    /// Makes room for `more` bytes (which fit under the cap), growing by hand so the
    /// old allocation is wiped (Vec would free it as is), never past the cap.
    fn reserve(&mut self, more: usize) {
        let need = self.bytes.len() + more;
        if need <= self.bytes.capacity() {
            return;
        }
        let grown = need.max(self.bytes.capacity() * 2).max(64).min(self.cap);
        let mut bigger = Vec::with_capacity(grown);
        bigger.extend_from_slice(&self.bytes);
        self.bytes = Zeroizing::new(bigger);
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

/// Finds a byte string in others in time linear in both (Knuth-Morris-Pratt), so that
/// `contains`, `replace` and `splitList` cost what the steps charged for them say,
/// whatever the input (a naive search is quadratic on `aaa...ab`).
pub(super) struct Finder<'n> {
    needle: &'n [u8],
    /// For each prefix of the needle, the length of its longest proper border.
    border: Vec<u32>,
}

impl<'n> Finder<'n> {
    pub(super) fn new(needle: &'n [u8]) -> Self {
        let mut border = vec![0u32; needle.len()];
        let mut k = 0usize;
        for i in 1..needle.len() {
            while k > 0 && needle[i] != needle[k] {
                k = border[k - 1] as usize;
            }
            if needle[i] == needle[k] {
                k += 1;
            }
            // k < needle.len(), which is at most the template budget (far below u32).
            border[i] = u32::try_from(k).unwrap_or(u32::MAX);
        }
        Finder { needle, border }
    }

    /// Where the needle first occurs in `hay`; an empty needle is at 0.
    pub(super) fn find(&self, hay: &[u8]) -> Option<usize> {
        if self.needle.is_empty() {
            return Some(0);
        }
        let mut k = 0usize;
        for (i, &b) in hay.iter().enumerate() {
            while k > 0 && b != self.needle[k] {
                k = self.border[k - 1] as usize;
            }
            if b == self.needle[k] {
                k += 1;
            }
            if k == self.needle.len() {
                return Some(i + 1 - k);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn capped_buffer_refuses_a_push_past_its_cap_and_stays_over() {
        let mut b = SecretBuf::capped(4);
        b.push(b"abc");
        assert!(!b.is_over());
        b.push(b"de");
        assert!(b.is_over(), "5 bytes do not fit in 4");
        assert_eq!(b.as_slice(), b"abc", "the refused push wrote nothing");
        b.push(b"d");
        assert_eq!(b.as_slice(), b"abc", "an over buffer takes nothing more");
        let mut f = SecretBuf::capped(3);
        f.push_fill(b' ', 4);
        assert!(f.is_over() && f.len() == 0);
    }

    #[test]
    fn repeated_pushes_copy_exactly_count_times_within_the_cap() {
        let mut b = SecretBuf::capped(64);
        b.push(b"<");
        b.push_repeated(b"ab", 5);
        assert_eq!(b.as_slice(), b"<ababababab");
        b.push_repeated(b"x", 0);
        b.push_repeated(b"", 9);
        assert_eq!(b.len(), 11);
        b.push_repeated(b"abc", 18);
        assert!(b.is_over(), "54 more bytes do not fit in 53");
        assert_eq!(b.len(), 11);
    }

    #[test]
    fn lists_know_their_depth_and_refuse_to_nest_past_the_cap() {
        let mut v = Value::List(Rc::new(List::new(Vec::new()).expect("flat")));
        for _ in 1..MAX_VALUE_DEPTH {
            v = Value::List(Rc::new(List::new(vec![v]).expect("under the cap")));
        }
        assert_eq!(v.depth(), MAX_VALUE_DEPTH);
        assert!(List::new(vec![Value::Int(1), v]).is_none());
    }

    proptest! {
        #[test]
        fn finder_finds_what_a_naive_search_finds(
            hay in proptest::collection::vec(0u8..3, 0..60),
            needle in proptest::collection::vec(0u8..3, 0..6),
        ) {
            let naive = if needle.is_empty() {
                Some(0)
            } else {
                hay.windows(needle.len()).position(|w| w == needle.as_slice())
            };
            prop_assert_eq!(Finder::new(&needle).find(&hay), naive);
        }
    }
}
