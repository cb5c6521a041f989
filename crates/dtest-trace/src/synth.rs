//! Synthetic traces: random but valid, deterministic for a seed.
//!
//! Tests and benchmarks of every crate use them. A synthetic run has the
//! actors of a real one (`master`, `testerK`, `testerK@hostK`) and the same
//! kinds of traffic: commands started, input and output, matches, verdicts,
//! signals, exits, file transfers, and barriers over random subsets of
//! testers. Messages stay in flight for a while, so actors run concurrently;
//! every message is received before the `end` event, clocks are exact, and
//! [`crate::validate`] finds nothing to report.

use std::io::Write;
use std::path::Path;

use crate::error::Result;
use crate::model::{
    Actor, ActorId, ActorKind, Dir, Directive, Event, EventData, ExitStatus, Header, MsgId, Stream,
    Transfer,
};
use crate::{Trace, VectorClock, Writer};

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of testers (each with its session); at least 1.
    pub testers: usize,
    /// Exact number of events, the final `end` included.
    pub events: u64,
    /// Seed of the generator: same seed, same trace.
    pub seed: u64,
    /// Length of input and output payloads, in bytes.
    pub payload: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            testers: 4,
            events: 1000,
            seed: 1,
            payload: 16,
        }
    }
}

/// SplitMix64: tiny, fast, and stable forever (unlike a crate's generator,
/// whose stream may change between versions).
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// The header of a synthetic trace with `testers` testers.
pub fn header(cfg: &Config) -> Header {
    let n = cfg.testers.max(1);
    let mut actors = vec![Actor {
        id: 0,
        name: "master".into(),
        kind: ActorKind::Master,
        host: "local".into(),
    }];
    for k in 1..=n {
        actors.push(Actor {
            id: k as ActorId,
            name: format!("tester{k}"),
            kind: ActorKind::Tester,
            host: "local".into(),
        });
    }
    for k in 1..=n {
        actors.push(Actor {
            id: (n + k) as ActorId,
            name: format!("tester{k}@host{k}"),
            kind: ActorKind::Session,
            host: format!("host{k}"),
        });
    }
    let mut h = Header {
        start_unix_ns: 1_700_000_000_000_000_000
            + cfg.seed.wrapping_mul(1_000_000_007) % 1_000_000_000_000,
        scenario: format!("synth-{}x{}-seed{}", n, cfg.events, cfg.seed),
        actors,
        meta: Vec::new(),
    };
    h.meta
        .push(("generator".into(), "dtest trace synth".into()));
    h.meta.push(("seed".into(), cfg.seed.to_string()));
    h
}

struct Pending {
    msg: MsgId,
    to: ActorId,
    clock: Vec<u32>,
    data: EventData,
}

struct Gen<'a, F: FnMut(&Event) -> Result<()>> {
    rng: Rng,
    clocks: Vec<Vec<u32>>,
    time: u64,
    next_msg: MsgId,
    emitted: u64,
    pending: Vec<Pending>,
    running: Vec<bool>,
    verdicts: u32,
    payload: usize,
    ev: Event,
    sink: &'a mut F,
}

const WORDS: [&str; 12] = [
    "ready",
    "md5done",
    "listening",
    "ok",
    "connected",
    "error",
    "retry",
    "port=4242",
    "done",
    "joined",
    "tick",
    "panic",
];

