//! The streaming expect matcher: finds a pattern in output that arrives in
//! chunks, looking at each byte once, with bounded memory.
//!
//! * A **literal** (a `literal = true` expect, or a regex with no
//!   metacharacter, like `md5done`) is searched with `memchr::memmem`, the
//!   last `len - 1` bytes of the previous chunk are kept so that a match
//!   spanning two chunks is found.
//! * A **regex** runs a lazy DFA (regex-automata's hybrid DFA) whose state
//!   is carried from chunk to chunk. When the DFA reports a match, it keeps
//!   going over the bytes already at hand until the leftmost-first match can
//!   no longer grow; the exact span and the captures are then computed by
//!   `regex` over a bounded window ([`WINDOW`] bytes) ending there.
//!
//! A match is decided on the bytes available when it is first seen: a greedy
//! `\d+` at the very end of a chunk does not wait for more digits.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

/// Bytes of output kept before a regex match to compute its span and
/// captures.
pub const WINDOW: usize = 256 << 10;

/// A compiled expect pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    /// Shared: a [`Matcher`] holds a clone of its pattern (so it can live in
    /// a session's capture state while an expect waits).
    kind: std::sync::Arc<PatKind>,
}

#[derive(Debug, Clone)]
enum PatKind {
    Literal(Box<memchr::memmem::Finder<'static>>),
    Regex {
        dfa: Box<DFA>,
        re: regex::bytes::Regex,
    },
    /// Every one of these, in any order (an unordered `expect`).
    All(Vec<Pattern>),
}

/// A successful match in the last chunk fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Offset in the chunk just after the match: output up to here is
    /// consumed by the expect.
    pub end: usize,
    /// The matched text (UTF-8, lossy).
    pub matched: String,
    /// Named captures and their text.
    pub captures: Vec<(String, String)>,
}

fn is_plain(p: &str) -> bool {
    !p.chars().any(|c| "\\.+*?()|[]{}^$#&-~".contains(c))
}

