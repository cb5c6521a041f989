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

/// The number of cases of a property test: `PROPTEST_CASES` when set (for
/// longer runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
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
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

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
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

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

// ---------------------------------------------------------------- lines

/// A run of one program whose output is `out` (and whose input is `inp`),
/// recorded with the output cut into chunks at `cuts` (byte offsets) and
/// the input at `in_cuts`: one event per chunk on the session (send) and
/// on the tester (receive). Times: 1 ms per chunk.
fn chunked_trace(out: &str, cuts: &[usize], inp: &str, in_cuts: &[usize]) -> Vec<u8> {
    use dtest_trace::{Actor, ActorKind, EventData, Header, Stream};
    let a = |id, name: &str, kind| Actor {
        id,
        name: name.into(),
        kind,
        host: "local".into(),
    };
    let header = Header::new(
        "chunks",
        vec![
            a(0, "master", ActorKind::Master),
            a(1, "tester1", ActorKind::Tester),
            a(2, "tester1@local", ActorKind::Session),
        ],
    );
    let mut w = Writer::new(Vec::new(), header).unwrap();
    let mut t = 0u64;
    let mut msg = 0u64;
    let mut send = |w: &mut Writer<Vec<u8>>, from: u32, to: u32, data: EventData| {
        t += 1_000_000;
        msg += 1;
        w.append_auto(from, t, Dir::Send, Some(msg), &data).unwrap();
        w.append_auto(to, t, Dir::Recv, Some(msg), &data).unwrap();
    };
    send(
        &mut w,
        1,
        2,
        EventData::Start {
            command: "./server".into(),
        },
    );
    let pieces = |s: &str, cuts: &[usize]| -> Vec<Vec<u8>> {
        let mut at = 0;
        let mut v = Vec::new();
        for &c in cuts.iter().chain([s.len()].iter()) {
            let c = c.clamp(at, s.len());
            v.push(s.as_bytes()[at..c].to_vec());
            at = c;
        }
        v
    };
    for p in pieces(inp, in_cuts) {
        send(
            &mut w,
            1,
            2,
            EventData::Input {
                bytes: p,
                secret: false,
            },
        );
    }
    for p in pieces(out, cuts) {
        send(
            &mut w,
            2,
            1,
            EventData::Output {
                bytes: p,
                stream: Stream::Stdout,
            },
        );
    }
    send(
        &mut w,
        2,
        1,
        EventData::Exit {
            status: dtest_trace::ExitStatus::Signal("KILL".into()),
        },
    );
    t += 1_000_000;
    w.append_auto(
        0,
        t,
        Dir::Local,
        None,
        &EventData::End {
            ok: true,
            summary: "ok".into(),
        },
    )
    .unwrap();
    w.into_inner().unwrap()
}

const PROGRAM_OUTPUT: &str = "starting\r\nready port=4040\nwork id=7\nwork id=8\npanic: boom\r\ndone id=7\nnoise\nlast line, no newline";
const PROGRAM_INPUT: &str = "hello world\nquit\n";

const LINE_SPEC: &str = r#"
property no_panic: G !output(_, /^panic/)
property ready: F output(tester1, /^ready port=(\d+)$/)
property exact_line: F output(tester1, "ready port=4040")
property final_line: F output(tester1, "last line, no newline")
property works_done:
    forall r in output(tester1, /^work id=(\d+)$/):
        F output(tester1, /^done id=(\d+)$/, $1 = r.$1)
property at_most_one_work: G count(output(tester1, /^work/)) <= 1
property at_most_two_work: G count(output(tester1, /^work/)) <= 2
property done_after_work: G (output(tester1, /^done/) -> O output(tester1, /^work id=7/))
property typed: F input("tester1@local", "hello world") && F input(tester1, "quit")
property killed: F exit(tester1, "SIGKILL") && F exit(tester1, "KILL") && F exit(_, _, status = KILL)
property no_two_lines: G !output(tester1, /id=7.*id=8/)
"#;

