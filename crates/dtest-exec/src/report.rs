//! Reports: TAP version 14 on a writer as the run goes, JUnit XML at the end.

use std::io::{self, Write};
use std::time::Duration;

use dtest_trace::Directive;

/// One TAP test point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// TAP number, from 1.
    pub number: u32,
    /// The tester it belongs to (`""` for points added after the run).
    pub tester: String,
    /// `ok` or `not ok`.
    pub ok: bool,
    /// Description (without the number).
    pub description: String,
    /// SKIP or TODO, with its reason.
    pub directive: Option<(Directive, String)>,
    /// Diagnostics: a YAML block under a failed point.
    pub diag: Vec<(String, DiagValue)>,
    /// How long the step took.
    pub duration: Duration,
    /// A comment after the description of a point without directive
    /// (`not ok 7 - tester1: run \`make\` # interrupted`).
    pub note: Option<String>,
}

/// A value in a TAP diagnostic block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiagValue {
    /// A string.
    Text(String),
    /// A list of strings (lines).
    Lines(Vec<String>),
}

impl Point {
    /// Whether the point counts as a failure (a failed TODO does not).
    pub fn failed(&self) -> bool {
        !self.ok && !matches!(self.directive, Some((Directive::Todo, _)))
    }
}

/// Escapes a TAP description: one line, `#` and `\` escaped.
pub fn tap_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '#' => o.push_str("\\#"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// A YAML double-quoted scalar.
pub fn yaml_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffd}' => {
                o.push_str(&format!("\\x{:02x}", c as u32 & 0xff))
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Writes TAP version 14.
#[derive(Debug)]
pub struct TapWriter<W: Write> {
    out: W,
}

impl<W: Write> TapWriter<W> {
    /// Writes the version line and the plan.
    pub fn start(mut out: W, plan: usize) -> io::Result<TapWriter<W>> {
        writeln!(out, "TAP version 14")?;
        writeln!(out, "1..{plan}")?;
        out.flush()?;
        Ok(TapWriter { out })
    }

    /// Writes a test point and its diagnostics.
    pub fn point(&mut self, p: &Point) -> io::Result<()> {
        let mut line = format!(
            "{} {} - {}",
            if p.ok { "ok" } else { "not ok" },
            p.number,
            tap_escape(&p.description)
        );
        match &p.directive {
            Some((Directive::Skip, r)) => line.push_str(&format!(" # SKIP {}", tap_escape(r))),
            Some((Directive::Todo, r)) => line.push_str(&format!(" # TODO {}", tap_escape(r))),
            None => {
                if let Some(n) = &p.note {
                    line.push_str(&format!(" # {}", tap_escape(n)));
                }
            }
        }
        writeln!(self.out, "{line}")?;
        if !p.diag.is_empty() {
            writeln!(self.out, "  ---")?;
            for (k, v) in &p.diag {
                match v {
                    DiagValue::Text(t) => writeln!(self.out, "  {k}: {}", yaml_str(t))?,
                    DiagValue::Lines(ls) => {
                        if ls.is_empty() {
                            writeln!(self.out, "  {k}: []")?;
                        } else {
                            writeln!(self.out, "  {k}:")?;
                            for l in ls {
                                writeln!(self.out, "    - {}", yaml_str(l))?;
                            }
                        }
                    }
                }
            }
            writeln!(self.out, "  ...")?;
        }
        self.out.flush()
    }

    /// Writes a comment line.
    pub fn comment(&mut self, c: &str) -> io::Result<()> {
        for l in c.lines() {
            writeln!(self.out, "# {l}")?;
        }
        self.out.flush()
    }
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

fn diag_text(p: &Point) -> String {
    let mut s = String::new();
    for (k, v) in &p.diag {
        match v {
            DiagValue::Text(t) => s.push_str(&format!("{k}: {t}\n")),
            DiagValue::Lines(ls) => {
                s.push_str(&format!("{k}:\n"));
                for l in ls {
                    s.push_str(&format!("  {l}\n"));
                }
            }
        }
    }
    s
}

/// Writes JUnit XML: one testsuite per tester (in `testers` order, then the
/// points with no tester), one testcase per point.
pub fn write_junit(
    mut out: impl Write,
    scenario: &str,
    testers: &[String],
    points: &[Point],
) -> io::Result<()> {
    let mut groups: Vec<(String, Vec<&Point>)> =
        testers.iter().map(|t| (t.clone(), Vec::new())).collect();
    let mut other = Vec::new();
    for p in points {
        match groups.iter_mut().find(|(t, _)| *t == p.tester) {
            Some(g) => g.1.push(p),
            None => other.push(p),
        }
    }
    if !other.is_empty() {
        groups.push(("checks".into(), other));
    }
    let total: usize = points.len();
    let failures = points.iter().filter(|p| p.failed()).count();
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{failures}\">",
        xml_escape(scenario)
    )?;
    for (name, ps) in &groups {
        let f = ps.iter().filter(|p| p.failed()).count();
        let sk = ps
            .iter()
            .filter(|p| matches!(p.directive, Some((Directive::Skip, _))))
            .count();
        let time: f64 = ps.iter().map(|p| p.duration.as_secs_f64()).sum();
        writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"{sk}\" time=\"{time:.3}\">",
            xml_escape(name),
            ps.len()
        )?;
        for p in ps {
            write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"{:.3}\"",
                xml_escape(&format!("{} {}", p.number, p.description)),
                xml_escape(scenario),
                xml_escape(name),
                p.duration.as_secs_f64()
            )?;
            if p.failed() {
                writeln!(out, ">")?;
                writeln!(
                    out,
                    "      <failure message=\"{}\">{}</failure>",
                    xml_escape(&p.description),
                    xml_escape(&diag_text(p))
                )?;
                writeln!(out, "    </testcase>")?;
            } else if let Some((d, r)) = &p.directive {
                writeln!(out, ">")?;
                writeln!(
                    out,
                    "      <skipped message=\"{}{}\"/>",
                    if *d == Directive::Todo { "TODO " } else { "" },
                    xml_escape(r)
                )?;
                writeln!(out, "    </testcase>")?;
            } else {
                writeln!(out, "/>")?;
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_lines() {
        let mut v = Vec::new();
        let mut t = TapWriter::start(&mut v, 2).unwrap();
        t.point(&Point {
            number: 1,
            tester: "t".into(),
            ok: false,
            description: "a # b\nc".into(),
            directive: Some((Directive::Todo, "later".into())),
            diag: vec![("pattern".into(), DiagValue::Text("x\"\u{1}".into()))],
            duration: Duration::ZERO,
            note: None,
        })
        .unwrap();
        let s = String::from_utf8(v).unwrap();
        assert_eq!(
            s,
            "TAP version 14\n1..2\nnot ok 1 - a \\# b\\nc # TODO later\n  ---\n  pattern: \"x\\\"\\x01\"\n  ...\n"
        );
    }
}
