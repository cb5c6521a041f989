//! The report's time-merged log: every session's output, line by line.
//!
//! A line is the text between newlines of one session stream (an actor's
//! stdout or its stderr), wherever the reads split it: a line that arrived
//! in several `output` events is one log line, not one per read.
//!
//! **Which event a line links to:** the chunk in which it *ended* (the one
//! holding its newline), and the line's time in the log is that event's
//! time. Only then was the line complete: only from then on could an
//! expect see the whole line (an expect matches the byte stream, so it may
//! match a part of a line earlier; that part's own chunk is in the chart),
//! and it is where `dtest-check`'s line atoms (`lines`) put it too, so a
//! property's event and the log agree. A last line without newline, at the
//! end of the trace, is still shown, linked to its last chunk.
//!
//! Memory stays bounded: a line still open is kept (per stream) up to
//! [`LINE_MAX`] bytes; a longer line is shown as pieces of that size, each
//! marked *cut* (it goes on in the next log line) and linked to the chunk
//! in which the line went past the limit (that is when it was known to be
//! too long), then its rest.
//!
//! The page gets the lines compactly, without a second copy of the
//! output: a line that is whole in one chunk (the usual case) is a slice of
//! its event's embedded text, from a UTF-16 offset to the next newline (a
//! final `\r` stripped by the page); only a line joined from several chunks
//! or cut has its own text (at most [`LOG_TEXT_MAX`] bytes of it: a log row
//! shows 400 characters). The lines are in time order (then trace order).
//!
//! Encoding (`log`, base64): varint line count, then per line the zigzag
//! difference of its event from the previous line's event and a code:
//! `2 * offset` for a slice, `4 * index + 1` for own text number `index` of
//! `logtexts`, `4 * index + 3` for the same marked cut.

use dtest_trace::Stream;

use crate::{js_str, shortened, varint, zigzag};

/// The longest line kept whole (bytes); a longer one is cut into pieces.
pub(crate) const LINE_MAX: usize = 64 * 1024;
/// The most of a joined or cut line's text the page gets (bytes).
pub(crate) const LOG_TEXT_MAX: usize = 1024;

/// The line being read on one session stream.
#[derive(Default)]
struct Slot {
    /// Its bytes so far (at most [`LINE_MAX`]).
    pending: Vec<u8>,
    /// The stream's last chunk (the event a final line links to).
    last: u64,
}

/// The lines, as they end.
#[derive(Default)]
struct Lines {
    /// Per line: its event, its code (see the module's doc).
    lines: Vec<(u64, u64)>,
    /// The own texts, as a JSON array without its brackets.
    texts: String,
    ntexts: u64,
}

impl Lines {
    /// A line with its own text (`bytes`, UTF-8 lossy), shortened to `max`.
    fn own(&mut self, ev: u64, bytes: &[u8], cut: bool, max: usize) {
        let mut text = String::from_utf8_lossy(bytes);
        if !cut {
            if let Some(t) = text.strip_suffix('\r') {
                text = t.to_string().into();
            }
        }
        if self.ntexts > 0 {
            self.texts.push(',');
        }
        if text.len() > max {
            js_str(&mut self.texts, &shortened(&text, max));
        } else {
            js_str(&mut self.texts, &text);
        }
        self.lines
            .push((ev, self.ntexts * 4 + if cut { 3 } else { 1 }));
        self.ntexts += 1;
    }
}

/// An output chunk, as the log reads it.
#[derive(Clone, Copy)]
pub(crate) struct Chunk<'a> {
    /// Its event (the send).
    pub ev: u64,
    /// The session that read it.
    pub actor: u32,
    pub stream: Stream,
    pub bytes: &'a [u8],
    /// `bytes`, UTF-8 lossy.
    pub text: &'a str,
    /// How much of `text` the page embeds as it is (bytes); the rest is
    /// cut from its event's text.
    pub shown: usize,
}

/// Builds the log from the output chunks, in trace order.
pub(crate) struct Log {
    /// Per actor and stream (`actor * 2 + stream`).
    slots: Vec<Slot>,
    out: Lines,
}

fn utf16_len(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.encode_utf16().count() as u64
    }
}

