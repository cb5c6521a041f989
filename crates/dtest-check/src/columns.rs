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
use crate::lines::{Probe, Probes};
use crate::warn::EqAsRegex;

/// Number of event kinds.
pub const KINDS: usize = dtest_trace::Kind::ALL.len();

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

    /// Number of set bits.
    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Position of the first set bit at or after `from`.
    pub fn next_one(&self, from: usize) -> Option<usize> {
        if from >= self.n {
            return None;
        }
        let mut w = from >> 6;
        let mut word = self.words[w] & (u64::MAX << (from & 63));
        loop {
            if word != 0 {
                let i = (w << 6) + word.trailing_zeros() as usize;
                return (i < self.n).then_some(i);
            }
            w += 1;
            if w >= self.words.len() {
                return None;
            }
            word = self.words[w];
        }
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
    /// `(atom, event)`: how many more lines than one matched there.
    pub extra: HashMap<(u32, usize), u32>,
    /// Per key request: the key id of each event (`NONE` where there is
    /// none), the key of its first matching line.
    pub keys: Vec<(KeyRequest, Vec<u32>)>,
    /// Per key request: the keys of the other matching lines of an event.
    pub key_extra: Vec<HashMap<usize, Vec<u32>>>,
    /// Number of events of each kind (by tag).
    pub kind_counts: [u64; KINDS],
    /// The atoms with a string text that no event equals but that the
    /// string read as a regex finds (for a warning).
    pub eq_as_regex: Vec<u32>,
    /// Vector clocks, `n * actors` entries, when asked for.
    pub clocks: Option<Vec<u32>>,
    /// Whether the trace has its `end` event.
    pub complete: bool,
    /// What the reader noticed.
    pub warnings: Vec<Warning>,
    /// How many times had to be raised to keep them non-decreasing.
    pub clamped_times: u64,
}

/// Tests one atom on events (and, for input and output, on their lines).
#[derive(Debug)]
pub struct Matcher<'a> {
    atom: &'a AtomIr,
    actor: Option<Option<u32>>,
    field_actor: Vec<(bool, Option<u32>)>,
    /// Whether the atom tests the text (then input and output are
    /// matched per line).
    texty: bool,
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
            texty: atom.is_texty(),
        }
    }

    /// The atom.
    pub fn atom(&self) -> &'a AtomIr {
        self.atom
    }

    /// Whether events of `kind` are matched line by line.
    pub fn per_line(&self, kind: dtest_trace::Kind) -> bool {
        self.texty && fields::is_line_kind(kind)
    }

    /// Whether the atom holds at this event, but for its text tests when
    /// the event is matched per line ([`Matcher::test_line`]).
    pub fn test_event(&self, e: &Event) -> bool {
        let a = self.atom;
        let kind = e.data.kind();
        if let Some(k) = a.kind {
            if kind != k {
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
        if a.fields.is_empty() && matches!(a.text, TextTest::Any) {
            return true;
        }
        let line = self.per_line(kind);
        let signal = fields::names_signal(&e.data);
        if !line
            && !matches!(a.text, TextTest::Any)
            && !text_ok(&a.text, &fields::text(&e.data), signal)
        {
            return false;
        }
        for (f, neg, v) in &a.fields {
            if *f == fields::ACTOR || (line && *f == fields::TEXT) {
                continue;
            }
            match fields::value(*f, e.dir, &e.data) {
                Some(s) => {
                    let same = if signal
                        && (*f == fields::TEXT || *f == fields::NAME || *f == fields::STATUS)
                    {
                        fields::same_signal(&s, v)
                    } else {
                        s == v.as_str()
                    };
                    if same == *neg {
                        return false;
                    }
                }
                None => return false,
            }
        }
        true
    }

    /// The text tests on one line of an input or output event.
    pub fn test_line(&self, line: &str) -> bool {
        let a = self.atom;
        if !text_ok(&a.text, line, false) {
            return false;
        }
        for (f, neg, v) in &a.fields {
            if *f == fields::TEXT && (line == v.as_str()) == *neg {
                return false;
            }
        }
        true
    }

    /// Whether the atom holds at an event with no line to look at: the
    /// whole test for events not matched per line (tests and oracles).
    pub fn test(&self, e: &Event) -> bool {
        self.test_event(e) && !self.per_line(e.data.kind())
    }

    /// The join key of an event the atom holds at: the values of `parts`
    /// joined by U+001F, or `None` when one is missing. `line`: the line
    /// (for an event matched per line).
    pub fn key(
        &self,
        e: &Event,
        parts: &[KeyPart],
        names: &[String],
        line: Option<&str>,
    ) -> Option<String> {
        let fixed = self.key_fixed(e, parts, names);
        match line {
            Some(l) => self.key_line(parts, &fixed, l),
            None => {
                let text = fields::text(&e.data);
                self.key_line(parts, &fixed, &text)
            }
        }
    }

    /// The values of `parts` that do not come from the text (`None` for
    /// those that do, or are missing).
    pub fn key_fixed(&self, e: &Event, parts: &[KeyPart], names: &[String]) -> Vec<Option<String>> {
        parts
            .iter()
            .map(|p| match p {
                KeyPart::Field(f) if *f == fields::ACTOR => names.get(e.actor as usize).cloned(),
                KeyPart::Field(f) if *f == fields::TEXT => None,
                KeyPart::Field(f) => fields::value(*f, e.dir, &e.data).map(|c| c.into_owned()),
                KeyPart::Capture(_) => None,
            })
            .collect()
    }

    /// The key with the text parts taken from `text`.
    pub fn key_line(
        &self,
        parts: &[KeyPart],
        fixed: &[Option<String>],
        text: &str,
    ) -> Option<String> {
        let mut key = String::new();
        let mut caps = None;
        for (k, p) in parts.iter().enumerate() {
            if k > 0 {
                key.push('\u{1f}');
            }
            match p {
                KeyPart::Field(f) if *f == fields::TEXT => key.push_str(text),
                KeyPart::Field(_) => key.push_str(fixed.get(k)?.as_deref()?),
                KeyPart::Capture(g) => {
                    let TextTest::Regex(r) = &self.atom.text else {
                        return None;
                    };
                    if caps.is_none() {
                        caps = Some(r.captures(text)?);
                    }
                    key.push_str(caps.as_ref()?.get(*g as usize)?.as_str());
                }
            }
        }
        Some(key)
    }
}

/// The positional text test on a text; `signal`: the text is a signal
/// name (`KILL` and `SIGKILL` are the same).
fn text_ok(t: &TextTest, text: &str, signal: bool) -> bool {
    match t {
        TextTest::Any => true,
        TextTest::Eq(s) => {
            if signal {
                fields::same_signal(text, s)
            } else {
                text == s.as_str()
            }
        }
        TextTest::Regex(r) => {
            r.is_match(text) || (signal && r.is_match(text.strip_prefix("SIG").unwrap_or(text)))
        }
    }
}

/// Atoms by kind: for each kind tag, the positions (in `matchers`) of the
/// atoms an event of that kind must be tested against (its kind's and the
/// `any` atoms).
pub fn by_kind<'m, 'a: 'm>(matchers: impl Iterator<Item = &'m Matcher<'a>>) -> Vec<Vec<usize>> {
    let mut by_kind: Vec<Vec<usize>> = vec![Vec::new(); dtest_trace::Kind::ALL.len()];
    for (k, m) in matchers.enumerate() {
        match m.atom.kind {
            Some(kind) => by_kind[kind as usize].push(k),
            None => by_kind.iter_mut().for_each(|v| v.push(k)),
        }
    }
    by_kind
}

