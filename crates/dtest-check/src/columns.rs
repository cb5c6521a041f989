//! The columnar form of a trace the evaluator runs on.
//!
//! A [`dtest_trace::Reader`] streams the events once; only what the
//! properties need is kept: kind, actor and time of every event (13 bytes an
//! event), one bit per event for every atom of the properties (atoms are
//! tested as the events stream by, so texts and fields are never stored),
//! the join keys of the atoms a quantifier relates (4 bytes an event, keys
//! interned), and the vector clocks only when a causal operator is used.
//!
//! Times are made non-decreasing (each time is the maximum of the times so
//! far): the metric operators need sorted times; a trace from `dtest exec`
//! already has them, and [`Columns::clamped_times`] counts the fixes.

use std::collections::HashMap;
use std::io::Read;

use dtest_trace::{Event, Reader, Warning};

use crate::fields;
use crate::ir::{AtomIr, Ir, KeyPart, Needs, TextTest};

/// Key id meaning "the event has no key" (the atom does not hold, or a
/// compared value is missing).
pub const NONE: u32 = u32::MAX;

/// A set of event positions, one bit each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    n: usize,
}

impl Bits {
    /// `n` bits, all `v`.
    pub fn new(n: usize, v: bool) -> Bits {
        let mut b = Bits {
            words: vec![if v { u64::MAX } else { 0 }; n.div_ceil(64)],
            n,
        };
        b.trim();
        b
    }

    fn trim(&mut self) {
        if self.n % 64 != 0 {
            if let Some(w) = self.words.last_mut() {
                *w &= (1u64 << (self.n % 64)) - 1;
            }
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are no bits.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Bit `i`.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words[i >> 6] >> (i & 63) & 1 == 1
    }

    /// Sets bit `i` to `v`.
    #[inline]
    pub fn set(&mut self, i: usize, v: bool) {
        let m = 1u64 << (i & 63);
        if v {
            self.words[i >> 6] |= m;
        } else {
            self.words[i >> 6] &= !m;
        }
    }

    /// Keeps the first `n` bits.
    pub fn truncate(&mut self, n: usize) {
        if n < self.n {
            self.n = n;
            self.words.truncate(n.div_ceil(64));
            self.trim();
        }
    }

    /// Adds 64 false bits of room (see [`Bits::set_len`]).
    pub fn grow_word(&mut self) {
        self.words.push(0);
    }

    /// Sets the length to `n` bits (the words must be there).
    pub fn set_len(&mut self, n: usize) {
        self.n = n;
        self.words.resize(n.div_ceil(64), 0);
        self.trim();
    }

    /// Appends a bit.
    pub fn push(&mut self, v: bool) {
        if self.n % 64 == 0 {
            self.words.push(0);
        }
        self.n += 1;
        self.set(self.n - 1, v);
    }

    /// The complement.
    pub fn not(&self) -> Bits {
        let mut b = Bits {
            words: self.words.iter().map(|w| !w).collect(),
            n: self.n,
        };
        b.trim();
        b
    }

    /// Bitwise and.
    pub fn and(&self, o: &Bits) -> Bits {
        Bits {
            words: self
                .words
                .iter()
                .zip(&o.words)
                .map(|(a, b)| a & b)
                .collect(),
            n: self.n,
        }
    }

    /// Bitwise or.
    pub fn or(&self, o: &Bits) -> Bits {
        Bits {
            words: self
                .words
                .iter()
                .zip(&o.words)
                .map(|(a, b)| a | b)
                .collect(),
            n: self.n,
        }
    }

    /// Whether every bit is set.
    pub fn all(&self) -> bool {
        self.not().words.iter().all(|&w| w == 0)
    }

    /// Position of the first set bit at or after `from`.
    pub fn next_one(&self, from: usize) -> Option<usize> {
        (from..self.n).find(|&i| self.get(i))
    }
}

/// A trace in columns.
#[derive(Debug)]
pub struct Columns {
    /// Number of events.
    pub n: usize,
    /// Kind tag of each event.
    pub kinds: Vec<u8>,
    /// Actor of each event.
    pub actors: Vec<u32>,
    /// Time of each event (ns, non-decreasing).
    pub times: Vec<u64>,
    /// Actor names (the header's actor table).
    pub actor_names: Vec<String>,
    /// Per atom of the IR: where it holds (for the atoms that were asked for).
    pub atoms: Vec<Option<Bits>>,
    /// Per key request: the key id of each event (`NONE` where there is none).
    pub keys: Vec<(KeyRequest, Vec<u32>)>,
    /// Vector clocks, `n * actors` entries, when asked for.
    pub clocks: Option<Vec<u32>>,
    /// Whether the trace has its `end` event.
    pub complete: bool,
    /// What the reader noticed.
    pub warnings: Vec<Warning>,
    /// How many times had to be raised to keep them non-decreasing.
    pub clamped_times: u64,
}

/// Tests one atom on whole events (used while reading, and by tests).
#[derive(Debug)]
pub struct Matcher<'a> {
    atom: &'a AtomIr,
    actor: Option<Option<u32>>,
    field_actor: Vec<(bool, Option<u32>)>,
}

