//! Tests of the trace crate: round trips (proptest), version handling, torn
//! and corrupt files, validation, the recorder under concurrency, synth.

use std::io::Cursor;

use proptest::prelude::*;

use crate::codec::{FORMAT_MAJOR, FORMAT_MINOR, PREAMBLE_LEN};
use crate::model::*;
use crate::synth::{self, Config};
use crate::{validate, Error, ReadOptions, Reader, Recorder, Trace, VectorClock, Warning, Writer};

fn actors(n: usize) -> Vec<Actor> {
    (0..n)
        .map(|i| Actor {
            id: i as ActorId,
            name: format!("a{i}"),
            kind: if i == 0 {
                ActorKind::Master
            } else {
                ActorKind::Tester
            },
            host: "local".into(),
        })
        .collect()
}

fn header(n: usize) -> Header {
    Header {
        start_unix_ns: 42,
        scenario: "test".into(),
        actors: actors(n),
        meta: vec![("k".into(), "v".into())],
    }
}

fn write_events(h: &Header, events: &[Event], flush_every: usize) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), h.clone()).unwrap();
    for (i, e) in events.iter().enumerate() {
        w.append_event(e).unwrap();
        if flush_every > 0 && (i + 1) % flush_every == 0 {
            w.flush().unwrap();
        }
    }
    w.into_inner().unwrap()
}

fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Event>, Vec<Warning>, bool), Error> {
    let mut r = Reader::new(Cursor::new(bytes))?;
    let mut v = Vec::new();
    while let Some(e) = r.next_event()? {
        v.push(e.clone());
    }
    Ok((
        r.header().clone(),
        v,
        r.warnings().to_vec(),
        r.is_complete(),
    ))
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,12}",
        any::<String>(),
        Just("<&\"'>\n\u{0}\u{7f}".to_string())
    ]
}

fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..40)
}

fn arb_data() -> impl Strategy<Value = EventData> {
    let transfer = (arb_string(), arb_string(), any::<u64>(), any::<[u8; 32]>()).prop_map(
        |(local, remote, size, sha256)| Transfer {
            local,
            remote,
            size,
            sha256,
        },
    );
    prop_oneof![
        arb_string().prop_map(|target| EventData::Open { target }),
        arb_string().prop_map(|reason| EventData::Close { reason }),
        arb_string().prop_map(|command| EventData::Start { command }),
        (arb_bytes(), any::<bool>()).prop_map(|(bytes, secret)| EventData::Input { bytes, secret }),
        (arb_bytes(), any::<bool>()).prop_map(|(bytes, e)| EventData::Output {
            bytes,
            stream: if e { Stream::Stderr } else { Stream::Stdout }
        }),
        arb_string().prop_map(|name| EventData::Signal { name }),
        prop_oneof![
            any::<i32>().prop_map(ExitStatus::Code),
            arb_string().prop_map(ExitStatus::Signal)
        ]
        .prop_map(|status| EventData::Exit { status }),
        (
            arb_string(),
            arb_string(),
            proptest::collection::vec((arb_string(), arb_string()), 0..3)
        )
            .prop_map(|(pattern, matched, captures)| EventData::Match {
                pattern,
                matched,
                captures
            }),
        (arb_string(), any::<u64>())
            .prop_map(|(pattern, waited_ns)| EventData::Timeout { pattern, waited_ns }),
        arb_string().prop_map(|name| EventData::BarrierEnter { name }),
        (arb_string(), proptest::collection::vec(arb_string(), 0..3)).prop_map(
            |(name, participants)| EventData::BarrierLeave {
                name,
                participants: participants.into(),
            }
        ),
        (arb_string(), arb_string())
            .prop_map(|(name, reason)| EventData::BarrierBroken { name, reason }),
        (transfer, any::<bool>()).prop_map(|(t, put)| if put {
            EventData::Put(t)
        } else {
            EventData::Get(t)
        }),
        (
            any::<u32>(),
            any::<bool>(),
            arb_string(),
            0u8..3,
            arb_string()
        )
            .prop_map(|(number, ok, description, d, reason)| EventData::Verdict {
                number,
                ok,
                description,
                directive: [None, Some(Directive::Skip), Some(Directive::Todo)][d as usize],
                reason
            }),
        (arb_string(), any::<i32>(), arb_string()).prop_map(|(name, status, output)| {
            EventData::Custom {
                name,
                status,
                output,
            }
        }),
        (any::<bool>(), arb_string()).prop_map(|(ok, summary)| EventData::End { ok, summary }),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Local(u8, EventData),
    Send(u8, EventData),
    Recv(u8, usize),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), arb_data()).prop_map(|(a, d)| Op::Local(a, d)),
        (any::<u8>(), arb_data()).prop_map(|(a, d)| Op::Send(a, d)),
        (any::<u8>(), any::<usize>()).prop_map(|(a, i)| Op::Recv(a, i)),
    ]
}

