//! Text renderings of events: the readable `show` line, the `jsonl` schema
//! (documented in the crate docs) and the ShiViz/GoVector log format.
//!
//! Everything a trace holds is untrusted: actor, scenario, barrier and
//! capture names, command lines, output. The readable renderings (`show`,
//! `stats`, ShiViz) escape every string they print, one way everywhere
//! ([`escape_name`], [`escape_line`]): a backslash as `\\`, a newline as
//! `\n`, CR as `\r`, a tab as `\t`, NUL as `\0`, and every other control
//! character (ESC, DEL, the C1 controls), the Unicode line and paragraph
//! separators and the bidirectional formatting characters as a Rust escape
//! (`\u{1b}`, `\u{7f}`, `\u{202e}`). So no byte of a trace reaches a terminal
//! as a control sequence, and a `show` line is one line. `jsonl` is JSON:
//! its strings are JSON-escaped, the characters above included (`\u001b`,
//! `\u007f`, `\u202e`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::model::{hex, Event, EventData, ExitStatus, Header};

/// Longest text shown on a `show` line before it is cut.
const SHOW_TEXT_MAX: usize = 160;

/// Whether `c` is printed escaped (see the module docs): a control
/// character (C0 with ESC, CR and NUL; DEL; C1 with CSI), the line or
/// paragraph separator, or a bidirectional formatting character (which
/// reorders what a terminal shows).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Appends `c`, escaped if needed (and `"` too when `quote`).
fn push_escaped(out: &mut String, c: char, quote: bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        '\\' => out.push_str("\\\\"),
        '"' if quote => out.push_str("\\\""),
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// A name (actor, host, scenario, capture, barrier participant) as printed
/// in a readable output: escaped (see the module docs), never cut. Borrowed
/// when nothing needs escaping.
pub fn escape_name(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c, false);
    }
    Cow::Owned(out)
}

/// Escapes a text to be shown between double quotes on one line (see the
/// module docs; `"` is escaped too), cut after `max` characters with
/// `... (N bytes)`.
pub fn escape_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 8);
    for (count, ch) in s.chars().enumerate() {
        if count >= max {
            let _ = write!(out, "... ({} bytes)", s.len());
            break;
        }
        push_escaped(&mut out, ch, true);
    }
    out
}

/// The clock as `name:n` pairs of its non-zero entries.
fn clock_text(h: &Header, e: &Event) -> String {
    let mut s = String::new();
    for (i, &v) in e.clock.as_slice().iter().enumerate() {
        if v != 0 {
            if !s.is_empty() {
                s.push(' ');
            }
            let _ = write!(s, "{}:{v}", escape_name(h.actor_name(i as u32)));
        }
    }
    s
}

fn details(e: &Event) -> Cow<'static, str> {
    match &e.data {
        EventData::Input { bytes, secret } => Cow::Owned(format!(
            "{} bytes{}",
            bytes.len(),
            if *secret { " secret" } else { "" }
        )),
        EventData::Output { bytes, stream } => {
            Cow::Owned(format!("{} bytes {}", bytes.len(), stream.name()))
        }
        EventData::Match {
            matched, captures, ..
        } => {
            let mut s = format!("matched \"{}\"", escape_line(matched, 60));
            for (k, v) in captures {
                let _ = write!(s, " {}=\"{}\"", escape_name(k), escape_line(v, 40));
            }
            Cow::Owned(s)
        }
        EventData::Timeout { waited_ns, .. } => {
            Cow::Owned(format!("after {:.3}s", *waited_ns as f64 / 1e9))
        }
        EventData::BarrierLeave { participants, .. } => {
            let mut s = String::from("with ");
            for (i, p) in participants.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&escape_name(p));
            }
            Cow::Owned(s)
        }
        EventData::BarrierBroken { reason, .. } => {
            Cow::Owned(format!("broken: {}", escape_line(reason, 80)))
        }
        EventData::Put(t) | EventData::Get(t) => Cow::Owned(format!(
            "local {} size {} sha256 {}",
            escape_line(&t.local, 80),
            t.size,
            &hex(&t.sha256)[..16]
        )),
        EventData::Verdict {
            number,
            ok,
            directive,
            reason,
            ..
        } => {
            let mut s = format!("{} {number}", if *ok { "ok" } else { "not ok" });
            if let Some(d) = directive {
                let _ = write!(
                    s,
                    " # {} {}",
                    d.name().to_uppercase(),
                    escape_line(reason, 60)
                );
            }
            Cow::Owned(s)
        }
        EventData::Custom { status, .. } => Cow::Owned(format!("status {status}")),
        EventData::End { ok, .. } => Cow::Borrowed(if *ok { "ok" } else { "failed" }),
        _ => Cow::Borrowed(""),
    }
}

