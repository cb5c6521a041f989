//! Trace statistics, computed in one streaming pass.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use crate::error::Result;
use crate::export::escape_name;
use crate::model::{Header, Kind};
use crate::reader::{Reader, Warning};

/// What `dtest trace stats` prints.
#[derive(Clone, Debug)]
pub struct Stats {
    /// The header.
    pub header: Header,
    /// Number of events.
    pub events: u64,
    /// Events per kind.
    pub per_kind: BTreeMap<Kind, u64>,
    /// Events per actor, by actor id.
    pub per_actor: Vec<u64>,
    /// Time of the last event (ns since the start).
    pub duration_ns: u64,
    /// Payload bytes (input and output).
    pub payload_bytes: u64,
    /// Bytes of the file consumed.
    pub file_bytes: u64,
    /// Whether the trace has its `end` event.
    pub complete: bool,
    /// Warnings of the reader (torn tail, newer minor).
    pub warnings: Vec<Warning>,
}

impl Stats {
    /// Reads the whole trace and counts.
    pub fn compute<R: Read>(mut r: Reader<R>) -> Result<Stats> {
        let n = r.header().actors.len();
        let mut per_kind_arr = [0u64; Kind::ALL.len()];
        let mut per_actor = vec![0u64; n];
        let mut events = 0;
        let mut duration_ns = 0;
        while let Some(e) = r.next_event()? {
            events += 1;
            per_kind_arr[e.kind() as usize] += 1;
            per_actor[e.actor as usize] += 1;
            duration_ns = e.time_ns;
        }
        let per_kind = Kind::ALL
            .iter()
            .filter(|k| per_kind_arr[**k as usize] > 0)
            .map(|k| (*k, per_kind_arr[*k as usize]))
            .collect();
        Ok(Stats {
            header: r.header().clone(),
            events,
            per_kind,
            per_actor,
            duration_ns,
            payload_bytes: r.payload_bytes(),
            file_bytes: r.offset(),
            complete: r.is_complete(),
            warnings: r.warnings().to_vec(),
        })
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        // Names are escaped: a trace cannot print control sequences.
        writeln!(f, "scenario:   {}", escape_name(&h.scenario))?;
        writeln!(
            f,
            "status:     {}",
            if self.complete {
                "complete"
            } else {
                "INCOMPLETE (no end event)"
            }
        )?;
        writeln!(f, "events:     {}", self.events)?;
        writeln!(f, "duration:   {:.6} s", self.duration_ns as f64 / 1e9)?;
        writeln!(f, "payload:    {} bytes", self.payload_bytes)?;
        writeln!(
            f,
            "file:       {} bytes ({:.1} bytes/event)",
            self.file_bytes,
            if self.events > 0 {
                self.file_bytes as f64 / self.events as f64
            } else {
                0.0
            }
        )?;
        writeln!(f, "actors:     {}", h.actors.len())?;
        for (a, n) in h.actors.iter().zip(&self.per_actor) {
            writeln!(
                f,
                "  {:<24} {:<8} {:<16} {n:>10} events",
                escape_name(&a.name),
                a.kind.name(),
                escape_name(&a.host)
            )?;
        }
        writeln!(f, "kinds:")?;
        for (k, n) in &self.per_kind {
            writeln!(f, "  {:<24} {n:>10}", k.name())?;
        }
        for w in &self.warnings {
            writeln!(f, "warning:    {w}")?;
        }
        Ok(())
    }
}
