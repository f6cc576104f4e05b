//! A YAML (and therefore JSON) reader that keeps where every node starts.
//!
//! serde's YAML readers throw positions away, but a finding must say `path:line:col`.
//! This module turns saphyr's event stream into a small tree per document, in which
//! every node knows its line and column:
//!
//! ```text
//!   text ──strip BOM──▶ saphyr events (line, col) ──▶ Tree { nodes, docs }
//! ```
//!
//! Guarantees:
//! - an alias points at the node its anchor names, so `&a`/`*a` costs no copy and a
//!   "billion laughs" file stays linear in memory;
//! - nesting deeper than [`MAX_DEPTH`] is an error, never a stack overflow;
//! - every failure is a [`ParseError`] with a position and saphyr's reason; no scalar
//!   value is ever part of an error.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// How deep mappings and sequences may nest.
pub const MAX_DEPTH: usize = 200;

/// Index of a node in [`Tree::nodes`].
pub type NodeId = usize;

/// One node: a scalar, a mapping or a sequence, with its start position.
#[derive(Debug)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

/// The shape of a node.
#[derive(Debug)]
pub enum NodeKind {
    /// A scalar and whether it was written plain (unquoted, not a block).
    Scalar { value: String, plain: bool },
    /// Key/value pairs in source order.
    Map(Vec<(NodeId, NodeId)>),
    /// Items in source order.
    Seq(Vec<NodeId>),
}

/// One YAML document: its root node and the lines it spans.
#[derive(Debug)]
pub struct Doc {
    /// The root node, or `None` for an empty document.
    pub root: Option<NodeId>,
    /// First line that belongs to this document (after the previous one ended).
    pub first_line: usize,
    /// Last line of the document.
    pub last_line: usize,
}

/// Every document of one text.
#[derive(Debug, Default)]
pub struct Tree {
    /// All nodes of all documents.
    pub nodes: Vec<Node>,
    /// The documents in order.
    pub docs: Vec<Doc>,
}

/// Why a text is not YAML.
#[derive(Debug)]
pub struct ParseError {
    line: usize,
    col: usize,
    reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid YAML at line {}, column {}: {}",
            self.line, self.col, self.reason
        )
    }
}

impl std::error::Error for ParseError {}

impl Tree {
    /// Parses every document of `text` (a leading BOM is ignored).
    pub fn parse(text: &str) -> Result<Tree, ParseError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut tree = Tree::default();
        let mut builder = Builder::default();
        let mut prev_end_line = 0;
        for event in Parser::new_from_str(text) {
            let (event, span) = event.map_err(|e| ParseError {
                line: e.marker().line(),
                col: e.marker().col() + 1,
                reason: without_quoted_input(e.info()),
            })?;
            let (line, col) = (span.start.line(), span.start.col() + 1);
            let fail = |reason: &str| ParseError {
                line,
                col,
                reason: reason.to_owned(),
            };
            match event {
                Event::DocumentStart(_) => {
                    builder = Builder::default();
                }
                Event::DocumentEnd => {
                    let last_line = span.end.line().max(prev_end_line + 1);
                    tree.docs.push(Doc {
                        root: builder.root.take(),
                        first_line: prev_end_line + 1,
                        last_line,
                    });
                    prev_end_line = last_line;
                }
                Event::Scalar(value, style, anchor, _) => {
                    let plain = matches!(style, ScalarStyle::Plain);
                    let id = tree.push(
                        NodeKind::Scalar {
                            value: value.into_owned(),
                            plain,
                        },
                        line,
                        col,
                    );
                    builder.anchor(anchor, id);
                    builder.add(&mut tree, id).map_err(fail)?;
                }
                Event::Alias(anchor) => {
                    let id = *builder
                        .anchors
                        .get(&anchor)
                        .ok_or_else(|| fail("alias to an unknown anchor"))?;
                    builder.add(&mut tree, id).map_err(fail)?;
                }
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    if builder.open.len() >= MAX_DEPTH {
                        return Err(fail(&format!("nested more than {MAX_DEPTH} levels deep")));
                    }
                    let kind = if matches!(event, Event::MappingStart(..)) {
                        NodeKind::Map(Vec::new())
                    } else {
                        NodeKind::Seq(Vec::new())
                    };
                    let id = tree.push(kind, line, col);
                    builder.open.push(Open {
                        id,
                        anchor,
                        pending_key: None,
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let Some(open) = builder.open.pop() else {
                        return Err(fail("unbalanced collection end"));
                    };
                    builder.anchor(open.anchor, open.id);
                    builder.add(&mut tree, open.id).map_err(fail)?;
                }
                Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            }
        }
        Ok(tree)
    }