/// One readable line for an event (no newline):
/// `INDEX +SECONDS ACTOR KIND DIR[#MSG] "TEXT" DETAILS [CLOCK]`, every name
/// and text escaped (see the module docs), so it is one line whatever the
/// trace holds.
pub fn show_line(h: &Header, e: &Event) -> String {
    let mut s = String::with_capacity(128);
    let _ = write!(
        s,
        "{:>6} +{:.6}s {:<16} {:<14} {}",
        e.index,
        e.time_ns as f64 / 1e9,
        escape_name(h.actor_name(e.actor)),
        e.kind().name(),
        e.dir.name()
    );
    if let Some(m) = e.msg {
        let _ = write!(s, "#{m}");
    }
    let _ = write!(s, " \"{}\"", escape_line(&e.text(), SHOW_TEXT_MAX));
    let d = details(e);
    if !d.is_empty() {
        let _ = write!(s, " {d}");
    }
    let _ = write!(s, " [{}]", clock_text(h, e));
    s
}

/// The `jsonl` object of an event (see the crate docs for the schema).
pub fn json_value(h: &Header, e: &Event) -> Value {
    let mut m = Map::new();
    m.insert("index".into(), json!(e.index));
    m.insert("actor".into(), json!(h.actor_name(e.actor)));
    m.insert("kind".into(), json!(e.kind().name()));
    m.insert("dir".into(), json!(e.dir.name()));
    m.insert("msg".into(), json!(e.msg));
    m.insert("time_ns".into(), json!(e.time_ns));
    let mut c = Map::new();
    for (i, &v) in e.clock.as_slice().iter().enumerate() {
        if v != 0 {
            c.insert(h.actor_name(i as u32).to_string(), json!(v));
        }
    }
    m.insert("clock".into(), Value::Object(c));
    m.insert("text".into(), json!(e.text()));
    match &e.data {
        EventData::Open { target } => {
            m.insert("target".into(), json!(target));
        }
        EventData::Close { reason } => {
            m.insert("reason".into(), json!(reason));
        }
        EventData::Start { .. } | EventData::Signal { .. } => {}
        EventData::Input { bytes, secret } => {
            m.insert("bytes".into(), json!(bytes.len()));
            m.insert("secret".into(), json!(secret));
        }
        EventData::Output { bytes, stream } => {
            m.insert("bytes".into(), json!(bytes.len()));
            m.insert("stream".into(), json!(stream.name()));
        }
        EventData::Exit { status } => {
            m.insert(
                "status".into(),
                match status {
                    ExitStatus::Code(c) => json!(c),
                    ExitStatus::Signal(s) => json!(s),
                },
            );
        }
        EventData::Match {
            pattern,
            matched,
            captures,
        } => {
            m.insert("pattern".into(), json!(pattern));
            m.insert("matched".into(), json!(matched));
            let caps: Map<String, Value> = captures
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            m.insert("captures".into(), Value::Object(caps));
        }
        EventData::Timeout { pattern, waited_ns } => {
            m.insert("pattern".into(), json!(pattern));
            m.insert("waited_ns".into(), json!(waited_ns));
        }
        EventData::BarrierEnter { name } => {
            m.insert("name".into(), json!(name));
        }
        EventData::BarrierLeave { name, participants } => {
            m.insert("name".into(), json!(name));
            m.insert("participants".into(), json!(&participants[..]));
        }
        EventData::BarrierBroken { name, reason } => {
            m.insert("name".into(), json!(name));
            m.insert("reason".into(), json!(reason));
        }
        EventData::Put(t) | EventData::Get(t) => {
            m.insert("local".into(), json!(t.local));
            m.insert("remote".into(), json!(t.remote));
            m.insert("size".into(), json!(t.size));
            m.insert("sha256".into(), json!(hex(&t.sha256)));
        }
        EventData::Verdict {
            number,
            ok,
            description,
            directive,
            reason,
        } => {
            m.insert("number".into(), json!(number));
            m.insert("ok".into(), json!(ok));
            m.insert("description".into(), json!(description));
            m.insert("directive".into(), json!(directive.map(|d| d.name())));
            m.insert("reason".into(), json!(reason));
        }
        EventData::Custom {
            name,
            status,
            output,
        } => {
            m.insert("name".into(), json!(name));
            m.insert("status".into(), json!(status));
            m.insert("output".into(), json!(output));
        }
        EventData::End { ok, summary } => {
            m.insert("ok".into(), json!(ok));
            m.insert("summary".into(), json!(summary));
        }
    }
    Value::Object(m)
}

