//! The functions: Go's builtins and the part of sprig's generic function map that
//! sealant implements, each with Go's argument checks and Go's output.
//!
//! Which names exist is in [`super::names`]; the byte-string work of the string
//! functions is in [`super::strings`].
//!
//! Against the budget (see [`super::budget`]): a function is charged one step per 64
//! bytes of the strings it is given (except the few in `CONSTANT_COST`, whose work does
//! not grow with them), and every string or list it makes goes through [`Exec::owned`]
//! or [`Exec::list`], built in a buffer capped at what is left. Searching (`contains`,
//! `replace`, `splitList`) is linear, so the charge is the work.
//!
//! Error texts name the function and what was wrong with the call (the argument's
//! position and type), never an argument's value or anything computed from one: an
//! index that is out of range is not quoted, because it may be a byte or a length of a
//! secret.

use std::collections::BTreeMap;

use base64::Engine as _;
use sealant_keys::Plaintext;
use zeroize::Zeroizing;

use super::exec::{Exec, Res};
use super::printf::{fmt_value, go_quote, sprintf, to_json};
use super::strings::{
    html_escape, lower_char, map_chars, query_escape, replace_all, title, trim_by, upper_char,
};
use super::value::{Bytes, Finder, SecretBuf, Value, decode, decode_lossy, truth};

pub(super) fn arity(name: &str, a: &[Value<'_>], n: usize) -> Result<(), String> {
    if a.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            a.len()
        ));
    }
    Ok(())
}

pub(super) fn at_least(name: &str, a: &[Value<'_>], n: usize) -> Result<(), String> {
    if a.len() < n {
        return Err(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            a.len()
        ));
    }
    Ok(())
}

