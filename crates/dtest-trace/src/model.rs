//! The event model: actors, event kinds and their fields, directions.
//!
//! These types are what every other crate sees of a trace. Their names (the
//! [`Kind`] names in particular) are part of the property language of
//! `dtest check` and of the `jsonl` schema, so they are stable.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bincode::{Decode, Encode};
use serde::Serialize;

use crate::clock::VectorClock;

/// Index of an actor in the trace's actor table (and of its vector-clock entry).
pub type ActorId = u32;

/// Identifier linking the send event of a message to its receive event.
pub type MsgId = u64;

/// What an actor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The barrier coordinator of a run.
    Master,
    /// A tester: runs its steps, drives one session.
    Tester,
    /// A tester's shell session on a host, named `<tester>@<host>`.
    Session,
}

impl ActorKind {
    /// The lowercase name used in text output.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Master => "master",
            ActorKind::Tester => "tester",
            ActorKind::Session => "session",
        }
    }
}

/// One row of the actor table in the trace header.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct Actor {
    /// Position in the actor table; also the actor's vector-clock entry.
    pub id: ActorId,
    /// Unique name (`master`, `tester1`, `tester1@local`).
    pub name: String,
    /// Master, tester or session.
    pub kind: ActorKind,
    /// The host the actor runs on (`local`, `ssh://user@host:22`, ...).
    pub host: String,
}

/// The trace header: when the run started, what it was, and who took part.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct Header {
    /// Absolute start of the run, nanoseconds since the Unix epoch.
    /// Event times are relative to it.
    pub start_unix_ns: u64,
    /// Name of the scenario (or of the synthetic trace).
    pub scenario: String,
    /// The actor table. `actors[i].id == i` for every `i`.
    pub actors: Vec<Actor>,
    /// Free-form key/value metadata (dtest version, command line, seed, ...).
    pub meta: Vec<(String, String)>,
}

impl Header {
    /// A header with the given scenario name and actors, started now.
    pub fn new(scenario: impl Into<String>, actors: Vec<Actor>) -> Header {
        let start_unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Header {
            start_unix_ns,
            scenario: scenario.into(),
            actors,
            meta: Vec::new(),
        }
    }

    /// Looks an actor up by name.
    pub fn actor_by_name(&self, name: &str) -> Option<&Actor> {
        self.actors.iter().find(|a| a.name == name)
    }

    /// The name of actor `id`, or `?` for an id outside the table.
    pub fn actor_name(&self, id: ActorId) -> &str {
        self.actors
            .get(id as usize)
            .map(|a| a.name.as_str())
            .unwrap_or("?")
    }
}

/// Whether an event is the send or the receive side of a message, or local.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// The sending side of a message.
    Send,
    /// The receiving side of a message.
    Recv,
    /// An event on one actor only.
    Local,
}

impl Dir {
    /// The lowercase name used in text output and in the property language.
    pub fn name(self) -> &'static str {
        match self {
            Dir::Send => "send",
            Dir::Recv => "recv",
            Dir::Local => "local",
        }
    }
}

/// Output stream of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output (on a pty: everything the terminal shows).
    Stdout,
    /// Standard error, when it is a separate pipe.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// TAP directive of a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Directive {
    /// `# SKIP`.
    Skip,
    /// `# TODO`.
    Todo,
}

impl Directive {
    /// `skip` or `todo`.
    pub fn name(self) -> &'static str {
        match self {
            Directive::Skip => "skip",
            Directive::Todo => "todo",
        }
    }
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// Exited with this status code.
    Code(i32),
    /// Killed by this signal (`INT`, `KILL`, ...).
    Signal(String),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "{c}"),
            ExitStatus::Signal(s) => write!(f, "SIG{s}"),
        }
    }
}

/// A file transfer (`put`: controller to host, `get`: host to controller).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode, Serialize)]
pub struct Transfer {
    /// Path on the controller.
    pub local: String,
    /// Path on the session's host.
    pub remote: String,
    /// Bytes copied.
    pub size: u64,
    /// SHA-256 of the content.
    #[serde(serialize_with = "ser_hex")]
    pub sha256: [u8; 32],
}

fn ser_hex<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(b))
}

/// Lowercase hexadecimal of some bytes.
pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

/// The kind of an event, without its fields. The names are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Kind {
    Open = 0,
    Close = 1,
    Start = 2,
    Input = 3,
    Output = 4,
    Signal = 5,
    Exit = 6,
    Match = 7,
    Timeout = 8,
    BarrierEnter = 9,
    BarrierLeave = 10,
    BarrierBroken = 11,
    Put = 12,
    Get = 13,
    Verdict = 14,
    Custom = 15,
    End = 16,
}

impl Kind {
    /// Every kind, in tag order.
    pub const ALL: [Kind; 17] = [
        Kind::Open,
        Kind::Close,
        Kind::Start,
        Kind::Input,
        Kind::Output,
        Kind::Signal,
        Kind::Exit,
        Kind::Match,
        Kind::Timeout,
        Kind::BarrierEnter,
        Kind::BarrierLeave,
        Kind::BarrierBroken,
        Kind::Put,
        Kind::Get,
        Kind::Verdict,
        Kind::Custom,
        Kind::End,
    ];

