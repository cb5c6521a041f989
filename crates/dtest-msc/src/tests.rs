//! Unit tests of the layout and of both writers on hand-made and synthetic
//! traces. End-to-end tests (through `dtest msc` and the real mscgen,
//! xmllint and rsvg-convert) are in `tests/it/msc.rs`.

use dtest_trace::{
    synth, Actor, ActorId, ActorKind, Dir, Event, EventData, ExitStatus, Header, MsgId, Stream,
    Trace, VectorClock,
};

use crate::layout::{Geometry, Layout};
use crate::view::View;
use crate::{mscgen::Msc, svg::Svg, Bound, Detail, Events, Format, LayoutKind, Options};

/// Options drawing every event on its own.
fn full() -> Options {
    Options {
        detail: Detail::Full,
        ..Options::default()
    }
}

fn ev(t: &Trace, o: &Options) -> Events {
    Events::from_trace(t, o).unwrap()
}

/// Builds traces in memory with exact vector clocks.
struct Builder {
    header: Header,
    clocks: Vec<VectorClock>,
    events: Vec<Event>,
    inflight: Vec<(MsgId, VectorClock)>,
    next: MsgId,
}

impl Builder {
    fn new(names: &[&str]) -> Builder {
        let actors = names
            .iter()
            .enumerate()
            .map(|(i, n)| Actor {
                id: i as ActorId,
                name: (*n).into(),
                kind: if i == 0 {
                    ActorKind::Master
                } else if n.contains('@') {
                    ActorKind::Session
                } else {
                    ActorKind::Tester
                },
                host: "local".into(),
            })
            .collect();
        Builder {
            header: Header::new("unit", actors),
            clocks: vec![VectorClock::new(names.len()); names.len()],
            events: Vec::new(),
            inflight: Vec::new(),
            next: 0,
        }
    }

    fn push(&mut self, a: ActorId, dir: Dir, msg: Option<MsgId>, data: EventData) -> u64 {
        self.clocks[a as usize].tick(a);
        let i = self.events.len() as u64;
        self.events.push(Event {
            index: i,
            actor: a,
            time_ns: i * 1000,
            dir,
            msg,
            clock: self.clocks[a as usize].clone(),
            data,
        });
        i
    }

    fn local(&mut self, a: ActorId, data: EventData) -> u64 {
        self.push(a, Dir::Local, None, data)
    }

    fn send(&mut self, a: ActorId, data: EventData) -> MsgId {
        let m = self.next;
        self.next += 1;
        self.push(a, Dir::Send, Some(m), data);
        self.inflight.push((m, self.clocks[a as usize].clone()));
        m
    }

    fn recv(&mut self, a: ActorId, m: MsgId) -> u64 {
        let k = self.inflight.iter().position(|(x, _)| *x == m).unwrap();
        let (_, c) = self.inflight.remove(k);
        self.clocks[a as usize].merge(c.as_slice());
        let kind = self
            .events
            .iter()
            .find(|e| e.msg == Some(m))
            .map(|e| e.kind())
            .unwrap();
        self.push(a, Dir::Recv, Some(m), EventData::empty(kind))
    }

    fn message(&mut self, from: ActorId, to: ActorId, data: EventData) -> (u64, u64) {
        let m = self.send(from, data);
        let s = self.events.len() as u64 - 1;
        (s, self.recv(to, m))
    }

    fn trace(self, complete: bool) -> Trace {
        Trace::from_parts(self.header, self.events, complete, Vec::new())
    }
}

fn out(bytes: &str) -> EventData {
    EventData::Output {
        bytes: bytes.as_bytes().to_vec(),
        stream: Stream::Stdout,
    }
}

