//! The in-memory trace: every event with its full clock, per-actor indexes and
//! message pairs resolved.

use std::io::Read;
use std::path::Path;

use crate::clock;
use crate::error::Result;
use crate::model::{ActorId, Dir, Event, Header};
use crate::reader::{Reader, Warning};

/// A whole trace in memory.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The header (actor table, start time).
    pub header: Header,
    /// The events in trace order; `events[i].index == i`.
    pub events: Vec<Event>,
    /// Whether the trace ends with its `end` event.
    pub complete: bool,
    /// What the reader noticed (torn tail, newer minor version).
    pub warnings: Vec<Warning>,
    by_actor: Vec<Vec<u64>>,
    partner: Vec<Option<u64>>,
}

impl Trace {
    /// Reads a whole trace file.
    pub fn load(path: &Path) -> Result<Trace> {
        Self::read(Reader::open(path)?)
    }

    /// Reads every event of `reader`.
    pub fn read<R: Read>(mut reader: Reader<R>) -> Result<Trace> {
        let mut events = Vec::new();
        while let Some(e) = reader.next_event()? {
            events.push(e.clone());
        }
        let complete = reader.is_complete();
        let warnings = reader.warnings().to_vec();
        Ok(Self::from_parts(
            reader.header().clone(),
            events,
            complete,
            warnings,
        ))
    }

    /// Builds a trace from events (indexes are renumbered by position).
    pub fn from_parts(
        header: Header,
        mut events: Vec<Event>,
        complete: bool,
        warnings: Vec<Warning>,
    ) -> Trace {
        let n = header.actors.len();
        let mut by_actor = vec![Vec::new(); n];
        let mut partner = vec![None; events.len()];
        let mut sends = std::collections::HashMap::new();
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
            if let Some(v) = by_actor.get_mut(e.actor as usize) {
                v.push(i as u64);
            }
            match (e.dir, e.msg) {
                (Dir::Send, Some(m)) => {
                    sends.insert(m, i as u64);
                }
                (Dir::Recv, Some(m)) => {
                    if let Some(s) = sends.remove(&m) {
                        partner[s as usize] = Some(i as u64);
                        partner[i] = Some(s);
                    }
                }
                _ => {}
            }
        }
        Trace {
            header,
            events,
            complete,
            warnings,
            by_actor,
            partner,
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the trace has no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Indexes of the events of `actor`, in order.
    pub fn actor_events(&self, actor: ActorId) -> &[u64] {
        self.by_actor
            .get(actor as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The other side of a message event: the receive of a send, the send of
    /// a receive. `None` for local events and unpaired messages.
    pub fn partner(&self, index: u64) -> Option<u64> {
        self.partner.get(index as usize).copied().flatten()
    }

    /// `(send, recv)` index pairs of every paired message, by send index.
    pub fn messages(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.events
            .iter()
            .filter(|e| e.dir == Dir::Send)
            .filter_map(|e| self.partner(e.index).map(|r| (e.index, r)))
    }

    /// Event `a` happened before event `b` (by their vector clocks).
    pub fn happens_before(&self, a: u64, b: u64) -> bool {
        let (ea, eb) = (&self.events[a as usize], &self.events[b as usize]);
        a != b && clock::event_precedes(ea.clock.as_slice(), ea.actor, eb.clock.as_slice())
    }

    /// Neither of the two events happened before the other.
    pub fn concurrent(&self, a: u64, b: u64) -> bool {
        a != b && !self.happens_before(a, b) && !self.happens_before(b, a)
    }

    /// The name of an actor.
    pub fn actor_name(&self, id: ActorId) -> &str {
        self.header.actor_name(id)
    }
}