/// What a reader must decode for `needs`: the vector clocks only when a
/// causal operator is used, and the data of the kinds that an atom (or a
/// join key) looks into. An atom that tests only the kind, actor and
/// direction of events needs no data: the reader steps over it.
pub fn read_options(ir: &Ir, needs: &Needs) -> dtest_trace::ReadOptions {
    use dtest_trace::Kind;
    let plain =
        |p: &KeyPart| matches!(p, KeyPart::Field(f) if *f == fields::ACTOR || *f == fields::DIR);
    let mut kinds = [false; KINDS];
    let mut look = |atom: &AtomIr, parts: &[KeyPart]| {
        let data = atom.is_texty()
            || atom
                .fields
                .iter()
                .any(|f| f.0 != fields::ACTOR && f.0 != fields::DIR)
            || !parts.iter().all(plain)
            || !atom.key.iter().all(plain)
            || !atom.var_key.iter().all(plain);
        if data {
            match atom.kind {
                Some(k) => kinds[k as usize] = true,
                None => kinds = [true; KINDS],
            }
        }
    };
    for &a in &needs.atoms {
        look(&ir.atoms[a as usize], &[]);
    }
    for k in &needs.keys {
        look(&ir.atoms[k.atom as usize], &k.parts);
    }
    dtest_trace::ReadOptions::all()
        .clocks(needs.clocks)
        .data_of(Kind::ALL.into_iter().filter(|&k| kinds[k as usize]))
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
        let mut c = Columns {
            n: 0,
            kinds: Vec::new(),
            actors: Vec::new(),
            times: Vec::new(),
            atoms: (0..ir.atoms.len()).map(|_| None).collect(),
            extra: HashMap::new(),
            keys: needs.keys.iter().map(|k| (k.clone(), Vec::new())).collect(),
            key_extra: needs.keys.iter().map(|_| HashMap::new()).collect(),
            actor_names: actor_names.clone(),
            clocks: needs.clocks.then(Vec::new),
            complete: false,
            warnings: Vec::new(),
            clamped_times: 0,
            kind_counts: [0; KINDS],
            eq_as_regex: Vec::new(),
        };
        let mut probes: Vec<Probe<'_>> = needs
            .atoms
            .iter()
            .map(|&a| Probe {
                atom: a,
                m: Matcher::new(&ir.atoms[a as usize], &actor_names),
                parts: None,
            })
            .collect();
        let n_bits = probes.len();
        probes.extend(needs.keys.iter().map(|k| Probe {
            atom: k.atom,
            m: Matcher::new(&ir.atoms[k.atom as usize], &actor_names),
            parts: Some(k.parts.as_slice()),
        }));
        for &a in &needs.atoms {
            c.atoms[a as usize] = Some(Bits::new(0, false));
        }
        let mut key_ids: HashMap<String, u32> = HashMap::new();
        let mut intern = |k: &Option<String>| match k {
            Some(s) => {
                if let Some(&id) = key_ids.get(s) {
                    id
                } else {
                    let id = key_ids.len() as u32;
                    key_ids.insert(s.clone(), id);
                    id
                }
            }
            None => NONE,
        };
        let mut eq = EqAsRegex::new(ir, needs);
        let mut pr = Probes::new(probes, &actor_names);
        let mut last_t = 0u64;
        while c.n < limit {
            let Some(e) = reader.next_event()? else {
                break;
            };
            let kind = e.data.kind();
            let i = c.n;
            c.kinds.push(kind as u8);
            c.actors.push(e.actor);
            c.kind_counts[kind as usize] += 1;
            let t = if e.time_ns < last_t {
                c.clamped_times += 1;
                last_t
            } else {
                e.time_ns
            };
            last_t = t;
            c.times.push(t);
            if i % 64 == 0 {
                for &a in &needs.atoms {
                    if let Some(b) = c.atoms[a as usize].as_mut() {
                        b.grow_word();
                    }
                }
            }
            eq.event(e);
            pr.event(i, e);
            for k in 0..needs.keys.len() {
                c.keys[k].1.push(NONE);
            }
            for &p in &pr.touched {
                if p < n_bits {
                    let a = needs.atoms[p];
                    if let Some(b) = c.atoms[a as usize].as_mut() {
                        b.set(i, true);
                    }
                    if pr.count[p] > 1 {
                        c.extra.insert((a, i), pr.count[p] - 1);
                    }
                } else {
                    let k = p - n_bits;
                    let keys = &pr.keys[p];
                    if let Some(first) = keys.first() {
                        c.keys[k].1[i] = intern(first);
                    }
                    if keys.len() > 1 {
                        let more = keys[1..].iter().map(&mut intern).collect();
                        c.key_extra[k].insert(i, more);
                    }
                }
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
        // Final lines without newline belong to their stream's last event,
        // when the whole trace was read (a prefix is cut anywhere) and is
        // complete (a truncated trace's last lines may go on: unknown, they
        // match nothing, which keeps the verdicts sound).
        let read_all = c.n < limit && reader.is_complete();
        let late = if read_all { pr.finish() } else { Vec::new() };
        for (i, p, key, hit) in late {
            if p < n_bits {
                let a = needs.atoms[p];
                if let Some(b) = c.atoms[a as usize].as_mut() {
                    if hit {
                        *c.extra.entry((a, i)).or_insert(0) += 1;
                    } else {
                        b.set(i, true);
                    }
                }
            } else {
                let k = p - n_bits;
                let id = intern(&key);
                if hit {
                    c.key_extra[k].entry(i).or_default().push(id);
                } else {
                    c.keys[k].1[i] = id;
                }
            }
        }
        for &a in &needs.atoms {
            if let Some(b) = c.atoms[a as usize].as_mut() {
                b.set_len(c.n);
            }
        }
        c.eq_as_regex = eq.finish();
        c.complete = reader.is_complete();
        c.warnings = reader.warnings().to_vec();
        Ok(c)
    }

    /// How many times atom `a` holds at event `i`: the number of its
    /// lines completed there for an atom matched per line, else 0 or 1.
    pub fn count(&self, a: u32, i: usize) -> u64 {
        match self.atoms.get(a as usize).and_then(Option::as_ref) {
            Some(b) if b.get(i) => 1 + u64::from(self.extra.get(&(a, i)).copied().unwrap_or(0)),
            _ => 0,
        }
    }

    /// The keys of request `k` at event `i`, one per matching line (the
    /// first is in the key column).
    pub fn keys_at(&self, k: usize, i: usize) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(self.keys[k].1[i]).chain(
            self.key_extra[k]
                .get(&i)
                .into_iter()
                .flat_map(|v| v.iter().copied()),
        )
    }

    /// The index of a key request.
    pub fn key_index(&self, k: &KeyRequest) -> Option<usize> {
        self.keys.iter().position(|(r, _)| r == k)
    }

    /// What the warnings need to know of the trace.
    pub(crate) fn stats(&self, needs: &Needs) -> crate::warn::TraceStats {
        crate::warn::TraceStats {
            kind_counts: self.kind_counts.to_vec(),
            eq_as_regex: self.eq_as_regex.clone(),
            held: needs
                .atoms
                .iter()
                .copied()
                .chain(needs.keys.iter().map(|k| k.atom))
                .filter(|&a| {
                    self.atoms
                        .get(a as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|b| b.next_one(0).is_some())
                        || self
                            .keys
                            .iter()
                            .any(|(k, v)| k.atom == a && v.iter().any(|&x| x != NONE))
                })
                .collect(),
        }
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
