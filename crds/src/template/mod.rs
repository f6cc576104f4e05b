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
//! A SealedSecret's author controls its templates without holding any key, so hostile
//! input must not exhaust the controller's memory, stack or time. All templates of one
//! object share one [`Budget`] (see [`Limits`] and `budget.rs` for the numbers and why):
//!
//! | limit | default |
//! |---|---|
//! | rendered bytes, all keys together | 1 MiB |
//! | bytes of strings and lists made, all keys together | 4 MiB |
//! | weighted steps, all keys together (a node, command or iteration is one; a function pays one more per 64 bytes it reads or writes) | 1,000,000 |
//! | wall time, all keys together | 1 s |
//! | lists nested in lists | 32 |
//! | one rendered value or one string made | [`MAX_OUTPUT`] (1 MiB) |
//! | one template's source | [`MAX_SOURCE`] (1 MiB) |
//! | parentheses and control structures nested | 100 |
//! | variables in scope at once | 1,000 |
//!
//! Sizes are checked before the memory is taken, and every recursion (parsing,
//! executing, printing and dropping a value) is bounded by a nesting cap, so a
//! template fails with an error, never an abort, on a 2 MiB stack (tokio's blocking
//! threads). Exceeding the budget is a [`TemplateError`] whose reason contains
//! `budget exceeded`. Nothing panics.
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
//!   exec.rs    tree + values ──▶ output (steps, output and strings charged)
//!   budget.rs  what one SealedSecret's templates may spend
//!   names.rs   which functions exist, and which are refused by name
//!   funcs.rs   the builtins and sprig functions the executor calls
//!   strings.rs the byte-string work behind the string functions
//!   printf.rs  Go's fmt, strconv.Quote and encoding/json formatting
//!   value.rs   values, the zeroizing buffer, UTF-8 helpers
//! ```

mod budget;
mod exec;
mod funcs;
mod lex;
mod names;
mod parse;
mod printf;
mod strings;
mod value;

use std::collections::BTreeMap;
use std::fmt;

use sealant_keys::Plaintext;

pub use budget::{Budget, Limits};

use exec::Exec;
use parse::Parser;
use value::{SecretBuf, Value};

/// The largest rendered value, and the largest intermediate string (1 MiB, Bitnami's
/// and the apiserver's practical limit for a whole Secret).
pub const MAX_OUTPUT: usize = 1 << 20;
/// The largest template source.
pub const MAX_SOURCE: usize = 1 << 20;
/// How deep parentheses and control structures may nest.
const MAX_DEPTH: usize = 100;
/// How many variables may be in scope at once (`$` included).
const MAX_VARIABLES: usize = 1000;

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
/// as dot, as Bitnami's controller does, under a fresh default [`Budget`].
pub fn render(
    source: &str,
    values: &BTreeMap<String, Plaintext>,
) -> Result<Plaintext, TemplateError> {
    render_with_budget(source, values, &mut Budget::default())
}

