//! The fields an atom can test, which kinds have them, their types, and how
//! to read them from an event.

use std::borrow::Cow;

use dtest_trace::{Dir, EventData, Kind};

/// The type of a field, for checking the values a spec compares it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// Any text.
    Str,
    /// An integer.
    Int,
    /// `true` / `false`.
    Bool,
    /// One of these words.
    Enum(&'static [&'static str]),
    /// An exit status: an integer, or a signal name (`KILL`, `SIGKILL`).
    Status,
}

/// A field: its name, type, and the kinds that have it (`None`: every kind).
#[derive(Debug)]
pub struct FieldDef {
    /// The name used in specs.
    pub name: &'static str,
    /// Its type.
    pub ty: FieldType,
    /// The kinds that have it; `None` for every kind.
    pub kinds: Option<&'static [Kind]>,
}

use Kind::*;

/// Every field, in a fixed order (a field's position is its id).
pub const FIELDS: &[FieldDef] = &[
    FieldDef {
        name: "text",
        ty: FieldType::Str,
        kinds: None,
    },
    FieldDef {
        name: "actor",
        ty: FieldType::Str,
        kinds: None,
    },
    FieldDef {
        name: "dir",
        ty: FieldType::Enum(&["send", "recv", "local"]),
        kinds: None,
    },
    FieldDef {
        name: "stream",
        ty: FieldType::Enum(&["stdout", "stderr"]),
        kinds: Some(&[Output]),
    },
    FieldDef {
        name: "secret",
        ty: FieldType::Bool,
        kinds: Some(&[Input]),
    },
    FieldDef {
        name: "bytes",
        ty: FieldType::Int,
        kinds: Some(&[Input, Output]),
    },
    FieldDef {
        name: "status",
        ty: FieldType::Status,
        kinds: Some(&[Exit, Custom]),
    },
    FieldDef {
        name: "command",
        ty: FieldType::Str,
        kinds: Some(&[Start]),
    },
    FieldDef {
        name: "name",
        ty: FieldType::Str,
        kinds: Some(&[Signal, BarrierEnter, BarrierLeave, BarrierBroken, Custom]),
    },
    FieldDef {
        name: "pattern",
        ty: FieldType::Str,
        kinds: Some(&[Match, Timeout]),
    },
    FieldDef {
        name: "matched",
        ty: FieldType::Str,
        kinds: Some(&[Match]),
    },
    FieldDef {
        name: "waited_ns",
        ty: FieldType::Int,
        kinds: Some(&[Timeout]),
    },
    FieldDef {
        name: "participants",
        ty: FieldType::Str,
        kinds: Some(&[BarrierLeave]),
    },
    FieldDef {
        name: "reason",
        ty: FieldType::Str,
        kinds: Some(&[Close, BarrierBroken, Verdict]),
    },
    FieldDef {
        name: "local",
        ty: FieldType::Str,
        kinds: Some(&[Put, Get]),
    },
    FieldDef {
        name: "remote",
        ty: FieldType::Str,
        kinds: Some(&[Put, Get]),
    },
    FieldDef {
        name: "size",
        ty: FieldType::Int,
        kinds: Some(&[Put, Get]),
    },
    FieldDef {
        name: "number",
        ty: FieldType::Int,
        kinds: Some(&[Verdict]),
    },
    FieldDef {
        name: "ok",
        ty: FieldType::Bool,
        kinds: Some(&[Verdict, End]),
    },
    FieldDef {
        name: "description",
        ty: FieldType::Str,
        kinds: Some(&[Verdict]),
    },
    FieldDef {
        name: "directive",
        ty: FieldType::Enum(&["skip", "todo", "none"]),
        kinds: Some(&[Verdict]),
    },
    FieldDef {
        name: "output",
        ty: FieldType::Str,
        kinds: Some(&[Custom]),
    },
    FieldDef {
        name: "summary",
        ty: FieldType::Str,
        kinds: Some(&[End]),
    },
    FieldDef {
        name: "target",
        ty: FieldType::Str,
        kinds: Some(&[Open]),
    },
];

/// Id of the `text` field.
pub const TEXT: usize = 0;
/// Id of the `actor` field.
pub const ACTOR: usize = 1;
/// Id of the `dir` field.
pub const DIR: usize = 2;

/// The id of a field by name.
pub fn field_id(name: &str) -> Option<usize> {
    FIELDS.iter().position(|f| f.name == name)
}

/// Whether events of `kind` (`None`: any kind) can have field `id`.
pub fn applies(id: usize, kind: Option<Kind>) -> bool {
    match (FIELDS[id].kinds, kind) {
        (None, _) | (_, None) => true,
        (Some(ks), Some(k)) => ks.contains(&k),
    }
}

