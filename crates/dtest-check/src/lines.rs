//! Line matching: the text of input and output is matched line by line.
//!
//! A line is the text between newlines of one session stream (an actor's
//! input, its stdout, its stderr), wherever the reads split it. A line
//! belongs to the event in which it completed; a final line without a
//! newline belongs to the last event of its stream (on a complete trace; on
//! a truncated one it may go on: it matches nothing). An atom with a text test
//! holds at an input/output event when one of the lines completed there
//! passes it; how many lines do is the atom's count there (`count` counts
//! lines), and each of them gives a join key.
//!
//! [`Probes`] tests a set of atoms (and join keys) on events as they stream
//! by, assembling lines per stream; [`Probes::finish`] attributes the final
//! lines without newline.

use dtest_trace::{Event, EventData, Kind, Stream};

use crate::columns::{by_kind, Matcher};
use crate::ir::KeyPart;

/// Longest line matched; a longer line is matched on its first
/// `MAX_LINE` bytes (the same whatever the reads were).
pub const MAX_LINE: usize = 1 << 20;

/// "no event yet".
const NO_EVENT: usize = usize::MAX;

/// One atom to test, with the join key to compute where it holds.
pub(crate) struct Probe<'a> {
    /// The atom's id.
    pub atom: u32,
    /// Its matcher.
    pub m: Matcher<'a>,
    /// The key parts, for a join key request.
    pub parts: Option<&'a [KeyPart]>,
}

/// A line stream's state.
#[derive(Default)]
struct LineBuf {
    /// The start of the line being read.
    buf: Vec<u8>,
    /// The last event of the stream.
    last_event: usize,
    /// The probes whose event tests passed at that event, with their
    /// key's event values.
    last_cands: Vec<(usize, Option<Vec<Option<String>>>)>,
    /// Per candidate: whether it matched a line at that event.
    last_hit: Vec<bool>,
}

/// What the final lines without newline add: `(event, probe, key, hit)`,
/// one entry per matching line; `hit`: the probe already matched a line
/// at that event.
pub(crate) type Late = Vec<(usize, usize, Option<String>, bool)>;

/// Tests probes on events, line by line for input and output.
pub(crate) struct Probes<'a> {
    probes: Vec<Probe<'a>>,
    by_kind: Vec<Vec<usize>>,
    /// Whether a probe matches input / output per line.
    track_input: bool,
    track_output: bool,
    slots: Vec<LineBuf>,
    names: &'a [String],
    /// Per probe: the number of matches at the current event.
    pub count: Vec<u32>,
    /// Per key probe: the keys at the current event, one per match.
    pub keys: Vec<Vec<Option<String>>>,
    /// The probes with a match at the current event.
    pub touched: Vec<usize>,
    cands: Vec<(usize, Option<Vec<Option<String>>>)>,
}