/// Master, two testers with a session each, a barrier, and some traffic.
fn small() -> Trace {
    let mut b = Builder::new(&["master", "t1", "t1@h", "t2", "t2@h"]);
    b.message(
        1,
        2,
        EventData::Start {
            command: "md5sum f".into(),
        },
    );
    b.message(
        3,
        4,
        EventData::Start {
            command: "sleep 1".into(),
        },
    );
    b.message(2, 1, out("d41d8cd98f00b204e9800998ecf8427e  f\r\n"));
    b.local(
        1,
        EventData::Match {
            pattern: "[0-9a-f]{32}".into(),
            matched: "d41d".into(),
            captures: Vec::new(),
        },
    );
    let e1 = b.send(
        1,
        EventData::BarrierEnter {
            name: "sync".into(),
        },
    );
    let e2 = b.send(
        3,
        EventData::BarrierEnter {
            name: "sync".into(),
        },
    );
    b.recv(0, e1);
    b.recv(0, e2);
    let leave = || EventData::BarrierLeave {
        name: "sync".into(),
        participants: vec!["t1".into(), "t2".into()].into(),
    };
    let l1 = b.send(0, leave());
    let l2 = b.send(0, leave());
    b.message(
        4,
        3,
        EventData::Exit {
            status: ExitStatus::Code(0),
        },
    );
    b.recv(3, l2);
    b.recv(1, l1);
    b.local(
        3,
        EventData::Verdict {
            number: 1,
            ok: false,
            description: "md5 matches".into(),
            directive: None,
            reason: String::new(),
        },
    );
    b.local(
        0,
        EventData::End {
            ok: false,
            summary: "1 failed".into(),
        },
    );
    b.trace(true)
}

fn synthetic(testers: usize, events: u64) -> Trace {
    synth::generate(&synth::Config {
        testers,
        events,
        seed: 7,
        payload: 24,
    })
}

/// Checks the layout invariants of the module docs on `view` with `geom`.
fn check_invariants(view: &View, geom: &dyn Geometry) -> Layout {
    let t = view.trace;
    let l = Layout::new(view, geom);
    let shown: Vec<u64> = (view.from..view.to).filter(|&i| view.shown(i)).collect();
    for &i in &shown {
        assert!(l.row(i).is_some(), "event {i} has no row");
    }
    // Causality is never upside down: happens-before implies a lower row
    // (tested on every pair: the traces here are small).
    for &a in &shown {
        for &b in &shown {
            let fan = view.fan(a).is_some() && view.fan(a) == view.fan(b);
            if t.happens_before(a, b) {
                // The sends of one release (a fan) share a row.
                assert!(
                    l.row(a) < l.row(b) || (fan && l.row(a) == l.row(b)),
                    "{a} -> {b} drawn at rows {:?} {:?}",
                    l.row(a),
                    l.row(b)
                );
            }
            if a < b && l.row(a) == l.row(b) {
                let synced = (l.group(a).is_some() && l.group(a) == l.group(b))
                    || (view.fan(a).is_some() && view.fan(a) == view.fan(b));
                assert!(
                    synced || t.concurrent(a, b),
                    "{a} and {b} share a row but are ordered"
                );
            }
        }
    }
    l
}

#[test]
fn causality_is_never_drawn_upside_down() {
    for t in [small(), story(), synthetic(3, 300), synthetic(6, 500)] {
        for detail in [Detail::Compact, Detail::Full] {
            for layout in [LayoutKind::Time, LayoutKind::Causal] {
                let o = Options {
                    detail,
                    layout,
                    ..Options::default()
                };
                let evs = ev(&t, &o);
                let view = View::new(&evs, &o).unwrap();
                check_invariants(&view, &Svg::new(&view));
                check_invariants(&view, &Msc);
            }
        }
    }
}

