//! Helm chart templates are Go templates, not YAML. This module rewrites one into YAML
//! that keeps every line and column, so that the detector can read it:
//!
//! - an action alone on its line(s) (`{{- if ... }}`, `{{- end }}`,
//!   `{{ include ... | nindent 4 }}`) becomes spaces: its output is unknown, and a
//!   value it would produce is not a literal in the file;
//! - an action inside a line (`password: {{ .Values.pw | b64enc }}`) becomes
//!   [`MARK`] repeated, one per character, so that a scalar holding it is known to be a
//!   template expression and columns stay true.
//!
//! Literal text is left as it is: a literal value in a Secret template stays a
//! literal, and is found.

/// The character that replaces each character of an inline template action. It is
/// printable, not a YAML indicator, and one character wide, so positions do not move.
pub const MARK: char = '\u{2021}';

/// True when [`neutralize`] replaced (part of) `value`: a chart's own action, not a
/// SealedSecret's `spec.template.data`.
pub fn is_neutralized(value: &str) -> bool {
    value.contains(MARK)
}

/// True when `value` came (at least partly) from a template action: neutralized by
/// [`neutralize`], or a quoted `{{ ... }}` that is valid YAML as it stands (in a file
/// outside a chart's `templates/`, or a chart file that parsed without help).
pub fn is_template(value: &str) -> bool {
    is_neutralized(value)
        || value
            .find("{{")
            .is_some_and(|open| value[open + 2..].contains("}}"))
}

/// Rewrites the template actions of `text` as described in the module docs.
pub fn neutralize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let (before, from_open) = rest.split_at(open);
        out.push_str(before);
        let Some(close) = from_open[2..].find("}}") else {
            // An unclosed action: leave the rest, the YAML reader will refuse it.
            out.push_str(from_open);
            return out;
        };
        let action = &from_open[..close + 4];
        let after = &from_open[close + 4..];
        let alone_before = out
            .rsplit('\n')
            .next()
            .is_none_or(|line| line.chars().all(|c| c == ' ' || c == '\t'));
        let rest_of_line = after.split('\n').next().unwrap_or_default();
        let alone_after =
            rest_of_line.trim().is_empty() || rest_of_line.trim_start().starts_with("{{");
        let blank = (alone_before && alone_after) || action.contains('\n');
        for c in action.chars() {
            out.push(match c {
                '\n' | '\r' => c,
                _ if blank => ' ',
                _ => MARK,
            });
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_action_becomes_marks_of_the_same_width() {
        let out = neutralize("a: {{ .Values.x | b64enc }} # c\n");
        assert_eq!(
            out.chars().count(),
            "a: {{ .Values.x | b64enc }} # c\n".chars().count()
        );
        assert!(is_template(&out));
        assert!(out.ends_with(" # c\n"));
    }

    #[test]
    fn action_alone_on_its_line_becomes_blank() {
        let out = neutralize("{{- if .Values.on }}\na: b\n  {{- end }}\n");
        assert_eq!(out.lines().next().unwrap().trim(), "");
        assert!(!is_template(&out));
        assert!(out.contains("a: b"));
    }

    #[test]
    fn quoted_action_in_valid_yaml_is_a_template() {
        assert!(is_template("{{ .Values.password | b64enc }}"));
        assert!(is_template("postgres://{{ .Values.user }}@db"));
        assert!(!is_template("}} not {{"));
    }

    #[test]
    fn literal_text_is_kept() {
        assert_eq!(neutralize("password: hunter2\n"), "password: hunter2\n");
    }
}
