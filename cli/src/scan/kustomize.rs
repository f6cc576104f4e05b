//! kustomize `secretGenerator`: a Secret built at `kustomize build` time from
//! `literals`, `envs` (and the old `env`) and `files`. A literal is plaintext in the
//! repository; an env or data file is too, when it is committed (one that
//! `.gitignore` keeps out, or that is not in the repository, is how it should be).

use super::detect::{Context, Object, Sink, join_repo_path};
use super::finding::Rule;
use super::yaml::{NodeId, Tree};

/// Checks every `secretGenerator` entry of a Kustomization.
pub fn secret_generators(tree: &Tree, root: NodeId, ctx: &Context, sink: &mut Sink<'_>) {
    let Some(generators) = tree.get(root, "secretGenerator") else {
        return;
    };
    for &generator in tree.items(generators) {
        let object = Object {
            kind: "Kustomization".to_owned(),
            namespace: tree.get_str(generator, "namespace").map(str::to_owned),
            name: tree.get_str(generator, "name").map(str::to_owned),
        };
        if let Some(literals) = tree.get(generator, "literals") {
            for &literal in tree.items(literals) {
                let Some(text) = tree.str(literal) else {
                    continue;
                };
                let (key, value) = text.split_once('=').unwrap_or((text, ""));
                if !value.is_empty() {
                    sink.add(
                        tree,
                        literal,
                        Rule::KustomizeLiteral,
                        &object,
                        Some(key),
                        None,
                    );
                }
            }
        }
        let mut sources: Vec<(NodeId, bool)> = Vec::new();
        for (field, is_env) in [("envs", true), ("env", true), ("files", false)] {
            let Some(node) = tree.get(generator, field) else {
                continue;
            };
            if tree.str(node).is_some() {
                sources.push((node, is_env));
            }
            sources.extend(tree.items(node).iter().map(|&n| (n, is_env)));
        }
        for (node, is_env) in sources {
            let Some(entry) = tree.str(node) else {
                continue;
            };
            // files: `key=path` or `path`; envs: `path`.
            let (key, path) = match entry.split_once('=') {
                Some((key, path)) if !is_env => (key, path),
                _ => (entry.rsplit('/').next().unwrap_or(entry), entry),
            };
            let Some(repo_path) = join_repo_path(sink.source.repo_path, path) else {
                continue;
            };
            if (ctx.repo_has)(&repo_path) {
                let key = if is_env { entry } else { key };
                sink.add(tree, node, Rule::KustomizeFile, &object, Some(key), None);
            }
        }
    }
}