/// [`render`], drawing on `budget`: pass the same budget to every template of one
/// SealedSecret, so that together they spend at most its [`Limits`].
pub fn render_with_budget(
    source: &str,
    values: &BTreeMap<String, Plaintext>,
    budget: &mut Budget,
) -> Result<Plaintext, TemplateError> {
    if source.len() > MAX_SOURCE {
        return Err(TemplateError {
            line: 1,
            column: 1,
            reason: format!("template is longer than {MAX_SOURCE} bytes"),
        });
    }
    // Lexing and parsing are linear in the source (and nest at most MAX_DEPTH deep).
    budget
        .step_bytes(source.len())
        .map_err(|reason| error_at(source, 0, reason))?;
    let nodes = Parser::new(source).parse()?;
    let out = SecretBuf::capped(MAX_OUTPUT.min(budget.output_room()));
    let mut exec = Exec {
        source,
        values,
        vars: vec![("$".to_owned(), Value::Root)],
        out,
        budget,
    };
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

    use super::{Budget, Limits, TemplateError, render_with_budget};

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

    /// The default limits without the wall-time limit, which a loaded test machine
    /// running a debug build could reach: the tests that are about time set their own.
    pub(crate) fn untimed() -> Limits {
        Limits {
            time: std::time::Duration::from_secs(3600),
            ..Limits::DEFAULT
        }
    }

    fn render(src: &str, values: &BTreeMap<String, Plaintext>) -> Result<Plaintext, TemplateError> {
        render_with_budget(src, values, &mut Budget::new(untimed()))
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
    use super::testkit::{err, ok as ok_src, untimed, values};
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

    fn render_under(src: &str, limits: Limits) -> Result<Plaintext, TemplateError> {
        render_with_budget(src, &values(), &mut Budget::new(limits))
    }

    #[test]
    fn one_budget_is_shared_by_every_template_of_an_object() {
        let mut budget = Budget::new(untimed());
        let half = r#"{{ repeat 600000 "x" }}"#;
        assert!(render_with_budget(half, &values(), &mut budget).is_ok());
        let e = render_with_budget(half, &values(), &mut budget).unwrap_err();
        assert!(e.reason().contains("budget exceeded"), "{e}");
        assert!(e.reason().contains("rendered values"), "{e}");
        // Each alone fits a fresh budget.
        assert!(render_under(half, untimed()).is_ok());
    }

    #[test]
    fn a_zero_wall_time_budget_fails_the_first_template() {
        let limits = Limits {
            time: std::time::Duration::ZERO,
            ..Limits::DEFAULT
        };
        let e = render_under("{{ .username }}", limits).unwrap_err();
        assert!(e.reason().contains("longer than 0 ms"), "{e}");
    }

    #[test]
    fn functions_are_charged_by_the_bytes_they_read() {
        // 64 KiB read 100 times is 102,400 steps of byte work: over a 100,000-step
        // budget, though the template runs only a few hundred nodes.
        let src = r#"{{ $s := repeat 65536 "a" }}{{ range 100 }}{{ if contains "b" $s }}{{ end }}{{ end }}"#;
        let limits = Limits {
            steps: 100_000,
            ..untimed()
        };
        let e = render_under(src, limits).unwrap_err();
        assert!(e.reason().contains("100000 steps"), "{e}");
        assert_eq!(
            render_under(&src.replace("range 100", "range 10"), limits)
                .expect("a tenth fits")
                .expose_secret(),
            b""
        );
    }

    #[test]
    fn variable_lookups_are_charged_by_how_far_they_search() {
        let declared: String = (0..999)
            .map(|i| format!("{{{{ $v{i} := {i} }}}}"))
            .collect();
        let limits = Limits {
            steps: 100_000,
            ..untimed()
        };
        // 10,000 lookups of the innermost variable pass one entry each; of the
        // outermost, a thousand.
        let near = format!("{declared}{{{{ range 10000 }}}}{{{{ $v998 }}}}{{{{ end }}}}");
        assert!(render_under(&near, limits).is_ok());
        let far = near.replace("$v998 }}{{ end", "$v0 }}{{ end");
        let e = render_under(&far, limits).unwrap_err();
        assert!(e.reason().contains("100000 steps"), "{e}");
    }

    #[test]
    fn a_worst_case_search_is_linear_and_fits_the_default_budget() {
        // A naive search compares about half a million bytes at each of half a
        // million places; this one reads each byte about twice.
        let src = r#"{{ $h := repeat 500000 "a" }}{{ $n := print (repeat 250000 "a") "b" }}{{ contains $n $h }} {{ splitList $n $h | len }} {{ replace $n "" $h | len }}"#;
        assert_eq!(ok_src(src), "false 1 500000");
    }

    #[test]
    fn lists_nested_past_the_cap_are_refused_when_made() {
        let src = "{{ $a := list }}{{ range 40 }}{{ $a = list $a }}{{ end }}ok";
        let e = err(src);
        assert!(e.reason().contains("nested more than 32 deep"), "{e}");
        let fits = "{{ $a := list }}{{ range 31 }}{{ $a = list $a }}{{ end }}{{ len $a }}";
        assert_eq!(ok_src(fits), "1");
    }

    #[test]
    fn templates_at_every_nesting_cap_run_on_a_two_mib_stack() {
        // The deepest template the parser accepts, holding the deepest list, printed
        // and dropped on a thread with the stack of tokio's blocking pool.
        let list = "{{ $a := list }}{{ range 31 }}{{ $a = list $a $a }}{{ end }}";
        let ifs = 49;
        let parens = 99 - ifs;
        let src = format!(
            "{list}{}{{{{ len {}$a{} }}}}{{{{ toJson $a | len }}}}{}",
            "{{ if 1 }}".repeat(ifs),
            "(print ".repeat(parens),
            ")".repeat(parens),
            "{{ end }}".repeat(ifs),
        );
        let out = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || render(&src, &values()).map(|p| p.expose_secret().to_vec()))
            .expect("a thread")
            .join()
            .expect("no stack overflow");
        let e = out.expect_err("2^31 leaves do not fit the budget");
        assert!(e.reason().contains("budget exceeded"), "{e}");
    }

    #[test]
    fn index_errors_do_not_quote_the_index() {
        // 104 is the first byte of "hunter2"; a length would leak the same way.
        for src in [
            "{{ index (list) (index .password 0) }}",
            "{{ index (list) (len .password) }}",
            "{{ index .username (len .password) }}",
        ] {
            let e = err(src);
            assert!(e.reason().contains("index out of range"), "{e}");
            assert!(
                !e.to_string().contains("104") && !e.reason().contains('7'),
                "{e}"
            );
        }
    }

    proptest! {
        #[test]
        fn random_templates_never_panic(src in "[ -~\n]{0,80}") {
            let _ = render(&src, &values());
        }

        #[test]
        fn random_unicode_templates_never_panic(src in "\\PC{0,80}") {
            let _ = render(&src, &values());
        }

        #[test]
        fn random_unicode_inside_actions_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("{{ ".to_owned()), Just(" }}".to_owned()), Just("\"".to_owned()),
                    Just("`".to_owned()), Just("'".to_owned()), Just("printf \"%q%x%5.1s\" ".to_owned()),
                    Just("upper ".to_owned()), Just("title ".to_owned()), Just("splitList ".to_owned()),
                    Just("replace ".to_owned()), Just("quote ".to_owned()), Just("toJson ".to_owned()),
                    "\\PC{0,4}",
                ],
                0..30,
            )
        ) {
            let src: String = parts.concat();
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
