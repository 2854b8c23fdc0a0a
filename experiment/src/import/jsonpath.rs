//! JSONPath, the simple kind that selects one value (`$.a.b[0]`, `$['a']`), as a JSON pointer
//! (RFC 6901), which is how Faultline's http probes point into a body.

/// Converts a simple JSONPath (`$.a.b[0]`, `$['a']`) to a JSON pointer (`/a/b/0`). Anything
/// that can select more than one value, or computes, is refused by name.
pub fn json_pointer(path: &str) -> Result<String, String> {
    let unsupported = |what: &str| {
        format!(
            "JSONPath {what} cannot be mapped; Faultline compares one value at a JSON pointer \
             (write a path like $.a.b[0])"
        )
    };
    let mut rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| format!("{path:?} is not a JSONPath: it starts with $"))?;
    let mut out = String::new();
    let mut push = |seg: &str| {
        out.push('/');
        out.push_str(&seg.replace('~', "~0").replace('/', "~1"));
    };
    while !rest.is_empty() {
        if rest.starts_with("..") {
            return Err(unsupported("recursive descent \"..\""));
        }
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name == "*" {
                return Err(unsupported("wildcard \"*\""));
            }
            if name.is_empty() || name.contains(['*', '?', '@', '(', ')', ']', '\'', '"', ' ']) {
                return Err(format!("{name:?} in {path:?} is not a member name"));
            }
            push(name);
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let (inner, after) = match r.chars().next() {
                Some(q @ ('\'' | '"')) => {
                    // The first quote not escaped by a backslash closes the name.
                    let close = r
                        .char_indices()
                        .skip(1)
                        .find(|&(i, c)| c == q && !r[..i].ends_with('\\'))
                        .map(|(i, _)| i)
                        .ok_or_else(|| format!("unclosed quote in {path:?}"))?;
                    (&r[..=close], &r[close + 1..])
                }
                _ => {
                    let close = r
                        .find(']')
                        .ok_or_else(|| format!("unclosed [ in {path:?}"))?;
                    (&r[..close], &r[close..])
                }
            };
            let after = after
                .strip_prefix(']')
                .ok_or_else(|| format!("unclosed [ in {path:?}"))?;
            let inner = inner.trim();
            if let Some(q) = inner.chars().next().filter(|c| *c == '\'' || *c == '"') {
                push(&inner[1..inner.len() - 1].replace(&format!("\\{q}"), &q.to_string()));
            } else if inner == "*" {
                return Err(unsupported("wildcard \"[*]\""));
            } else if inner.starts_with('?') {
                return Err(unsupported(&format!("filter \"[{inner}]\"")));
            } else if inner.starts_with('(') {
                return Err(unsupported(&format!("script \"[{inner}]\"")));
            } else if inner.contains(':') {
                return Err(unsupported(&format!("slice \"[{inner}]\"")));
            } else if inner.contains(',') {
                return Err(unsupported(&format!("union \"[{inner}]\"")));
            } else if inner.starts_with('-') {
                return Err(unsupported(&format!("negative index \"[{inner}]\"")));
            } else if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()) {
                push(inner);
            } else {
                return Err(format!(
                    "[{inner}] in {path:?} is not an index or a quoted name"
                ));
            }
            rest = after;
        } else {
            return Err(format!("unexpected {rest:?} in {path:?}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::json_pointer;

    #[test]
    fn simple_paths_become_pointers() {
        assert_eq!(json_pointer("$").unwrap(), "");
        assert_eq!(json_pointer("$.a.b[0]").unwrap(), "/a/b/0");
        assert_eq!(json_pointer("$['a/b'][\"c~d\"].e").unwrap(), "/a~1b/c~0d/e");
        assert_eq!(json_pointer(" $.items[12].id ").unwrap(), "/items/12/id");
        assert_eq!(json_pointer("$['it\\'s']").unwrap(), "/it's");
    }

    #[test]
    fn features_that_select_many_values_are_named() {
        for (path, feature) in [
            ("$.a[*]", "wildcard"),
            ("$.a.*", "wildcard"),
            ("$..a", "recursive descent"),
            ("$.a[?(@.x > 1)]", "filter"),
            ("$.a[0:2]", "slice"),
            ("$.a[0,1]", "union"),
            ("$.a[-1]", "negative index"),
            ("$.a[(@.length-1)]", "script"),
        ] {
            let e = json_pointer(path).unwrap_err();
            assert!(e.starts_with(&format!("JSONPath {feature}")), "{path}: {e}");
        }
        for bad in ["a.b", "$.a[", "$.a['b]", "$a", "$.a[x]", "$.a[]"] {
            assert!(json_pointer(bad).is_err(), "{bad}");
        }
    }
}