    /// The stable name (`barrier_enter`, `output`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Open => "open",
            Kind::Close => "close",
            Kind::Start => "start",
            Kind::Input => "input",
            Kind::Output => "output",
            Kind::Signal => "signal",
            Kind::Exit => "exit",
            Kind::Match => "match",
            Kind::Timeout => "timeout",
            Kind::BarrierEnter => "barrier_enter",
            Kind::BarrierLeave => "barrier_leave",
            Kind::BarrierBroken => "barrier_broken",
            Kind::Put => "put",
            Kind::Get => "get",
            Kind::Verdict => "verdict",
            Kind::Custom => "custom",
            Kind::End => "end",
        }
    }

    /// The kind with this stable name.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The kind with this tag byte.
    pub fn from_tag(tag: u8) -> Option<Kind> {
        Kind::ALL.get(tag as usize).copied()
    }

    /// Whether events of this kind are messages between two actors
    /// (see DESIGN.md's table) rather than local events.
    pub fn is_message(self) -> bool {
        matches!(
            self,
            Kind::Start
                | Kind::Input
                | Kind::Output
                | Kind::Signal
                | Kind::Exit
                | Kind::Put
                | Kind::Get
                | Kind::BarrierEnter
                | Kind::BarrierLeave
                | Kind::BarrierBroken
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An event's kind with its kind-specific fields.
///
/// The receive side of a message carries the same data as its send side
/// (readers resolve it through the message id; the file stores it once).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub enum EventData {
    /// A session was opened; `target` says what (`/bin/sh on local`).
    Open { target: String },
    /// A session was closed.
    Close { reason: String },
    /// A command line started in the session.
    Start { command: String },
    /// Bytes written to the session. `secret` input is recorded redacted.
    Input { bytes: Vec<u8>, secret: bool },
    /// Bytes read from the session.
    Output { bytes: Vec<u8>, stream: Stream },
    /// A signal sent to the running command (`INT`, `TERM`, `KILL`).
    Signal { name: String },
    /// The running command ended.
    Exit { status: ExitStatus },
    /// An expect matched.
    Match {
        pattern: String,
        matched: String,
        captures: Vec<(String, String)>,
    },
    /// An expect timed out after `waited_ns`.
    Timeout { pattern: String, waited_ns: u64 },
    /// A tester arrived at a barrier.
    BarrierEnter { name: String },
    /// A barrier released; `participants` are the testers that met there
    /// (shared: the master sends one list to every participant).
    BarrierLeave {
        name: String,
        participants: Arc<[String]>,
    },
    /// A barrier broke (timeout, a tester aborted).
    BarrierBroken { name: String, reason: String },
    /// A file copied from the controller to the session's host.
    Put(Transfer),
    /// A file copied from the session's host to the controller.
    Get(Transfer),
    /// A TAP verdict.
    Verdict {
        number: u32,
        ok: bool,
        description: String,
        directive: Option<Directive>,
        reason: String,
    },
    /// A custom (`local`) step and its result.
    Custom {
        name: String,
        status: i32,
        output: String,
    },
    /// The run finished normally.
    End { ok: bool, summary: String },
}

impl EventData {
    /// The kind of this data.
    pub fn kind(&self) -> Kind {
        match self {
            EventData::Open { .. } => Kind::Open,
            EventData::Close { .. } => Kind::Close,
            EventData::Start { .. } => Kind::Start,
            EventData::Input { .. } => Kind::Input,
            EventData::Output { .. } => Kind::Output,
            EventData::Signal { .. } => Kind::Signal,
            EventData::Exit { .. } => Kind::Exit,
            EventData::Match { .. } => Kind::Match,
            EventData::Timeout { .. } => Kind::Timeout,
            EventData::BarrierEnter { .. } => Kind::BarrierEnter,
            EventData::BarrierLeave { .. } => Kind::BarrierLeave,
            EventData::BarrierBroken { .. } => Kind::BarrierBroken,
            EventData::Put(_) => Kind::Put,
            EventData::Get(_) => Kind::Get,
            EventData::Verdict { .. } => Kind::Verdict,
            EventData::Custom { .. } => Kind::Custom,
            EventData::End { .. } => Kind::End,
        }
    }

    /// Empty data of a kind: what a receive shows when its send is missing.
    pub fn empty(kind: Kind) -> EventData {
        let s = String::new;
        match kind {
            Kind::Open => EventData::Open { target: s() },
            Kind::Close => EventData::Close { reason: s() },
            Kind::Start => EventData::Start { command: s() },
            Kind::Input => EventData::Input {
                bytes: Vec::new(),
                secret: false,
            },
            Kind::Output => EventData::Output {
                bytes: Vec::new(),
                stream: Stream::Stdout,
            },
            Kind::Signal => EventData::Signal { name: s() },
            Kind::Exit => EventData::Exit {
                status: ExitStatus::Code(0),
            },
            Kind::Match => EventData::Match {
                pattern: s(),
                matched: s(),
                captures: Vec::new(),
            },
            Kind::Timeout => EventData::Timeout {
                pattern: s(),
                waited_ns: 0,
            },
            Kind::BarrierEnter => EventData::BarrierEnter { name: s() },
            Kind::BarrierLeave => EventData::BarrierLeave {
                name: s(),
                participants: Arc::from(Vec::new()),
            },
            Kind::BarrierBroken => EventData::BarrierBroken {
                name: s(),
                reason: s(),
            },
            Kind::Put | Kind::Get => {
                let t = Transfer {
                    local: s(),
                    remote: s(),
                    size: 0,
                    sha256: [0; 32],
                };
                if kind == Kind::Put {
                    EventData::Put(t)
                } else {
                    EventData::Get(t)
                }
            }
            Kind::Verdict => EventData::Verdict {
                number: 0,
                ok: false,
                description: s(),
                directive: None,
                reason: s(),
            },
            Kind::Custom => EventData::Custom {
                name: s(),
                status: 0,
                output: s(),
            },
            Kind::End => EventData::End {
                ok: false,
                summary: s(),
            },
        }
    }

    /// The event's main text, as the `text` field of the jsonl schema and the
    /// second argument of a property atom: the command line (start), the bytes
    /// (input, output; UTF-8, lossy), the pattern (match, timeout), the signal
    /// name, the barrier name, the verdict description, the remote path (put,
    /// get), the custom step's name, the exit status, the open target, the
    /// close reason, the end summary.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            EventData::Open { target } => Cow::Borrowed(target),
            EventData::Close { reason } => Cow::Borrowed(reason),
            EventData::Start { command } => Cow::Borrowed(command),
            EventData::Input { bytes, .. } | EventData::Output { bytes, .. } => {
                String::from_utf8_lossy(bytes)
            }
            EventData::Signal { name } => Cow::Borrowed(name),
            EventData::Exit { status } => Cow::Owned(status.to_string()),
            EventData::Match { pattern, .. } | EventData::Timeout { pattern, .. } => {
                Cow::Borrowed(pattern)
            }
            EventData::BarrierEnter { name }
            | EventData::BarrierLeave { name, .. }
            | EventData::BarrierBroken { name, .. } => Cow::Borrowed(name),
            EventData::Put(t) | EventData::Get(t) => Cow::Borrowed(&t.remote),
            EventData::Verdict { description, .. } => Cow::Borrowed(description),
            EventData::Custom { name, .. } => Cow::Borrowed(name),
            EventData::End { summary, .. } => Cow::Borrowed(summary),
        }
    }

    /// Number of content bytes: every byte string and text of the event
    /// (payload, command lines, patterns, names, descriptions). What remains
    /// of an encoded event is the format's own overhead.
    pub fn content_len(&self) -> usize {
        match self {
            EventData::Open { target: s }
            | EventData::Close { reason: s }
            | EventData::Start { command: s }
            | EventData::Signal { name: s }
            | EventData::BarrierEnter { name: s } => s.len(),
            EventData::Input { bytes, .. } | EventData::Output { bytes, .. } => bytes.len(),
            EventData::Exit { status } => match status {
                ExitStatus::Code(_) => 0,
                ExitStatus::Signal(s) => s.len(),
            },
            EventData::Match {
                pattern,
                matched,
                captures,
            } => {
                pattern.len()
                    + matched.len()
                    + captures
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            }
            EventData::Timeout { pattern, .. } => pattern.len(),
            EventData::BarrierLeave { name, .. } => name.len(),
            EventData::BarrierBroken { name, reason } => name.len() + reason.len(),
            EventData::Put(t) | EventData::Get(t) => t.local.len() + t.remote.len() + 32,
            EventData::Verdict {
                description,
                reason,
                ..
            } => description.len() + reason.len(),
            EventData::Custom { name, output, .. } => name.len() + output.len(),
            EventData::End { summary, .. } => summary.len(),
        }
    }

    /// Number of payload bytes (input/output bytes, file sizes not included).
    pub fn payload_len(&self) -> usize {
        match self {
            EventData::Input { bytes, .. } | EventData::Output { bytes, .. } => bytes.len(),
            _ => 0,
        }
    }
}

/// One event of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Position in the trace, from 0.
    pub index: u64,
    /// The actor on which the event happened.
    pub actor: ActorId,
    /// Wall time, nanoseconds since the run started.
    pub time_ns: u64,
    /// Send, receive or local.
    pub dir: Dir,
    /// For messages: the id linking send and receive.
    pub msg: Option<MsgId>,
    /// The actor's vector clock right after this event.
    pub clock: VectorClock,
    /// Kind and kind-specific fields.
    pub data: EventData,
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> Kind {
        self.data.kind()
    }

    /// The event's main text (see [`EventData::text`]).
    pub fn text(&self) -> Cow<'_, str> {
        self.data.text()
    }
}