/// Turns operations into events with arbitrary (not necessarily valid) clocks
/// and times: the codec must round-trip anything a writer accepts.
fn build(n: usize, ops: &[Op], clocks: &[Vec<u32>], times: &[u64]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut pending: Vec<(MsgId, EventData)> = Vec::new();
    let mut next_msg = 0u64;
    for (i, op) in ops.iter().enumerate() {
        let mut clock = clocks[i % clocks.len()].clone();
        clock.resize(n, 0);
        let time_ns = times[i % times.len()];
        let (actor, dir, msg, data) = match op {
            Op::Local(a, d) => (*a as usize % n, Dir::Local, None, d.clone()),
            Op::Send(a, d) => {
                let m = next_msg;
                next_msg += 1 + (*a as u64 % 3);
                pending.push((m, d.clone()));
                (*a as usize % n, Dir::Send, Some(m), d.clone())
            }
            Op::Recv(a, k) => {
                if pending.is_empty() {
                    continue;
                }
                let (m, d) = pending.remove(k % pending.len());
                (*a as usize % n, Dir::Recv, Some(m), d)
            }
        };
        out.push(Event {
            index: out.len() as u64,
            actor: actor as ActorId,
            time_ns,
            dir,
            msg,
            clock: VectorClock(clock),
            data,
        });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn round_trip(
        n in 1usize..6,
        ops in proptest::collection::vec(arb_op(), 0..40),
        clocks in proptest::collection::vec(proptest::collection::vec(any::<u32>(), 0..6), 1..5),
        times in proptest::collection::vec(any::<u64>(), 1..5),
        flush_every in 0usize..5,
    ) {
        let h = header(n);
        let events = build(n, &ops, &clocks, &times);
        let bytes = write_events(&h, &events, flush_every);
        let (h2, back, warnings, _) = read_all(&bytes).unwrap();
        prop_assert_eq!(h2, h);
        prop_assert!(warnings.is_empty());
        prop_assert_eq!(back, events);
    }

    #[test]
    fn synth_is_valid_and_round_trips(testers in 1usize..6, events in 0u64..400, seed in any::<u64>()) {
        let cfg = Config { testers, events, seed, payload: 8 };
        let t = synth::generate(&cfg);
        prop_assert_eq!(t.len() as u64, events);
        prop_assert!(validate(&t).is_empty(), "{:?}", validate(&t));
        let bytes = synth::write_to(Vec::new(), &cfg).unwrap();
        let (_, back, _, complete) = read_all(&bytes).unwrap();
        prop_assert_eq!(complete, events > 0);
        prop_assert_eq!(back, t.events);
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), cut in any::<usize>()) {
        // Arbitrary bytes after a valid preamble, and arbitrary prefixes.
        let good = synth::write_to(Vec::new(), &Config { testers: 2, events: 30, seed: 3, payload: 4 }).unwrap();
        let mut mixed = good[..PREAMBLE_LEN.min(good.len())].to_vec();
        mixed.extend_from_slice(&bytes);
        let _ = read_all(&mixed);
        let _ = read_all(&bytes);
        let _ = read_all(&good[..cut % (good.len() + 1)]);
    }
}

#[test]
fn synth_is_deterministic() {
    let cfg = Config {
        testers: 3,
        events: 500,
        seed: 9,
        payload: 16,
    };
    let a = synth::write_to(Vec::new(), &cfg).unwrap();
    let b = synth::write_to(Vec::new(), &cfg).unwrap();
    assert_eq!(a, b);
    let c = synth::write_to(Vec::new(), &Config { seed: 10, ..cfg }).unwrap();
    assert_ne!(a, c);
}

#[test]
fn truncated_at_every_byte_reads_a_prefix() {
    let cfg = Config {
        testers: 2,
        events: 120,
        seed: 5,
        payload: 8,
    };
    let t = synth::generate(&cfg);
    let bytes = write_events(&t.header, &t.events, 7);
    let header_end = {
        let r = Reader::new(Cursor::new(&bytes)).unwrap();
        r.offset() as usize
    };
    for cut in 0..bytes.len() {
        match read_all(&bytes[..cut]) {
            Ok((_, evs, warnings, complete)) => {
                assert!(
                    cut >= header_end,
                    "cut {cut} inside the header was accepted"
                );
                assert!(!complete);
                assert_eq!(&evs[..], &t.events[..evs.len()], "cut {cut}");
                // A cut between two blocks is a clean end (only the `end`
                // event is missing); a cut inside a block is a torn tail.
                match warnings.as_slice() {
                    [] => {}
                    [Warning::Torn { offset }] => assert!(*offset as usize <= cut),
                    w => panic!("cut {cut}: warnings {w:?}"),
                }
            }
            Err(e) => {
                assert!(cut < header_end, "cut {cut}: {e}");
                assert!(e.offset().is_some());
            }
        }
    }
    // Every complete event before the cut is read: cutting right after a
    // flushed block loses nothing of it.
    let (_, all, w, complete) = read_all(&bytes).unwrap();
    assert!(w.is_empty() && complete && all.len() == 120);
}