impl<'a> Matcher<'a> {
    /// A matcher for `atom` on a trace with these actor names.
    pub fn new(atom: &'a AtomIr, actor_names: &[String]) -> Matcher<'a> {
        let find = |n: &str| actor_names.iter().position(|a| a == n).map(|p| p as u32);
        Matcher {
            atom,
            actor: atom.actor.as_deref().map(find),
            field_actor: atom
                .fields
                .iter()
                .filter(|(f, _, _)| *f == fields::ACTOR)
                .map(|(_, neg, v)| (*neg, find(v)))
                .collect(),
        }
    }

    /// Whether the atom holds at this event.
    pub fn test(&self, e: &Event) -> bool {
        let a = self.atom;
        if let Some(k) = a.kind {
            if e.data.kind() != k {
                return false;
            }
        }
        if let Some(want) = self.actor {
            if want != Some(e.actor) {
                return false;
            }
        }
        for &(neg, want) in &self.field_actor {
            if (want == Some(e.actor)) == neg {
                return false;
            }
        }
        match &a.text {
            TextTest::Any => {}
            TextTest::Eq(s) => {
                if e.data.text() != s.as_str() {
                    return false;
                }
            }
            TextTest::Regex(r) => {
                if !r.is_match(&e.data.text()) {
                    return false;
                }
            }
        }
        for (f, neg, v) in &a.fields {
            if *f == fields::ACTOR {
                continue;
            }
            match fields::value(*f, e.dir, &e.data) {
                Some(s) => {
                    if (s == v.as_str()) == *neg {
                        return false;
                    }
                }
                None => return false,
            }
        }
        true
    }

    /// The join key of an event the atom holds at: the values of `parts`
    /// joined by U+001F, or `None` when one is missing.
    pub fn key(&self, e: &Event, parts: &[KeyPart], names: &[String]) -> Option<String> {
        let mut key = String::new();
        for (k, p) in parts.iter().enumerate() {
            if k > 0 {
                key.push('\u{1f}');
            }
            match p {
                KeyPart::Field(f) if *f == fields::ACTOR => {
                    key.push_str(names.get(e.actor as usize)?);
                }
                KeyPart::Field(f) => key.push_str(&fields::value(*f, e.dir, &e.data)?),
                KeyPart::Capture(g) => {
                    let TextTest::Regex(r) = &self.atom.text else {
                        return None;
                    };
                    let text = e.data.text();
                    let caps = r.captures(&text)?;
                    key.push_str(caps.get(*g as usize)?.as_str());
                }
            }
        }
        Some(key)
    }
}

/// Atoms by kind: for each kind tag, the positions (in `matchers`) of the
/// atoms an event of that kind must be tested against (its kind's and the
/// `any` atoms).
pub fn by_kind<'m>(matchers: impl Iterator<Item = &'m Matcher<'m>>) -> Vec<Vec<usize>> {
    let mut by_kind: Vec<Vec<usize>> = vec![Vec::new(); dtest_trace::Kind::ALL.len()];
    for (k, m) in matchers.enumerate() {
        match m.atom.kind {
            Some(kind) => by_kind[kind as usize].push(k),
            None => by_kind.iter_mut().for_each(|v| v.push(k)),
        }
    }
    by_kind
}

/// A join key to compute while reading: atom `atom`'s values `parts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// The atom (the key exists only where it holds).
    pub atom: u32,
    /// The values the key is made of.
    pub parts: Vec<KeyPart>,
}

impl Columns {
    /// Reads every event of `reader`, keeping what `needs` asks for.
    pub fn read<R: Read>(
        reader: Reader<R>,
        ir: &Ir,
        needs: &Needs,
    ) -> dtest_trace::Result<Columns> {
        Self::read_prefix(reader, ir, needs, usize::MAX)
    }