impl<F: FnMut(&Event) -> Result<()>> Gen<'_, F> {
    fn emit(
        &mut self,
        actor: ActorId,
        dir: Dir,
        msg: Option<MsgId>,
        data: EventData,
    ) -> Result<()> {
        self.time += 1 + self.rng.below(5000);
        let ev = &mut self.ev;
        ev.index = self.emitted;
        ev.actor = actor;
        ev.time_ns = self.time;
        ev.dir = dir;
        ev.msg = msg;
        ev.clock.0.clear();
        ev.clock.0.extend_from_slice(&self.clocks[actor as usize]);
        ev.data = data;
        self.emitted += 1;
        (self.sink)(&self.ev)
    }

    fn local(&mut self, actor: ActorId, data: EventData) -> Result<()> {
        self.clocks[actor as usize][actor as usize] += 1;
        self.emit(actor, Dir::Local, None, data)
    }

    fn send(&mut self, from: ActorId, to: ActorId, data: EventData) -> Result<usize> {
        self.clocks[from as usize][from as usize] += 1;
        let msg = self.next_msg;
        self.next_msg += 1;
        self.pending.push(Pending {
            msg,
            to,
            clock: self.clocks[from as usize].clone(),
            data: data.clone(),
        });
        self.emit(from, Dir::Send, Some(msg), data)?;
        Ok(self.pending.len() - 1)
    }

    fn deliver(&mut self, i: usize) -> Result<()> {
        let p = self.pending.swap_remove(i);
        let c = &mut self.clocks[p.to as usize];
        for (a, b) in c.iter_mut().zip(&p.clock) {
            *a = (*a).max(*b);
        }
        c[p.to as usize] += 1;
        self.emit(p.to, Dir::Recv, Some(p.msg), p.data)
    }

    fn deliver_msg(&mut self, msg: MsgId) -> Result<()> {
        if let Some(i) = self.pending.iter().position(|p| p.msg == msg) {
            self.deliver(i)?;
        }
        Ok(())
    }

    fn text(&mut self) -> Vec<u8> {
        let mut s = Vec::with_capacity(self.payload);
        while s.len() < self.payload {
            let w = WORDS[self.rng.below(WORDS.len() as u64) as usize];
            s.extend_from_slice(w.as_bytes());
            s.push(if self.rng.below(4) == 0 { b'\n' } else { b' ' });
        }
        s.truncate(self.payload);
        s
    }

    fn verdict(&mut self, tester: ActorId) -> Result<()> {
        self.verdicts += 1;
        let ok = self.rng.below(10) != 0;
        let directive = match self.rng.below(20) {
            0 => Some(Directive::Skip),
            1 => Some(Directive::Todo),
            _ => None,
        };
        let number = self.verdicts;
        self.local(
            tester,
            EventData::Verdict {
                number,
                ok,
                description: format!("tester{tester}: step {number}"),
                directive,
                reason: String::new(),
            },
        )
    }
}