/// A tester's story as dtest records it: a command, its output, an
/// expect's match, the verdicts, the command's exit, a barrier with a
/// second tester, the same poll attempt three times, a session closed.
fn story() -> Trace {
    let mut b = Builder::new(&["master", "t1", "t1@h", "t2", "t2@h"]);
    let verdict = |n: u32| EventData::Verdict {
        number: n,
        ok: true,
        description: format!("step {n}"),
        directive: None,
        reason: String::new(),
    };
    b.message(
        1,
        2,
        EventData::Start {
            command: "server".into(),
        },
    );
    b.local(1, verdict(1));
    b.message(2, 1, out("booting\n"));
    b.message(2, 1, out("ready\n"));
    b.local(
        1,
        EventData::Match {
            pattern: "ready".into(),
            matched: "ready".into(),
            captures: Vec::new(),
        },
    );
    b.local(1, verdict(2));
    b.message(
        2,
        1,
        EventData::Exit {
            status: ExitStatus::Code(0),
        },
    );
    b.local(1, verdict(3));
    let e1 = b.send(
        1,
        EventData::BarrierEnter {
            name: "sync".into(),
        },
    );
    for _ in 0..3 {
        b.message(
            3,
            4,
            EventData::Start {
                command: "probe".into(),
            },
        );
        b.message(4, 3, out("nope\n"));
        b.message(
            4,
            3,
            EventData::Exit {
                status: ExitStatus::Code(1),
            },
        );
    }
    let e2 = b.send(
        3,
        EventData::BarrierEnter {
            name: "sync".into(),
        },
    );
    b.recv(0, e1);
    b.recv(0, e2);
    let leave = || EventData::BarrierLeave {
        name: "sync".into(),
        participants: vec!["t1".into(), "t2".into()].into(),
    };
    let l1 = b.send(0, leave());
    let l2 = b.send(0, leave());
    b.recv(1, l1);
    b.local(1, verdict(4));
    b.recv(3, l2);
    b.local(3, verdict(5));
    b.local(
        2,
        EventData::Close {
            reason: "closed (shell status 0)".into(),
        },
    );
    b.local(
        0,
        EventData::End {
            ok: true,
            summary: "5 tests".into(),
        },
    );
    b.trace(true)
}

#[test]
fn compact_marks_tell_a_step_in_one_mark_and_lose_nothing() {
    let t = story();
    let o = Options::default();
    let evs = ev(&t, &o);
    let view = View::new(&evs, &o).unwrap();
    // No master lane: it only did barrier bookkeeping.
    assert!(view.no_master);
    assert_eq!(view.lanes, vec![1, 3]);
    // Every event of a shown lane is drawn by a shown mark, on its lane.
    for i in view.from..view.to {
        let e = &t.events[i as usize];
        if e.actor == 0 {
            continue;
        }
        let d = view
            .drawn_by(i)
            .unwrap_or_else(|| panic!("#{i} is drawn by nothing"));
        assert!(view.shown(d), "#{i} drawn by #{d}, which is not shown");
        assert_eq!(
            view.lane(t.events[d as usize].actor),
            view.lane(e.actor),
            "#{i}"
        );
    }
    // The command, its output, the match, its exit, three verdicts and the
    // barrier entry: one mark (not the session's close: it came after the
    // tester's release), which says the command, the matched line and the exit,
    // with the verdicts as a badge.
    let start = 0;
    let with = view.attached(start).to_vec();
    let kinds: Vec<&str> = with
        .iter()
        .map(|&m| t.events[m as usize].kind().name())
        .collect();
    assert_eq!(
        kinds,
        [
            "verdict",
            "output",
            "match",
            "verdict",
            "exit",
            "verdict",
            "barrier_enter"
        ],
        "{with:?}"
    );
    assert_eq!(
        crate::describe::label_of(&view, start, 80, 1),
        "$ server \u{2192} match: ready"
    );
    // Its exit 0 is said by the mark's colour; a failure in words.
    assert!(crate::describe::mark_ended(&view, start));
    assert_eq!(crate::describe::badge(&view, start).as_deref(), Some("1-3"));
    // The first two attempts of the probe: one mark, said twice. The third
    // is not the same: the barrier entry came with it.
    let probe = t
        .events
        .iter()
        .position(|e| matches!(&e.data, EventData::Start { command } if command == "probe"))
        .unwrap() as u64;
    assert_eq!(view.repeats(probe).map(|r| r.0), Some(1));
    let label = crate::describe::label_of(&view, probe, 80, 1);
    assert_eq!(label, "$ probe \u{2192} nope \u{2192} exit 1 \u{d7}2");
    assert!(crate::describe::mark_fails(&view, probe));
    // The releases still line up, with their verdicts as badges.
    let l = check_invariants(&view, &Svg::new(&view));
    assert_eq!(l.groups.len(), 1);
    let g = &l.groups[0];
    assert_eq!(
        crate::describe::badge(&view, g.members[0]).as_deref(),
        Some("4")
    );
    // Drawn: the server mark, the two probe marks, two releases, the close.
    let shown: Vec<u64> = (view.from..view.to).filter(|&i| view.shown(i)).collect();
    assert_eq!(shown.len(), 6, "{shown:?}");
    let close = t.len() as u64 - 2;
    assert!(view.shown(close));
    // The full detail draws each of them.
    let f = full();
    let evs = ev(&t, &f);
    let all = View::new(&evs, &f).unwrap();
    assert!(all.attached(start).is_empty());
    assert!((all.from..all.to).filter(|&i| all.shown(i)).count() > 20);
}