    /// Reads the first `limit` events of `reader` (`complete` is then
    /// false unless the `end` event was among them).
    pub fn read_prefix<R: Read>(
        mut reader: Reader<R>,
        ir: &Ir,
        needs: &Needs,
        limit: usize,
    ) -> dtest_trace::Result<Columns> {
        let actor_names: Vec<String> = reader
            .header()
            .actors
            .iter()
            .map(|a| a.name.clone())
            .collect();
        let na = actor_names.len();
        let matchers: Vec<(usize, Matcher<'_>)> = needs
            .atoms
            .iter()
            .map(|&a| {
                (
                    a as usize,
                    Matcher::new(&ir.atoms[a as usize], &actor_names),
                )
            })
            .collect();
        let key_matchers: Vec<Matcher<'_>> = needs
            .keys
            .iter()
            .map(|k| Matcher::new(&ir.atoms[k.atom as usize], &actor_names))
            .collect();
        let mut key_ids: HashMap<String, u32> = HashMap::new();
        let mut c = Columns {
            n: 0,
            kinds: Vec::new(),
            actors: Vec::new(),
            times: Vec::new(),
            atoms: (0..ir.atoms.len()).map(|_| None).collect(),
            keys: needs.keys.iter().map(|k| (k.clone(), Vec::new())).collect(),
            actor_names,
            clocks: needs.clocks.then(Vec::new),
            complete: false,
            warnings: Vec::new(),
            clamped_times: 0,
        };
        for &(a, _) in &matchers {
            c.atoms[a] = Some(Bits::new(0, false));
        }
        let by_kind = by_kind(matchers.iter().map(|(_, m)| m));
        let mut last_t = 0u64;
        while c.n < limit {
            let Some(e) = reader.next_event()? else {
                break;
            };
            let kind = e.data.kind();
            let i = c.n;
            c.kinds.push(kind as u8);
            c.actors.push(e.actor);
            let t = if e.time_ns < last_t {
                c.clamped_times += 1;
                last_t
            } else {
                e.time_ns
            };
            last_t = t;
            c.times.push(t);
            if i % 64 == 0 {
                for (a, _) in &matchers {
                    if let Some(b) = c.atoms[*a].as_mut() {
                        b.grow_word();
                    }
                }
            }
            for &k in &by_kind[kind as usize] {
                let (a, m) = &matchers[k];
                if m.test(e) {
                    if let Some(b) = c.atoms[*a].as_mut() {
                        b.set(i, true);
                    }
                }
            }
            for (k, m) in key_matchers.iter().enumerate() {
                let id = if m.test(e) {
                    match m.key(e, &needs.keys[k].parts, &c.actor_names) {
                        Some(s) => {
                            let next = key_ids.len() as u32;
                            *key_ids.entry(s).or_insert(next)
                        }
                        None => NONE,
                    }
                } else {
                    NONE
                };
                c.keys[k].1.push(id);
            }
            if let Some(cl) = c.clocks.as_mut() {
                let s = e.clock.as_slice();
                if s.len() == na {
                    cl.extend_from_slice(s);
                } else {
                    cl.extend((0..na).map(|k| s.get(k).copied().unwrap_or(0)));
                }
            }
            c.n += 1;
        }
        for (a, _) in &matchers {
            if let Some(b) = c.atoms[*a].as_mut() {
                b.set_len(c.n);
            }
        }
        c.complete = reader.is_complete();
        c.warnings = reader.warnings().to_vec();
        Ok(c)
    }

    /// Number of actors.
    pub fn n_actors(&self) -> usize {
        self.actor_names.len()
    }

    /// The clock of event `i` (empty when clocks were not read).
    pub fn clock(&self, i: usize) -> &[u32] {
        match &self.clocks {
            Some(c) => {
                let a = self.n_actors();
                &c[i * a..(i + 1) * a]
            }
            None => &[],
        }
    }

    /// Entry `a` of the clock of event `i`.
    pub fn clock_at(&self, i: usize, a: usize) -> u32 {
        self.clock(i).get(a).copied().unwrap_or(0)
    }

    /// The position of event `i` on its own actor (its own clock entry).
    pub fn seq(&self, i: usize) -> u32 {
        self.clock_at(i, self.actors[i] as usize)
    }

    /// The kind of event `i`.
    pub fn kind(&self, i: usize) -> dtest_trace::Kind {
        dtest_trace::Kind::from_tag(self.kinds[i]).unwrap_or(dtest_trace::Kind::Custom)
    }

    /// The name of the actor of event `i`.
    pub fn actor_name(&self, i: usize) -> &str {
        self.actor_names
            .get(self.actors[i] as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// Where atom `a` holds (all false when it was not read).
    pub fn atom(&self, a: u32) -> Bits {
        match self.atoms.get(a as usize).and_then(Option::as_ref) {
            Some(b) => b.clone(),
            None => Bits::new(self.n, false),
        }
    }

    /// The key ids of a key request (`None` when it was not computed).
    pub fn key_col(&self, k: &KeyRequest) -> Option<&[u32]> {
        self.keys
            .iter()
            .find(|(r, _)| r == k)
            .map(|(_, v)| v.as_slice())
    }
}