/// Adds `bytes` to the open line `pending`; each time it would pass
/// [`LINE_MAX`], its first `LINE_MAX` bytes (backed off to a character
/// start) become a line marked cut, linked to `ev`.
fn feed(pending: &mut Vec<u8>, mut bytes: &[u8], ev: u64, out: &mut Lines, max: usize) {
    while pending.len() + bytes.len() > LINE_MAX {
        let take = LINE_MAX + 1 - pending.len();
        pending.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        let mut c = LINE_MAX;
        for _ in 0..3 {
            if pending[c] & 0xc0 == 0x80 {
                c -= 1;
            }
        }
        if pending[c] & 0xc0 == 0x80 {
            // Not UTF-8 there anyway: cut at the limit.
            c = LINE_MAX;
        }
        out.own(ev, &pending[..c], true, max);
        pending.drain(..c);
    }
    pending.extend_from_slice(bytes);
}

impl Log {
    /// A log for a trace of `actors` actors.
    pub(crate) fn new(actors: usize) -> Log {
        Log {
            slots: (0..actors * 2).map(|_| Slot::default()).collect(),
            out: Lines::default(),
        }
    }

    /// The longest open line kept (bytes).
    #[cfg(test)]
    pub(crate) fn pending_max(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.pending.len())
            .max()
            .unwrap_or(0)
    }

    /// Bytes of own text so far (they count in the report's text budget).
    pub(crate) fn text_bytes(&self) -> usize {
        self.out.texts.len()
    }

    /// An output chunk (a send, on a session); an own text is shortened
    /// to `max` bytes.
    pub(crate) fn output(&mut self, c: &Chunk<'_>, max: usize) {
        let Chunk {
            ev,
            actor,
            stream,
            bytes,
            text,
            shown,
        } = *c;
        let Some(slot) = self.slots.get_mut(
            actor as usize * 2
                + match stream {
                    Stream::Stdout => 0,
                    Stream::Stderr => 1,
                },
        ) else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        slot.last = ev;
        let out = &mut self.out;
        // A newline in the bytes is one in their text, in the same order
        // (lossy decoding never makes nor eats one).
        let mut text_nl = text.bytes().enumerate().filter(|&(_, b)| b == b'\n');
        let (mut start, mut tstart) = (0, 0);
        let (mut tdone, mut udone) = (0, 0u64);
        while let Some(p) = bytes[start..].iter().position(|&b| b == b'\n') {
            let end = start + p;
            let tend = text_nl.next().map_or(usize::MAX, |(i, _)| i);
            if slot.pending.is_empty() && end - start <= LINE_MAX && tend < shown {
                // Whole in this chunk (linked to it), and embedded: a slice
                // of its text.
                udone += utf16_len(&text[tdone..tstart]);
                tdone = tstart;
                out.lines.push((ev, udone * 2));
            } else {
                // Begun in earlier chunks (or too long): it ends here, so
                // it links to this event, where it became a whole line
                // (see the module's doc), not to the chunk it began in.
                feed(&mut slot.pending, &bytes[start..end], ev, out, max);
                out.own(ev, &slot.pending, false, max);
                slot.pending.clear();
            }
            start = end + 1;
            tstart = tend.saturating_add(1);
        }
        feed(&mut slot.pending, &bytes[start..], ev, out, max);
    }

    /// The page's `log` (base64) and `logtexts` (a JSON array): the last
    /// lines without newline added, linked to their last chunks, and every
    /// line in order of its event's time (`times`, by event), then of the
    /// trace.
    pub(crate) fn finish(mut self, times: &[u64], max: usize) -> (String, String) {
        for s in &mut self.slots {
            if !s.pending.is_empty() {
                self.out.own(s.last, &s.pending, false, max);
                s.pending = Vec::new();
            }
        }
        let key = |&(e, _): &(u64, u64)| (times.get(e as usize).copied().unwrap_or(0), e);
        let lines = &mut self.out.lines;
        if !lines.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
            // Stable: the lines of one event keep their order.
            lines.sort_by_key(key);
        }
        let mut col = Vec::with_capacity(lines.len() * 3 + 8);
        varint(&mut col, lines.len() as u64);
        let mut prev = 0u64;
        for &(e, code) in lines.iter() {
            varint(&mut col, zigzag(e as i64 - prev as i64));
            varint(&mut col, code);
            prev = e;
        }
        (
            crate::base64(&col),
            format!("[{}]", std::mem::take(&mut self.out.texts)),
        )
    }
}
