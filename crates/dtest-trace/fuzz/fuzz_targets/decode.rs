//! Fuzzes the trace decoder: any bytes, read as a trace, give events, a
//! clean end, or an error with a byte offset, never a panic; the validator
//! and every text rendering accept whatever the decoder gives.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
