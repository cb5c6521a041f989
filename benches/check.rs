//! Criterion benchmarks of `dtest check`: reading a 10 M-event synthetic
//! trace into columns and checking the ten core properties of
//! properties/bench.spec on it (reading included), plus reading alone and the
//! past-time property of the reelay comparison (benches/peers-check.sh),
//! properties on output lines (a count of lines, a join on a captured group:
//! line assembly, one regex search per line, keys per line), and checking
//! alone on columns read beforehand (one thread). `read-only` (`G true`)
//! reads what the checker reads for it: no clocks, no event data (see
//! `dtest_trace::ReadOptions`); `decode-all` and `decode-no-clocks-no-data`
//! time the bare reader with everything decoded and with nothing but kinds,
//! actors, times and message ids.
//!
//! Run: `cargo bench -p dtest-benches --bench check`. The trace is written
//! once to a temporary file (about 160 MB). `DTEST_CHECK_EVENTS` overrides
//! the number of events.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dtest_check::{check_trace, Spec};
use dtest_trace::synth::{self, Config};
use dtest_trace::{ReadOptions, Reader};

const BENCH_SPEC: &str = include_str!("../properties/bench.spec");

/// The past-time property also run through reelay by benches/peers-check.sh.
const PAST_SPEC: &str = "property p: G (verdict -> O start)";

/// Properties on output lines.
const LINES_SPEC: &str = r#"
property lines_per_second: G count[0s, 1s](output(_, /error/, dir = recv)) <= 1000000
property ports_seen_twice:
    forall r in output(_, /port=(\d+)/, dir = send):
        F output(_, /port=(\d+)/, dir = recv, $1 = r.$1)
"#;

fn run(spec: &Spec, trace: &Path) -> usize {
    let r = check_trace(spec, &[], trace).expect("the benchmark trace checks");
    r.iter().filter(|r| r.holds()).count()
}

/// Reads every event with `opts`; returns the number of events.
fn decode(trace: &Path, opts: ReadOptions) -> u64 {
    let mut r = Reader::open(trace)
        .expect("the benchmark trace opens")
        .with_options(opts);
    let mut n = 0;
    while r.next_event().expect("the benchmark trace reads").is_some() {
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let events: u64 = std::env::var("DTEST_CHECK_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let trace = dir.path().join("bench.dtrace");
    synth::write(
        &trace,
        &Config {
            testers: 4,
            events,
            seed: 1,
            payload: 16,
        },
    )
    .expect("the synthetic trace is written");
    let ten = Spec::parse("properties/bench.spec", BENCH_SPEC).expect("bench.spec parses");
    assert_eq!(ten.len(), 10);
    // `G true` is never decided before the end: the whole trace is read.
    let nothing = Spec::parse("read-only", "property t: G true").unwrap();
    let past = Spec::parse("past", PAST_SPEC).unwrap();
    let lines = Spec::parse("lines", LINES_SPEC).unwrap();

    let mut g = c.benchmark_group(format!("check-{}M", events / 1_000_000));
    g.sample_size(10);
    g.throughput(Throughput::Elements(events));
    g.bench_function("decode-all", |b| {
        b.iter(|| black_box(decode(&trace, ReadOptions::all())))
    });
    g.bench_function("decode-no-clocks-no-data", |b| {
        let opts = ReadOptions::all().clocks(false).data_of([]);
        b.iter(|| black_box(decode(&trace, opts)))
    });
    g.bench_function("read-only", |b| b.iter(|| black_box(run(&nothing, &trace))));
    g.bench_function("read+past-property", |b| {
        b.iter(|| black_box(run(&past, &trace)))
    });
    g.bench_function("read+10-properties", |b| {
        b.iter(|| black_box(run(&ten, &trace)))
    });
    g.bench_function("read+2-line-properties", |b| {
        b.iter(|| black_box(run(&lines, &trace)))
    });
    // Checking alone, on columns read beforehand.
    let cols = dtest_check::load_columns(&past, &[0], &trace).unwrap();
    g.bench_function("past-property-on-columns", |b| {
        b.iter(|| {
            black_box(dtest_check::eval::check(
                &past.ir,
                &past.ir.properties[0],
                &cols,
            ))
        })
    });
    let all: Vec<usize> = (0..ten.len()).collect();
    let cols = dtest_check::load_columns(&ten, &all, &trace).unwrap();
    g.bench_function("10-properties-on-columns", |b| {
        b.iter(|| {
            for p in &ten.ir.properties {
                black_box(dtest_check::eval::check(&ten.ir, p, &cols));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
