//! `${name}` expansion in scenario strings. `$${` writes a literal `${`.

/// A `${name}` reference found in a string: its name and byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    /// The variable's name.
    pub name: String,
    /// Byte offset of the `$` in the string.
    pub offset: usize,
}

/// Lists the `${...}` references of `s`, or the offset and message of a
/// malformed one (an unclosed `${`, a bad name).
pub fn references(s: &str) -> Result<Vec<VarRef>, (usize, String)> {
    let mut v = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && b.get(i + 1) == Some(&b'$') && b.get(i + 2) == Some(&b'{') {
            i += 3;
            continue;
        }
        if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
            let Some(end) = s[i + 2..].find('}') else {
                return Err((i, "unclosed `${` (write `$${` for a literal `${`)".into()));
            };
            let name = &s[i + 2..i + 2 + end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err((i, format!("bad variable name `{name}`")));
            }
            v.push(VarRef {
                name: name.to_string(),
                offset: i,
            });
            i += 3 + end;
            continue;
        }
        i += 1;
    }
    Ok(v)
}

/// Expands the `${name}` references of `s` with `lookup`; a name `lookup`
/// does not know is an error naming it (with its byte offset).
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, (usize, String)> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'$' && b.get(i + 1) == Some(&b'$') && b.get(i + 2) == Some(&b'{') {
            out.push_str(&s[last..i]);
            out.push_str("${");
            i += 3;
            last = i;
            continue;
        }
        if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
            let Some(end) = s[i + 2..].find('}') else {
                return Err((i, "unclosed `${` (write `$${` for a literal `${`)".into()));
            };
            let name = &s[i + 2..i + 2 + end];
            let Some(val) = lookup(name) else {
                return Err((i, format!("undefined variable `${{{name}}}`")));
            };
            out.push_str(&s[last..i]);
            out.push_str(&val);
            i += 3 + end;
            last = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&s[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lk(n: &str) -> Option<String> {
        match n {
            "a" => Some("AA".into()),
            "run_dir" => Some("/r".into()),
            _ => None,
        }
    }

    #[test]
    fn expands() {
        assert_eq!(expand("x${a}y${run_dir}/z", &lk), Ok("xAAy/r/z".into()));
        assert_eq!(expand("$${a} $a ${a}", &lk), Ok("${a} $a AA".into()));
        assert_eq!(expand("plain", &lk), Ok("plain".into()));
        let e = expand("ab${nope}", &lk).unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.contains("undefined variable `${nope}`"));
        assert!(expand("ab${a", &lk).is_err());
    }

    #[test]
    fn lists_references() {
        let r = references("${a}-$${b}-${c}").unwrap();
        let names: Vec<_> = r.iter().map(|r| (r.name.as_str(), r.offset)).collect();
        assert_eq!(names, vec![("a", 0), ("c", 11)]);
        assert!(references("${bad name}").is_err());
    }
}