fn trim_cr(l: &[u8]) -> &[u8] {
    let l = &l[..l.len().min(MAX_LINE)];
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// Splits `chunk` into the lines it completes (`buf` holds the start of
/// the first), calling `f` on each; keeps the rest in `buf`.
pub(crate) fn split_lines(buf: &mut Vec<u8>, chunk: &[u8], mut f: impl FnMut(&[u8])) {
    let mut start = 0;
    while let Some(p) = chunk[start..].iter().position(|&b| b == b'\n') {
        let end = start + p;
        if buf.is_empty() {
            f(trim_cr(&chunk[start..end]));
        } else {
            let room = MAX_LINE + 1 - buf.len().min(MAX_LINE + 1);
            buf.extend_from_slice(&chunk[start..end.min(start + room)]);
            f(trim_cr(buf));
            buf.clear();
        }
        start = end + 1;
    }
    let room = MAX_LINE + 1 - buf.len().min(MAX_LINE + 1);
    let rest = &chunk[start..];
    buf.extend_from_slice(&rest[..rest.len().min(room)]);
}

/// The line stream of an event (`None` for kinds not matched per line).
pub(crate) fn stream_slot(actor: u32, data: &EventData) -> Option<usize> {
    let code = match data {
        EventData::Input { .. } => 0,
        EventData::Output {
            stream: Stream::Stdout,
            ..
        } => 1,
        EventData::Output {
            stream: Stream::Stderr,
            ..
        } => 2,
        _ => return None,
    };
    Some(actor as usize * 3 + code)
}

/// The bytes of an input or output event.
pub(crate) fn payload(data: &EventData) -> &[u8] {
    match data {
        EventData::Input { bytes, .. } | EventData::Output { bytes, .. } => bytes,
        _ => &[],
    }
}

/// A line as text (invalid UTF-8 replaced).
pub(crate) fn line_text(l: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(l)
}

impl<'a> Probes<'a> {
    /// Probes on a trace whose actors are `names`.
    pub fn new(probes: Vec<Probe<'a>>, names: &'a [String]) -> Probes<'a> {
        let by_kind = by_kind(probes.iter().map(|p| &p.m));
        let track = |k: Kind| probes.iter().any(|p| p.m.per_line(k));
        let n = probes.len();
        Probes {
            track_input: track(Kind::Input),
            track_output: track(Kind::Output),
            by_kind,
            slots: Vec::new(),
            names,
            count: vec![0; n],
            keys: (0..n).map(|_| Vec::new()).collect(),
            touched: Vec::new(),
            cands: Vec::new(),
            probes,
        }
    }

    /// The probes.
    pub fn probes(&self) -> &[Probe<'a>] {
        &self.probes
    }

    /// Tests event `i`: afterwards `touched` lists the probes that hold
    /// there, with their `count` and `keys`.
    pub fn event(&mut self, i: usize, e: &Event) {
        for &p in &self.touched {
            self.count[p] = 0;
            self.keys[p].clear();
        }
        self.touched.clear();
        self.cands.clear();
        let kind = e.data.kind();
        for &p in &self.by_kind[kind as usize] {
            let pr = &self.probes[p];
            if !pr.m.test_event(e) {
                continue;
            }
            if pr.m.per_line(kind) {
                let fixed = pr.parts.map(|parts| pr.m.key_fixed(e, parts, self.names));
                self.cands.push((p, fixed));
            } else {
                self.count[p] = 1;
                self.touched.push(p);
                if let Some(parts) = pr.parts {
                    self.keys[p].push(pr.m.key(e, parts, self.names, None));
                }
            }
        }
        let tracked = match kind {
            Kind::Input => self.track_input,
            Kind::Output => self.track_output,
            _ => false,
        };
        if !tracked {
            return;
        }
        let Some(slot) = stream_slot(e.actor, &e.data) else {
            return;
        };
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || LineBuf {
                last_event: NO_EVENT,
                ..LineBuf::default()
            });
        }
        let st = &mut self.slots[slot];
        st.last_event = i;
        std::mem::swap(&mut st.last_cands, &mut self.cands);
        let (probes, count, keys, touched) = (
            &self.probes,
            &mut self.count,
            &mut self.keys,
            &mut self.touched,
        );
        let cands = &st.last_cands;
        st.last_hit.clear();
        if cands.is_empty() {
            split_lines(&mut st.buf, payload(&e.data), |_| {});
            return;
        }
        split_lines(&mut st.buf, payload(&e.data), |l| {
            let text = line_text(l);
            for (p, fixed) in cands {
                let pr = &probes[*p];
                if pr.m.test_line(&text) {
                    if count[*p] == 0 {
                        touched.push(*p);
                    }
                    count[*p] += 1;
                    if let (Some(parts), Some(fixed)) = (pr.parts, fixed) {
                        keys[*p].push(pr.m.key_line(parts, fixed, &text));
                    }
                }
            }
        });
        st.last_hit.extend(cands.iter().map(|(p, _)| count[*p] > 0));
    }

    /// The matches of the final lines without newline (each belongs to
    /// the last event of its stream). Clears the streams.
    pub fn finish(&mut self) -> Late {
        let mut out = Vec::new();
        for st in &mut self.slots {
            if st.buf.is_empty() || st.last_event == NO_EVENT {
                continue;
            }
            let l = trim_cr(&st.buf);
            let text = line_text(l);
            for (j, (p, fixed)) in st.last_cands.iter().enumerate() {
                let pr = &self.probes[*p];
                if pr.m.test_line(&text) {
                    let key = match (pr.parts, fixed) {
                        (Some(parts), Some(fixed)) => pr.m.key_line(parts, fixed, &text),
                        _ => None,
                    };
                    let hit = st.last_hit.get(j).copied().unwrap_or(false);
                    out.push((st.last_event, *p, key, hit));
                }
            }
            st.buf.clear();
        }
        out.sort_by_key(|x| (x.0, x.1));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&str]) -> Vec<String> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for c in chunks {
            split_lines(&mut buf, c.as_bytes(), |l| {
                out.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        out.push(format!("rest={}", String::from_utf8_lossy(&buf)));
        out
    }

    #[test]
    fn lines_do_not_depend_on_the_chunks() {
        let want = lines(&["ab\r\ncd\n\nef"]);
        assert_eq!(want, ["ab", "cd", "", "rest=ef"]);
        for chunks in [
            &["a", "b\r", "\ncd\n", "\nef"][..],
            &["ab\r\nc", "d\n\ne", "f"][..],
            &["", "ab\r\ncd\n\nef", ""][..],
        ] {
            assert_eq!(lines(chunks), want, "{chunks:?}");
        }
    }

    #[test]
    fn long_lines_are_cut_the_same_way() {
        let long = "x".repeat(MAX_LINE + 10) + "\n";
        let whole = lines(&[&long]);
        let (a, b) = long.split_at(MAX_LINE - 3);
        assert_eq!(lines(&[a, b]), whole);
        assert_eq!(whole[0].len(), MAX_LINE);
    }
}
