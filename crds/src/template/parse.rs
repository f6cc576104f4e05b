//! The parser: turns the lexer's pieces into a tree of nodes, as Go's
//! `text/template/parse` does, with Go's parse-time checks (undefined variables,
//! unknown functions, `break`/`continue` outside `range`, misplaced `else`/`end`).
//!
//! Functions are resolved here, so a template that names a function sealant does not
//! implement is refused before anything runs. Nesting of control structures and
//! parentheses is capped at [`MAX_DEPTH`], which bounds the recursion of both the parser
//! and the executor, and variables in scope at [`MAX_VARIABLES`], which bounds the cost
//! of looking one up (here and when executing).

use std::rc::Rc;

use zeroize::Zeroizing;

use super::lex::{Piece, Tok, Token, lex};
use super::names::{UNSUPPORTED_SPRIG, function};
use super::{MAX_DEPTH, MAX_VARIABLES, TemplateError, error_at};

pub(super) enum Node {
    Text(usize, usize),
    Action(Pipe),
    If(Vec<(Pipe, Vec<Node>)>, Option<Vec<Node>>),
    With(Vec<(Pipe, Vec<Node>)>, Option<Vec<Node>>),
    Range(Pipe, Vec<Node>, Option<Vec<Node>>),
    Break,
    Continue,
}

pub(super) struct Pipe {
    pub(super) pos: usize,
    pub(super) decl: Vec<String>,
    pub(super) assign: bool,
    pub(super) cmds: Vec<Cmd>,
}

pub(super) struct Cmd {
    pub(super) pos: usize,
    pub(super) args: Vec<Operand>,
}

pub(super) struct Operand {
    pub(super) pos: usize,
    pub(super) term: Term,
    pub(super) fields: Vec<String>,
}

pub(super) enum Term {
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
pub(super) enum Stop {
    Eof,
    End,
    Else(Vec<Token>, usize),
}

pub(super) struct Parser<'s> {
    src: &'s str,
    pieces: std::vec::IntoIter<Piece>,
    /// Declared variable names, for Go's parse-time "undefined variable" check.
    vars: Vec<String>,
    depth: usize,
    range_depth: usize,
}

impl<'s> Parser<'s> {
    pub(super) fn new(src: &'s str) -> Self {
        Parser {
            src,
            pieces: Vec::new().into_iter(),
            vars: vec!["$".to_owned()],
            depth: 0,
            range_depth: 0,
        }
    }

    pub(super) fn parse(mut self) -> Result<Vec<Node>, TemplateError> {
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
                    else_list = Some(self.else_body(&etoks, epos)?);
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
            Stop::Else(etoks, epos) => Some(self.else_body(&etoks, epos)?),
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(Node::Range(pipe, body, else_list))
    }

    /// The body after a plain `{{else}}` (its tokens `etoks`, at `epos`), up to the
    /// `{{end}}` that closes the `if`, `with` or `range`.
    fn else_body(&mut self, etoks: &[Token], epos: usize) -> Result<Vec<Node>, TemplateError> {
        if etoks.len() > 1 {
            return Err(self.err(epos, "unexpected tokens in {{else}}"));
        }
        let (body, end) = self.list()?;
        match end {
            Stop::End => Ok(body),
            Stop::Eof => Err(self.err(self.src.len(), "unexpected EOF")),
            Stop::Else(_, p) => Err(self.err(p, "expected end; found {{else}}")),
        }
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
            // Looking a variable up is linear in how many are in scope.
            if self.vars.len() > MAX_VARIABLES {
                return Err(self.err(
                    pos,
                    &format!("more than {MAX_VARIABLES} variables in scope"),
                ));
            }
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

#[cfg(test)]
mod tests {
    use crate::template::testkit::err;

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
    fn too_many_variables_in_scope_are_refused_when_parsed() {
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("{{{{ $v{i} := 1 }}}}"))
                .collect::<String>()
                + "{{ $v0 }}"
        };
        assert!(
            err(&many(1001))
                .reason()
                .contains("more than 1000 variables")
        );
        // Declarations in a block leave scope at its end.
        let scoped = "{{ range 2 }}".to_owned() + &many(999) + "{{ end }}" + &many(999);
        assert!(crate::template::render(&scoped, &crate::template::testkit::values()).is_ok());
    }
}
