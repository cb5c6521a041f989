//! TAP, written as the run goes: version 13 by default (the lines dtest
//! writes are the same in 13 and 14; stock harnesses such as Test::Harness
//! 3.44 refuse a version 14 line), 14 on request.

use std::io::{self, Write};

use dtest_trace::Directive;

use super::{tap_escape, yaml_str, DiagValue, Point, Reporter, RunEvent, TapVersion};

/// Writes TAP.
#[derive(Debug)]
pub struct TapWriter<W: Write> {
    out: W,
}

impl<W: Write> TapWriter<W> {
    /// Writes the version line and the plan.
    pub fn start(mut out: W, plan: usize, version: TapVersion) -> io::Result<TapWriter<W>> {
        writeln!(out, "TAP version {}", version.number())?;
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

/// The TAP reporter: a [`TapWriter`] fed with run events. A broken pipe
/// (the reader went away) stops writing but not the run.
#[derive(Debug)]
pub struct TapReporter<W: Write> {
    out: Option<W>,
    w: Option<TapWriter<W>>,
    version: TapVersion,
}

impl<W: Write> TapReporter<W> {
    /// A reporter writing TAP `version` to `out`.
    pub fn new(out: W, version: TapVersion) -> TapReporter<W> {
        TapReporter {
            out: Some(out),
            w: None,
            version,
        }
    }
}

impl<W: Write + Send> Reporter for TapReporter<W> {
    fn event(&mut self, e: &RunEvent<'_>) -> io::Result<()> {
        match e {
            RunEvent::Plan(n) => {
                if let Some(out) = self.out.take() {
                    self.w = Some(TapWriter::start(out, *n, self.version)?);
                }
                Ok(())
            }
            RunEvent::Point(p) => match &mut self.w {
                Some(w) => w.point(p),
                None => Ok(()),
            },
            RunEvent::Comment(c) => match &mut self.w {
                Some(w) => w.comment(c),
                None => Ok(()),
            },
            RunEvent::StepStart { .. } | RunEvent::End { .. } => Ok(()),
        }
    }
}