    fn push(&mut self, kind: NodeKind, line: usize, col: usize) -> NodeId {
        self.nodes.push(Node { kind, line, col });
        self.nodes.len() - 1
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The string of a scalar node, `None` for a collection.
    pub fn str(&self, id: NodeId) -> Option<&str> {
        match &self.nodes[id].kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The scalar string at `key` of mapping `map`, if both exist.
    pub fn get_str(&self, map: NodeId, key: &str) -> Option<&str> {
        self.get(map, key).and_then(|v| self.str(v))
    }

    /// The value at `key` of mapping `map` (merge keys `<<` included; an explicit key
    /// wins over a merged one, as in YAML).
    pub fn get(&self, map: NodeId, key: &str) -> Option<NodeId> {
        self.entries(map)
            .into_iter()
            .find(|(k, _)| self.str(*k) == Some(key))
            .map(|(_, v)| v)
    }

    /// The key/value pairs of a mapping, with `<<` merge keys expanded one level and
    /// explicit keys first; empty for anything that is not a mapping.
    pub fn entries(&self, map: NodeId) -> Vec<(NodeId, NodeId)> {
        let NodeKind::Map(pairs) = &self.nodes[map].kind else {
            return Vec::new();
        };
        let mut own = Vec::with_capacity(pairs.len());
        let mut merged = Vec::new();
        for &(k, v) in pairs {
            if self.str(k) != Some("<<") || !self.is_plain(k) {
                own.push((k, v));
                continue;
            }
            let sources = match &self.nodes[v].kind {
                NodeKind::Seq(items) => items.clone(),
                _ => vec![v],
            };
            for source in sources {
                if let NodeKind::Map(inner) = &self.nodes[source].kind {
                    merged.extend(inner.iter().copied());
                }
            }
        }
        for (k, v) in merged {
            let name = self.str(k);
            if name.is_none() || !own.iter().any(|(o, _)| self.str(*o) == name) {
                own.push((k, v));
            }
        }
        own
    }

    /// The items of a sequence; empty for anything else.
    pub fn items(&self, seq: NodeId) -> &[NodeId] {
        match &self.nodes[seq].kind {
            NodeKind::Seq(items) => items,
            _ => &[],
        }
    }

    /// True for a plain (unquoted, non-block) scalar.
    pub fn is_plain(&self, id: NodeId) -> bool {
        matches!(&self.nodes[id].kind, NodeKind::Scalar { plain: true, .. })
    }

    /// True for a scalar that YAML reads as null or the empty string.
    pub fn is_empty_scalar(&self, id: NodeId) -> bool {
        match &self.nodes[id].kind {
            NodeKind::Scalar { value, plain } => {
                value.is_empty()
                    || (*plain && matches!(value.as_str(), "~" | "null" | "Null" | "NULL"))
            }
            _ => false,
        }
    }
}

/// saphyr's reason, minus any character of the input it quotes (as in "unexpected
/// character: `@'"), which could be the first character of a value.
fn without_quoted_input(info: &str) -> String {
    match info.split_once(['`', '\'']) {
        Some((before, _)) => before.trim_end_matches([':', ' ']).to_owned(),
        None => info.to_owned(),
    }
}

/// The collections being built, and the anchors seen so far, in one document.
#[derive(Default)]
struct Builder {
    open: Vec<Open>,
    anchors: HashMap<usize, NodeId>,
    root: Option<NodeId>,
}

struct Open {
    id: NodeId,
    anchor: usize,
    pending_key: Option<NodeId>,
}

impl Builder {
    fn anchor(&mut self, anchor: usize, id: NodeId) {
        if anchor != 0 {
            self.anchors.insert(anchor, id);
        }
    }

    /// Attaches a finished node to the collection being built, or makes it the root.
    fn add(&mut self, tree: &mut Tree, id: NodeId) -> Result<(), &'static str> {
        let Some(parent) = self.open.last_mut() else {
            if self.root.is_some() {
                return Err("more than one root node in a document");
            }
            self.root = Some(id);
            return Ok(());
        };
        match &mut tree.nodes[parent.id].kind {
            NodeKind::Seq(items) => items.push(id),
            NodeKind::Map(pairs) => match parent.pending_key.take() {
                None => parent.pending_key = Some(id),
                Some(key) => pairs.push((key, id)),
            },
            NodeKind::Scalar { .. } => return Err("a scalar cannot hold children"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(tree: &Tree, doc: usize) -> NodeId {
        tree.docs[doc].root.unwrap()
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let tree = Tree::parse("a:\n  bb: x\n").unwrap();
        let inner = tree.get(root(&tree, 0), "a").unwrap();
        let (k, _) = tree.entries(inner)[0];
        assert_eq!((tree.node(k).line, tree.node(k).col), (2, 3));
    }

    #[test]
    fn bom_and_crlf_do_not_shift_positions() {
        let tree = Tree::parse("\u{feff}a: 1\r\nb: 2\r\n").unwrap();
        let (k, _) = tree.entries(root(&tree, 0))[1];
        assert_eq!(tree.str(k), Some("b"));
        assert_eq!((tree.node(k).line, tree.node(k).col), (2, 1));
    }

    #[test]
    fn merge_keys_expand_and_explicit_keys_win() {
        let tree = Tree::parse("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n").unwrap();
        let m = tree.get(root(&tree, 0), "m").unwrap();
        assert_eq!(tree.get_str(m, "x"), Some("1"));
        assert_eq!(tree.get_str(m, "y"), Some("3"));
    }

    #[test]
    fn documents_cover_their_lines_in_order() {
        let tree = Tree::parse("a: 1\n---\nb: 2\nc: 3\n---\nd: 4\n").unwrap();
        assert_eq!(tree.docs.len(), 3);
        assert_eq!(tree.docs[0].first_line, 1);
        assert!(tree.docs[0].last_line < 3);
        assert!(tree.docs[1].first_line <= 3 && tree.docs[1].last_line >= 4);
        assert!(tree.docs[2].first_line > 4);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        // Flow style: saphyr's own limit.
        assert!(Tree::parse(&"[".repeat(100_000)).is_err());
        // Block style: ours.
        let text: String = (0..300)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let err = Tree::parse(&text).unwrap_err().to_string();
        assert!(err.contains("nested more than 200 levels"), "{err}");
    }

    #[test]
    fn alias_bombs_stay_linear() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..40 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let tree = Tree::parse(&text).unwrap();
        assert!(tree.nodes.len() < 1000, "{}", tree.nodes.len());
    }

    #[test]
    fn parse_errors_quote_no_input() {
        let err = Tree::parse("password: @Secret0\n").unwrap_err().to_string();
        assert!(err.contains("unexpected character"), "{err}");
        assert!(!err.contains('@'), "{err}");
    }

    #[test]
    fn unknown_alias_is_an_error() {
        assert!(Tree::parse("a: *nope\n").is_err());
    }
}