/// serde_json's compact output, with the characters JSON allows raw but a
/// terminal does not take as text (DEL, the C1 controls, the line
/// separators, the bidi formatting characters: see [`is_unsafe`]) written
/// as `\uXXXX` escapes too. The JSON reads back the same.
struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Every such character is DEL or starts with one of these bytes.
        if !fragment
            .bytes()
            .any(|b| matches!(b, 0x7f | 0xc2 | 0xd8 | 0xe2))
        {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // All of them are in the BMP: one UTF-16 unit.
                write!(writer, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Writes the `jsonl` line of an event: JSON, its strings escaped so that
/// no control character reaches a terminal raw (see the module docs).
pub fn write_jsonl(out: &mut impl Write, h: &Header, e: &Event) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, SafeJson);
    serde::Serialize::serialize(&json_value(h, e), &mut ser)?;
    out.write_all(b"\n")
}

/// The regular expression that parses [`write_shiviz`]'s log in ShiViz.
pub const SHIVIZ_REGEX: &str = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)";

/// An actor's name as a ShiViz host: escaped (see the module docs), then
/// whitespace replaced by `_` (the host is `\S*` in [`SHIVIZ_REGEX`]). The
/// same string is the host and the actor's key in the JSON clocks.
fn shiviz_host(name: &str) -> String {
    escape_name(name).replace(char::is_whitespace, "_")
}

/// Writes an event in the GoVector/ShiViz log format: a line
/// `HOST {"actor":n,...}` with the JSON vector clock (non-zero entries), then
/// a line with the event text; names and text escaped (see the module docs).
pub fn write_shiviz(out: &mut impl Write, h: &Header, e: &Event) -> io::Result<()> {
    let host = shiviz_host(h.actor_name(e.actor));
    let mut c = Map::new();
    for (i, &v) in e.clock.as_slice().iter().enumerate() {
        if v != 0 {
            c.insert(shiviz_host(h.actor_name(i as u32)), json!(v));
        }
    }
    let mut text = format!("{} {}", e.kind().name(), e.dir.name());
    if let Some(m) = e.msg {
        let _ = write!(text, "#{m}");
    }
    let _ = write!(text, " {}", escape_line(&e.text(), 200));
    writeln!(out, "{host} {}", Value::Object(c))?;
    writeln!(out, "{text}")
}
