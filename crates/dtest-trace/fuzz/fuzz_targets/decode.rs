//! Fuzzes the trace decoder: any bytes, read as a trace, give events, a
//! clean end, or an error with a byte offset, never a panic; the validator
//! and every text rendering accept whatever the decoder gives. A partial
//! read (no clocks, the data of some kinds only, chosen from the input's
//! length) gives the full read's events less what it skips.
#![no_main]

use dtest_trace::{EventData, Kind, ReadOptions, VectorClock};
use libfuzzer_sys::fuzz_target;

/// Reads `data` with `opts`: the events, and whether the read ended cleanly.
fn read(data: &[u8], opts: ReadOptions) -> Option<(Vec<dtest_trace::Event>, bool)> {
    let r = dtest_trace::Reader::new(std::io::Cursor::new(data)).ok()?;
    let mut r = r.with_options(opts);
    let mut v = Vec::new();
    loop {
        match r.next_event() {
            Ok(Some(e)) => v.push(e.clone()),
            Ok(None) => return Some((v, true)),
            Err(e) => {
                assert!(e.offset().is_some() || matches!(e, dtest_trace::Error::Io(_)));
                return Some((v, false));
            }
        }
    }
}

fn partial_agrees(data: &[u8]) {
    let mix = (data.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    let opts = ReadOptions::all().clocks(mix & (1 << 20) != 0).data_of(
        Kind::ALL
            .into_iter()
            .filter(|&k| mix & (1 << k as u32) != 0),
    );
    let (Some((full, full_ok)), Some((part, part_ok))) =
        (read(data, ReadOptions::all()), read(data, opts))
    else {
        return;
    };
    let want: Vec<_> = full
        .into_iter()
        .map(|mut e| {
            if !opts.has_clocks() {
                e.clock = VectorClock(Vec::new());
            }
            if !opts.decodes(e.data.kind()) {
                e.data = EventData::empty(e.data.kind());
            }
            e
        })
        .collect();
    if full_ok {
        // A partial read checks less (UTF-8 of skipped texts, clock
        // entries' range), never more.
        assert!(part_ok);
        assert_eq!(part, want);
    } else {
        assert!(part.len() >= want.len());
        assert_eq!(part[..want.len()], want[..]);
    }
}

fuzz_target!(|data: &[u8]| {
    partial_agrees(data);
    let Ok(mut r) = dtest_trace::Reader::new(std::io::Cursor::new(data)) else {
        return;
    };
    let header = r.header().clone();
    let mut v = dtest_trace::Validator::new(header.actors.len());
    let mut sink = Vec::new();
    loop {
        match r.next_event() {
            Ok(Some(e)) => {
                v.push(e);
                let _ = dtest_trace::export::show_line(&header, e);
                let _ = dtest_trace::export::write_jsonl(&mut sink, &header, e);
                let _ = dtest_trace::export::write_shiviz(&mut sink, &header, e);
                sink.clear();
            }
            Ok(None) => break,
            Err(e) => {
                assert!(e.offset().is_some() || matches!(e, dtest_trace::Error::Io(_)));
                break;
            }
        }
    }
    let _ = v.finish(r.is_complete());
    let _ = r.cut_events();
    for w in r.warnings() {
        let _ = w.to_string();
    }
});