#[test]
fn compact_marks_stay_within_a_moment() {
    // Synthetic traces: any attachment stays within the moment of its host
    // (repeats aside, which say until when).
    for t in [synthetic(3, 400), synthetic(6, 800)] {
        let o = Options::default();
        let evs = ev(&t, &o);
        let view = View::new(&evs, &o).unwrap();
        for i in view.from..view.to {
            let Some(h) = view.host(i) else { continue };
            assert!(view.shown(h));
            if view.repeats(h).is_none() {
                for x in view.mark_events(i) {
                    assert!(
                        t.events[x as usize].time_ns <= view.telling_time(h) + view.slice_ns(),
                        "#{x} drawn with #{h}"
                    );
                }
            }
        }
    }
}

#[test]
fn barrier_release_is_aligned_across_participants() {
    let t = small();
    let evs = ev(&t, &Options::default());
    let view = View::new(&evs, &Options::default()).unwrap();
    let l = check_invariants(&view, &Svg::new(&view));
    assert_eq!(l.groups.len(), 1);
    let g = &l.groups[0];
    assert_eq!(g.name, "sync");
    // Left to right by lane, whatever the order of the receives.
    assert_eq!(g.members.len(), 2);
    assert_eq!(t.events[g.members[0] as usize].actor, 1);
    assert_eq!(l.row(g.members[0]), l.row(g.members[1]));
}

#[test]
fn end_event_is_drawn_last() {
    let t = small();
    let evs = ev(&t, &full());
    let view = View::new(&evs, &full()).unwrap();
    let l = Layout::new(&view, &Svg::new(&view));
    let end = t.len() as u64 - 1;
    assert_eq!(l.row(end), Some(l.rows - 1));
    assert!((0..end).all(|i| l.row(i) < l.row(end)));
}

#[test]
fn hidden_lanes_still_order_what_is_shown() {
    // t1 -> t1@h -> t2: with t1@h hidden, t1's send stays above t2's receive.
    let mut b = Builder::new(&["master", "t1", "t1@h", "t2"]);
    let (s, _) = b.message(
        1,
        2,
        EventData::Start {
            command: "a".into(),
        },
    );
    let (_, r) = b.message(2, 3, out("b"));
    let t = b.trace(false);
    let opts = Options {
        actors: Some(vec!["t1".into(), "t2".into()]),
        sessions: true,
        ..Options::default()
    };
    let evs = ev(&t, &opts);
    let view = View::new(&evs, &opts).unwrap();
    let l = check_invariants(&view, &Svg::new(&view));
    assert!(l.row(s) < l.row(r));
    assert_eq!(l.rows, 2, "a hidden event adds no row of its own");
}

#[test]
fn damaged_barrier_falls_back_to_no_alignment() {
    // The master releases t1, t1 then talks to t2 before t2's release
    // arrives: the two receives are ordered, so they cannot share a row.
    let mut b = Builder::new(&["master", "t1", "t2"]);
    let leave = || EventData::BarrierLeave {
        name: "b".into(),
        participants: vec![].into(),
    };
    let l1 = b.send(0, leave());
    let l2 = b.send(0, leave());
    let r1 = b.recv(1, l1);
    b.message(1, 2, EventData::Signal { name: "INT".into() });
    let r2 = b.recv(2, l2);
    let t = b.trace(false);
    let evs = ev(&t, &Options::default());
    let view = View::new(&evs, &Options::default()).unwrap();
    let l = check_invariants(&view, &Svg::new(&view));
    assert!(l.groups.is_empty());
    assert!(l.row(r1) < l.row(r2));
}

#[test]
fn same_input_same_bytes() {
    let t = synthetic(4, 400);
    for f in [Format::Svg, Format::Mscgen] {
        let mut a = Vec::new();
        let mut b = Vec::new();
        crate::write(&t, &Options::default(), f, &mut a).unwrap();
        crate::write(&t, &Options::default(), f, &mut b).unwrap();
        assert!(a == b, "{f:?} output differs between two runs");
    }
}

