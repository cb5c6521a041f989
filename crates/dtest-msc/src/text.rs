//! Text shaping shared by both writers: payloads made printable, cut to one
//! short label line or a capped tooltip, and escaped for XML or mscgen.
//!
//! Payloads are arbitrary bytes (the reader already turned invalid UTF-8 into
//! U+FFFD). Labels never contain control characters: C0 controls and DEL are
//! shown in caret notation (`^[` for ESC, `^M` for a lone CR), C1 controls and
//! the XML-forbidden U+FFFE/U+FFFF become U+FFFD, tabs become a space. So a
//! label is always valid XML character data once `<>&"` are escaped, and
//! never breaks mscgen's string syntax once `\` and `"` are handled.

use std::fmt::Write as _;

/// Width of a character in columns of a monospace font: 2 for the East Asian
/// wide ranges, 1 otherwise. Good enough to keep labels inside their room.
pub(crate) fn char_cols(c: char) -> usize {
    let u = c as u32;
    if u == 0x2060 || u == 0x200b {
        return 0;
    }
    let wide = matches!(u,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
}

/// Columns taken by a string (see [`char_cols`]).
pub(crate) fn cols(s: &str) -> usize {
    s.chars().map(char_cols).sum()
}

/// Appends the printable form of `c` to `out` (one-line labels: a tab is a
/// space, every other control is in caret notation).
fn push_printable(out: &mut String, c: char, keep_newline: bool) {
    match c {
        '\t' if keep_newline => out.push('\t'),
        '\n' if keep_newline => out.push('\n'),
        '\t' => out.push(' '),
        '\u{0}'..='\u{1f}' => {
            out.push('^');
            out.push((c as u8 + 0x40) as char);
        }
        '\u{7f}' => out.push_str("^?"),
        '\u{80}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
        _ => out.push(c),
    }
}

/// A single line made printable (see the module docs).
pub(crate) fn printable(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_printable(&mut out, c, false);
    }
    out
}

/// Cuts a printable string to at most `max` columns.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    let mut w = 0;
    for (i, c) in s.char_indices() {
        w += char_cols(c);
        if w > max {
            return &s[..i];
        }
    }
    s
}

/// The lines of a payload: split on `\n`, a CR before it dropped (terminal
/// output ends its lines with CR LF), a final empty line not counted.
fn lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if v.len() > 1 && v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// One label line of at most `max` columns for `prefix` followed by a
/// payload of `bytes` bytes whose text is `text`.
///
/// A short one-line payload is shown whole; anything longer shows the start
/// of its first line and `... (N lines, M bytes)`.
pub(crate) fn label(prefix: &str, text: &str, bytes: usize, max: usize) -> String {
    label_lines(prefix, text, bytes, max, 1)
}

/// Like [`label`], but keeps up to `max_lines` lines (joined by `\n`) within
/// `max` columns in all. A single line too long to show whole is cut with
/// `...` (commands, paths, names: the tooltip has the rest).
pub(crate) fn label_lines(
    prefix: &str,
    text: &str,
    bytes: usize,
    max: usize,
    max_lines: usize,
) -> String {
    shape(prefix, text, bytes, max, max_lines, false)
}

/// Like [`label_lines`] for payloads (input, output): a single line too
/// long to show whole also gets `... (1 line, M bytes)`.
pub(crate) fn payload_lines(
    prefix: &str,
    text: &str,
    bytes: usize,
    max: usize,
    max_lines: usize,
) -> String {
    shape(prefix, text, bytes, max, max_lines, true)
}

fn shape(
    prefix: &str,
    text: &str,
    bytes: usize,
    max: usize,
    max_lines: usize,
    counts: bool,
) -> String {
    let ls = lines(text);
    let mut out = printable(prefix);
    if ls.len() == 1 && !counts {
        out.push_str(ls[0]);
        return short(&out, max);
    }
    let shown: Vec<String> = ls
        .iter()
        .take(max_lines.max(1))
        .map(|l| printable(l))
        .collect();
    let whole: usize = shown.iter().map(|l| cols(l)).sum::<usize>() + shown.len() - 1;
    if ls.len() <= max_lines.max(1) && cols(&out) + whole <= max {
        out.push_str(&shown.join("\n"));
        return out;
    }
    let n = ls.len();
    let suffix = format!(
        "... ({n} line{}, {bytes} byte{})",
        if n == 1 { "" } else { "s" },
        if bytes == 1 { "" } else { "s" }
    );
    let mut room = max.saturating_sub(cols(&out) + cols(&suffix));
    for (k, l) in shown.iter().enumerate() {
        if k > 0 {
            if room < 2 {
                break;
            }
            out.push('\n');
            room -= 1;
        }
        let c = cut(l, room);
        room -= cols(c);
        out.push_str(c);
        if c.len() < l.len() {
            break;
        }
    }
    out.push_str(&suffix);
    // When even the suffix does not fit, cut the whole thing: never overflow.
    if cols(&out) > max {
        let keep = cut(&out, max).len();
        out.truncate(keep);
    }
    out
}

