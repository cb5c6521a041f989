//! Criterion benchmarks of dtest-msc: a 100k-event, 16-tester synthetic
//! trace (33 actors) drawn as SVG and as mscgen, from the trace in memory
//! to the bytes of the chart (layout included), with the default options
//! (time layout, sessions folded into their testers' lanes, compact
//! marks; an SVG this tall is several pages, all counted), and with
//! `--detail full` (every event on its own).
//!
//! Run: `cargo bench -p dtest-benches --bench msc`. Before the timings it
//! prints the SVG and mscgen sizes for 25k, 50k and 100k events, to show
//! that the size grows with the events (bytes per event stay flat), not
//! with events x lanes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

use dtest_msc::{Detail, Events, Format, Options};
use dtest_trace::synth::{self, Config};

fn config(events: u64) -> Config {
    Config {
        testers: 16,
        events,
        seed: 1,
        payload: 16,
    }
}

/// Appends every page to one shared buffer.
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The chart with the default options (time layout, sessions folded) and
/// `detail`, all its pages (a 100k-event SVG is several) in one buffer.
fn draw(trace: &dtest_trace::Trace, format: Format, detail: Detail) -> Vec<u8> {
    let opts = Options {
        detail,
        ..Options::default()
    };
    let events = Events::from_trace(trace, &opts).expect("window");
    let out = Rc::new(RefCell::new(Vec::with_capacity(64 << 20)));
    let mut sink =
        |_: usize, _: usize| -> io::Result<Box<dyn Write>> { Ok(Box::new(Shared(out.clone()))) };
    dtest_msc::write_pages(&events, &opts, format, &mut sink).expect("chart");
    Rc::try_unwrap(out).expect("one owner").into_inner()
}

fn bench(c: &mut Criterion) {
    for events in [25_000, 50_000, 100_000] {
        let t = synth::generate(&config(events));
        for detail in [Detail::Compact, Detail::Full] {
            let svg = draw(&t, Format::Svg, detail).len();
            let msc = draw(&t, Format::Mscgen, detail).len();
            eprintln!(
                "16 testers, {events} events, {detail:?}: SVG {svg} bytes ({:.0} bytes/event), mscgen {msc} bytes ({:.0} bytes/event)",
                svg as f64 / events as f64,
                msc as f64 / events as f64
            );
        }
    }
    let trace = synth::generate(&config(100_000));
    let mut g = c.benchmark_group("msc-100k-events-16-testers");
    g.sample_size(10);
    g.throughput(Throughput::Elements(trace.len() as u64));
    for (name, detail) in [("", Detail::Compact), ("-full", Detail::Full)] {
        g.bench_function(format!("svg{name}"), |b| {
            b.iter(|| black_box(draw(&trace, Format::Svg, detail)))
        });
        g.bench_function(format!("mscgen{name}"), |b| {
            b.iter(|| black_box(draw(&trace, Format::Mscgen, detail)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