pub(super) fn want_str<'v>(name: &str, a: &'v [Value<'_>], i: usize) -> Result<&'v [u8], String> {
    match &a[i] {
        Value::Str(b) => Ok(b.as_slice()),
        v => Err(wrong_argument(name, i, "string", v)),
    }
}

pub(super) fn want_int(name: &str, a: &[Value<'_>], i: usize) -> Result<i64, String> {
    match &a[i] {
        Value::Int(n) => Ok(*n),
        v => Err(wrong_argument(name, i, "int", v)),
    }
}

pub(super) fn want_bool(name: &str, a: &[Value<'_>], i: usize) -> Result<bool, String> {
    match &a[i] {
        Value::Bool(b) => Ok(*b),
        v => Err(wrong_argument(name, i, "bool", v)),
    }
}

/// Go's words for argument `i` (0-based) of `name`, the value `v`, when it is not of
/// the `expected` type.
fn wrong_argument(name: &str, i: usize, expected: &str, v: &Value<'_>) -> String {
    match v {
        Value::Nil => format!(
            "argument {} of {name}: invalid value; expected {expected}",
            i + 1
        ),
        v => format!(
            "argument {} of {name}: wrong type for value; expected {expected}; got {}",
            i + 1,
            v.type_name()
        ),
    }
}

impl<'a> Exec<'a, '_> {
    pub(super) fn apply(&mut self, name: &str, a: Vec<Value<'a>>) -> Res<Value<'a>> {
        let values = self.values;
        if !CONSTANT_COST.contains(&name) {
            // Whatever the function does with its strings, it reads them once.
            let read = a
                .iter()
                .map(|v| match v {
                    Value::Str(s) => s.as_slice().len(),
                    _ => 0,
                })
                .fold(0usize, usize::saturating_add);
            self.step_bytes(read)?;
        }
        let str_fn =
            |this: &Self, a: &[Value<'_>], f: &dyn Fn(&[u8], &mut SecretBuf)| -> Res<SecretBuf> {
                arity(name, a, 1)?;
                let s = want_str(name, a, 0)?;
                let mut buf = this.buffer_with(s.len());
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
                let mut buf = self.buffer();
                for (i, v) in a.iter().enumerate() {
                    let is_str = matches!(v, Value::Str(_));
                    let prev_str = i > 0 && matches!(a[i - 1], Value::Str(_));
                    if i > 0 && (name == "println" || (!is_str && !prev_str)) {
                        buf.push(b" ");
                    }
                    fmt_value(&mut buf, v, values);
                    if buf.is_over() {
                        break;
                    }
                }
                if name == "println" {
                    buf.push(b"\n");
                }
                return self.owned(buf);
            }
            "printf" => {
                at_least(name, &a, 1)?;
                let format = want_str(name, &a, 0)?;
                let mut buf = self.buffer();
                sprintf(&mut buf, format, &a[1..], values)?;
                return self.owned(buf);
            }
            "html" | "urlquery" => {
                let mut text = self.buffer();
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
                            if text.is_over() {
                                break;
                            }
                        }
                    }
                }
                if text.is_over() {
                    return self.owned(text);
                }
                let mut buf = self.buffer_with(text.len());
                if name == "html" {
                    html_escape(text.as_slice(), &mut buf);
                } else {
                    query_escape(text.as_slice(), &mut buf);
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
                let buf = str_fn(self, &a, &|s, b| map_chars(s, b, upper_char))?;
                return self.owned(buf);
            }
            "lower" => {
                let buf = str_fn(self, &a, &|s, b| map_chars(s, b, lower_char))?;
                return self.owned(buf);
            }
            "title" => {
                let buf = str_fn(self, &a, &title)?;
                return self.owned(buf);
            }
            "trim" => {
                let buf = str_fn(self, &a, &|s, b| b.push(trim_by(s, &|c| c.is_whitespace())))?;
                return self.owned(buf);
            }
            "nospace" => {
                let buf = str_fn(self, &a, &|s, b| {
                    let mut rest = s;
                    while let Some((c, n)) = decode_lossy(rest) {
                        if !c.is_whitespace() {
                            b.push_char(c);
                        }
                        rest = &rest[n..];
                    }
                })?;
                return self.owned(buf);
            }
            "trimAll" => {
                arity(name, &a, 2)?;
                let cutset = want_str(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                // Sorted, so each character is looked up in log time, whatever the cutset.
                let mut set: Vec<char> = String::from_utf8_lossy(cutset).chars().collect();
                set.sort_unstable();
                let mut buf = self.buffer();
                buf.push(trim_by(s, &|c| set.binary_search(&c).is_ok()));
                return self.owned(buf);
            }
            "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix" => {
                arity(name, &a, 2)?;
                let x = want_str(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let out: &[u8] = match name {
                    "trimPrefix" => s.strip_prefix(x).unwrap_or(s),
                    "trimSuffix" => s.strip_suffix(x).unwrap_or(s),
                    "contains" => return Ok(Value::Bool(Finder::new(x).find(s).is_some())),
                    "hasPrefix" => return Ok(Value::Bool(s.starts_with(x))),
                    _ => return Ok(Value::Bool(s.ends_with(x))),
                };
                let mut buf = self.buffer_with(out.len());
                buf.push(out);
                return self.owned(buf);
            }
            "replace" => {
                arity(name, &a, 3)?;
                let old = want_str(name, &a, 0)?;
                let new = want_str(name, &a, 1)?;
                let src = want_str(name, &a, 2)?;
                let mut buf = self.buffer();
                replace_all(&mut buf, src, old, new);
                return self.owned(buf);
            }
            "repeat" => {
                arity(name, &a, 2)?;
                let count = want_int(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let count =
                    usize::try_from(count).map_err(|_| "negative repeat count".to_owned())?;
                if s.is_empty() {
                    return self.owned(self.buffer());
                }
                self.fits(s.len().saturating_mul(count))?;
                let mut buf = self.buffer_with(s.len() * count);
                buf.push_repeated(s, count);
                return self.owned(buf);
            }
            "indent" | "nindent" => {
                arity(name, &a, 2)?;
                let n = want_int(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let n = usize::try_from(n).map_err(|_| "negative indent".to_owned())?;
                let lines = s.iter().filter(|c| **c == b'\n').count() + 1;
                self.fits(
                    n.saturating_mul(lines)
                        .saturating_add(s.len())
                        .saturating_add(1),
                )?;
                let mut buf = self.buffer_with(s.len() + n * lines + 1);
                if name == "nindent" {
                    buf.push(b"\n");
                }
                buf.push_fill(b' ', n);
                for line in s.split_inclusive(|c| *c == b'\n') {
                    buf.push(line);
                    if line.ends_with(b"\n") {
                        buf.push_fill(b' ', n);
                    }
                }
                return self.owned(buf);
            }
            "quote" | "squote" | "cat" => {
                let mut buf = self.buffer();
                let mut first = true;
                for v in a.iter().filter(|v| !matches!(v, Value::Nil)) {
                    if !first {
                        buf.push(b" ");
                    }
                    first = false;
                    match name {
                        "quote" => {
                            let mut inner = SecretBuf::capped(buf.room());
                            fmt_value(&mut inner, v, values);
                            if inner.is_over() {
                                // Quoting never shortens, so it cannot fit either.
                                buf.refuse();
                            } else {
                                go_quote(inner.as_slice(), &mut buf);
                            }
                        }
                        "squote" => {
                            buf.push(b"'");
                            fmt_value(&mut buf, v, values);
                            buf.push(b"'");
                        }
                        _ => fmt_value(&mut buf, v, values),
                    }
                    if buf.is_over() {
                        break;
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
                let mut buf = self.buffer();
                fmt_value(&mut buf, &a[0], values);
                return self.owned(buf);
            }
            "toJson" => {
                arity(name, &a, 1)?;
                let mut buf = self.buffer();
                to_json(&mut buf, &a[0], values);
                return self.owned(buf);
            }
            "b64enc" => {
                arity(name, &a, 1)?;
                let s = want_str(name, &a, 0)?;
                let len = s.len().div_ceil(3).saturating_mul(4);
                self.fits(len)?;
                let mut buf = self.buffer_with(len);
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
                let mut buf = self.buffer_with(n);
                buf.push(&out[..n]);
                return self.owned(buf);
            }
            "list" => return self.list(a),
            "join" => {
                arity(name, &a, 2)?;
                let sep = want_str(name, &a, 0)?;
                let parts: &[Value<'_>] = match &a[1] {
                    Value::List(l) => l,
                    Value::Nil => &[],
                    v => std::slice::from_ref(v),
                };
                let mut buf = self.buffer();
                let mut first = true;
                for v in parts.iter().filter(|v| !matches!(v, Value::Nil)) {
                    if !first {
                        buf.push(sep);
                    }
                    first = false;
                    fmt_value(&mut buf, v, values);
                    if buf.is_over() {
                        break;
                    }
                }
                return self.owned(buf);
            }
            "splitList" => {
                arity(name, &a, 2)?;
                let sep = want_str(name, &a, 0)?;
                let s = want_str(name, &a, 1)?;
                let mut list = Vec::new();
                let mut rest = s;
                if sep.is_empty() {
                    while !rest.is_empty() {
                        let n = decode(rest).map_or(1, |(_, n)| n);
                        list.push(self.piece(&rest[..n])?);
                        rest = &rest[n..];
                    }
                } else {
                    let finder = Finder::new(sep);
                    while let Some(p) = finder.find(rest) {
                        list.push(self.piece(&rest[..p])?);
                        rest = &rest[p + sep.len()..];
                    }
                    list.push(self.piece(rest)?);
                }
                return self.list(list);
            }
            other => return Err(format!("function {other:?} is not implemented")),
        };
        Ok(v)
    }

    /// One piece of `splitList`, charged as it is made (so a string of a million
    /// separators fails at the budget, not after a million pieces).
    fn piece(&mut self, bytes: &[u8]) -> Res<Value<'a>> {
        self.step()?;
        let mut buf = self.buffer_with(bytes.len());
        buf.push(bytes);
        self.owned(buf)
    }
}

/// Functions whose work does not grow with their arguments' bytes: they are charged
/// one step, not the bytes of their strings.
const CONSTANT_COST: &[&str] = &[
    "not", "len", "index", "default", "empty", "coalesce", "ternary", "list",
];

/// Go's `StdEncoding`: padded, tolerant of non-zero trailing bits.
pub(super) const B64_GO: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

pub(super) fn index<'a>(
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
                .ok_or_else(|| "index out of range".to_owned())
        }
        (Value::List(l), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| l.get(i))
            .cloned()
            .ok_or_else(|| "index out of range".to_owned()),
        (Value::Str(_) | Value::List(_), v) => Err(format!(
            "cannot index slice/array with type {}",
            v.type_name()
        )),
        (v, _) => Err(format!("can't index item of type {}", v.type_name())),
    }
}

pub(super) fn equal(a: &Value<'_>, b: &Value<'_>) -> Res<bool> {
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

pub(super) fn order(a: &Value<'_>, b: &Value<'_>) -> Res<std::cmp::Ordering> {
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

#[cfg(test)]
mod tests {
    use crate::template::testkit::{err, ok};

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
}