#[test]
fn corrupt_middle_block_is_an_error_with_offset() {
    let t = synth::generate(&Config {
        testers: 2,
        events: 100,
        seed: 1,
        payload: 8,
    });
    let mut bytes = write_events(&t.header, &t.events, 10);
    let start = Reader::new(Cursor::new(&bytes)).unwrap().offset() as usize;
    // Flip a byte inside the second block's body.
    let first_len = u32::from_le_bytes(bytes[start..start + 4].try_into().unwrap()) as usize;
    let second = start + 8 + first_len;
    bytes[second + 12] ^= 0x55;
    let err = read_all(&bytes).unwrap_err();
    match err {
        Error::Corrupt { offset, ref what } => {
            assert_eq!(offset as usize, second);
            assert!(what.contains("checksum"), "{what}");
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err
        .to_string()
        .starts_with(&format!("byte {second}: corrupt trace")));
}

#[test]
fn bad_magic_and_unknown_major() {
    assert!(matches!(
        read_all(b"hello world, not a trace"),
        Err(Error::NotATrace { offset: 0 })
    ));
    assert!(matches!(read_all(b""), Err(Error::NotATrace { .. })));
    let mut bytes = write_events(&header(2), &[], 0);
    bytes[8..10].copy_from_slice(&(FORMAT_MAJOR + 1).to_le_bytes());
    let e = read_all(&bytes).unwrap_err();
    assert!(matches!(e, Error::UnsupportedVersion { offset: 8, .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "byte 8: unsupported trace format version {}.{FORMAT_MINOR} (this dtest reads {FORMAT_MAJOR}.x)",
            FORMAT_MAJOR + 1
        )
    );
}

#[test]
fn minor_versions() {
    let t = synth::generate(&Config {
        testers: 2,
        events: 50,
        seed: 2,
        payload: 8,
    });
    // An older (or equal) minor is read silently.
    let mut w = Writer::with_minor(Vec::new(), t.header.clone(), 0).unwrap();
    for e in &t.events {
        w.append_event(e).unwrap();
    }
    let (_, evs, warnings, _) = read_all(&w.into_inner().unwrap()).unwrap();
    assert_eq!(evs, t.events);
    assert!(warnings.is_empty());
    // A newer minor is read with a warning.
    let w = Writer::with_minor(Vec::new(), t.header.clone(), FORMAT_MINOR + 1).unwrap();
    let (_, _, warnings, _) = read_all(&w.into_inner().unwrap()).unwrap();
    assert_eq!(
        warnings,
        vec![Warning::NewerMinor {
            minor: FORMAT_MINOR + 1
        }]
    );
}

/// Old writer, new reader: `traces/format-1.0.dtrace` was written by format
/// 1.0 and must stay readable, with the same events, by every later reader.
#[test]
fn old_writer_new_reader() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../traces/format-1.0.dtrace");
    let old = Trace::load(&path).unwrap();
    let now = synth::generate(&Config {
        testers: 3,
        events: 200,
        seed: 1,
        payload: 16,
    });
    assert_eq!(old.header.actors, now.header.actors);
    assert_eq!(old.events, now.events);
    assert!(old.complete && old.warnings.is_empty());
}

fn ev(
    index: u64,
    actor: ActorId,
    time_ns: u64,
    dir: Dir,
    msg: Option<MsgId>,
    clock: &[u32],
    kind: Kind,
) -> Event {
    Event {
        index,
        actor,
        time_ns,
        dir,
        msg,
        clock: VectorClock(clock.to_vec()),
        data: EventData::empty(kind),
    }
}

#[test]
fn validate_reports_each_violation_with_its_index() {
    use Dir::*;
    let h = header(3);
    let events = vec![
        ev(0, 1, 10, Send, Some(0), &[0, 1, 0], Kind::Start),
        ev(1, 2, 11, Recv, Some(0), &[0, 0, 1], Kind::Start), // does not dominate the send
        ev(2, 1, 5, Local, None, &[0, 2, 0], Kind::Match),    // time runs backwards
        ev(3, 1, 20, Local, None, &[0, 2, 0], Kind::Match),   // clock does not increase
        ev(4, 2, 21, Recv, Some(7), &[0, 2, 2], Kind::Output), // never sent
        ev(5, 0, 22, Send, Some(1), &[1, 0, 0], Kind::BarrierLeave), // never received
        ev(6, 0, 23, Local, None, &[2, 0, 0], Kind::End),
    ];
    let t = Trace::from_parts(h, events, true, Vec::new());
    let v = validate(&t);
    let idx: Vec<u64> = v.iter().map(|v| v.index).collect();
    for i in [1, 2, 3, 4, 5] {
        assert!(idx.contains(&i), "no violation at {i}: {v:?}");
    }
    assert!(!idx.contains(&0) && !idx.contains(&6), "{v:?}");
    assert!(v
        .iter()
        .any(|x| x.index == 1 && x.message.contains("dominate")));
    assert!(v
        .iter()
        .any(|x| x.index == 2 && x.message.contains("backwards")));
    assert!(v
        .iter()
        .any(|x| x.index == 5 && x.message.contains("never received")));
}

#[test]
fn recorder_from_many_threads_makes_a_valid_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.dtrace");
    let n = 9;
    let rec = std::sync::Arc::new(Recorder::create(&path, header(n)).unwrap());
    let mut handles = Vec::new();
    for t in 1..n as ActorId {
        let rec = std::sync::Arc::clone(&rec);
        handles.push(std::thread::spawn(move || {
            for k in 0..500 {
                let peer = if t == 1 { 2 } else { 1 };
                let m = rec
                    .send(
                        t,
                        EventData::Output {
                            bytes: vec![b'x'; k % 7],
                            stream: Stream::Stdout,
                        },
                    )
                    .unwrap();
                rec.local(
                    t,
                    EventData::Start {
                        command: format!("c{k}"),
                    },
                )
                .unwrap();
                rec.recv(peer, m).unwrap();
                if k % 100 == 0 {
                    rec.flush().unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    rec.finish(0, true, "done").unwrap();
    drop(rec);
    let t = Trace::load(&path).unwrap();
    assert!(t.complete);
    assert_eq!(t.len(), 8 * 500 * 3 + 1);
    assert!(validate(&t).is_empty(), "{:?}", &validate(&t)[..3]);
    // Receives carry their send's data.
    let (s, r) = t.messages().nth(10).unwrap();
    assert_eq!(t.events[s as usize].data, t.events[r as usize].data);
    assert!(t.happens_before(s, r));
}

#[test]
fn recorder_flushes_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.dtrace");
    let rec = Recorder::with_flush_interval(&path, header(2), std::time::Duration::from_millis(10))
        .unwrap();
    rec.local(
        1,
        EventData::Start {
            command: "x".into(),
        },
    )
    .unwrap();
    // Without any explicit flush, the event reaches the file (bounded wait).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let bytes = std::fs::read(&path).unwrap();
        if let Ok((_, evs, _, _)) = read_all(&bytes) {
            if evs.len() == 1 {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "event never flushed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(rec.recv(1, 99).is_err());
}

#[test]
fn bytes_per_event_stay_small() {
    // The figure the benchmark reports, checked loosely here as a guard.
    for testers in [4usize, 64] {
        // Content (payload, command lines, names) excluded.
        let cfg = Config {
            testers,
            events: 20_000,
            seed: 1,
            payload: 8,
        };
        let bytes = synth::write_to(Vec::new(), &cfg).unwrap();
        let t = synth::generate(&cfg);
        let payload: usize = t
            .events
            .iter()
            .filter(|e| e.dir != Dir::Recv)
            .map(|e| e.data.content_len())
            .sum();
        let per = (bytes.len() - payload) as f64 / cfg.events as f64;
        assert!(per < 16.0, "{testers} testers: {per:.1} bytes/event");
    }
}

/// Regression (found by `cargo fuzz run decode`): a string length in a
/// damaged event claimed 4 GB and bincode allocated it before reading.
#[test]
fn fuzz_regression_huge_length_claim() {
    let bytes = include_bytes!("testdata/fuzz-oom-huge-string-claim.bin");
    let _ = read_all(bytes);
}

#[test]
fn oversized_event_is_refused_and_the_writer_stays_usable() {
    let h = header(2);
    let mut w = Writer::new(Vec::new(), h).unwrap();
    let big = EventData::Output {
        bytes: vec![0; crate::codec::MAX_DATA_LEN + 1],
        stream: Stream::Stdout,
    };
    assert!(w.append(1, 1, Dir::Local, None, &[0, 1], &big).is_err());
    let ok = EventData::Start {
        command: "x".into(),
    };
    w.append(1, 2, Dir::Local, None, &[0, 1], &ok).unwrap();
    let (_, evs, _, _) = read_all(&w.into_inner().unwrap()).unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].data, ok);
}

#[test]
fn in_flight_table_ring_and_spill() {
    use crate::codec::InFlight;
    let mut t = InFlight::default();
    // Consecutive ids, received out of order.
    for id in 10..20u64 {
        assert_eq!(t.insert(id, id * 2), None);
    }
    assert_eq!(t.remove(15), Some(30));
    assert_eq!(t.remove(15), None);
    assert_eq!(t.remove(10), Some(20));
    // Out-of-order and far-away ids spill to the map.
    assert_eq!(t.insert(5, 1), None);
    assert_eq!(t.insert(1_000_000, 2), None);
    assert_eq!(t.remove(5), Some(1));
    assert_eq!(t.remove(1_000_000), Some(2));
    // A message in flight for longer than the ring holds stays findable.
    let mut t = InFlight::default();
    t.insert(0, 0u64);
    for id in 1..200_000u64 {
        t.insert(id, id);
        assert_eq!(t.remove(id), Some(id));
    }
    assert_eq!(t.remove(0), Some(0));
    assert_eq!(t.remove(7), None);
    // Ids that wrap around u64::MAX (a damaged trace) are found too.
    let mut t = InFlight::default();
    for id in [u64::MAX - 2, u64::MAX - 1, u64::MAX, 0, 1] {
        assert_eq!(t.insert(id, id), None);
    }
    assert_eq!(t.insert(u64::MAX, 9), Some(u64::MAX));
    for id in [u64::MAX - 1, 0, u64::MAX - 2, 1] {
        assert_eq!(t.remove(id), Some(id));
    }
    assert_eq!(t.remove(u64::MAX), Some(9));
    assert_eq!(t.remove(u64::MAX), None);
}

/// Format 1.1 writes a repeated barrier participant list as one byte; 1.0
/// files (old writers) still read the same events.
#[test]
fn minor_1_0_and_1_1_read_the_same_and_1_1_is_smaller() {
    let t = synth::generate(&Config {
        testers: 16,
        events: 3000,
        seed: 4,
        payload: 8,
    });
    let write = |minor| {
        let mut w = Writer::with_minor(Vec::new(), t.header.clone(), minor).unwrap();
        for e in &t.events {
            w.append_event(e).unwrap();
        }
        w.into_inner().unwrap()
    };
    let (old, new) = (write(0), write(1));
    let (_, a, wa, _) = read_all(&old).unwrap();
    let (_, b, wb, _) = read_all(&new).unwrap();
    assert!(wa.is_empty() && wb.is_empty());
    assert_eq!(a, t.events);
    assert_eq!(b, t.events);
    assert!(new.len() < old.len(), "{} vs {}", new.len(), old.len());
}

/// The recorder's borrowed output path (`Recorder::output`): small chunks go
/// through the block, chunks of 64 KiB or more are written from the
/// caller's buffer; both read back as ordinary output messages, the trace
/// is valid, and a cut inside a large chunk keeps every event before it.
#[test]
fn recorder_output_small_and_large_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.dtrace");
    let rec = Recorder::create(&path, header(3)).unwrap();
    let sizes = [0usize, 5, 65_535, 65_536, 200_000, 7, 300_000];
    // Pseudo-random bytes, distinct per chunk (the cut below searches them).
    let chunk = |i: usize, n: usize| -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64 + 1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    };
    for (i, &n) in sizes.iter().enumerate() {
        let stream = if i % 2 == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        rec.output(2, 1, stream, &chunk(i, n)).unwrap();
        rec.local(
            1,
            EventData::Start {
                command: format!("after {i}"),
            },
        )
        .unwrap();
    }
    rec.finish(0, true, "done").unwrap();
    drop(rec);
    let t = Trace::load(&path).unwrap();
    assert!(t.complete);
    assert!(validate(&t).is_empty(), "{:?}", validate(&t));
    let outs: Vec<&Event> = t
        .events
        .iter()
        .filter(|e| e.dir == Dir::Recv && e.data.kind() == Kind::Output)
        .collect();
    assert_eq!(outs.len(), sizes.len());
    for (i, (e, &n)) in outs.iter().zip(&sizes).enumerate() {
        let EventData::Output { bytes, stream } = &e.data else {
            panic!("not output");
        };
        assert_eq!(bytes, &chunk(i, n), "chunk {i}");
        assert_eq!(*stream == Stream::Stderr, i % 2 == 1);
    }
    // Cut the file in the middle of the 200 000-byte chunk: the events
    // before it are read, with a torn-tail warning.
    let bytes = std::fs::read(&path).unwrap();
    let needle = chunk(4, 200_000)[1000..1064].to_vec();
    let at = bytes.windows(64).position(|w| w == needle).unwrap();
    let (_, evs, w, complete) = read_all(&bytes[..at]).unwrap();
    assert!(!complete);
    assert!(matches!(w.as_slice(), [Warning::Torn { .. }]), "{w:?}");
    let starts = evs
        .iter()
        .filter(|e| matches!(&e.data, EventData::Start { .. }))
        .count();
    assert_eq!(
        starts,
        4,
        "{:?}",
        evs.iter()
            .map(|e| (e.data.kind(), e.data.payload_len()))
            .collect::<Vec<_>>()
    );
}

/// Issue 11, item 7: a recorder puts the preamble and the header into the OS
/// at once, so a run killed before its first event (or while its sessions
/// are still connecting) leaves a readable, empty, incomplete trace.
#[test]
fn recorder_header_is_in_the_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.dtrace");
    // A long flush period: only `create` itself can have written the header.
    let rec = Recorder::with_flush_interval(&path, header(3), std::time::Duration::from_secs(3600))
        .unwrap();
    // Another handle, while the recorder is alive and has not finished.
    let bytes = std::fs::read(&path).unwrap();
    let (h, evs, warnings, complete) = read_all(&bytes).unwrap();
    assert_eq!(h.scenario, "test");
    assert_eq!(h.actors, actors(3));
    assert!(evs.is_empty());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!complete);
    let t = Trace::load(&path).unwrap();
    assert!(t.is_empty() && !t.complete);
    assert!(validate(&t).is_empty(), "{:?}", validate(&t));
    // `mem::forget` stands for a kill: no drop, no flush.
    std::mem::forget(rec);
    let t = Trace::load(&path).unwrap();
    assert!(t.is_empty() && !t.complete);
}

/// Issue 11, item 14: data over the format's 16 MiB limit. The writer
/// refuses it (nothing written, the writer stays usable); the recorder
/// records it cut to fit, with the cut marked in the text, the event
/// flagged, and every reader (and so `validate`) reporting it.
#[test]
fn oversized_events_are_refused_by_the_writer_and_cut_by_the_recorder() {
    use crate::codec::{self, CUT_FIELD_LEN, MAX_DATA_LEN};
    let big = MAX_DATA_LEN + (1 << 20); // 17 MiB
    let name = "b".repeat(big);
    let output: Vec<u8> = (0..big).map(|i| b'a' + (i % 26) as u8).collect();
    let custom = EventData::Custom {
        name: "short name".into(),
        status: 3,
        output: "é".repeat(big / 2 + 1), // 2-byte characters: cut on a boundary
    };
    let enter = EventData::BarrierEnter { name: name.clone() };
    let leave = EventData::BarrierLeave {
        name: name.clone(),
        participants: std::sync::Arc::from(vec!["a1".to_string(), "a2".to_string()]),
    };

    // The writer refuses, whatever the path, and writes nothing.
    let mut w = Writer::new(Vec::new(), header(3)).unwrap();
    for d in [&enter, &leave, &custom] {
        let e = w.append_auto(1, 1, Dir::Send, Some(0), d).unwrap_err();
        assert!(
            e.to_string().contains("larger than the format's limit"),
            "{e}"
        );
    }
    let e = w
        .append_output_auto(1, 1, 0, Stream::Stdout, &output)
        .unwrap_err();
    assert!(
        e.to_string().contains("larger than the format's limit"),
        "{e}"
    );
    assert_eq!(w.events(), 0);
    let (_, evs, _, _) = read_all(&w.into_inner().unwrap()).unwrap();
    assert!(evs.is_empty());

    // The recorder records every event, cut.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.dtrace");
    let rec = Recorder::create(&path, header(3)).unwrap();
    let m1 = rec.send(1, enter.clone()).unwrap();
    rec.recv(0, m1).unwrap();
    let m2 = rec.send(2, enter.clone()).unwrap();
    rec.recv(0, m2).unwrap();
    for t in [1, 2] {
        rec.message(0, t, leave.clone()).unwrap();
    }
    rec.output(2, 1, Stream::Stdout, &output).unwrap();
    rec.local(1, custom.clone()).unwrap();
    rec.local(
        1,
        EventData::Start {
            command: "small".into(),
        },
    )
    .unwrap();
    rec.finish(0, true, "done").unwrap();
    drop(rec);

    let t = Trace::load(&path).unwrap();
    assert!(t.complete);
    assert_eq!(t.len(), 4 + 4 + 2 + 1 + 1 + 1);
    assert!(validate(&t).is_empty(), "{:?}", validate(&t));
    let cut_count = 2 + 2 + 1 + 1; // 2 enters, 2 leaves, output, custom
    assert_eq!(
        t.warnings,
        vec![Warning::Cut {
            index: 0,
            offset: t
                .warnings
                .iter()
                .find_map(|w| match w {
                    Warning::Cut { offset, .. } => Some(*offset),
                    _ => None,
                })
                .unwrap(),
            count: cut_count,
        }],
    );
    let shown = t.warnings[0].to_string();
    assert!(
        shown.contains("event 0 (byte ") && shown.contains("6 events were cut in all"),
        "{shown}"
    );
    let mut r = Reader::open(&path).unwrap();
    while r.next_event().unwrap().is_some() {}
    assert_eq!(r.cut_events(), cut_count);

    let cut_name = |n: &str| {
        let (kept, marker) = n.split_once('…').unwrap();
        assert_eq!(kept.len(), CUT_FIELD_LEN);
        assert!(kept.bytes().all(|b| b == b'b'));
        assert_eq!(marker, format!(" [cut: {} bytes]", big - kept.len()));
    };
    let mut names = Vec::new();
    for e in &t.events {
        match &e.data {
            EventData::BarrierEnter { name } | EventData::BarrierLeave { name, .. } => {
                cut_name(name);
                names.push(name.clone());
            }
            EventData::Output { bytes, .. } => {
                assert!(bytes.len() < MAX_DATA_LEN);
                let at = bytes.windows(3).rposition(|w| w == "…".as_bytes()).unwrap();
                assert_eq!(at, CUT_FIELD_LEN);
                assert_eq!(&bytes[..at], &output[..at]);
                assert_eq!(
                    &bytes[at..],
                    format!("… [cut: {} bytes]", big - at).as_bytes()
                );
            }
            EventData::Custom {
                name,
                status,
                output,
            } => {
                assert_eq!((name.as_str(), *status), ("short name", 3));
                let (kept, marker) = output.split_once('…').unwrap();
                assert!(kept.chars().all(|c| c == 'é'));
                assert_eq!(kept.len(), CUT_FIELD_LEN);
                assert_eq!(
                    marker,
                    format!(" [cut: {} bytes]", (big / 2 + 1) * 2 - kept.len())
                );
            }
            _ => {}
        }
    }
    // Enters and leaves pair by name: the cut is the same everywhere.
    assert_eq!(names.len(), 8);
    assert!(names.windows(2).all(|w| w[0] == w[1]));
    // Leaves keep their participants (the second one says "the same as
    // the previous leave" in the file).
    for e in &t.events {
        if let EventData::BarrierLeave { participants, .. } = &e.data {
            assert_eq!(participants[..], ["a1", "a2"]);
        }
    }
    for e in &t.events {
        assert!(codec::fits(&e.data));
    }
}

/// `cut_to_fit` shares the room between fields (a short field stays whole),
/// cuts long lists, and leaves what fits alone.
#[test]
fn cut_to_fit_shares_the_room_and_cuts_lists() {
    use crate::codec::{cut_to_fit, fits, CUT_MAX_ITEMS, MAX_DATA_LEN};
    let small = EventData::Start {
        command: "x".repeat(1000),
    };
    assert!(cut_to_fit(&small).is_none());
    let d = EventData::Verdict {
        number: 1,
        ok: true,
        description: "d".repeat(MAX_DATA_LEN),
        directive: None,
        reason: "r".repeat(MAX_DATA_LEN / 2),
    };
    let EventData::Verdict {
        description,
        reason,
        ..
    } = cut_to_fit(&d).unwrap()
    else {
        panic!("kind changed");
    };
    assert!(description.ends_with("bytes]") && reason.ends_with("bytes]"));
    let d = EventData::BarrierBroken {
        name: "short".into(),
        reason: "r".repeat(MAX_DATA_LEN + 1),
    };
    let c = cut_to_fit(&d).unwrap();
    assert!(fits(&c));
    let EventData::BarrierBroken { name, reason } = &c else {
        panic!()
    };
    assert_eq!(name, "short");
    assert!(reason.contains("… [cut: "));
    // Many captures: the list is cut, its last entry says by how much.
    let m = EventData::Match {
        pattern: "p".into(),
        matched: "m".into(),
        captures: (0..3 * MAX_DATA_LEN / 8)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect(),
    };
    assert!(!fits(&m));
    let c = cut_to_fit(&m).unwrap();
    assert!(fits(&c));
    let EventData::Match { captures, .. } = &c else {
        panic!()
    };
    assert_eq!(captures.len(), CUT_MAX_ITEMS);
    assert_eq!(
        captures.last().unwrap().1,
        format!(
            "[cut: {} more captures]",
            3 * MAX_DATA_LEN / 8 - CUT_MAX_ITEMS + 1
        )
    );
    assert_eq!(cut_to_fit(&m), Some(c), "deterministic");
}

/// The cut bit is format 1.2's: a writer of an older minor refuses what it
/// would cut, and in an older file the bit is corruption (with an offset).
#[test]
fn cut_bit_needs_format_1_2() {
    use crate::codec::{CUT_BIT, MAX_DATA_LEN};
    let big = EventData::Start {
        command: "c".repeat(MAX_DATA_LEN + 1),
    };
    let mut w = Writer::with_minor(Vec::new(), header(2), 1).unwrap();
    w.set_cut_oversized(true);
    assert!(w.append_auto(1, 1, Dir::Local, None, &big).is_err());
    // A 1.2 file with one cut event, relabelled 1.1.
    let mut w = Writer::new(Vec::new(), header(2)).unwrap();
    w.set_cut_oversized(true);
    w.append_auto(1, 1, Dir::Local, None, &big).unwrap();
    let mut bytes = w.into_inner().unwrap();
    let (_, evs, warnings, _) = read_all(&bytes).unwrap();
    assert_eq!(evs.len(), 1);
    assert!(matches!(
        warnings[..],
        [Warning::Cut {
            index: 0,
            count: 1,
            ..
        }]
    ));
    let Warning::Cut { offset, .. } = warnings[0] else {
        unreachable!()
    };
    assert_eq!(bytes[offset as usize] & CUT_BIT, CUT_BIT);
    bytes[10..12].copy_from_slice(&1u16.to_le_bytes());
    let e = read_all(&bytes).unwrap_err();
    assert_eq!(e.offset(), Some(offset), "{e}");
    assert!(e.to_string().contains("bad event tag"), "{e}");
}

/// Writer and reader agree on the header's limit: a header the reader
/// would refuse is refused when the trace is created.
#[test]
fn oversized_header_is_refused_at_creation() {
    let mut h = header(2);
    h.scenario = "s".repeat(crate::codec::MAX_DATA_LEN + 1);
    let e = Writer::new(Vec::new(), h.clone()).unwrap_err();
    assert!(e.to_string().contains("format's limit"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    assert!(Recorder::create(&dir.path().join("h.dtrace"), h).is_err());
}

/// Issue 11, item 15: one escaping for every readable output.
#[test]
fn escaping_of_untrusted_text() {
    use crate::export::{escape_line, escape_name, show_line, write_jsonl};
    assert!(matches!(
        escape_name("tester1@host"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(
        escape_name("a\x1b[2J\r\n\0\x7f\u{9b}\u{202e}\u{2028}\t\\\"b"),
        "a\\u{1b}[2J\\r\\n\\0\\u{7f}\\u{9b}\\u{202e}\\u{2028}\\t\\\\\"b"
    );
    assert_eq!(escape_line("\"q\"\n", 10), "\\\"q\\\"\\n");
    assert_eq!(escape_line("abcdef", 3), "abc... (6 bytes)");
    let mut h = header(2);
    h.actors[1].name = "t\x1b]0;x\x07\n".into();
    let e = Event {
        index: 0,
        actor: 1,
        time_ns: 1,
        dir: Dir::Local,
        msg: None,
        clock: VectorClock(vec![0, 1]),
        data: EventData::Match {
            pattern: "p\r".into(),
            matched: "m\u{85}".into(),
            captures: vec![("k\x1b".into(), "v\n".into())],
        },
    };
    let line = show_line(&h, &e);
    assert!(!line.chars().any(char::is_control), "{line}");
    assert!(line.contains("t\\u{1b}]0;x\\u{7}\\n"), "{line}");
    assert!(line.contains("k\\u{1b}=\"v\\n\""), "{line}");
    let mut out = Vec::new();
    write_jsonl(&mut out, &h, &e).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches('\n').count(), 1);
    assert!(!text.trim_end().chars().any(char::is_control), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["actor"], "t\x1b]0;x\x07\n");
    assert_eq!(v["matched"], "m\u{85}");
}

// --- Partial reads (`ReadOptions`): without clocks, and with the data of some
// kinds only. Everything they decode is what a full read gives.

/// What a read gives: the events, then warnings, completeness, payload bytes
/// and the offset reached; or the error (as text) after the events read.
type ReadOut = (Vec<Event>, Result<(Vec<Warning>, bool, u64, u64), String>);

fn read_with(bytes: &[u8], opts: ReadOptions) -> Option<ReadOut> {
    let r = Reader::new(Cursor::new(bytes)).ok()?;
    let mut r = r.with_options(opts);
    let mut v = Vec::new();
    loop {
        match r.next_event() {
            Ok(Some(e)) => v.push(e.clone()),
            Ok(None) => {
                let end = (
                    r.warnings().to_vec(),
                    r.is_complete(),
                    r.payload_bytes(),
                    r.offset(),
                );
                return Some((v, Ok(end)));
            }
            Err(e) => return Some((v, Err(e.to_string()))),
        }
    }
}

/// The full read's events as a partial read with `opts` shows them.
fn as_partial(events: &[Event], opts: ReadOptions) -> Vec<Event> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if !opts.has_clocks() {
                e.clock = VectorClock(Vec::new());
            }
            if !opts.decodes(e.data.kind()) {
                e.data = EventData::empty(e.data.kind());
            }
            e
        })
        .collect()
}

/// Options from bits: bit 17 the clocks, bits 0 to 16 the kinds decoded.
fn opts_of(bits: u32) -> ReadOptions {
    ReadOptions::all().clocks(bits & (1 << 17) != 0).data_of(
        Kind::ALL
            .into_iter()
            .filter(|&k| bits & (1 << k as u32) != 0),
    )
}

fn assert_partial_agrees(bytes: &[u8], opts: ReadOptions) {
    let full = read_with(bytes, ReadOptions::all());
    let part = read_with(bytes, opts);
    match (full, part) {
        (None, None) => {}
        (Some((fe, fend)), Some((pe, pend))) => {
            let want = as_partial(&fe, opts);
            if fend.is_ok() {
                assert_eq!(pe, want, "{opts:?}");
                assert_eq!(pend, fend, "{opts:?}");
            } else {
                // A partial read does not check what it skips (the texts
                // are UTF-8, a clock entry is in range): where a full read
                // fails on such bytes (no writer makes them), it may go on.
                assert_eq!(
                    &pe[..want.len().min(pe.len())],
                    &want[..want.len().min(pe.len())]
                );
                assert!(pe.len() >= want.len(), "{opts:?}: {pend:?} vs {fend:?}");
            }
        }
        (f, p) => panic!("header read differs: {f:?} vs {p:?}"),
    }
}

#[test]
fn read_options_defaults_and_accessors() {
    let o = ReadOptions::default();
    assert_eq!(o, ReadOptions::all());
    assert!(o.has_clocks());
    assert!(Kind::ALL.iter().all(|&k| o.decodes(k)));
    let o = ReadOptions::all()
        .clocks(false)
        .data_of([Kind::Output, Kind::Exit]);
    assert!(!o.has_clocks());
    assert!(o.decodes(Kind::Output) && o.decodes(Kind::Exit) && !o.decodes(Kind::Input));
    let bytes = synth::write_to(
        Vec::new(),
        &Config {
            testers: 2,
            events: 50,
            seed: 1,
            payload: 4,
        },
    )
    .unwrap();
    let r = Reader::new(Cursor::new(&bytes)).unwrap().with_options(o);
    assert_eq!(r.options(), o);
}

#[test]
#[should_panic(expected = "after events were read")]
fn read_options_only_before_the_first_event() {
    let bytes = synth::write_to(
        Vec::new(),
        &Config {
            testers: 2,
            events: 10,
            seed: 1,
            payload: 4,
        },
    )
    .unwrap();
    let mut r = Reader::new(Cursor::new(&bytes)).unwrap();
    r.next_event().unwrap();
    let _ = r.with_options(ReadOptions::all().clocks(false));
}

/// Synthetic traces in format 1.0 and 1.1 (barrier participants written
/// in full and as "the previous list"), every option tried on each kind.
#[test]
fn partial_reads_of_synthetic_traces_agree_with_the_full_read() {
    let t = synth::generate(&Config {
        testers: 6,
        events: 4000,
        seed: 11,
        payload: 8,
    });
    for minor in [0, 1, FORMAT_MINOR] {
        let mut w = Writer::with_minor(Vec::new(), t.header.clone(), minor).unwrap();
        for e in &t.events {
            w.append_event(e).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let mut tried = vec![0u32, 1 << 17, (1 << 17) - 1];
        for k in Kind::ALL {
            tried.push(1 << k as u32);
            tried.push(((1 << 17) - 1) & !(1 << k as u32));
            tried.push((1 << 17) | 1 << k as u32);
        }
        for bits in tried {
            let opts = opts_of(bits);
            let (ev, end) = read_with(&bytes, opts).unwrap();
            assert_eq!(ev, as_partial(&t.events, opts), "minor {minor}, {opts:?}");
            let (_, full_end) = read_with(&bytes, ReadOptions::all()).unwrap();
            assert_eq!(end, full_end);
        }
    }
}

/// A torn trace read without clocks and data stops at the same event, with
/// the same warning, as a full read.
#[test]
fn partial_reads_of_truncated_traces_stop_where_the_full_read_stops() {
    let t = synth::generate(&Config {
        testers: 2,
        events: 120,
        seed: 5,
        payload: 8,
    });
    let bytes = write_events(&t.header, &t.events, 7);
    for cut in 0..bytes.len() {
        for bits in [0, 1 << 17, 1 << Kind::Output as u32] {
            assert_partial_agrees(&bytes[..cut], opts_of(bits));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Arbitrary events (any data of every kind, arbitrary clocks): a
    /// partial read gives the full read's events, less what it skips.
    #[test]
    fn partial_reads_agree_with_the_full_read(
        n in 1usize..6,
        ops in proptest::collection::vec(arb_op(), 0..40),
        clocks in proptest::collection::vec(proptest::collection::vec(any::<u32>(), 0..6), 1..5),
        times in proptest::collection::vec(any::<u64>(), 1..5),
        flush_every in 0usize..5,
        bits in any::<u32>(),
    ) {
        let h = header(n);
        let events = build(n, &ops, &clocks, &times);
        let bytes = write_events(&h, &events, flush_every);
        let opts = opts_of(bits);
        let (back, end) = read_with(&bytes, opts).unwrap();
        prop_assert_eq!(back, as_partial(&events, opts));
        let (_, full_end) = read_with(&bytes, ReadOptions::all()).unwrap();
        prop_assert_eq!(end, full_end);
    }

    /// Damaged bytes: a partial read never panics, and agrees with the full
    /// read on what it decodes and where it stops (see `assert_partial_agrees`).
    #[test]
    fn partial_decoder_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        cut in any::<usize>(),
        bits in any::<u32>(),
    ) {
        let good = synth::write_to(Vec::new(), &Config { testers: 2, events: 30, seed: 3, payload: 4 }).unwrap();
        let mut mixed = good[..PREAMBLE_LEN.min(good.len())].to_vec();
        mixed.extend_from_slice(&bytes);
        let opts = opts_of(bits);
        assert_partial_agrees(&mixed, opts);
        assert_partial_agrees(&bytes, opts);
        assert_partial_agrees(&good[..cut % (good.len() + 1)], opts);
    }
}

/// Found by the fuzzer (the partial read against the full read): message ids
/// near u64::MAX, whose positions in the in-flight ring wrapped around, were
/// found or not depending on which sends the ring held; a receive then got
/// its send's data in one read and not in the other. Every option set agrees
/// with the full read on it now.
#[test]
fn fuzz_regression_partial_read_and_wrapping_message_ids() {
    let bytes = include_bytes!("testdata/fuzz-partial-wrapping-ids.bin");
    for bits in (0..1u32 << 17)
        .step_by(97)
        .chain([0, 1 << 17, (1 << 18) - 1])
    {
        assert_partial_agrees(bytes, opts_of(bits));
    }
    let (events, _) = read_with(bytes, ReadOptions::all()).unwrap();
    // The receive of the barrier_leave sent with id u64::MAX - 1 carries its data.
    let r = events
        .iter()
        .find(|e| e.dir == Dir::Recv && e.msg == Some(u64::MAX - 1))
        .unwrap();
    assert!(matches!(&r.data, EventData::BarrierLeave { name, .. } if name == "barrier335"));
}
