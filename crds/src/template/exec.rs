//! The executor: walks the parsed tree with dot, `$` and the variables, as Go's
//! `text/template` executes it, and writes the output into a zeroizing buffer.
//!
//! Every node, command and loop iteration is a step; the steps, the output and the
//! strings made are counted against the limits in [`super`]. Function calls go to
//! [`Exec::apply`] in [`super::funcs`].

use std::collections::BTreeMap;
use std::rc::Rc;

use sealant_keys::Plaintext;
use zeroize::Zeroizing;

use super::parse::{Cmd, Node, Operand, Pipe, Term};
use super::printf::fmt_value;
use super::value::{Bytes, Flow, SecretBuf, Value, truth};
use super::{MAX_ALLOCATED, MAX_OUTPUT, MAX_STEPS, TemplateError, error_at};

pub(super) struct Exec<'a> {
    pub(super) source: &'a str,
    pub(super) values: &'a BTreeMap<String, Plaintext>,
    pub(super) vars: Vec<(String, Value<'a>)>,
    pub(super) out: SecretBuf,
    pub(super) steps: u64,
    pub(super) allocated: usize,
}

/// An execution error before it is given a position.
pub(super) type Res<T> = Result<T, String>;

impl<'a> Exec<'a> {
    fn at(&self, pos: usize, reason: String) -> TemplateError {
        error_at(self.source, pos, reason)
    }

    pub(super) fn step(&mut self) -> Res<()> {
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
    pub(super) fn owned(&mut self, buf: SecretBuf) -> Res<Value<'a>> {
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

    pub(super) fn walk(&mut self, nodes: &[Node], dot: &Value<'a>) -> Result<Flow, TemplateError> {
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