/// `(property, verdict, the lines the report shows for matching events)`.
fn line_report(bytes: &[u8], online: bool) -> Vec<(String, Verdict, Vec<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dtrace");
    std::fs::write(&path, bytes).unwrap();
    let spec = Spec::parse("lines.spec", LINE_SPEC).unwrap();
    let mut out = Vec::new();
    for p in spec.property_names() {
        let only = [p.to_string()];
        let rs = if online {
            crate::check_trace(&spec, &only, &path).unwrap()
        } else {
            let props = spec.select(&only).unwrap();
            crate::check_columns(&spec, &props, &path).unwrap().results
        };
        for r in rs {
            let mut lines: Vec<String> = r
                .why
                .iter()
                // The notes about atoms (`G p` with p not an atom names the
                // events where it fails, whatever their lines).
                .filter(|n| {
                    n.message.starts_with("matches")
                        || (n.message.starts_with("also violated") && r.property == "no_panic")
                        || n.message.starts_with("with `r` bound")
                })
                .filter_map(|n| r.details.iter().find(|d| Some(d.index) == n.event))
                .filter(|d| d.kind == "output" || d.kind == "input")
                .map(|d| d.text.clone())
                .collect();
            lines.sort();
            lines.dedup();
            out.push((r.property, r.verdict, lines));
        }
    }
    out
}

#[test]
fn verdicts_and_reported_lines_do_not_depend_on_the_chunking() {
    let want = line_report(
        &chunked_trace(PROGRAM_OUTPUT, &[], PROGRAM_INPUT, &[]),
        false,
    );
    let verdict = |p: &str| want.iter().find(|x| x.0 == p).unwrap().1;
    let lines = |p: &str| want.iter().find(|x| x.0 == p).unwrap().2.clone();
    assert_eq!(verdict("no_panic"), Verdict::Violated);
    assert_eq!(lines("no_panic"), ["panic: boom"]);
    assert_eq!(verdict("ready"), Verdict::Holds);
    assert_eq!(verdict("exact_line"), Verdict::Holds);
    assert_eq!(verdict("final_line"), Verdict::Holds);
    assert_eq!(verdict("works_done"), Verdict::Violated, "{want:?}");
    assert_eq!(lines("works_done"), ["work id=8"], "{want:?}");
    assert_eq!(verdict("at_most_one_work"), Verdict::Violated);
    assert_eq!(verdict("at_most_two_work"), Verdict::Holds);
    assert_eq!(verdict("done_after_work"), Verdict::Holds);
    assert_eq!(verdict("typed"), Verdict::Holds);
    assert_eq!(verdict("killed"), Verdict::Holds);
    assert_eq!(verdict("no_two_lines"), Verdict::Holds);

    let n = PROGRAM_OUTPUT.len();
    let newlines: Vec<usize> = PROGRAM_OUTPUT.match_indices('\n').map(|(k, _)| k).collect();
    let mut chunkings: Vec<(Vec<usize>, Vec<usize>)> = vec![
        ((1..n).collect(), (1..PROGRAM_INPUT.len()).collect()),
        (newlines.iter().map(|k| k + 1).collect(), vec![12]),
        (newlines.clone(), vec![11]),
        (newlines.iter().map(|k| k + 2).collect(), vec![3, 13]),
        (vec![n - 3], vec![]),
        (vec![20, 21, 22, 40, 77], vec![5]),
    ];
    // Pseudo-random cuts (SplitMix64-like).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let mut cuts = Vec::new();
        let mut at = 0;
        while at < n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            at += 1 + (x >> 33) as usize % 9;
            cuts.push(at);
        }
        chunkings.push((cuts, vec![(x >> 40) as usize % PROGRAM_INPUT.len()]));
    }
    for (cuts, in_cuts) in &chunkings {
        let t = chunked_trace(PROGRAM_OUTPUT, cuts, PROGRAM_INPUT, in_cuts);
        for online in [false, true] {
            let got = line_report(&t, online);
            assert_eq!(got, want, "cuts {cuts:?} / {in_cuts:?}, online {online}");
        }
    }
}