/// The names of the fields events of `kind` have, for messages.
pub fn names_for(kind: Option<Kind>) -> String {
    FIELDS
        .iter()
        .enumerate()
        .filter(|(i, _)| applies(*i, kind))
        .map(|(_, f)| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The value of field `id` of an event as text (`None` when the event's
/// kind has no such field). `actor` is not read here (see the columns).
pub fn value<'a>(id: usize, dir: Dir, data: &'a EventData) -> Option<Cow<'a, str>> {
    use EventData as D;
    let b = |s: &'a String| Some(Cow::Borrowed(s.as_str()));
    let o = |s: String| Some(Cow::Owned(s));
    match (FIELDS[id].name, data) {
        ("text", d) => Some(text(d)),
        ("dir", _) => Some(Cow::Borrowed(dir.name())),
        ("stream", D::Output { stream, .. }) => Some(Cow::Borrowed(stream.name())),
        ("secret", D::Input { secret, .. }) => o(secret.to_string()),
        ("bytes", D::Input { bytes, .. } | D::Output { bytes, .. }) => o(bytes.len().to_string()),
        ("status", D::Exit { status }) => match status {
            dtest_trace::ExitStatus::Code(c) => o(c.to_string()),
            dtest_trace::ExitStatus::Signal(s) => Some(sig_canon(s)),
        },
        ("status", D::Custom { status, .. }) => o(status.to_string()),
        ("command", D::Start { command }) => b(command),
        ("name", D::Signal { name }) => Some(sig_canon(name)),
        ("name", D::BarrierEnter { name } | D::BarrierLeave { name, .. })
        | ("name", D::BarrierBroken { name, .. } | D::Custom { name, .. }) => b(name),
        ("pattern", D::Match { pattern, .. } | D::Timeout { pattern, .. }) => b(pattern),
        ("matched", D::Match { matched, .. }) => b(matched),
        ("waited_ns", D::Timeout { waited_ns, .. }) => o(waited_ns.to_string()),
        ("participants", D::BarrierLeave { participants, .. }) => o(participants.join(",")),
        (
            "reason",
            D::Close { reason } | D::BarrierBroken { reason, .. } | D::Verdict { reason, .. },
        ) => b(reason),
        ("local", D::Put(t) | D::Get(t)) => b(&t.local),
        ("remote", D::Put(t) | D::Get(t)) => b(&t.remote),
        ("size", D::Put(t) | D::Get(t)) => o(t.size.to_string()),
        ("number", D::Verdict { number, .. }) => o(number.to_string()),
        ("ok", D::Verdict { ok, .. } | D::End { ok, .. }) => o(ok.to_string()),
        ("description", D::Verdict { description, .. }) => b(description),
        ("directive", D::Verdict { directive, .. }) => {
            Some(Cow::Borrowed(directive.map(|d| d.name()).unwrap_or("none")))
        }
        ("output", D::Custom { output, .. }) => b(output),
        ("summary", D::End { summary, .. }) => b(summary),
        ("target", D::Open { target }) => b(target),
        _ => None,
    }
}

/// The canonical name of a signal: `SIGKILL` (`KILL` is its alias). A
/// signal event records `KILL`, an exit status displays `SIGKILL`: the
/// language sees `SIGKILL` in both and accepts `KILL` wherever it compares.
pub fn sig_canon(s: &str) -> Cow<'_, str> {
    if s.starts_with("SIG") {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("SIG{s}"))
    }
}

/// Whether an event names a signal (a signal event, an exit by a signal):
/// its text is a signal name, compared with the alias rule.
pub fn names_signal(data: &EventData) -> bool {
    matches!(
        data,
        EventData::Signal { .. }
            | EventData::Exit {
                status: dtest_trace::ExitStatus::Signal(_)
            }
    )
}

/// The text of an event as the language sees it: [`EventData::text`], with
/// signal names in their canonical form ([`sig_canon`]).
pub fn text(data: &EventData) -> Cow<'_, str> {
    match data {
        EventData::Signal { name } => sig_canon(name),
        d => d.text(),
    }
}

/// Whether two signal names are the same signal (`KILL` and `SIGKILL`).
pub fn same_signal(a: &str, b: &str) -> bool {
    a.strip_prefix("SIG").unwrap_or(a) == b.strip_prefix("SIG").unwrap_or(b)
}

/// Whether the kind's text is matched line by line (input and output).
pub fn is_line_kind(k: Kind) -> bool {
    matches!(k, Kind::Input | Kind::Output)
}

/// Id of the `name` field.
pub const NAME: usize = 8;
/// Id of the `status` field.
pub const STATUS: usize = 6;