impl Pattern {
    /// Compiles `source` as a regex (Rust syntax), or as literal text.
    pub fn new(source: &str, literal: bool) -> Result<Pattern, String> {
        if literal || (is_plain(source) && !source.is_empty()) {
            let f = Box::new(memchr::memmem::Finder::new(source.as_bytes()).into_owned());
            return Ok(Pattern {
                source: source.to_string(),
                kind: std::sync::Arc::new(PatKind::Literal(f)),
            });
        }
        let re = regex::bytes::Regex::new(source).map_err(|e| one_line_regex_error(&e))?;
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::LeftmostFirst)
                    .unicode_word_boundary(true),
            )
            .build(source)
            .map_err(|e| format!("bad regex: {e}"))?;
        Ok(Pattern {
            source: source.to_string(),
            kind: std::sync::Arc::new(PatKind::Regex {
                dfa: Box::new(dfa),
                re,
            }),
        })
    }

    /// A pattern that matches once each of `parts` has matched, in any
    /// order, each in the output since the start (they may overlap). The
    /// hit ends where the last of them ends; its text is the parts' matched
    /// texts, one per line, in the order written; its captures are theirs.
    pub fn all(parts: Vec<Pattern>) -> Pattern {
        let source = parts
            .iter()
            .map(|p| p.source.as_str())
            .collect::<Vec<_>>()
            .join(" & ");
        Pattern {
            source,
            kind: std::sync::Arc::new(PatKind::All(parts)),
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the literal fast path is used.
    pub fn is_literal(&self) -> bool {
        matches!(*self.kind, PatKind::Literal(_))
    }

    /// Names of the pattern's named capture groups.
    pub fn capture_names(&self) -> Vec<String> {
        match &*self.kind {
            PatKind::Literal(_) => Vec::new(),
            PatKind::Regex { re, .. } => re.capture_names().flatten().map(String::from).collect(),
            PatKind::All(ps) => ps.iter().flat_map(|p| p.capture_names()).collect(),
        }
    }

    /// A matcher at the start of a stream.
    pub fn matcher(&self) -> Matcher {
        Matcher::new(self.clone())
    }
}

/// A pattern as descriptions and messages show it: `"text"` for literal
/// text, `/regex/` for a regex.
pub fn shown(pattern: &str, literal: bool) -> String {
    if literal {
        format!("\"{pattern}\"")
    } else {
        format!("/{pattern}/")
    }
}

fn one_line_regex_error(e: &regex::Error) -> String {
    let s = e.to_string();
    let last = s
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .map(|l| l.trim().trim_start_matches("error:").trim().to_string());
    match last {
        Some(m) => format!("bad regex: {m}"),
        None => format!("bad regex: {}", s.lines().last().unwrap_or("").trim()),
    }
}

/// The state of one expect over a stream of chunks.
#[derive(Debug)]
pub struct Matcher {
    pat: Pattern,
    /// Regex path: DFA cache and current state; `None` state after a quit
    /// (then the window is searched with `regex`, still bounded).
    cache: Option<Cache>,
    state: Option<LazyStateID>,
    /// Bytes seen before the current chunk that a match may still use.
    tail: Vec<u8>,
    started: bool,
    /// An unordered pattern: each part's matcher, and its hit once found.
    parts: Vec<(Matcher, Option<Hit>)>,
}

impl Matcher {
    fn new(pat: Pattern) -> Matcher {
        let parts = match &*pat.kind {
            PatKind::All(ps) => ps.iter().map(|p| (p.matcher(), None)).collect(),
            _ => Vec::new(),
        };
        let (cache, state) = match &*pat.kind {
            PatKind::Literal(_) | PatKind::All(_) => (None, None),
            PatKind::Regex { dfa, .. } => {
                let mut cache = dfa.create_cache();
                let st = dfa
                    .start_state(&mut cache, &start::Config::new().anchored(Anchored::No))
                    .ok();
                (Some(cache), st)
            }
        };
        Matcher {
            pat,
            cache,
            state,
            tail: Vec::new(),
            started: false,
            parts,
        }
    }

    /// Feeds the next chunk; returns the match if it ends in this chunk.
    /// After a hit the matcher is spent.
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Hit> {
        let first = !self.started;
        self.started = true;
        let kind = std::sync::Arc::clone(&self.pat.kind);
        match &*kind {
            PatKind::Literal(f) => self.feed_literal(f, chunk),
            PatKind::All(_) => self.feed_all(chunk),
            PatKind::Regex { dfa, re } => {
                if first && re.is_match(b"") {
                    return Some(Hit {
                        end: 0,
                        matched: String::new(),
                        captures: captures_of(re, b""),
                    });
                }
                match self.state {
                    Some(_) => self.feed_dfa(dfa, re, chunk),
                    None => self.feed_slow(re, chunk),
                }
            }
        }
    }

    fn feed_all(&mut self, chunk: &[u8]) -> Option<Hit> {
        let mut end = None;
        for (m, hit) in &mut self.parts {
            if hit.is_none() {
                if let Some(h) = m.feed(chunk) {
                    end = Some(end.unwrap_or(0).max(h.end));
                    *hit = Some(h);
                }
            }
        }
        let end = end?;
        if self.parts.iter().any(|(_, h)| h.is_none()) {
            return None;
        }
        let hits: Vec<&Hit> = self.parts.iter().filter_map(|(_, h)| h.as_ref()).collect();
        Some(Hit {
            end,
            matched: hits
                .iter()
                .map(|h| h.matched.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            captures: hits.iter().flat_map(|h| h.captures.clone()).collect(),
        })
    }

    fn feed_literal(&mut self, f: &memchr::memmem::Finder<'_>, chunk: &[u8]) -> Option<Hit> {
        let n = f.needle().len();
        let matched = || String::from_utf8_lossy(f.needle()).into_owned();
        if n == 0 {
            return Some(Hit {
                end: 0,
                matched: String::new(),
                captures: Vec::new(),
            });
        }
        if !self.tail.is_empty() {
            // Only matches that start in the tail: join it with the chunk's head.
            let head = &chunk[..chunk.len().min(n - 1)];
            let mut joint = Vec::with_capacity(self.tail.len() + head.len());
            joint.extend_from_slice(&self.tail);
            joint.extend_from_slice(head);
            if let Some(p) = f.find(&joint) {
                if p < self.tail.len() {
                    return Some(Hit {
                        end: p + n - self.tail.len(),
                        matched: matched(),
                        captures: Vec::new(),
                    });
                }
            }
        }
        if let Some(p) = f.find(chunk) {
            return Some(Hit {
                end: p + n,
                matched: matched(),
                captures: Vec::new(),
            });
        }
        keep_tail(&mut self.tail, chunk, n - 1);
        None
    }

    fn feed_dfa(&mut self, dfa: &DFA, re: &regex::bytes::Regex, chunk: &[u8]) -> Option<Hit> {
        let cache = self.cache.as_mut()?;
        let mut sid = self.state?;
        // Offset in the chunk where the last match seen ends (matches are
        // reported one byte late by the DFA).
        let mut last_end: Option<usize> = None;
        let mut i = 0;
        while i < chunk.len() {
            let next = match dfa.next_state(cache, sid, chunk[i]) {
                Ok(s) => s,
                Err(_) => {
                    // The cache thrashes: fall back to the bounded window.
                    self.state = None;
                    return self.feed_slow(re, chunk);
                }
            };
            sid = next;
            if sid.is_tagged() {
                if sid.is_match() {
                    last_end = Some(i);
                } else if sid.is_dead() {
                    break;
                } else if sid.is_quit() {
                    self.state = None;
                    return self.feed_slow(re, chunk);
                }
            } else if last_end.is_some() {
                // In leftmost-first mode the DFA only goes on from a match
                // while it can still grow; keep walking until it cannot.
            }
            i += 1;
        }
        if i == chunk.len() {
            if let Ok(eoi) = dfa.next_eoi_state(cache, sid) {
                if eoi.is_match() {
                    last_end = Some(chunk.len());
                }
            }
        }
        self.state = Some(sid);
        match last_end {
            Some(end) => Some(self.hit_in_window(re, chunk, end)),
            None => {
                keep_tail(&mut self.tail, chunk, WINDOW);
                None
            }
        }
    }

    fn hit_in_window(&mut self, re: &regex::bytes::Regex, chunk: &[u8], end: usize) -> Hit {
        let mut window = std::mem::take(&mut self.tail);
        let tail_len = window.len();
        window.extend_from_slice(&chunk[..end]);
        // The last match that ends exactly at `end` and starts earliest:
        // the leftmost-first match the DFA found.
        let mut best: Option<regex::bytes::Captures<'_>> = None;
        for c in re.captures_iter(&window) {
            let m = c.get(0).map(|m| (m.start(), m.end()));
            if let Some((_, e)) = m {
                if e == window.len() {
                    best = Some(c);
                    break;
                }
            }
        }
        let (matched, captures) = match best {
            Some(c) => (
                String::from_utf8_lossy(c.get(0).map(|m| m.as_bytes()).unwrap_or(b"")).into_owned(),
                named(re, &c),
            ),
            None => {
                // The match is longer than the window: report what we have.
                let from = window.len().saturating_sub(200);
                (
                    String::from_utf8_lossy(&window[from..]).into_owned(),
                    Vec::new(),
                )
            }
        };
        let _ = tail_len;
        Hit {
            end,
            matched,
            captures,
        }
    }

    fn feed_slow(&mut self, re: &regex::bytes::Regex, chunk: &[u8]) -> Option<Hit> {
        let tail_len = self.tail.len();
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(chunk);
        if let Some(c) = re.captures(&window) {
            let m = c.get(0)?;
            let end = m.end().saturating_sub(tail_len);
            return Some(Hit {
                end,
                matched: String::from_utf8_lossy(m.as_bytes()).into_owned(),
                captures: named(re, &c),
            });
        }
        let keep = window.len().min(WINDOW);
        self.tail = window[window.len() - keep..].to_vec();
        None
    }
}

fn named(re: &regex::bytes::Regex, c: &regex::bytes::Captures<'_>) -> Vec<(String, String)> {
    re.capture_names()
        .flatten()
        .map(|n| {
            let v = c
                .name(n)
                .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                .unwrap_or_default();
            (n.to_string(), v)
        })
        .collect()
}

fn captures_of(re: &regex::bytes::Regex, hay: &[u8]) -> Vec<(String, String)> {
    re.captures(hay).map(|c| named(re, &c)).unwrap_or_default()
}

/// Keeps the last `max` bytes of `tail ++ chunk` in `tail`.
fn keep_tail(tail: &mut Vec<u8>, chunk: &[u8], max: usize) {
    if max == 0 {
        tail.clear();
        return;
    }
    if chunk.len() >= max {
        tail.clear();
        tail.extend_from_slice(&chunk[chunk.len() - max..]);
    } else {
        tail.extend_from_slice(chunk);
        if tail.len() > max {
            let cut = tail.len() - max;
            tail.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` cut at `cut`, returns the absolute end and the hit.
    fn run(p: &Pattern, parts: &[&[u8]]) -> Option<(usize, Hit)> {
        let mut m = p.matcher();
        let mut base = 0;
        for part in parts {
            if let Some(h) = m.feed(part) {
                return Some((base + h.end, h));
            }
            base += part.len();
        }
        None
    }

    #[test]
    fn literal_across_every_split() {
        let p = Pattern::new("md5done", false).unwrap();
        assert!(p.is_literal());
        let text = b"xxxx md5dmd5done yyy";
        for cut in 0..=text.len() {
            let (end, h) = run(&p, &[&text[..cut], &text[cut..]]).unwrap();
            assert_eq!(end, 16, "cut {cut}");
            assert_eq!(h.matched, "md5done");
        }
        // Split in three, each part shorter than the needle.
        let (end, _) = run(&p, &[b"..md5", b"do", b"ne.."]).unwrap();
        assert_eq!(end, 9);
        assert!(run(&p, &[b"md5don", b"x"]).is_none());
    }

    #[test]
    fn regex_across_every_split_with_captures() {
        let p = Pattern::new(r"port=(?P<port>\d+);", false).unwrap();
        assert!(!p.is_literal());
        assert_eq!(p.capture_names(), vec!["port".to_string()]);
        let text = b"noise port=x; port=4242; tail";
        for cut in 0..=text.len() {
            let (end, h) = run(&p, &[&text[..cut], &text[cut..]]).unwrap();
            assert_eq!(end, 24, "cut {cut}");
            assert_eq!(h.matched, "port=4242;");
            assert_eq!(h.captures, vec![("port".into(), "4242".into())]);
        }
    }

    #[test]
    fn regex_leftmost_first_in_one_chunk() {
        let p = Pattern::new(r"v=(?P<v>\d+)", false).unwrap();
        let (end, h) = run(&p, &[b"a v=123 b"]).unwrap();
        assert_eq!((end, h.captures[0].1.as_str()), (7, "123"));
    }

    #[test]
    fn binary_and_invalid_utf8() {
        let p = Pattern::new("END", true).unwrap();
        let (end, _) = run(&p, &[b"\xff\xfe\x00EN", b"D\x80"]).unwrap();
        assert_eq!(end, 6);
        let p = Pattern::new(r"E.D", false).unwrap();
        assert!(run(&p, &[b"\xff\xfe\x00E\x01D"]).is_some());
    }

    #[test]
    fn literal_flag_keeps_metacharacters() {
        let p = Pattern::new("a.b(", true).unwrap();
        assert!(run(&p, &[b"xa.b(y"]).is_some());
        assert!(run(&p, &[b"xaxb(y"]).is_none());
        assert!(Pattern::new("a(", false)
            .unwrap_err()
            .starts_with("bad regex"));
    }

    #[test]
    fn unordered_parts_in_any_order_and_split() {
        let p = Pattern::all(vec![
            Pattern::new(r"\+slave (?P<replica>\d+);", false).unwrap(),
            Pattern::new("+sentinel", true).unwrap(),
        ]);
        assert_eq!(p.capture_names(), vec!["replica".to_string()]);
        for text in [
            &b"x +sentinel a +slave 6380; y"[..],
            &b"x +slave 6380; +sentinel y"[..],
        ] {
            for cut in 0..=text.len() {
                let (end, h) = run(&p, &[&text[..cut], &text[cut..]]).unwrap();
                assert_eq!(end, text.len() - 2, "cut {cut}");
                assert_eq!(h.matched, "+slave 6380;\n+sentinel");
                assert_eq!(h.captures, vec![("replica".into(), "6380".into())]);
            }
        }
        assert!(run(&p, &[b"+slave 1; +slave 2;"]).is_none());
    }

    #[test]
    fn bounded_memory_on_long_streams() {
        let p = Pattern::new(r"ne(e)dle\d", false).unwrap();
        let mut m = p.matcher();
        let junk = vec![b'z'; 1 << 20];
        for _ in 0..8 {
            assert!(m.feed(&junk).is_none());
            assert!(m.tail.len() <= WINDOW);
        }
        assert!(m.feed(b"..needle7").is_some());
    }
}
