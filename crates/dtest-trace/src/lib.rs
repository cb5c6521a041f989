//! dtest's event model, vector clocks and binary trace format.
//!
//! A *trace* records one run of a distributed test scenario: every command
//! started, every byte sent to and received from a session, every expect
//! match, barrier and verdict, each stamped with the wall time since the run
//! started and with the vector clock of the actor it happened on. `dtest exec`
//! writes traces through a [`Recorder`]; `dtest msc` draws them and
//! `dtest check` verifies properties on them.
//!
//! ```
//! use dtest_trace::{Actor, ActorKind, EventData, Header, Recorder, Trace, validate};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("t.dtrace");
//! let actors = vec![
//!     Actor { id: 0, name: "master".into(), kind: ActorKind::Master, host: "local".into() },
//!     Actor { id: 1, name: "tester1".into(), kind: ActorKind::Tester, host: "local".into() },
//!     Actor { id: 2, name: "tester1@local".into(), kind: ActorKind::Session, host: "local".into() },
//! ];
//! let rec = Recorder::create(&path, Header::new("doc", actors)).unwrap();
//! let m = rec.send(1, EventData::Start { command: "echo hi".into() }).unwrap();
//! rec.recv(2, m).unwrap();
//! rec.finish(0, true, "1 test, all ok").unwrap();
//! drop(rec);
//!
//! let trace = Trace::load(&path).unwrap();
//! assert_eq!(trace.len(), 3);
//! assert!(trace.complete);
//! assert!(trace.happens_before(0, 1));
//! assert!(validate(&trace).is_empty());
//! ```
//!
//! # Size limits and untrusted text
//!
//! The data of one event is at most [`codec::MAX_DATA_LEN`] (16 MiB)
//! encoded. A [`Writer`] refuses a bigger event with an error; a
//! [`Recorder`] (what `dtest exec` records with) never drops one: it cuts
//! every text or byte field over 8 MiB, marking the cut `… [cut: N bytes]`
//! and flagging the event, and every reader reports the cut events
//! ([`Warning::Cut`]). Details in [`codec`].
//!
//! Everything in a trace is untrusted text (names, commands, output): the
//! readable renderings of [`export`] and [`stats`] escape control
//! characters, so a trace cannot send a terminal escape sequence or break a
//! `show` line in two.
//!
//! # The `jsonl` schema
//!
//! `dtest trace show --format jsonl` (see [`export::write_jsonl`]) prints one
//! JSON object per event with these keys, which other tools rely on (strings
//! are JSON-escaped, DEL, the C1 controls and the bidi formatting characters
//! included):
//!
//! | key | value |
//! |---|---|
//! | `index` | position in the trace, from 0 |
//! | `actor` | actor name |
//! | `kind` | event kind name (`open`, `output`, `barrier_enter`, ...) |
//! | `dir` | `send`, `recv` or `local` |
//! | `msg` | message id (number) or `null` for local events |
//! | `time_ns` | nanoseconds since the run started |
//! | `clock` | object: actor name to clock entry, non-zero entries only |
//! | `text` | the event's main text ([`EventData::text`]) |
//!
//! plus the kind's own fields: `secret`, `bytes` (input, output: the length),
//! `stream` (output), `status` (exit: number, or signal name string), `pattern`,
//! `matched`, `captures` (match: object), `waited_ns` (timeout), `name`,
//! `participants`, `reason` (barriers), `local`, `remote`, `size`, `sha256`
//! (put, get), `number`, `ok`, `description`, `directive`, `reason`
//! (verdict), `status`, `output` (custom), `ok`, `summary` (end), `target`
//! (open).

pub mod clock;
pub mod codec;
mod error;
pub mod export;
pub mod model;
mod reader;
pub mod stats;
pub mod synth;
mod trace;
mod validate;
mod writer;

pub use clock::VectorClock;
pub use error::{Error, Result};
pub use model::{
    Actor, ActorId, ActorKind, Dir, Directive, Event, EventData, ExitStatus, Header, Kind, MsgId,
    Stream, Transfer,
};
pub use reader::{Events, ReadOptions, Reader, Warning};
pub use trace::Trace;
pub use validate::{validate, Validator, Violation};
pub use writer::{create, Recorder, Writer};

#[cfg(test)]
mod tests;