#[test]
fn count_bounds_and_durations_read_naturally() {
    let t = chunked_trace(PROGRAM_OUTPUT, &[], PROGRAM_INPUT, &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dtrace");
    std::fs::write(&path, t).unwrap();
    let spec = Spec::parse(
        "m.spec",
        "property le1: G count(output(tester1, /^work/)) <= 1\n\
         property ge3: G (exit(tester1) -> count(output(tester1, /^work/)) >= 3)\n\
         property win: G (input(tester1) -> F[250ms, 1s] exit(tester1))\n",
    )
    .unwrap();
    let r = crate::check_trace(&spec, &[], &path).unwrap();
    let why = |k: usize| {
        r[k].why
            .iter()
            .map(|n| n.message.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        why(0).contains("held 2 time(s) (lines): more than 1"),
        "{}",
        why(0)
    );
    assert!(why(1).contains("fewer than 3"), "{}", why(1));
    assert!(why(2).contains("between 250ms and 1s after"), "{}", why(2));
    assert_eq!(crate::ir::duration(90_000_000_000), "90s");
    assert_eq!(crate::ir::duration(1_500_000), "1500us");
    assert_eq!(crate::ir::duration(60_000_000_000), "1m");
}

#[test]
fn a_violation_names_a_few_events_and_how_many_more() {
    let out: String = (0..20).map(|k| format!("error {k}\n")).collect();
    let cuts: Vec<usize> = out.match_indices('\n').map(|(k, _)| k + 1).collect();
    let t = chunked_trace(&out, &cuts, "", &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dtrace");
    std::fs::write(&path, t).unwrap();
    for src in [
        "property p: G !output(tester1, /error/)",
        "property p: G !output(tester1, /error/) && F end",
    ] {
        let spec = Spec::parse("m.spec", src).unwrap();
        let r = crate::check_trace(&spec, &[], &path).unwrap();
        let msgs: Vec<&str> = r[0].why.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(
            msgs.iter()
                .filter(|m| m.starts_with("also violated"))
                .count(),
            3,
            "{src}: {msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("and ") && m.contains("more")),
            "{src}: {msgs:?}"
        );
    }
}

#[test]
fn vacuous_properties_say_so() {
    let t = chunked_trace(PROGRAM_OUTPUT, &[], PROGRAM_INPUT, &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dtrace");
    std::fs::write(&path, t).unwrap();
    let spec = Spec::parse(
        "v.spec",
        "property vac: G (output(billiard2, /Collision/) -> F exit)\n\
         property vac_future: G (output(tester1, /nothing like this/) -> F exit) && F end\n\
         property real: G (output(tester1, /^done/) -> O output(tester1, /^work/))\n\
         property empty_range: forall t in timeout: G !verdict(_, _, actor = t.actor)\n",
    )
    .unwrap();
    let r = crate::check_trace_report(&spec, &[], &path).unwrap();
    assert_eq!(r.results[0].verdict, Verdict::Holds);
    assert_eq!(r.results[0].vacuous, ["output(billiard2, /Collision/)"]);
    assert_eq!(r.results[1].verdict, Verdict::Holds);
    assert!(!r.results[1].vacuous.is_empty());
    assert!(r.results[2].vacuous.is_empty());
    assert_eq!(r.results[3].verdict, Verdict::Holds);
    assert_eq!(r.results[3].vacuous, ["timeout (`t` ranges over no event)"]);
    let text = crate::report::text(&r.results);
    assert!(text.contains("vacuously"), "{text}");
    // The misspelt actor is a warning naming the atom's position.
    let w: Vec<String> = r.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(|w| w.starts_with("v.spec:1:18: warning:")
            && w.contains("no actor `billiard2`")
            && w.contains("tester1@local")),
        "{w:?}"
    );
}

#[test]
fn warnings_for_atoms_that_cannot_match() {
    let t = chunked_trace(PROGRAM_OUTPUT, &[], PROGRAM_INPUT, &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dtrace");
    std::fs::write(&path, t).unwrap();
    let spec = Spec::parse(
        "w.spec",
        "property a: F output(tester1, \"port=4040\")\n\
         property b: G !timeout\n\
         property c: G !output(clinet, /x/)\n\
         property d: F output(tester1, \"ready port=4040\")\n",
    )
    .unwrap();
    let r = crate::check_trace_report(&spec, &[], &path).unwrap();
    let w: Vec<String> = r.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].starts_with("w.spec:1:15: warning:") && w[0].contains("/port=4040/ would match"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("w.spec:2:16: warning:") && w[1].contains("no `timeout` event"),
        "{w:?}"
    );
    assert!(
        w[2].starts_with("w.spec:3:16: warning:") && w[2].contains("no actor `clinet`"),
        "{w:?}"
    );
    assert!(w[2].contains(&path.display().to_string()), "{w:?}");
}

#[test]
fn lets_that_nest_too_deeply_once_inlined_are_errors() {
    let mut src = String::from("let l0 = output\n");
    for k in 1..400 {
        src.push_str(&format!("let l{k} = {}l{}\n", "F ".repeat(95), k - 1));
    }
    src.push_str("property p: l399\n");
    let e = Spec::parse("deep.spec", &src).unwrap_err();
    assert!(e.message.contains("once its lets are inlined"), "{e}");
    assert_eq!(e.line, 3, "{e}");
    // Within the limit, fine.
    let ok = "let a = F F F output\nlet b = G G a\nproperty p: X b\n";
    assert!(Spec::parse("ok.spec", ok).is_ok());
}

#[test]
fn long_property_names_are_fine() {
    let name = "p".repeat(65_536);
    let spec = Spec::parse("long.spec", &format!("property {name}: G !timeout")).unwrap();
    let t = chunked_trace("x\n", &[], "", &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dtrace");
    std::fs::write(&path, t).unwrap();
    let r = crate::check_trace(&spec, &[], &path).unwrap();
    let text = crate::report::text(&r);
    assert!(text.contains(&name));
}

#[test]
fn signal_names_have_one_spelling_and_an_alias() {
    use dtest_trace::EventData;
    let sig = EventData::Signal {
        name: "KILL".into(),
    };
    assert_eq!(crate::fields::text(&sig), "SIGKILL");
    let ex = EventData::Exit {
        status: dtest_trace::ExitStatus::Signal("KILL".into()),
    };
    assert_eq!(crate::fields::text(&ex), "SIGKILL");
    assert_eq!(crate::fields::field_id("name"), Some(crate::fields::NAME));
    assert_eq!(
        crate::fields::field_id("status"),
        Some(crate::fields::STATUS)
    );
}

/// Joins, counts and quantifiers on events with several matching lines
/// agree with the naive evaluator (which binds lines one by one).
#[test]
fn several_lines_per_event_agree_with_naive() {
    let out = "request id=1\nrequest id=2\nreply id=2\nrequest id=3\nreply id=3\nreply id=1\n";
    let formulas = [
        "forall r in output(tester1, /^request id=(\\d+)/): F output(tester1, /^reply id=(\\d+)/, $1 = r.$1)",
        "forall r in output(tester1, /^request id=(\\d+)/): F[0s, 2ms] output(tester1, /^reply id=(\\d+)/, $1 = r.$1)",
        "exists r in output(tester1, /^request id=(\\d+)/): G !output(tester1, /^reply id=(\\d+)/, $1 = r.$1)",
        "forall r in output(tester1, /^reply id=(\\d+)/): O output(tester1, /^request id=(\\d+)/, $1 = r.$1)",
        "forall r in output(tester1, /^reply id=(\\d+)/): CO output(\"tester1@local\", /^request id=(\\d+)/, $1 = r.$1)",
        "forall r in output(tester1, /^request id=(\\d+)/): output(tester1, /^request id=(\\d+)/, $1 = r.$1)",
        "forall r in output(tester1, /id=(\\d+)/): output(tester1, /^reply/) -> O output(tester1, /^request id=(\\d+)/, $1 = r.$1)",
        "G count(output(tester1, /^request/)) <= 2",
        "G count[0s, 1ms](output(tester1, /^re/)) <= 2",
        "F count(output(tester1, /^reply/)) >= 3",
        "forall r in output(tester1, /^request id=(\\d+)/): !CC output(tester1, /^reply id=(\\d+)/, $1 = r.$1)",
    ];
    let nl: Vec<usize> = out.match_indices('\n').map(|(k, _)| k + 1).collect();
    for cuts in [
        vec![],
        nl.clone(),
        vec![nl[1], nl[4]],
        vec![5, nl[2] + 3, nl[3]],
        (1..out.len()).step_by(7).collect(),
    ] {
        let bytes = chunked_trace(out, &cuts, "", &[]);
        let t = Trace::read(Reader::new(&bytes[..]).unwrap()).unwrap();
        for f in formulas {
            compare(f, &t).unwrap_or_else(|e| panic!("{f} with cuts {cuts:?}: {e}"));
            compare(&format!("!({f})"), &t)
                .unwrap_or_else(|e| panic!("!{f} with cuts {cuts:?}: {e}"));
        }
    }
}

#[test]
fn huge_strings_and_regex_like_strings_do_not_break_the_warnings() {
    let t = chunked_trace("a(b\nx\n", &[], "", &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dtrace");
    std::fs::write(&path, t).unwrap();
    let big = "(".repeat(300_000);
    let spec = Spec::parse(
        "h.spec",
        &format!(
            "property a: F output(tester1, \"{big}\")\nproperty b: F output(tester1, \"a(\")\n"
        ),
    )
    .unwrap();
    let r = crate::check_trace_report(&spec, &[], &path).unwrap();
    assert_eq!(r.results.len(), 2);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.line == 2 && w.message.contains("/a\\(/ would match")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_final_line_without_newline_counts_only_on_a_complete_trace() {
    let bytes = chunked_trace("ok\npanic", &[], "", &[]);
    let full = Trace::read(Reader::new(&bytes[..]).unwrap()).unwrap();
    assert!(full.complete);
    // Cut before the exit and the end: the last line may go on.
    let k = full.events.len() - 3;
    let cut = Trace::from_parts(
        full.header.clone(),
        full.events[..k].to_vec(),
        false,
        vec![],
    );
    for (src, on_full, on_cut) in [
        (
            "G !output(tester1, /panic/)",
            Verdict::Violated,
            Verdict::Inconclusive,
        ),
        (
            "F output(tester1, \"panic\")",
            Verdict::Holds,
            Verdict::Inconclusive,
        ),
        ("F output(tester1, \"ok\")", Verdict::Holds, Verdict::Holds),
    ] {
        let spec = Spec::parse("t", &format!("property p: {src}")).unwrap();
        for (t, want) in [(&full, on_full), (&cut, on_cut)] {
            let cols = columns(&spec, t);
            assert_eq!(
                eval::check(&spec.ir, &spec.ir.properties[0], &cols).verdict,
                want,
                "{src} (complete: {})",
                t.complete
            );
            compare(src, t).unwrap();
        }
    }
}

// ------------------------------------------------------- partial reads

/// The reader options for the spec's first property.
fn options_of(src: &str) -> dtest_trace::ReadOptions {
    let spec = Spec::parse("t", &format!("property p: {src}")).unwrap();
    let needs = spec.ir.needs(spec.ir.properties[0].root);
    crate::columns::read_options(&spec.ir, &needs)
}

#[test]
fn reads_skip_the_clocks_and_the_data_no_atom_looks_at() {
    use dtest_trace::Kind;
    let decoded = |o: dtest_trace::ReadOptions| -> Vec<Kind> {
        Kind::ALL.into_iter().filter(|&k| o.decodes(k)).collect()
    };
    // Kinds, actors and directions are not data.
    let o = options_of("G (verdict -> O start)");
    assert!(!o.has_clocks() && decoded(o).is_empty());
    let o = options_of(
        "G (barrier_leave(_, _, dir = recv) -> (!barrier_broken S barrier_enter(tester1)))",
    );
    assert!(!o.has_clocks() && decoded(o).is_empty());
    let o = options_of("G !output(_, /panic/)");
    assert_eq!(decoded(o), [Kind::Output]);
    assert_eq!(
        decoded(options_of("F exit(_, _, status = 1)")),
        [Kind::Exit]
    );
    // `any` with a text test looks at every kind's data.
    assert_eq!(decoded(options_of("F any(_, /x/)")).len(), Kind::ALL.len());
    // A join on the status reads both sides' data.
    let o = options_of("forall r in exit: F exit(_, _, status = r.status)");
    assert_eq!(decoded(o), [Kind::Exit]);
    // A join on the actor does not.
    let o = options_of("forall r in any(tester1): F any(_, _, actor = r.actor)");
    assert!(decoded(o).is_empty());
    // Causal operators need the clocks.
    assert!(options_of("G (exit -> CO start)").has_clocks());
}

/// Columns read with only what the property needs give the outcome of
/// columns read in full (verdict, explanation, vacuity).
fn compare_partial(src: &str, t: &Trace) -> Result<(), TestCaseError> {
    let spec = Spec::parse("random", &format!("property p: {src}"))
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let mut w = Writer::new(Vec::new(), t.header.clone()).unwrap();
    for e in &t.events {
        let msg = if e.dir == Dir::Local { None } else { e.msg };
        w.append(e.actor, e.time_ns, e.dir, msg, e.clock.as_slice(), &e.data)
            .unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let needs = spec.ir.needs(spec.ir.properties[0].root);
    let full = Columns::read(Reader::new(&bytes[..]).unwrap(), &spec.ir, &needs).unwrap();
    let opts = crate::columns::read_options(&spec.ir, &needs);
    let reader = Reader::new(&bytes[..]).unwrap().with_options(opts);
    let part = Columns::read(reader, &spec.ir, &needs).unwrap();
    prop_assert_eq!(&part.atoms, &full.atoms);
    prop_assert_eq!(&part.keys, &full.keys);
    prop_assert_eq!(&part.extra, &full.extra);
    prop_assert_eq!(&part.key_extra, &full.key_extra);
    prop_assert_eq!(&part.clocks, &full.clocks);
    prop_assert_eq!(&part.kind_counts, &full.kind_counts);
    let p = &spec.ir.properties[0];
    prop_assert_eq!(
        eval::check(&spec.ir, p, &part),
        eval::check(&spec.ir, p, &full),
        "{}",
        src
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn partial_reads_give_the_columns_of_full_reads(f in formula(), t in trace()) {
        compare_partial(&f, &t)?;
    }

    #[test]
    fn partial_reads_give_the_columns_of_full_reads_on_joins(j in join(), t in trace()) {
        compare_partial(&j, &t)?;
    }
}
