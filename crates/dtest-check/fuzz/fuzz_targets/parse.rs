//! Fuzzes the spec parser, the lowering and the checker: `cargo +nightly
//! fuzz run parse` (from crates/dtest-check). Any input must parse or fail
//! with an error naming a line and column inside the input; a parsed
//! formula must print and parse back to the same tree, and check on a small
//! synthetic trace without a crash (the text report included).
//!
//! The first byte picks how the rest is read: as the spec itself, or as
//! the shape of a generated spec the fuzzer would hardly write by itself:
//! chains of `let`s that inline into each other (depth after inlining),
//! and very long names.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A small synthetic trace, written once per process.
fn trace() -> &'static PathBuf {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        let p =
            std::env::temp_dir().join(format!("dtest-check-fuzz-{}.dtrace", std::process::id()));
        dtest_trace::synth::write(
            &p,
            &dtest_trace::synth::Config {
                testers: 2,
                events: 300,
                seed: 7,
                payload: 12,
            },
        )
        .expect("the fuzz trace is written");
        p
    })
}

const OPS: &[&str] = &[
    "F ",
    "G ",
    "X ",
    "! ",
    "O ",
    "H ",
    "CO ",
    "Y ",
    "WX ",
    "F[0s, 1ms] ",
];
const LEAVES: &[&str] = &[
    "output",
    "output(_, /panic/)",
    "input(tester1, \"x\")",
    "exit(_, _, status = KILL)",
    "signal(_, \"SIGINT\")",
    "end",
];

/// A spec from the shape bytes: a chain of lets (count, operators per
/// let), or a long name.
fn generated(mode: u8, data: &[u8]) -> String {
    let b = |k: usize| data.get(k).copied().unwrap_or(0) as usize;
    match mode % 3 {
        1 => {
            let lets = 1 + b(0) * 4 + b(1) % 4;
            let per = 1 + b(2) % 120;
            let op = OPS[b(3) % OPS.len()];
            let leaf = LEAVES[b(4) % LEAVES.len()];
            let mut s = format!("let l0 = {leaf}\n");
            for k in 1..lets {
                let bin = if b(5 + k % 8) % 3 == 0 { " && l0" } else { "" };
                s.push_str(&format!("let l{k} = {}(l{}{bin})\n", op.repeat(per), k - 1));
            }
            s.push_str(&format!("property p: G (start -> l{})\n", lets - 1));
            s
        }
        _ => {
            let len = 1 + (b(0) << 8 | b(1)) * (1 + b(2) % 8);
            let name: String = std::iter::once('p')
                .chain((1..len).map(|k| if (k + b(3)) % 7 == 0 { '_' } else { 'q' }))
                .collect();
            let leaf = LEAVES[b(4) % LEAVES.len()];
            format!("let {name} = {leaf}\nproperty {name}: G !{name}\n")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let owned;
    let src: &str = if mode % 3 == 0 {
        let Ok(s) = std::str::from_utf8(rest) else {
            return;
        };
        s
    } else {
        owned = generated(mode, rest);
        &owned
    };
    match dtest_check::Spec::parse("fuzz.spec", src) {
        Ok(spec) => {
            for item in &spec.ast.items {
                let printed = item.formula.to_string();
                let again = dtest_check::parse::parse_formula(&printed)
                    .unwrap_or_else(|e| panic!("printed formula does not parse: {printed}: {e}"));
                assert_eq!(again, item.formula, "round trip of {printed}");
            }
            let results = dtest_check::check_trace(&spec, &[], trace())
                .unwrap_or_else(|e| panic!("checking failed: {e}"));
            let _ = dtest_check::report::text(&results);
        }
        Err(e) => {
            assert!(e.line >= 1 && e.col >= 1, "{e}");
            assert!(e.line <= src.lines().count().max(1) + 1, "{e}");
        }
    }
});
