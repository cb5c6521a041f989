//! The shell protocol's bytes, with no I/O: the lines dtest writes to a
//! shell, and the [`Decoder`] that finds the markers the shell prints back
//! in its output streams.
//!
//! Every session gets a random nonce. The shell is made to print a *marker*
//! `RS "dtest:" NONCE ":" STATUS RS` (RS is the byte 0x1e) each time a
//! command ends, and a *start marker* `RS "dtest:" NONCE ":s" RS` when it
//! begins one:
//!
//! * on a pty the shell is interactive, so the end marker is its prompt
//!   (`PS1`, which shells expand with `$?` in it). A prompt is printed even
//!   when a command line is aborted by Ctrl-C, which a `; printf` suffix is
//!   not. Echo is turned off with `stty -echo`, `PS2` is emptied, and
//!   `stty noflsh` keeps the terminal from discarding output not yet read
//!   when the interrupt character stops a command.
//! * on pipes the shell is not interactive: each command line is followed
//!   by a `printf` of the end marker on stderr, then on stdout. A command
//!   has ended when both have been seen, so everything it wrote to either
//!   stream is known before its end, whatever order the two streams are
//!   read in (an SSH server forwards them independently).
//!
//! Command lines are passed through `eval '...'` (single-quoted), so a
//! command may hold newlines, comments or quotes and still yields exactly one
//! marker. Markers are removed by a streaming [`MarkerFilter`] that finds
//! them even when a read splits one in two; they never reach the expect
//! matcher, the logs or the trace.

use std::time::Instant;

use dtest_trace::{ExitStatus, Stream};

use super::signal_name;

/// What the [`Decoder`] finds in a session's output, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Output bytes of a stream (markers removed).
    Output(Stream, &'a [u8]),
    /// The shell has read a command line and begins it.
    Started,
    /// A command (or the set-up line) ended with this `$?`.
    End(i32),
}

/// The shell protocol of one session: its nonce, the lines written to the
/// shell, and the decoding of what comes back.
#[derive(Debug, Clone)]
pub struct Protocol {
    nonce: String,
    pty: bool,
}

impl Protocol {
    /// A protocol with a fresh random nonce.
    pub fn new(pty: bool) -> Protocol {
        Protocol::with_nonce(new_nonce(), pty)
    }

    /// A protocol with a given nonce (tests, mock shells).
    pub fn with_nonce(nonce: impl Into<String>, pty: bool) -> Protocol {
        Protocol {
            nonce: nonce.into(),
            pty,
        }
    }

    /// The session's nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Whether the session runs on a pty.
    pub fn is_pty(&self) -> bool {
        self.pty
    }

    fn end_printf(&self, status: &str) -> String {
        let p = format!("printf '\\036dtest:%s:%d\\036' {} {status}", self.nonce);
        format!("{p} >&2; {p}")
    }

    /// The set-up line: echo off and prompts on a pty; on pipes, one end
    /// marker (status 0) that says the shell reads its input.
    pub fn init_line(&self) -> String {
        if self.pty {
            format!(
                "stty -echo 2>/dev/null; stty noflsh 2>/dev/null; \
                 bind 'set enable-bracketed-paste off' 2>/dev/null; \
                 PROMPT_COMMAND=''; PS2=''; PS1=\"$(printf '\\036')dtest:{n}:\\$?$(printf '\\036')\"\n",
                n = self.nonce
            )
        } else {
            format!("{}\n", self.end_printf("0"))
        }
    }

    /// The bytes written to the shell to run `command`: a start marker,
    /// the command, and (on pipes) the end markers with its status.
    pub fn command_line(&self, command: &str) -> String {
        let start = format!("printf '\\036dtest:%s:s\\036' {}", self.nonce);
        if self.pty {
            format!("{start}; eval {}\n", shell_quote(command))
        } else {
            format!(
                "{start}; eval {}; __dtest_st=$?; {}\n",
                shell_quote(command),
                self.end_printf("\"$__dtest_st\"")
            )
        }
    }

    /// A decoder of this session's output.
    pub fn decoder(&self) -> Decoder {
        Decoder {
            pty: self.pty,
            out: MarkerFilter::new(&self.nonce),
            err: MarkerFilter::new(&self.nonce),
            end_out: None,
            end_err: false,
        }
    }
}

/// Decodes a session's output streams: removes the markers and reports
/// starts and ends in order (see the module documentation).
#[derive(Debug, Clone)]
pub struct Decoder {
    pty: bool,
    out: MarkerFilter,
    err: MarkerFilter,
    /// Pipes: the stdout end marker seen (its status, and when), waiting
    /// for the stderr one.
    end_out: Option<(i32, Instant)>,
    /// Pipes: the stderr end marker seen, waiting for the stdout one.
    end_err: bool,
}