/// Generates the trace, giving each event to `sink` in order.
pub fn generate_into(cfg: &Config, mut sink: impl FnMut(&Event) -> Result<()>) -> Result<Header> {
    let header = header(cfg);
    let n = cfg.testers.max(1);
    let actors = header.actors.len();
    let mut g = Gen {
        rng: Rng(cfg.seed ^ 0x05ee_d0fd_7e57),
        clocks: vec![vec![0; actors]; actors],
        time: 0,
        next_msg: 0,
        emitted: 0,
        pending: Vec::new(),
        running: vec![false; n + 1],
        verdicts: 0,
        payload: cfg.payload,
        ev: Event {
            index: 0,
            actor: 0,
            time_ns: 0,
            dir: Dir::Local,
            msg: None,
            clock: VectorClock::new(actors),
            data: EventData::Close {
                reason: String::new(),
            },
        },
        sink: &mut sink,
    };
    if cfg.events == 0 {
        return Ok(header);
    }
    let target = cfg.events - 1; // the last event is `end`
    let session = |t: usize| (n + t) as ActorId;
    // Open every session first when there is room.
    if target >= 2 * n as u64 + 4 {
        for t in 1..=n {
            g.local(
                session(t),
                EventData::Open {
                    target: format!("/bin/sh on host{t}"),
                },
            )?;
        }
    }
    loop {
        let room = target.saturating_sub(g.emitted);
        if room <= g.pending.len() as u64 + 2 {
            break;
        }
        let r = g.rng.below(100);
        // Deliver often enough that the messages in flight stay bounded
        // (about 4 per tester), as in a real run.
        if !g.pending.is_empty() && (r < 40 || g.pending.len() > 4 * n) {
            let i = g.rng.below(g.pending.len() as u64) as usize;
            g.deliver(i)?;
            continue;
        }
        let t = 1 + g.rng.below(n as u64) as usize;
        let tester = t as ActorId;
        let sess = session(t);
        if r < 43 && n >= 2 {
            // A barrier over a random subset of at least two testers.
            let mut members: Vec<ActorId> =
                (1..=n as ActorId).filter(|_| g.rng.below(2) == 0).collect();
            if members.len() < 2 {
                members = vec![1, 2];
            }
            let cost = 4 * members.len() as u64;
            if room <= g.pending.len() as u64 + 2 + cost {
                continue;
            }
            let name = format!("barrier{}", g.rng.below(1000));
            let mut enters = Vec::new();
            for &m in &members {
                g.send(m, 0, EventData::BarrierEnter { name: name.clone() })?;
                enters.push(g.next_msg - 1);
            }
            for m in enters {
                g.deliver_msg(m)?;
            }
            let participants: std::sync::Arc<[String]> =
                members.iter().map(|m| format!("tester{m}")).collect();
            let mut leaves = Vec::new();
            for &m in &members {
                g.send(
                    0,
                    m,
                    EventData::BarrierLeave {
                        name: name.clone(),
                        participants: participants.clone(),
                    },
                )?;
                leaves.push(g.next_msg - 1);
            }
            for m in leaves {
                g.deliver_msg(m)?;
            }
            continue;
        }
        if !g.running[t] {
            let k = g.rng.below(100);
            g.send(
                tester,
                sess,
                EventData::Start {
                    command: format!("./server --id {k} --port {}", 4000 + k),
                },
            )?;
            g.running[t] = true;
            continue;
        }
        match g.rng.below(100) {
            0..=44 => {
                let bytes = g.text();
                let stream = if g.rng.below(8) == 0 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                g.send(sess, tester, EventData::Output { bytes, stream })?;
            }
            45..=54 => {
                let bytes = g.text();
                let secret = g.rng.below(16) == 0;
                g.send(tester, sess, EventData::Input { bytes, secret })?;
            }
            55..=69 => {
                let w = WORDS[g.rng.below(WORDS.len() as u64) as usize];
                g.local(
                    tester,
                    EventData::Match {
                        pattern: w.to_string(),
                        matched: w.to_string(),
                        captures: Vec::new(),
                    },
                )?;
            }
            70..=71 => {
                let w = WORDS[g.rng.below(WORDS.len() as u64) as usize];
                let waited_ns = 1_000_000 * (1 + g.rng.below(100));
                g.local(
                    tester,
                    EventData::Timeout {
                        pattern: w.to_string(),
                        waited_ns,
                    },
                )?;
            }
            72..=84 => g.verdict(tester)?,
            85..=87 => {
                g.send(tester, sess, EventData::Signal { name: "INT".into() })?;
            }
            88..=93 => {
                let status = if g.rng.below(5) == 0 {
                    ExitStatus::Signal("INT".into())
                } else {
                    ExitStatus::Code(g.rng.below(3) as i32)
                };
                g.send(sess, tester, EventData::Exit { status })?;
                g.running[t] = false;
            }
            94..=96 => {
                let size = g.rng.below(1 << 20);
                let mut sha256 = [0u8; 32];
                for b in sha256.iter_mut() {
                    *b = g.rng.below(256) as u8;
                }
                let tr = Transfer {
                    local: format!("run/file{size}"),
                    remote: format!("file{size}"),
                    size,
                    sha256,
                };
                g.send(tester, sess, EventData::Put(tr))?;
            }
            97..=98 => {
                let size = g.rng.below(1 << 20);
                let tr = Transfer {
                    local: format!("run/res{size}"),
                    remote: format!("res{size}"),
                    size,
                    sha256: [7; 32],
                };
                g.send(sess, tester, EventData::Get(tr))?;
            }
            _ => {
                let status = g.rng.below(2) as i32;
                g.local(
                    tester,
                    EventData::Custom {
                        name: "compare results".into(),
                        status,
                        output: String::new(),
                    },
                )?;
            }
        }
    }
    while !g.pending.is_empty() {
        let i = g.rng.below(g.pending.len() as u64) as usize;
        g.deliver(i)?;
    }
    while g.emitted < target {
        let t = 1 + g.rng.below(n as u64) as ActorId;
        g.verdict(t)?;
    }
    let summary = format!("{} verdicts", g.verdicts);
    g.local(0, EventData::End { ok: true, summary })?;
    Ok(header)
}

/// Generates a synthetic trace in memory.
pub fn generate(cfg: &Config) -> Trace {
    let mut events = Vec::new();
    let header = generate_into(cfg, |e| {
        events.push(e.clone());
        Ok(())
    })
    .unwrap_or_else(|_| header(cfg));
    let complete = cfg.events > 0;
    Trace::from_parts(header, events, complete, Vec::new())
}

/// Writes a synthetic trace to `out` (streaming: constant memory).
pub fn write_to<W: Write>(out: W, cfg: &Config) -> Result<W> {
    let mut w = Writer::new(out, header(cfg))?;
    generate_into(cfg, |e| w.append_event(e).map(|_| ()))?;
    w.into_inner()
}

/// Writes a synthetic trace file.
pub fn write(path: &Path, cfg: &Config) -> Result<()> {
    let f = std::fs::File::create(path)?;
    let mut out = write_to(std::io::BufWriter::with_capacity(1 << 20, f), cfg)?;
    out.flush()?;
    Ok(())
}
