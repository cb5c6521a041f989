//! Criterion benchmarks of dtest-exec's hot paths: the streaming expect
//! matcher (literal fast path and lazy DFA), the shell-marker filter, and
//! the barrier round trip of the master (64 testers).
//!
//! Run: `cargo bench -p dtest-benches --bench exec`. The end-to-end figures
//! (a real command, pipes and ptys, side by side with grep, a raw pty drain,
//! pexpect and Tcl expect) come from `benches/peers-exec.sh`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dtest_exec::master::{Master, StopCheck};
use dtest_exec::matcher::Pattern;
use dtest_exec::session::shell::{MarkerFilter, Segment};
use dtest_trace::{Actor, ActorKind, Header, Recorder};

/// 64 MiB of text lines, fed in 256 KiB chunks (the runner's read size).
fn corpus() -> Vec<u8> {
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n";
    let mut v = Vec::with_capacity(64 << 20);
    while v.len() < (64 << 20) {
        v.extend_from_slice(line);
    }
    v.truncate(64 << 20);
    v
}

fn scan(p: &Pattern, data: &[u8]) -> bool {
    let mut m = p.matcher();
    for chunk in data.chunks(256 << 10) {
        if m.feed(chunk).is_some() {
            return true;
        }
    }
    false
}

fn matcher(c: &mut Criterion) {
    let data = corpus();
    let mut g = c.benchmark_group("expect-64MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    let lit = Pattern::new("MARKER", false).unwrap();
    g.bench_function("literal", |b| b.iter(|| black_box(scan(&lit, &data))));
    let re = Pattern::new(r"port=(?P<port>\d+) ready", false).unwrap();
    g.bench_function("regex", |b| b.iter(|| black_box(scan(&re, &data))));
    let mut f = MarkerFilter::new("0123456789abcdef");
    g.bench_function("marker-filter", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for chunk in data.chunks(256 << 10) {
                f.feed(chunk, &mut |s| {
                    if let Segment::Data(d) = s {
                        n += d.len()
                    }
                });
            }
            black_box(n)
        })
    });
    g.finish();
}

struct Never;
impl StopCheck for Never {
    fn stop_reason(&self) -> Option<String> {
        None
    }
}

/// 64 testers pass `rounds` barriers; returns the time per barrier.
fn barrier_rounds(testers: usize, rounds: u32) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut actors = vec![Actor {
        id: 0,
        name: "master".into(),
        kind: ActorKind::Master,
        host: "local".into(),
    }];
    for i in 0..testers {
        actors.push(Actor {
            id: 0,
            name: format!("t{i}"),
            kind: ActorKind::Tester,
            host: "local".into(),
        });
    }
    let rec = Arc::new(
        Recorder::create(&dir.path().join("b.dtrace"), Header::new("bench", actors)).unwrap(),
    );
    let names: Vec<String> = (0..testers).map(|i| format!("t{i}")).collect();
    let mut members = HashMap::new();
    members.insert("b".to_string(), (0..testers).collect::<Vec<_>>());
    let master = Arc::new(Master::new(
        names,
        (1..=testers as u32).collect(),
        0,
        members,
    ));
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..testers {
            let (rec, master) = (Arc::clone(&rec), Arc::clone(&master));
            s.spawn(move || {
                for g in 0..rounds {
                    master
                        .enter(&rec, t, "b", g, Duration::from_secs(60), &Never)
                        .unwrap();
                }
            });
        }
    });
    start.elapsed() / rounds
}

fn barriers(c: &mut Criterion) {
    let mut g = c.benchmark_group("barrier");
    g.sample_size(10);
    g.bench_function("64-testers-x-1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += barrier_rounds(64, 1000) * 1000;
            }
            total
        })
    });
    g.finish();
    // The median round trip, printed for benches/README.md.
    let mut v: Vec<Duration> = (0..5).map(|_| barrier_rounds(64, 1000)).collect();
    v.sort();
    eprintln!(
        "barrier round trip, 64 testers, 1000 barriers: median {:?} per barrier \
         (5 runs, {:?} to {:?})",
        v[2], v[0], v[4]
    );
}

criterion_group!(benches, matcher, barriers);
criterion_main!(benches);