#[test]
fn window_cuts_messages_into_stubs() {
    let t = small();
    let opts = Options {
        from: Some(Bound::Index(3)),
        to: Some(Bound::Index(9)),
        sessions: true,
        ..Options::default()
    };
    let mut svg = Vec::new();
    crate::write(&t, &opts, Format::Svg, &mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(!svg.contains("data-index=\"2\""));
    assert!(svg.contains("data-index=\"3\""));
    assert!(!svg.contains("data-index=\"10\""));
    assert!(
        svg.contains(" stub"),
        "messages leaving the window are stubs"
    );
    let err = Events::from_trace(
        &t,
        &Options {
            from: Some(Bound::Index(9)),
            to: Some(Bound::Index(3)),
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("empty window"), "{err}");
}

#[test]
fn unknown_actor_is_an_error_naming_the_known_ones() {
    let t = small();
    let opts = Options {
        actors: Some(vec!["t9".into()]),
        ..Options::default()
    };
    let e = View::new(&ev(&t, &opts), &opts).unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown actor `t9` (the trace has: master, t1, t1@h, t2, t2@h)"
    );
}

#[test]
fn highlight_marks_past_and_dims_the_rest() {
    let t = small();
    // The verdict on t2: its past includes t2's release, the master's
    // barrier events, and t1's enter, but not t1's match... which is
    // before t1's enter, so it is in the past too; t1's release is not.
    let verdict = t.len() as u64 - 2;
    let opts = Options {
        highlight: Some(vec![verdict]),
        ..Options::default()
    };
    let evs = ev(&t, &opts);
    let view = View::new(&evs, &opts).unwrap();
    use crate::view::Mark;
    assert_eq!(view.mark(verdict), Mark::Hit);
    for i in 0..t.len() as u64 {
        let want = if i == verdict {
            Mark::Hit
        } else if t.happens_before(i, verdict) {
            Mark::Past
        } else {
            Mark::Dim
        };
        assert_eq!(view.mark(i), want, "event {i}");
    }
    let e = Events::from_trace(
        &t,
        &Options {
            highlight: Some(vec![99]),
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("event 99"), "{e}");
}

/// A trace whose names and payloads try to break both formats.
fn hostile() -> Trace {
    let nasty = "q\"uo'te <tag> & \\back\\slash\u{1b}[31m\r\n\u{0}\u{7f}\u{85}\u{fffe}";
    let mut b = Builder::new(&["ma\"ster<&>", "t\\1\n", "t\\1\n@h\u{1}", "t\\1\n@h\u{2}"]);
    b.message(
        1,
        2,
        EventData::Start {
            command: nasty.into(),
        },
    );
    let mut bytes = nasty.as_bytes().to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n', 0xc3, 0x28, b'\\', b'n', b'"']);
    b.message(
        2,
        1,
        EventData::Output {
            bytes: bytes.clone(),
            stream: Stream::Stderr,
        },
    );
    b.message(
        1,
        3,
        EventData::Input {
            bytes,
            secret: false,
        },
    );
    b.local(
        1,
        EventData::Verdict {
            number: 1,
            ok: true,
            description: nasty.into(),
            directive: Some(dtest_trace::Directive::Todo),
            reason: nasty.into(),
        },
    );
    b.trace(false)
}

#[test]
fn hostile_text_stays_valid_xml_and_mscgen() {
    let t = hostile();
    let mut svg = Vec::new();
    crate::write(&t, &Options::default(), Format::Svg, &mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    for c in svg.chars() {
        let ok = matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
        assert!(ok, "character {:?} is not allowed in XML", c);
    }
    assert!(!svg.contains("<tag>"));
    assert!(svg.contains("INCOMPLETE TRACE"));

    let mut msc = Vec::new();
    let apart = Options {
        sessions: true,
        ..Options::default()
    };
    crate::write(&t, &apart, Format::Mscgen, &mut msc).unwrap();
    let msc = String::from_utf8(msc).unwrap();
    // Every quoted string closes on its line, and has no backslash but
    // before a quote or an n.
    for line in msc.lines().filter(|l| !l.starts_with('#')) {
        let mut inside = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => inside = !inside,
                '\\' => {
                    assert!(inside, "backslash outside a string: {line}");
                    // An escape (a quote, a line break), or a backslash
                    // shown as it is.
                    let n = chars.next();
                    assert!(n.is_some(), "backslash at the end of {line}");
                }
                c => assert!(!c.is_control(), "control character in {line:?}"),
            }
        }
        assert!(!inside, "unclosed string: {line}");
    }
    assert!(msc.contains("incomplete trace"));
    // Two actors whose names escape alike are still two entities.
    assert!(msc.contains("\"t\\1^J@h^A\", \"t\\1^J@h^B\""), "{msc}");
}

#[test]
fn svg_lifelines_are_one_element_per_lane() {
    let t = synthetic(4, 600);
    let mut svg = Vec::new();
    let opts = Options {
        sessions: true,
        detail: Detail::Full,
        ..Options::default()
    };
    crate::write(&t, &opts, Format::Svg, &mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert_eq!(svg.matches("class=\"life\"").count(), t.header.actors.len());
    assert_eq!(svg.matches("<g class=\"ev ").count(), t.len());
}

#[test]
fn empty_traces_still_give_charts() {
    // No event at all (a run killed at once), and no actor either.
    for names in [&["master", "t1"][..], &[][..]] {
        let t = Builder::new(names).trace(false);
        for f in [Format::Svg, Format::Mscgen] {
            let mut out = Vec::new();
            crate::write(&t, &Options::default(), f, &mut out).unwrap();
            let s = String::from_utf8(out).unwrap();
            if f == Format::Mscgen {
                assert!(s.contains("|||;"), "mscgen needs a row: {s}");
                assert!(!s.contains("  ;"), "mscgen needs an entity: {s}");
            }
        }
    }
}

mod damaged {
    //! Any sequence of events, however inconsistent (receives before their
    //! sends, messages to unknown actors, wrong clocks, actor ids outside
    //! the table), gives a chart without a panic, and the layout still
    //! never draws a drawn message or an actor's step upside down.

    use proptest::prelude::*;

    use super::*;

    fn data(k: u8, s: String) -> EventData {
        match k % 6 {
            0 => EventData::Start { command: s },
            1 => EventData::Output {
                bytes: s.into_bytes(),
                stream: Stream::Stdout,
            },
            2 => EventData::BarrierLeave {
                name: s,
                participants: vec![].into(),
            },
            3 => EventData::BarrierEnter { name: s },
            4 => EventData::Verdict {
                number: 1,
                ok: false,
                description: s,
                directive: None,
                reason: String::new(),
            },
            _ => EventData::End {
                ok: true,
                summary: s,
            },
        }
    }

    fn event() -> impl Strategy<Value = (u32, u8, u8, u64, Vec<u32>, String)> {
        (
            0u32..6,
            0u8..3,
            any::<u8>(),
            0u64..8,
            proptest::collection::vec(0u32..4, 0..6),
            "\\PC{0,12}",
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_events_give_a_chart(
            evs in proptest::collection::vec(event(), 0..60),
            complete in any::<bool>(),
            from in 0u64..10,
            hide in any::<bool>(),
        ) {
            let names = ["master", "t1", "t1@h", "t2", "t2@h"];
            let events: Vec<Event> = evs
                .into_iter()
                .enumerate()
                .map(|(i, (actor, dir, k, msg, clock, s))| Event {
                    index: i as u64,
                    actor,
                    time_ns: i as u64,
                    dir: [Dir::Send, Dir::Recv, Dir::Local][dir as usize],
                    msg: (dir < 2).then_some(msg),
                    clock: VectorClock(clock),
                    data: data(k, s),
                })
                .collect();
            let t = Trace::from_parts(
                Builder::new(&names).header,
                events,
                complete,
                Vec::new(),
            );
            let opts = Options {
                actors: hide.then(|| vec!["t2".into(), "t1".into()]),
                from: Some(Bound::Index(from.min(t.len().saturating_sub(1) as u64))),
                highlight: (!t.is_empty()).then(|| vec![t.len() as u64 - 1]),
                sessions: from % 2 == 0,
                layout: if from % 3 == 0 { crate::LayoutKind::Causal } else { crate::LayoutKind::Time },
                ..Options::default()
            };
            let evs = ev(&t, &opts);
    let view = View::new(&evs, &opts).unwrap();
            for geom in [&Svg::new(&view) as &dyn Geometry, &Msc] {
                let l = Layout::new(&view, geom);
                for i in view.from..view.to {
                    if !view.shown(i) {
                        continue;
                    }
                    if let (Some(j), Dir::Send) = (t.partner(i), t.events[i as usize].dir) {
                        if view.shown(j) {
                            prop_assert!(l.row(i) < l.row(j), "message {} -> {}", i, j);
                        }
                    }
                }
                for a in 0..names.len() as u32 {
                    let shown: Vec<u64> =
                        t.actor_events(a).iter().copied().filter(|&i| view.shown(i)).collect();
                    for w in shown.windows(2) {
                        let fan = view.fan(w[0]).is_some() && view.fan(w[0]) == view.fan(w[1]);
                        prop_assert!(
                            l.row(w[0]) < l.row(w[1]) || (fan && l.row(w[0]) == l.row(w[1]))
                        );
                    }
                }
            }
            for f in [Format::Svg, Format::Mscgen] {
                let mut out = Vec::new();
                crate::write(&t, &opts, f, &mut out).unwrap();
                prop_assert!(String::from_utf8(out).is_ok());
            }
        }
    }
}

#[test]
fn windows_cutting_folded_messages_and_runs() {
    // Every window of a synthetic trace, folded or not, in both layouts,
    // gives a chart whose layout keeps its invariants.
    let t = synthetic(3, 160);
    for from in (0..150).step_by(7) {
        for sessions in [false, true] {
            for layout in [crate::LayoutKind::Time, crate::LayoutKind::Causal] {
                let opts = Options {
                    from: Some(Bound::Index(from)),
                    to: Some(Bound::Index(from + 25)),
                    sessions,
                    layout,
                    ..Options::default()
                };
                let evs = ev(&t, &opts);
                let view = View::new(&evs, &opts).unwrap();
                check_invariants(&view, &Svg::new(&view));
                check_invariants(&view, &Msc);
                for f in [Format::Svg, Format::Mscgen] {
                    crate::write(&t, &opts, f, &mut Vec::new()).unwrap();
                }
            }
        }
    }
}

#[test]
fn output_marks_show_the_line_a_property_or_an_expect_matched() {
    let mut b = Builder::new(&["master", "t1", "t1@h"]);
    b.message(
        1,
        2,
        EventData::Start {
            command: "server".into(),
        },
    );
    let (s1, _) = b.message(2, 1, out("starting\nREADY on port 80\nmore\n"));
    b.message(2, 1, out("tail line\n\n"));
    b.local(
        1,
        EventData::Match {
            pattern: "READY".into(),
            matched: "READY".into(),
            captures: Vec::new(),
        },
    );
    let (s3, _) = b.message(2, 1, out("x\nwarning: disk full\nlast\n"));
    let t = b.trace(false);
    let label = |opts: &Options, i: u64| {
        let evs = ev(&t, opts);
        let view = View::new(&evs, opts).unwrap();
        crate::describe::label_of(&view, i, 60, 1)
    };
    let plain = Options::default();
    // A run of two chunks, one mark: the line the expect matched.
    assert_eq!(label(&plain, s1), "READY on port 80 (4 lines)");
    // Alone, nothing matched: the last non-empty line.
    assert_eq!(label(&plain, s3), "last (3 lines)");
    // The line a property matched (from the check report).
    let opts = Options {
        matched_lines: vec![(s3, "warning: disk full".into())],
        ..Options::default()
    };
    assert_eq!(label(&opts, s3), "warning: disk full (3 lines)");
    // Sessions apart: the same labels on the arrows.
    let apart = Options {
        sessions: true,
        ..Options::default()
    };
    assert_eq!(label(&apart, s1), "READY on port 80 (3 lines)");
}

#[test]
fn compact_master_lane_only_for_more_than_barriers() {
    // exec --check: the master gives the property points; its lane stays,
    // and the points in a row are one mark listing them.
    let mut b = Builder::new(&["master", "t1", "t1@h"]);
    b.message(
        1,
        2,
        EventData::Start {
            command: "true".into(),
        },
    );
    for (n, p) in [(2, "a"), (3, "b"), (4, "c")] {
        b.local(
            0,
            EventData::Verdict {
                number: n,
                ok: true,
                description: format!("property {p}"),
                directive: None,
                reason: String::new(),
            },
        );
    }
    b.local(
        0,
        EventData::End {
            ok: true,
            summary: "4 tests".into(),
        },
    );
    let t = b.trace(true);
    let o = Options::default();
    let evs = ev(&t, &o);
    let view = View::new(&evs, &o).unwrap();
    assert!(!view.no_master);
    assert_eq!(view.lanes, vec![0, 1]);
    assert_eq!(view.attached(2), &[3, 4]);
    assert_eq!(
        crate::describe::label_of(&view, 2, 80, 1),
        "ok 2-4: a, b, c"
    );
    assert_eq!(crate::describe::badge(&view, 2), None);
    check_invariants(&view, &Svg::new(&view));
}

#[test]
fn compact_marks_with_sessions_apart_only_join_boxes() {
    // --sessions: a command is an arrow to the session's lane; nothing is
    // drawn as part of an arrow (it has no box for words or a badge).
    let t = story();
    let o = Options {
        sessions: true,
        ..Options::default()
    };
    let evs = ev(&t, &o);
    let view = View::new(&evs, &o).unwrap();
    for i in view.from..view.to {
        if !view.attached(i).is_empty() {
            let e = &t.events[i as usize];
            assert!(
                e.dir == Dir::Local
                    || (e.dir == Dir::Recv && e.kind() == dtest_trace::Kind::BarrierLeave),
                "#{i} ({:?} {:?}) carries {:?}",
                e.kind(),
                e.dir,
                view.attached(i)
            );
        }
        if let Some(h) = view.host(i) {
            assert!(view.shown(h));
        }
    }
    check_invariants(&view, &Svg::new(&view));
}

#[test]
fn compact_labels_keep_what_came_of_an_action_when_room_is_short() {
    let t = story();
    let o = Options::default();
    let evs = ev(&t, &o);
    let view = View::new(&evs, &o).unwrap();
    // Room for every part: all of them.
    assert_eq!(
        crate::describe::label_of(&view, 0, 80, 1),
        "$ server \u{2192} match: ready"
    );
    // Room for one part only: the match, which says what came of it.
    assert_eq!(crate::describe::label_of(&view, 0, 16, 1), "match: ready");
    // The probe: its output goes before its failure.
    let probe = t
        .events
        .iter()
        .position(|e| matches!(&e.data, EventData::Start { command } if command == "probe"))
        .unwrap() as u64;
    let label = crate::describe::label_of(&view, probe, 24, 1);
    assert!(!label.contains("nope"), "{label}");
    assert!(label.contains("exit 1"), "{label}");
}

#[test]
fn compact_mark_holds_a_testers_quick_commands_but_not_a_repeat() {
    // Within one moment: `a` (output x, exit 0), `b` (exit 0): one mark.
    // Then `b` again at once: not drawn with them (a repeat of `b` is
    // said by a count, never hidden inside another command's mark).
    let mut b = Builder::new(&["master", "t1", "t1@h"]);
    let cmd = |b: &mut Builder, c: &str, out_text: Option<&str>| {
        b.message(1, 2, EventData::Start { command: c.into() });
        if let Some(o) = out_text {
            b.message(2, 1, out(o));
        }
        b.message(
            2,
            1,
            EventData::Exit {
                status: ExitStatus::Code(0),
            },
        );
    };
    cmd(&mut b, "a", Some("x\n"));
    cmd(&mut b, "b", None);
    cmd(&mut b, "b", None);
    let t = b.trace(true);
    let o = Options::default();
    let evs = ev(&t, &o);
    let view = View::new(&evs, &o).unwrap();
    let label = crate::describe::label_of(&view, 0, 80, 1);
    assert_eq!(label, "$ a \u{2192} x \u{2192} $ b", "{label}");
    assert!(crate::describe::mark_ended(&view, 0));
    let second_b = t
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(&e.data, EventData::Start { command } if command == "b"))
        .nth(1)
        .unwrap()
        .0 as u64;
    assert!(view.shown(second_b), "the second `b` is a mark of its own");
    check_invariants(&view, &Svg::new(&view));
}