/// A short plain label: printable and cut to `max` columns with `...`.
pub(crate) fn short(s: &str, max: usize) -> String {
    let p = printable(s);
    if cols(&p) <= max {
        return p;
    }
    let mut out = cut(&p, max.saturating_sub(3)).to_string();
    out.push_str("...");
    out
}

/// Text for a tooltip: newlines and tabs kept, other controls printable,
/// capped at `cap` bytes with a note saying how much there was.
pub(crate) fn tooltip(text: &str, cap: usize) -> String {
    let mut out = String::with_capacity(text.len().min(cap) + 64);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() >= cap {
            let _ = write!(out, "\n... (cut; {} bytes in all)", text.len());
            break;
        }
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        push_printable(&mut out, c, true);
    }
    out
}

/// Escapes XML character data or an attribute value (both quotes, `<>&`,
/// and newlines and tabs as character references so attributes keep them).
/// The input must be printable in the sense of this module.
pub(crate) fn xml(out: &mut String, s: &str) {
    if !s.bytes().any(|b| {
        matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | b'\n' | b'\t') || !(0x20..0x7f).contains(&b)
    }) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            // Callers pass printable text; this keeps the output valid XML
            // even if one does not.
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
}

/// `s` XML-escaped, as a new string.
#[cfg(test)]
pub(crate) fn xml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    xml(&mut out, s);
    out
}

/// Appends `s` as the inside of an mscgen double-quoted string: `"` becomes
/// `\"`, a newline the two characters `\n` (a line break in mscgen),
/// controls printable. mscgen has no escape for a backslash: it keeps one
/// as it is, except before `n` (a line break), before `"` and at the end of
/// the string; there a WORD JOINER (U+2060, drawn as nothing) follows it.
pub(crate) fn mscgen(out: &mut String, s: &str) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\\' => {
                out.push('\\');
                if matches!(chars.peek(), None | Some('n') | Some('"')) {
                    out.push('\u{2060}');
                }
            }
            _ => push_printable(out, c, false),
        }
    }
}

/// A human size: `512 B`, `1.5 KiB`, `3.0 MiB`.
pub(crate) fn size(n: u64) -> String {
    const U: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < U.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", U[u])
}

/// Seconds with millisecond precision from nanoseconds.
pub(crate) fn secs(ns: u64) -> String {
    format!("{}.{:03}s", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_show_first_line_and_counts() {
        assert_eq!(label("", "hello\r\n", 7, 30), "hello");
        assert_eq!(
            label("", "one\ntwo\nthree\n", 14, 40),
            "one... (3 lines, 14 bytes)"
        );
        let l = label("$ ", &"x".repeat(100), 100, 30);
        assert_eq!(cols(&l), 30, "{l}");
        assert!(l.starts_with("$ xxx") && l.ends_with("x..."), "{l}");
        let l = payload_lines("", &"y".repeat(100), 100, 30, 1);
        assert_eq!(l, "yyyyyyy... (1 line, 100 bytes)");
        assert_eq!(payload_lines("in: ", "short\n", 6, 30, 1), "in: short");
        // Never wider than asked, even when the suffix alone does not fit.
        assert!(cols(&label("p", "a\nb\nc", 5, 8)) <= 8);
        assert_eq!(label_lines("", "a\nb\n", 4, 50, 3), "a\nb");
        assert_eq!(
            label_lines("", "a\nb\nc\nd", 7, 50, 2),
            "a\nb... (4 lines, 7 bytes)"
        );
    }

    #[test]
    fn controls_become_visible() {
        assert_eq!(printable("a\u{1b}[0m\tb\u{7f}\u{85}"), "a^[[0m b^?\u{fffd}");
        assert_eq!(label("", "a\rb", 3, 10), "a^Mb");
        assert_eq!(tooltip("a\r\nb\u{0}", 100), "a\nb^@");
        let t = tooltip(&"y".repeat(5000), 100);
        assert!(t.len() < 200 && t.ends_with("5000 bytes in all)"));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            xml_string("<a href=\"x\">&'\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&#10;"
        );
        let mut m = String::new();
        mscgen(&mut m, "say \"hi\"\\n\nnext\u{7} c:\\dir\\");
        assert_eq!(m, "say \\\"hi\\\"\\\u{2060}n\\nnext^G c:\\dir\\\u{2060}");
    }

    #[test]
    fn wide_characters_count_double() {
        assert_eq!(cols("中文a"), 5);
        assert_eq!(cut("中文a", 3), "中");
        assert_eq!(short("abcdefgh", 6), "abc...");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(secs(1_234_567_890), "1.234s");
    }
}
