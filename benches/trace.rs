//! Criterion benchmarks of the trace format: writing (encode + clocks +
//! block checksums; the recorder's path, where the writer derives the
//! clocks, and re-encoding with given clocks) and streaming reading (decode +
//! clock reconstruction + message resolution), with 8 and 128 actors.
//!
//! Run: `cargo bench -p dtest-benches --bench trace`. Besides criterion's
//! timings it prints the encoded size per event, with and without content
//! bytes (payloads, command lines, names).

use std::hint::black_box;
use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dtest_trace::synth::{self, Config};
use dtest_trace::{Dir, Reader, Writer};

fn config(testers: usize, events: u64) -> Config {
    Config {
        testers,
        events,
        seed: 1,
        payload: 8,
    }
}

fn bench(c: &mut Criterion) {
    // 8 actors = master + 3 testers + 4 sessions... use 4 testers -> 9 actors,
    // and 64 testers -> 129 actors (the "8 and 128 actors").
    for (label, testers, events) in [
        ("9-actors", 4usize, 1_000_000u64),
        ("129-actors", 64, 300_000),
    ] {
        let trace = synth::generate(&config(testers, events));
        let bytes = synth::write_to(Vec::new(), &config(testers, events)).unwrap();
        let content: usize = trace
            .events
            .iter()
            .filter(|e| e.dir != Dir::Recv)
            .map(|e| e.data.content_len())
            .sum();
        eprintln!(
            "{label}: {} events, {} bytes, {:.2} bytes/event, {:.2} bytes/event without content",
            events,
            bytes.len(),
            bytes.len() as f64 / events as f64,
            (bytes.len() - content) as f64 / events as f64
        );
        let mut g = c.benchmark_group(format!("trace-{label}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(events));
        // The recorder's path (`dtest exec`): the writer derives each clock
        // (previous clock, merged with the send's for a receive, ticked).
        g.bench_function("write", |b| {
            b.iter(|| {
                let mut w =
                    Writer::new(Vec::with_capacity(bytes.len() + 4096), trace.header.clone())
                        .unwrap();
                for e in &trace.events {
                    w.append_auto(e.actor, e.time_ns, e.dir, e.msg, &e.data)
                        .unwrap();
                }
                black_box(w.into_inner().unwrap().len())
            })
        });
        // Re-encoding a trace held in memory: each event's full clock is
        // given and compared with the prediction (O(actors) per event).
        g.bench_function("write-given-clocks", |b| {
            b.iter(|| {
                let mut w =
                    Writer::new(Vec::with_capacity(bytes.len() + 4096), trace.header.clone())
                        .unwrap();
                for e in &trace.events {
                    w.append_event(e).unwrap();
                }
                black_box(w.into_inner().unwrap().len())
            })
        });
        g.bench_function("read", |b| {
            b.iter(|| {
                let mut r = Reader::new(Cursor::new(&bytes)).unwrap();
                let mut sum = 0u64;
                while let Some(e) = r.next_event().unwrap() {
                    sum = sum.wrapping_add(u64::from(e.clock.get(e.actor)));
                }
                black_box(sum)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
