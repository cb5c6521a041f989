//! JUnit XML, written at the end of the run.

use std::io::{self, Write};
use std::path::PathBuf;

use dtest_trace::Directive;

use super::{DiagValue, Point, Reporter, RunEvent};

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

/// The test case names of one suite's points: their descriptions, which
/// are the same from run to run (never the point's number, which depends
/// on how the testers interleaved); a description a suite has several
/// times gets ` [2]`, ` [3]`... from its second time on, so that each case
/// keeps its own history in a CI system.
fn case_names(ps: &[&Point]) -> Vec<String> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    ps.iter()
        .map(|p| {
            let n = seen.entry(p.description.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                p.description.clone()
            } else {
                format!("{} [{n}]", p.description)
            }
        })
        .collect()
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
        for (p, case) in ps.iter().zip(case_names(ps)) {
            write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"{:.3}\"",
                xml_escape(&case),
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

/// The JUnit reporter: writes the file at [`RunEvent::End`].
#[derive(Debug)]
pub struct JunitReporter {
    path: PathBuf,
    suite: String,
    testers: Vec<String>,
    fsync: bool,
}

impl JunitReporter {
    /// A reporter writing `path` for scenario `suite` with these testers.
    pub fn new(path: PathBuf, suite: String, testers: Vec<String>, fsync: bool) -> JunitReporter {
        JunitReporter {
            path,
            suite,
            testers,
            fsync,
        }
    }
}

impl Reporter for JunitReporter {
    fn event(&mut self, e: &RunEvent<'_>) -> io::Result<()> {
        if let RunEvent::End { points } = e {
            let f = std::fs::File::create(&self.path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
            write_junit(io::BufWriter::new(f), &self.suite, &self.testers, points)?;
            if self.fsync {
                std::fs::File::open(&self.path)?.sync_all()?;
            }
        }
        Ok(())
    }
}
