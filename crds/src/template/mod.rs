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
//!
//! # Layout
//!
//! ```text
//!   lex.rs     source ──▶ pieces (text, tokens of each action)
//!   parse.rs   pieces ──▶ tree (functions resolved, variables checked)
//!   exec.rs    tree + values ──▶ output (steps, output and strings counted)
//!   funcs.rs   the builtins and sprig functions the executor calls
//!   printf.rs  Go's fmt, strconv.Quote and encoding/json formatting
//!   value.rs   values, the zeroizing buffer, UTF-8 helpers
//! ```

mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;
mod value;

use std::collections::BTreeMap;
use std::fmt;

use sealant_keys::Plaintext;

use exec::Exec;
use parse::Parser;
use value::{SecretBuf, Value};

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

#[cfg(test)]
pub(crate) mod testkit {
    //! What the unit tests of every stage share: a fixed set of values and two
    //! helpers that render and check the outcome.

    use std::collections::BTreeMap;

    use sealant_keys::Plaintext;

    use super::{TemplateError, render};

    pub(crate) fn values() -> BTreeMap<String, Plaintext> {
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

    pub(crate) fn ok(src: &str) -> String {
        match render(src, &values()) {
            Ok(p) => String::from_utf8(p.expose_secret().to_vec()).unwrap(),
            Err(e) => panic!("{src:?} failed: {e}"),
        }
    }

    pub(crate) fn err(src: &str) -> TemplateError {
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
}

#[cfg(test)]
mod tests {
    use super::testkit::{err, values};
    use super::*;
    use proptest::prelude::*;

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
