//! The executor: walks the parsed tree with dot, `$` and the variables, as Go's
//! `text/template` executes it, and writes the output into a zeroizing buffer.
//!
//! Everything is charged to the object's [`Budget`] (see [`super::budget`]): a step
//! for every node, command and loop iteration, steps for bytes written and variables
//! searched, every byte of output, and every string and list made ([`Exec::owned`],
//! [`Exec::list`]), which are built in buffers capped at what is left
//! ([`Exec::buffer`]). Function calls go to [`Exec::apply`] in [`super::funcs`].
//!
//! Recursion follows the template's nesting, which the parser caps at 100.

use std::collections::BTreeMap;
use std::rc::Rc;

use sealant_keys::Plaintext;
use zeroize::Zeroizing;

use super::budget::{Budget, MAX_VALUE_DEPTH};
use super::parse::{Cmd, Node, Operand, Pipe, Term};
use super::printf::fmt_value;
use super::value::{Bytes, Flow, List, SecretBuf, Value, truth};
use super::{MAX_OUTPUT, TemplateError, error_at};

/// What a value costs beyond its bytes (the reference count, the box, the slot), as
/// charged against the budget's allocation.
const VALUE_OVERHEAD: usize = 64;

pub(super) struct Exec<'a, 'b> {
    pub(super) source: &'a str,
    pub(super) values: &'a BTreeMap<String, Plaintext>,
    pub(super) vars: Vec<(String, Value<'a>)>,
    /// The output, capped at what the budget had left when this template started.
    pub(super) out: SecretBuf,
    pub(super) budget: &'b mut Budget,
}

/// An execution error before it is given a position.
pub(super) type Res<T> = Result<T, String>;

impl<'a> Exec<'a, '_> {
    fn at(&self, pos: usize, reason: String) -> TemplateError {
        error_at(self.source, pos, reason)
    }

    /// One step: a node, a command, a loop iteration.
    pub(super) fn step(&mut self) -> Res<()> {
        self.budget.step(1)
    }

    /// The steps for reading or writing `bytes` bytes.
    pub(super) fn step_bytes(&mut self, bytes: usize) -> Res<()> {
        self.budget.step_bytes(bytes)
    }

    /// An empty buffer for a string to be made, capped at what one string and the
    /// budget allow.
    pub(super) fn buffer(&self) -> SecretBuf {
        SecretBuf::capped(MAX_OUTPUT.min(self.budget.alloc_room()))
    }

    /// Like [`Exec::buffer`], with room for `hint` bytes.
    pub(super) fn buffer_with(&self, hint: usize) -> SecretBuf {
        SecretBuf::capped_with(MAX_OUTPUT.min(self.budget.alloc_room()), hint)
    }

    /// Fails unless `bytes` more bytes fit in a new string: checked before a function
    /// builds something whose size it knows in advance.
    pub(super) fn fits(&self, bytes: usize) -> Res<()> {
        if bytes > MAX_OUTPUT {
            return Err(string_too_large());
        }
        if bytes > self.budget.alloc_room() {
            return Err(self.budget.alloc_error());
        }
        Ok(())
    }

    /// Text for the output, charged against the budget.
    fn emit_with(&mut self, write: impl FnOnce(&mut SecretBuf)) -> Res<()> {
        let before = self.out.len();
        write(&mut self.out);
        if self.out.is_over() {
            return Err(if self.out.cap() < MAX_OUTPUT {
                self.budget.output_error()
            } else {
                format!("budget exceeded: a rendered value would be larger than {MAX_OUTPUT} bytes")
            });
        }
        let n = self.out.len() - before;
        self.step_bytes(n)?;
        self.budget.output(n)
    }

    /// Where the innermost variable `name` is, charged by how far the search went (a
    /// step per 64 variables passed), since up to a thousand may be in scope.
    fn lookup(&mut self, name: &str) -> Res<Option<usize>> {
        let found = self.vars.iter().rposition(|(n, _)| n == name);
        let passed = self.vars.len() - found.map_or(0, |i| i);
        self.step_bytes(passed)?;
        Ok(found)
    }

    /// A string made while rendering, counted against the budget.
    pub(super) fn owned(&mut self, buf: SecretBuf) -> Res<Value<'a>> {
        if buf.is_over() {
            return Err(if buf.cap() < MAX_OUTPUT {
                self.budget.alloc_error()
            } else {
                string_too_large()
            });
        }
        self.budget.alloc(buf.len() + VALUE_OVERHEAD)?;
        self.step_bytes(buf.len())?;
        Ok(Value::Str(Bytes::Owned(Rc::new(Zeroizing::new(
            buf.into_vec(),
        )))))
    }

    /// A list made while rendering, counted against the budget, and refused when it
    /// would nest too deeply.
    pub(super) fn list(&mut self, items: Vec<Value<'a>>) -> Res<Value<'a>> {
        self.budget
            .alloc((items.len() + 1) * std::mem::size_of::<Value<'_>>() + VALUE_OVERHEAD)?;
        self.step_bytes(items.len() * std::mem::size_of::<Value<'_>>())?;
        match List::new(items) {
            Some(list) => Ok(Value::List(Rc::new(list))),
            None => Err(format!(
                "budget exceeded: lists nested more than {MAX_VALUE_DEPTH} deep"
            )),
        }
    }

    pub(super) fn walk(&mut self, nodes: &[Node], dot: &Value<'a>) -> Result<Flow, TemplateError> {
        for node in nodes {
            match node {
                Node::Text(a, b) => {
                    let text = &self.source.as_bytes()[*a..*b];
                    self.step()
                        .and_then(|()| self.emit_with(|out| out.push(text)))
                        .map_err(|e| self.at(*a, e))?;
                }
                Node::Action(pipe) => {
                    self.step().map_err(|e| self.at(pipe.pos, e))?;
                    let v = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        let values = self.values;
                        self.emit_with(|out| match &v {
                            Value::Nil => out.push_str("<no value>"),
                            v => fmt_value(out, v, values),
                        })
                        .map_err(|e| self.at(pipe.pos, e))?;
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
                match self.lookup(name).map_err(|e| self.at(pipe.pos, e))? {
                    Some(i) => self.vars[i].1 = v.clone(),
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
            Term::Var(name) => match self.lookup(name).map_err(|e| self.at(op.pos, e))? {
                Some(i) => self.vars[i].1.clone(),
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
}

fn string_too_large() -> String {
    format!(
        "budget exceeded: a string made by the template would be larger than {MAX_OUTPUT} bytes"
    )
}

#[cfg(test)]
mod tests {
    use crate::template::testkit::{err, ok};

    #[test]
    fn fields_index_and_missing_keys_behave_like_a_go_map() {
        assert_eq!(ok("{{ .username }}/{{ .password }}"), "admin/hunter2");
        assert_eq!(ok(r#"{{ index . "db-host" }}"#), "db.example");
        assert_eq!(ok("{{ .missing }}"), "<no value>");
        assert_eq!(ok(r#"[{{ index . "missing" }}]"#), "[]");
        assert_eq!(ok("{{ .missing.deeper }}"), "<no value>");
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
}
