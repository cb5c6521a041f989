//! Text renderings of events: the readable `show` line, the `jsonl` schema
//! (documented in the crate docs) and the ShiViz/GoVector log format.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::model::{hex, Event, EventData, ExitStatus, Header};

/// Longest text shown on a `show` line before it is cut.
const SHOW_TEXT_MAX: usize = 160;

/// Escapes control characters and quotes so a text fits on one line.
pub fn escape_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 8);
    for (count, ch) in s.chars().enumerate() {
        if count >= max {
            let _ = write!(out, "... ({} bytes)", s.len());
            break;
        }
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
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
            let _ = write!(s, "{}:{v}", h.actor_name(i as u32));
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
                let _ = write!(s, " {k}=\"{}\"", escape_line(v, 40));
            }
            Cow::Owned(s)
        }
        EventData::Timeout { waited_ns, .. } => {
            Cow::Owned(format!("after {:.3}s", *waited_ns as f64 / 1e9))
        }
        EventData::BarrierLeave { participants, .. } => {
            Cow::Owned(format!("with {}", participants.join(",")))
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
/// `INDEX +SECONDS ACTOR KIND DIR[#MSG] "TEXT" DETAILS [CLOCK]`.
pub fn show_line(h: &Header, e: &Event) -> String {
    let mut s = String::with_capacity(128);
    let _ = write!(
        s,
        "{:>6} +{:.6}s {:<16} {:<14} {}",
        e.index,
        e.time_ns as f64 / 1e9,
        h.actor_name(e.actor),
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

/// Writes the `jsonl` line of an event.
pub fn write_jsonl(out: &mut impl Write, h: &Header, e: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &json_value(h, e))?;
    out.write_all(b"\n")
}

/// The regular expression that parses [`write_shiviz`]'s log in ShiViz.
pub const SHIVIZ_REGEX: &str = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)";

/// Writes an event in the GoVector/ShiViz log format: a line
/// `HOST {"actor":n,...}` with the JSON vector clock (non-zero entries), then
/// a line with the event text (newlines escaped).
pub fn write_shiviz(out: &mut impl Write, h: &Header, e: &Event) -> io::Result<()> {
    let host = h.actor_name(e.actor).replace(char::is_whitespace, "_");
    let mut c = Map::new();
    for (i, &v) in e.clock.as_slice().iter().enumerate() {
        if v != 0 {
            c.insert(
                h.actor_name(i as u32).replace(char::is_whitespace, "_"),
                json!(v),
            );
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