impl Decoder {
    /// Feeds a chunk of `stream`; calls `f` with its events in order.
    pub fn feed(&mut self, stream: Stream, chunk: &[u8], f: &mut dyn FnMut(Event<'_>)) {
        let pty = self.pty;
        let filter = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let end_out = &mut self.end_out;
        let end_err = &mut self.end_err;
        filter.feed(chunk, &mut |seg| match seg {
            Segment::Data(d) => f(Event::Output(stream, d)),
            Segment::Started => {
                if stream == Stream::Stdout {
                    f(Event::Started)
                }
            }
            Segment::Marker(st) if pty => f(Event::End(st)),
            Segment::Marker(st) => match stream {
                Stream::Stdout if *end_err => {
                    *end_err = false;
                    f(Event::End(st))
                }
                Stream::Stdout => *end_out = Some((st, Instant::now())),
                Stream::Stderr => match end_out.take() {
                    Some((st, _)) => f(Event::End(st)),
                    None => *end_err = true,
                },
            },
        });
    }

    /// Pipes: since when the stdout end marker was seen without the stderr
    /// one (a command may have closed or redirected the shell's stderr).
    pub fn half_ended_since(&self) -> Option<Instant> {
        self.end_out.map(|(_, t)| t)
    }

    /// Reports a half-seen end (see [`Decoder::half_ended_since`]) as an
    /// end: the capture gives the stderr marker a bounded time to arrive.
    pub fn force_end(&mut self, f: &mut dyn FnMut(Event<'_>)) {
        if let Some((st, _)) = self.end_out.take() {
            f(Event::End(st));
        }
    }

    /// At the end of the streams: the bytes held back as a possible marker
    /// start are output after all.
    pub fn finish(&mut self, f: &mut dyn FnMut(Event<'_>)) {
        for (stream, filter) in [
            (Stream::Stdout, &mut self.out),
            (Stream::Stderr, &mut self.err),
        ] {
            let held = filter.take_held();
            if !held.is_empty() {
                f(Event::Output(stream, &held));
            }
        }
    }
}

/// The byte that opens and closes a marker (ASCII record separator).
const RS: u8 = 0x1e;

/// A segment produced by [`MarkerFilter::feed`].
#[derive(Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Plain output.
    Data(&'a [u8]),
    /// A marker with the status the shell printed in it.
    Marker(i32),
    /// The start marker: the shell has read a command line and begins it.
    Started,
}

/// Removes the markers of one nonce from a byte stream, finding markers
/// split across chunks; each byte is looked at once, and at most one
/// marker's length is held back between chunks.
#[derive(Debug, Clone)]
pub struct MarkerFilter {
    /// `RS "dtest:" NONCE ":"`.
    prefix: Vec<u8>,
    hold: Vec<u8>,
}

enum Parse {
    Marker(i32, usize),
    Started(usize),
    Incomplete,
    NotMarker,
}

impl MarkerFilter {
    /// Longest status text accepted in a marker.
    const MAX_DIGITS: usize = 11;

    /// A filter for markers of `nonce`.
    pub fn new(nonce: &str) -> MarkerFilter {
        let mut prefix = vec![RS];
        prefix.extend_from_slice(b"dtest:");
        prefix.extend_from_slice(nonce.as_bytes());
        prefix.push(b':');
        MarkerFilter {
            prefix,
            hold: Vec::new(),
        }
    }

    fn parse(&self, d: &[u8]) -> Parse {
        let p = &self.prefix;
        let k = d.len().min(p.len());
        if d[..k] != p[..k] {
            return Parse::NotMarker;
        }
        if d.len() < p.len() {
            return Parse::Incomplete;
        }
        let rest = &d[p.len()..];
        match rest {
            [b's'] => return Parse::Incomplete,
            [b's', RS, ..] => return Parse::Started(p.len() + 2),
            _ => {}
        }
        let mut i = 0;
        if rest.first() == Some(&b'-') {
            i = 1;
        }
        while i < rest.len() && rest[i].is_ascii_digit() {
            i += 1;
            if i > Self::MAX_DIGITS {
                return Parse::NotMarker;
            }
        }
        if i == rest.len() {
            return Parse::Incomplete;
        }
        if rest[i] != RS || i == 0 {
            return Parse::NotMarker;
        }
        let Ok(n) = std::str::from_utf8(&rest[..i])
            .unwrap_or("x")
            .parse::<i32>()
        else {
            return Parse::NotMarker;
        };
        Parse::Marker(n, p.len() + i + 1)
    }

    /// Feeds a chunk; calls `out` with its data and markers in order.
    pub fn feed(&mut self, chunk: &[u8], out: &mut dyn FnMut(Segment<'_>)) {
        if self.hold.is_empty() {
            self.scan(chunk, out);
        } else {
            // Rare: the previous chunk ended inside a possible marker.
            let mut data = std::mem::take(&mut self.hold);
            data.extend_from_slice(chunk);
            self.scan(&data, out);
        }
    }

    fn scan(&mut self, data: &[u8], out: &mut dyn FnMut(Segment<'_>)) {
        let mut i = 0;
        while i < data.len() {
            let Some(k) = memchr::memchr(RS, &data[i..]) else {
                out(Segment::Data(&data[i..]));
                return;
            };
            let p = i + k;
            if p > i {
                out(Segment::Data(&data[i..p]));
            }
            match self.parse(&data[p..]) {
                Parse::Marker(n, len) => {
                    out(Segment::Marker(n));
                    i = p + len;
                }
                Parse::Started(len) => {
                    out(Segment::Started);
                    i = p + len;
                }
                Parse::Incomplete => {
                    self.hold = data[p..].to_vec();
                    return;
                }
                Parse::NotMarker => {
                    out(Segment::Data(&data[p..p + 1]));
                    i = p + 1;
                }
            }
        }
    }

    /// Returns what is held back (at the end of the stream).
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.hold)
    }
}

/// The exit status a shell's `$?` stands for: above 128 a signal.
pub fn status_from_shell(n: i32) -> ExitStatus {
    if n > 128 && n < 128 + 65 {
        ExitStatus::Signal(signal_name(n - 128))
    } else {
        ExitStatus::Code(n)
    }
}

/// Quotes `s` for a POSIX shell (single quotes).
pub fn shell_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for c in s.chars() {
        if c == '\'' {
            q.push_str("'\\''");
        } else {
            q.push(c);
        }
    }
    q.push('\'');
    q
}

/// A random nonce of 16 hex digits.
pub fn new_nonce() -> String {
    let mut b = [0u8; 8];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = (t ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    dtest_trace::model::hex(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(f: &mut MarkerFilter, chunks: &[&[u8]]) -> (Vec<u8>, Vec<i32>) {
        let mut data = Vec::new();
        let mut marks = Vec::new();
        for c in chunks {
            f.feed(c, &mut |s| match s {
                Segment::Data(d) => data.extend_from_slice(d),
                Segment::Marker(n) => marks.push(n),
                Segment::Started => marks.push(-1000),
            });
        }
        (data, marks)
    }

    #[test]
    fn marker_split_at_every_position() {
        let stream = b"\x1edtest:abc:s\x1ehello\x1edtest:abc:17\x1eworld\x1e\x1edtest:abX";
        for cut in 0..stream.len() {
            let mut f = MarkerFilter::new("abc");
            let (d, m) = collect(&mut f, &[&stream[..cut], &stream[cut..]]);
            let mut all = d;
            all.extend(f.take_held());
            assert_eq!(m, vec![-1000, 17], "cut {cut}");
            assert_eq!(all, b"helloworld\x1e\x1edtest:abX".to_vec(), "cut {cut}");
        }
    }

    #[test]
    fn other_nonce_is_data() {
        let mut f = MarkerFilter::new("abc");
        let (mut d, m) = collect(&mut f, &[b"\x1edtest:zzz:1\x1e"]);
        d.extend(f.take_held());
        assert!(m.is_empty());
        assert_eq!(d, b"\x1edtest:zzz:1\x1e");
    }

    #[test]
    fn statuses() {
        assert_eq!(status_from_shell(0), ExitStatus::Code(0));
        assert_eq!(status_from_shell(130), ExitStatus::Signal("INT".into()));
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    fn decode(p: &Protocol, chunks: &[(Stream, &[u8])]) -> Vec<String> {
        let mut d = p.decoder();
        let mut v = Vec::new();
        for (s, c) in chunks {
            d.feed(*s, c, &mut |e| {
                v.push(match e {
                    Event::Output(s, b) => format!("{s:?}:{}", String::from_utf8_lossy(b)),
                    Event::Started => "start".into(),
                    Event::End(n) => format!("end {n}"),
                })
            });
        }
        v
    }

    #[test]
    fn pipes_end_needs_both_markers_in_either_order() {
        let p = Protocol::with_nonce("n1", false);
        let m: &[u8] = b"\x1edtest:n1:3\x1e";
        let e = decode(
            &p,
            &[
                (Stream::Stdout, b"\x1edtest:n1:s\x1eout"),
                (Stream::Stdout, m),
                (Stream::Stderr, b"late err"),
                (Stream::Stderr, m),
            ],
        );
        assert_eq!(e, ["start", "Stdout:out", "Stderr:late err", "end 3"]);
        let e = decode(&p, &[(Stream::Stderr, m), (Stream::Stdout, m)]);
        assert_eq!(e, ["end 3"]);
        // A pty has one stream: its marker is the end.
        let p = Protocol::with_nonce("n1", true);
        assert_eq!(decode(&p, &[(Stream::Stdout, m)]), ["end 3"]);
    }

    #[test]
    fn command_lines() {
        let p = Protocol::with_nonce("abc", false);
        let l = p.command_line("echo 'x'");
        assert!(
            l.starts_with(r"printf '\036dtest:%s:s\036' abc; eval 'echo '\''x'\'''"),
            "{l}"
        );
        assert_eq!(l.matches("__dtest_st").count(), 3, "{l}");
        assert!(l.contains(">&2;"), "{l}");
        assert!(l.ends_with('\n'));
        let p = Protocol::with_nonce("abc", true);
        assert!(!p.command_line("x").contains(">&2"));
        assert!(p.init_line().contains("noflsh"));
    }
}
