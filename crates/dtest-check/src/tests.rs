//! Unit tests: the parser (data-driven), the round trip, robustness, and the
//! fast evaluator against the naive one on random formulas and random
//! synthetic traces.

use dtest_trace::synth::{self, Config};
use dtest_trace::{Dir, Reader, Trace, Writer};
use proptest::prelude::*;

use crate::columns::Columns;
use crate::naive::Naive;
use crate::parse::{parse_formula, parse_spec};
use crate::{eval, Spec, Verdict};

// ---------------------------------------------------------------- parsing

/// `(source, expected pretty-printed form)`.
const GOOD: &[(&str, &str)] = &[
    (
        "G (match(tester2, \"md5done\") -> O barrier_leave(tester2, \"source gotten\"))",
        "G (match(tester2, \"md5done\") -> O barrier_leave(tester2, \"source gotten\"))",
    ),
    (
        "G (input(client, /ping/) -> F[0s, 2s] output(client, /pong/))",
        "G (input(client, /ping/) -> F[0s, 2s] output(client, /pong/))",
    ),
    ("always not output(_, /panic/i)", "G !output(_, /panic/i)"),
    ("a U b U c", "a U b U c"),
    ("(a U b) U c", "(a U b) U c"),
    ("a -> b -> c", "a -> b -> c"),
    ("(a -> b) -> c", "(a -> b) -> c"),
    ("a || b && c", "a || b && c"),
    ("(a || b) && c", "(a || b) && c"),
    ("a <-> b <-> c", "a <-> b <-> c"),
    ("!X WX Y WY a", "!X WX Y WY a"),
    (
        "exit(_, _, status = 0) and exit(status != KILL)",
        "exit(status = 0) && exit(status != KILL)",
    ),
    ("p since[1ms, inf] q", "p S[1ms, inf] q"),
    ("count[0s, 1s](output) <= 3", "count[0s, 1s](output) <= 3"),
    (
        "forall r in input(client, /id=(\\d+)/): F output(client, /id=(\\d+)/, $1 = r.$1)",
        "forall r in input(client, /id=(\\d+)/): F output(client, /id=(\\d+)/, $1 = r.$1)",
    ),
    (
        "CO barrier_enter(tester1) && CC any(\"tester1@local\")",
        "CO barrier_enter(tester1) && CC any(\"tester1@local\")",
    ),
    ("# a comment\n  F end # another\n", "F end"),
];

