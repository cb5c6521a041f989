//! `${name}` expansion in scenario strings. `$${` writes a literal `${`.
//!
//! Expansion is bounded: a value may reference others that reference
//! others, so ten lines of `b = "${a}${a}"` would double ten times. No
//! expanded value may exceed [`MAX_VALUE`] bytes and the `[vars]` values
//! together may not exceed [`MAX_VARS_TOTAL`]: the scenario check
//! ([`crate::Scenario::validate`]) computes the sizes without expanding
//! anything and reports the value that is too big, and [`expand`] refuses
//! to build a longer string whatever it is given.

/// The largest value a `${...}` expansion may give: 1 MiB.
pub const MAX_VALUE: usize = 1 << 20;

/// The largest total of the expanded `[vars]` values: 4 MiB.
pub const MAX_VARS_TOTAL: usize = 4 << 20;

/// What the scenario check counts for `${run_dir}`, unknown before the run:
/// the longest path Linux takes (`PATH_MAX`).
pub const RUN_DIR_ALLOWANCE: usize = 4096;

/// A byte count for messages: `512 bytes`, `1.5 KiB`, `2.7 GiB`.
pub fn fmt_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The length `s` expands to, computed without expanding it: `len_of`
/// gives the length of each variable (`None`: undefined, counted 0). Sums
/// saturate, so a bomb gives a huge number rather than an overflow.
/// `Err` as [`references`] for a malformed reference.
pub fn expanded_len(s: &str, len_of: &dyn Fn(&str) -> Option<u64>) -> Result<u64, (usize, String)> {
    let refs = references(s)?;
    let escapes = s.matches("$${").count() as u64;
    let mut n = (s.len() as u64).saturating_sub(escapes);
    for r in &refs {
        n = n
            .saturating_sub(r.name.len() as u64 + 3)
            .saturating_add(len_of(&r.name).unwrap_or(0));
    }
    Ok(n)
}

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
/// does not know is an error naming it (with its byte offset), and so is
/// a result longer than [`MAX_VALUE`] (nothing longer is built).
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, (usize, String)> {
    expand_max(s, lookup, MAX_VALUE)
}

/// [`expand`] with another bound than [`MAX_VALUE`].
pub fn expand_max(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    max: usize,
) -> Result<String, (usize, String)> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let too_big = |at: usize| {
        Err((
            at,
            format!(
                "the value expands to more than {} (the limit of an expanded value)",
                fmt_size(max as u64)
            ),
        ))
    };
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
            if out.len() + (i - last) + val.len() > max {
                return too_big(i);
            }
            out.push_str(&s[last..i]);
            out.push_str(&val);
            i += 3 + end;
            last = i;
            continue;
        }
        i += 1;
    }
    if out.len() + (s.len() - last) > max {
        return too_big(last);
    }
    out.push_str(&s[last..]);
    Ok(out)
}

/// Replaces the references of `s` to the variables of `vals` by their
/// values, leaving every other reference (and `$${` escapes) as written:
/// a tester template's `${index}` and `${item}` are substituted this way
/// when the scenario is loaded, the rest is expanded at run time.
pub fn substitute(s: &str, vals: &[(String, String)]) -> String {
    if vals.is_empty() || !s.contains("${") {
        return s.to_string();
    }
    let Ok(refs) = references(s) else {
        return s.to_string();
    };
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for r in refs {
        if let Some((_, v)) = vals.iter().find(|(n, _)| *n == r.name) {
            out.push_str(&s[last..r.offset]);
            out.push_str(v);
            last = r.offset + r.name.len() + 3;
        }
    }
    out.push_str(&s[last..]);
    out
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
    fn substitutes_only_the_given_names() {
        let v = vec![("index".to_string(), "2".to_string())];
        assert_eq!(
            substitute("s${index} $${index} ${port} ${index}", &v),
            "s2 $${index} ${port} 2"
        );
        assert_eq!(substitute("plain", &v), "plain");
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
    fn expansion_is_bounded() {
        let big = |n: &str| (n == "a").then(|| "x".repeat(600));
        assert_eq!(expand_max("${a}", &big, 1000).map(|v| v.len()), Ok(600));
        let e = expand_max("ab${a}${a}", &big, 1000).unwrap_err();
        assert_eq!(e.0, 6, "the reference that crosses the limit");
        assert!(e.1.contains("more than 1000 bytes"), "{}", e.1);
        let e = expand_max("${a}", &big, 599).unwrap_err();
        assert_eq!(e.0, 0);
        // The literal tail counts too.
        let tail = format!("${{a}}{}", "y".repeat(500));
        assert!(expand_max(&tail, &big, 1000).is_err());
        assert!(expand_max(&tail, &big, 1100).is_ok());
        // The default bound is MAX_VALUE.
        let huge = |n: &str| (n == "a").then(|| "x".repeat(MAX_VALUE / 2 + 1));
        assert!(expand("${a}", &huge).is_ok());
        assert!(expand("${a}${a}", &huge).is_err());
    }

    #[test]
    fn lengths_without_expanding() {
        let len = |n: &str| match n {
            "a" => Some(10),
            "big" => Some(u64::MAX / 2),
            _ => None,
        };
        assert_eq!(expanded_len("x${a}y", &len), Ok(12));
        assert_eq!(
            expanded_len("$${a}", &len),
            Ok(4),
            "`$${{a}}` gives `${{a}}`"
        );
        assert_eq!(expanded_len("${nope}", &len), Ok(0));
        assert_eq!(expanded_len("${big}${big}${big}", &len), Ok(u64::MAX));
        assert!(expanded_len("${a", &len).is_err());
        // Agrees with expand.
        let lk2 = |n: &str| lk(n);
        let s = "p${a}q$${x}r${run_dir}";
        let l = |n: &str| lk(n).map(|v| v.len() as u64);
        assert_eq!(
            expanded_len(s, &l).unwrap(),
            expand(s, &lk2).unwrap().len() as u64
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(fmt_size(5), "5 bytes");
        assert_eq!(fmt_size(1 << 20), "1 MiB");
        assert_eq!(fmt_size(1536), "1.5 KiB");
        assert_eq!(fmt_size(2_900_000_000), "2.7 GiB");
        assert!(fmt_size(u64::MAX).ends_with("EiB"));
    }

    #[test]
    fn lists_references() {
        let r = references("${a}-$${b}-${c}").unwrap();
        let names: Vec<_> = r.iter().map(|r| (r.name.as_str(), r.offset)).collect();
        assert_eq!(names, vec![("a", 0), ("c", 11)]);
        assert!(references("${bad name}").is_err());
    }
}