#[test]
fn good_formulas_print_as_expected() {
    for (src, want) in GOOD {
        let f = parse_formula(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(f.to_string(), *want, "{src}");
        let again = parse_formula(&f.to_string()).unwrap();
        assert_eq!(again, f, "{src}");
    }
}

/// `(spec, expected "LINE:COL: message" prefix)`.
const BAD: &[(&str, &str)] = &[
    (
        "property p: G (output ->)",
        "1:25: expected a formula, found `)`",
    ),
    ("property p: outptu(x)", "1:13: unknown event kind `outptu`"),
    ("property p:\n  F nope", "2:5: unknown let `nope`"),
    (
        "property p: exit(_, _, stauts = 0)",
        "1:24: unknown field `stauts`",
    ),
    (
        "property p: output(_, _, status = 0)",
        "1:26: `output` events have no field `status`",
    ),
    (
        "property p: verdict(_, _, ok = 3)",
        "1:27: field `ok` is a boolean",
    ),
    ("property p: output(_, /(/)", "1:13: bad regex"),
    ("property p: F[2s, 1s] end", "1:14: empty interval"),
    ("property p: X[0s, 1s] end", "1:14: `X` takes no interval"),
    ("property p: F[1 s] end", "1:16: missing time unit"),
    ("let F = end", "1:5: `F` is a reserved word"),
    (
        "property p: end\nproperty p: end",
        "2:10: `p` is defined twice",
    ),
    (
        "property p: F output(_, _, text = r.text)",
        "1:15: this atom refers to an event variable",
    ),
    (
        "property p: forall r in input: F G output(_, _, text = r.text)",
        "1:36: an atom that refers to an event variable cannot be under `G`",
    ),
    ("property p: \"unterminated", "1:13: unterminated string"),
    (
        "prop p: end",
        "1:1: expected `let` or `property`, found `prop`",
    ),
    (
        "property p: end end",
        "1:17: unexpected `end` after the formula",
    ),
    ("property p: count(end) => 3", "1:24: expected a comparison"),
];

#[test]
fn bad_specs_are_reported_with_positions() {
    let mut wrong = Vec::new();
    for (src, want) in BAD {
        match Spec::parse("t.spec", src) {
            Ok(_) => wrong.push(format!("{src}: parsed")),
            Err(e) => {
                let got = format!("{}:{}: {}", e.line, e.col, e.message);
                if !got.starts_with(want) {
                    wrong.push(format!("{src}\n got: {got}\nwant: {want}"));
                }
                let shown = e.to_string();
                assert!(shown.starts_with("t.spec:"), "{shown}");
                assert!(shown.lines().nth(2).unwrap().ends_with('^'), "{shown}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "property p: {}end{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let chain = format!("property p: end{}", " && end".repeat(100_000));
    let unary = format!("property p: {}end", "! X ".repeat(100_000));
    let right = format!("property p: end{}", " -> end".repeat(100_000));
    for src in [deep, chain, unary, right] {
        let e = Spec::parse("t", &src).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{}", e.message);
    }
    let ok = format!("property p: {}end{}", "(".repeat(90), ")".repeat(90));
    assert!(Spec::parse("t", &ok).is_ok());
}

#[test]
fn a_formula_runs_until_the_next_item() {
    let spec = parse_spec(
        "t",
        "let a = output(x)\n  || input(x)\nproperty p:\n  G (a ->\n   F exit)\nproperty q: a",
    )
    .unwrap();
    assert_eq!(spec.items.len(), 3);
    assert_eq!(spec.items[0].formula.to_string(), "output(x) || input(x)");
    assert_eq!(spec.items[1].formula.to_string(), "G (a -> F exit)");
}

// ---------------------------------------------------------------- random formulas

const ATOMS: &[&str] = &[
    "output(_, /ready/)",
    "output(_, /panic|error/)",
    "input",
    "start",
    "exit(_, _, status = 0)",
    "exit",
    "match(_, /done/i)",
    "barrier_enter",
    "barrier_leave(tester1)",
    "verdict(_, _, ok = false)",
    "verdict",
    "any(tester2)",
    "any(master)",
    "any(\"tester1@host1\")",
    "signal",
    "end",
    "open",
    "any(_, _, dir = recv)",
    "output(_, _, stream = stderr)",
    "timeout",
];

const WINS: &[&str] = &[
    "[0ns, 10us]",
    "[5us, 20us]",
    "[0s, inf]",
    "[2us, inf]",
    "[3us, 3us]",
];

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(ATOMS).prop_map(str::to_string),
        1 => Just("true".to_string()),
        1 => Just("false".to_string()),
    ]
}

/// `(binder, join atom)` pairs that type-check together.
const JOINS: &[(&str, &str)] = &[
    (
        "output(_, /(ready|done|ok|tick)/)",
        "output(_, /(ready|done|ok|tick)/, $1 = r.$1)",
    ),
    (
        "input(_, /(ready|done|ok|tick)/)",
        "output(_, /(ready|done|ok|tick)/, $1 = r.$1)",
    ),
    (
        "output(_, /(ready|done|ok|tick)/)",
        "input(_, _, text = r.text)",
    ),
    ("any(tester1)", "any(_, _, actor = r.actor)"),
    ("exit", "exit(_, _, status = r.status)"),
    (
        "output(_, /(ready|done|ok|tick)/)",
        "output(_, /(ready|done|ok|tick)/, text = r.text)",
    ),
    (
        "any(_, _, dir = send)",
        "any(_, _, text = r.text, dir = recv)",
    ),
];

fn join() -> impl Strategy<Value = String> {
    let ops = prop::sample::select(
        &[
            "",
            "F ",
            "F[0ns, 20us] ",
            "F[5us, inf] ",
            "O ",
            "O[0ns, 20us] ",
            "O[2us, 30us] ",
            "CO ",
            "CF ",
            "CC ",
            "G !",
            "H !",
            "CH !",
            "CG !",
            "!",
        ][..],
    );
    (
        any::<bool>(),
        prop::sample::select(JOINS),
        ops,
        atom(),
        any::<bool>(),
    )
        .prop_map(|(fa, (b, j), op, extra, guard)| {
            let q = if fa { "forall" } else { "exists" };
            if guard {
                format!("{q} r in {b}: {extra} -> {op}{j}")
            } else {
                format!("{q} r in {b}: {op}{j}")
            }
        })
}

fn formula() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![6 => atom(), 1 => join().prop_map(|j| format!("({j})"))];
    leaf.prop_recursive(4, 24, 2, |inner| {
        let un = prop::sample::select(
            &[
                "!", "X ", "WX ", "F ", "G ", "Y ", "WY ", "O ", "H ", "CO ", "CH ", "CF ", "CG ",
                "CC ",
            ][..],
        );
        let timed_un = prop::sample::select(&["F", "G", "O", "H"][..]);
        let bin = prop::sample::select(&["&&", "||", "->", "<->", "U", "W", "R", "S"][..]);
        let timed_bin = prop::sample::select(&["U", "S"][..]);
        let cmp = prop::sample::select(&["==", "!=", "<", "<=", ">", ">="][..]);
        prop_oneof![
            (un, inner.clone()).prop_map(|(o, f)| format!("{o}({f})")),
            (timed_un, prop::sample::select(WINS), inner.clone())
                .prop_map(|(o, w, f)| format!("{o}{w} ({f})")),
            (inner.clone(), bin, inner.clone()).prop_map(|(a, o, b)| format!("({a}) {o} ({b})")),
            (
                inner.clone(),
                timed_bin,
                prop::sample::select(WINS),
                inner.clone()
            )
                .prop_map(|(a, o, w, b)| format!("({a}) {o}{w} ({b})")),
            (
                prop::option::of(prop::sample::select(WINS)),
                inner,
                cmp,
                0u64..4
            )
                .prop_map(|(w, f, c, k)| format!("count{}({f}) {c} {k}", w.unwrap_or(""))),
        ]
    })
}

/// A random synthetic trace, possibly cut before its end.
fn trace() -> impl Strategy<Value = Trace> {
    (
        1usize..4,
        0u64..36,
        any::<u64>(),
        prop::option::of(0usize..36),
    )
        .prop_map(|(testers, events, seed, cut)| {
            let t = synth::generate(&Config {
                testers,
                events,
                seed,
                payload: 12,
            });
            match cut {
                Some(k) if k < t.events.len() => {
                    let events = t.events[..k].to_vec();
                    Trace::from_parts(t.header, events, false, Vec::new())
                }
                _ => t,
            }
        })
}

/// The columns of a trace, through the real writer and reader.
fn columns(spec: &Spec, t: &Trace) -> Columns {
    let mut w = Writer::new(Vec::new(), t.header.clone()).unwrap();
    for e in &t.events {
        let msg = if e.dir == Dir::Local { None } else { e.msg };
        w.append(e.actor, e.time_ns, e.dir, msg, e.clock.as_slice(), &e.data)
            .unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let needs = spec.ir.needs(spec.ir.properties[0].root);
    let c = Columns::read(Reader::new(&bytes[..]).unwrap(), &spec.ir, &needs).unwrap();
    assert_eq!(c.complete, t.complete);
    c
}

fn compare(src: &str, t: &Trace) -> Result<(), TestCaseError> {
    let spec = Spec::parse("random", &format!("property p: {src}"))
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let cols = columns(&spec, t);
    let fast = eval::check(&spec.ir, &spec.ir.properties[0], &cols).verdict;
    let naive = Naive::new(t, &spec.ast).holds(&spec.ast.items[0].formula);
    if t.complete {
        let want = if naive {
            Verdict::Holds
        } else {
            Verdict::Violated
        };
        prop_assert_eq!(fast, want, "{} on {} events", src, t.len());
    } else {
        // lo <= finite semantics <= hi.
        match fast {
            Verdict::Holds => prop_assert!(naive, "{} holds but naive says no", src),
            Verdict::Violated => prop_assert!(!naive, "{} violated but naive says yes", src),
            Verdict::Inconclusive => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fast_agrees_with_naive(f in formula(), t in trace()) {
        compare(&f, &t)?;
    }

    #[test]
    fn fast_agrees_with_naive_on_joins(j in join(), t in trace()) {
        compare(&j, &t)?;
        compare(&format!("!({j})"), &t)?;
    }

    #[test]
    fn print_parse_round_trip(f in formula()) {
        let a = parse_formula(&f).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let printed = a.to_string();
        let b = parse_formula(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(a, b, "{}", printed);
    }

    #[test]
    fn parser_never_panics(s in "(property p: |let a = )?[ -~\\n]{0,60}") {
        let _ = Spec::parse("fuzz", &s);
    }

    #[test]
    fn parser_never_panics_on_mutations(f in formula(), pos in any::<prop::sample::Index>(), junk in "[-()\\[\\]/\"$!&|<>=,:. a-zA-Z0-9_\\\\]{0,3}") {
        let src = format!("property p: {f}");
        let mut at = pos.index(src.len() + 1);
        while !src.is_char_boundary(at) { at -= 1; }
        let mutated = format!("{}{}{}", &src[..at], junk, &src[at..]);
        let _ = Spec::parse("fuzz", &mutated);
        let cut = &src[..at];
        let _ = Spec::parse("fuzz", cut);
    }
}

#[test]
fn strings_and_regexes_round_trip() {
    for src in [
        r#"output(_, "a \"quoted\" \\ text\n")"#,
        r#"output("tester1@host1", /a\/b/i)"#,
        r#"output(_, _, stream = stderr, bytes != 3)"#,
        r#"custom(_, _, name = "with space")"#,
    ] {
        let f = parse_formula(src).unwrap();
        assert_eq!(parse_formula(&f.to_string()).unwrap(), f, "{src}");
    }
}

#[test]
fn empty_trace_g_holds_f_does_not() {
    let t = synth::generate(&Config {
        testers: 1,
        events: 0,
        seed: 1,
        payload: 4,
    });
    let t = Trace::from_parts(t.header, vec![], true, vec![]);
    for (src, want) in [
        ("G output", Verdict::Holds),
        ("F output", Verdict::Violated),
    ] {
        let spec = Spec::parse("t", &format!("property p: {src}")).unwrap();
        let mut cols = columns(
            &spec,
            &synth::generate(&Config {
                testers: 1,
                events: 0,
                seed: 1,
                payload: 4,
            }),
        );
        cols.complete = true;
        assert_eq!(
            eval::check(&spec.ir, &spec.ir.properties[0], &cols).verdict,
            want,
            "{src}"
        );
        let naive = Naive::new(&t, &spec.ast).holds(&spec.ast.items[0].formula);
        assert_eq!(naive, want == Verdict::Holds);
    }
}

#[test]
fn truncated_trace_future_is_inconclusive_past_is_not() {
    let t = synth::generate(&Config {
        testers: 2,
        events: 200,
        seed: 7,
        payload: 12,
    });
    let cut = Trace::from_parts(t.header.clone(), t.events[..150].to_vec(), false, vec![]);
    for (src, want) in [
        ("G !end", Verdict::Inconclusive),
        ("F end", Verdict::Inconclusive),
        ("F open", Verdict::Holds),
        ("G open", Verdict::Violated),
        ("open && WY false", Verdict::Holds),
    ] {
        let spec = Spec::parse("t", &format!("property p: {src}")).unwrap();
        let cols = columns(&spec, &cut);
        assert_eq!(
            eval::check(&spec.ir, &spec.ir.properties[0], &cols).verdict,
            want,
            "{src}"
        );
    }
}

fn past_formula() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 12, 2, |inner| {
        let un = prop::sample::select(&["!", "Y ", "WY ", "O ", "H ", "CO ", "CH "][..]);
        let bin = prop::sample::select(&["&&", "||", "->", "S", "S[0ns, 10us]", "S[2us, inf]"][..]);
        prop_oneof![
            (un, inner.clone()).prop_map(|(o, f)| format!("{o}({f})")),
            (
                prop::sample::select(&["O", "H"][..]),
                prop::sample::select(WINS),
                inner.clone()
            )
                .prop_map(|(o, w, f)| format!("{o}{w} ({f})")),
            (inner.clone(), bin, inner.clone()).prop_map(|(a, o, b)| format!("({a}) {o} ({b})")),
            (prop::option::of(prop::sample::select(WINS)), inner, 0u64..4)
                .prop_map(|(w, f, k)| format!("count{}({f}) >= {k}", w.unwrap_or(""))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The online checker (past-only properties, no columns) gives the
    /// verdicts of the columnar evaluator, explanations included.
    #[test]
    fn online_agrees_with_columns(fs in prop::collection::vec((any::<bool>(), past_formula()), 1..4), t in trace()) {
        let src: String = fs
            .iter()
            .enumerate()
            .map(|(k, (g, f))| format!("property p{k}: {}({f})\n", if *g { "G " } else { "" }))
            .collect();
        let spec = Spec::parse("random", &src).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.dtrace");
        let mut w = dtest_trace::create(&path, t.header.clone()).unwrap();
        for e in &t.events {
            let msg = if e.dir == Dir::Local { None } else { e.msg };
            w.append(e.actor, e.time_ns, e.dir, msg, e.clock.as_slice(), &e.data).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let online = crate::check_trace(&spec, &[], &path).unwrap();
        let mut needs = crate::ir::Needs::default();
        for p in &spec.ir.properties {
            needs.union(&spec.ir.needs(p.root));
        }
        let cols = Columns::read(Reader::open(&path).unwrap(), &spec.ir, &needs).unwrap();
        for (k, p) in spec.ir.properties.iter().enumerate() {
            let o = eval::check(&spec.ir, p, &cols);
            prop_assert_eq!(online[k].verdict, o.verdict, "{}", p.source);
            let events: Vec<u64> = o.notes.iter().filter_map(|n| n.event).collect();
            let mut events = events;
            events.sort_unstable();
            events.dedup();
            prop_assert_eq!(&online[k].events, &events, "{}", p.source);
        }
    }
}
