//! What the barriers of a scenario order, known before the run: barrier
//! orders that must deadlock, and values shared across testers.
//!
//! A barrier *occurrence* is a barrier name and its generation: the k-th
//! time a tester joins barrier `B` meets the k-th time every other
//! participant joins it. Each tester passes its occurrences in the order of
//! its steps, so "tester `a` joins `A` then `B`" is an edge `A#0 -> B#0`.
//! An occurrence can only be released once all its participants reach it;
//! a cycle of such edges (`a`: A then B, `b`: B then A) can never be
//! released: the run must deadlock, and the scenario is refused.
//!
//! A capture of tester `X` (a named group of its `expect`) is usable by
//! tester `Y` as `${X.name}` after a barrier occurrence that `X` joins after
//! the capture and `Y` joins before the use: the capture happens before
//! `X` reaches the barrier, which happens before `Y` leaves it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::matcher::Pattern;
use crate::scenario::{Problem, Scenario, StepKind, Where};

/// A barrier occurrence: name and generation (from 0).
pub type Occurrence = (String, u32);

/// Per tester, its barrier occurrences in step order, with the step index.
pub fn occurrences(sc: &Scenario) -> Vec<Vec<(usize, Occurrence)>> {
    sc.testers
        .iter()
        .map(|t| {
            let mut gens: HashMap<&str, u32> = HashMap::new();
            let mut v = Vec::new();
            for (si, s) in t.steps.iter().enumerate() {
                if let StepKind::Barrier(b) = &s.kind {
                    let g = gens.entry(b.as_str()).or_insert(0);
                    v.push((si, (b.clone(), *g)));
                    *g += 1;
                }
            }
            v
        })
        .collect()
}

fn show(o: &Occurrence) -> String {
    if o.1 == 0 {
        format!("\"{}\"", o.0)
    } else {
        format!("\"{}\" (its time #{})", o.0, o.1 + 1)
    }
}

/// Barrier orders that must deadlock: one problem per tester of a cycle,
/// at its step that joins the second barrier of its edge.
pub fn deadlocks(sc: &Scenario) -> Vec<Problem> {
    let occ = occurrences(sc);
    // Edges: from -> (to, tester, step of `from`, step of `to`).
    let mut edges: BTreeMap<Occurrence, Vec<(Occurrence, usize, usize, usize)>> = BTreeMap::new();
    for (ti, v) in occ.iter().enumerate() {
        for w in v.windows(2) {
            edges
                .entry(w[0].1.clone())
                .or_default()
                .push((w[1].1.clone(), ti, w[0].0, w[1].0));
        }
    }
    // Iterative DFS with colours; a back edge closes a cycle.
    let mut colour: HashMap<Occurrence, u8> = HashMap::new();
    let mut probs = Vec::new();
    let nodes: Vec<Occurrence> = edges.keys().cloned().collect();
    for start in nodes {
        if colour.get(&start).copied().unwrap_or(0) != 0 {
            continue;
        }
        // Stack of (node, next edge index); the path's edges alongside.
        let mut stack: Vec<(Occurrence, usize)> = vec![(start.clone(), 0)];
        let mut path: Vec<(Occurrence, usize, usize, usize)> = Vec::new();
        colour.insert(start, 1);
        while let Some((node, i)) = stack.last().cloned() {
            let out = edges.get(&node).map(|v| v.as_slice()).unwrap_or(&[]);
            if i >= out.len() {
                colour.insert(node, 2);
                stack.pop();
                path.pop();
                continue;
            }
            stack.last_mut().expect("non-empty").1 += 1;
            let (to, ti, sf, st) = out[i].clone();
            match colour.get(&to).copied().unwrap_or(0) {
                0 => {
                    colour.insert(to.clone(), 1);
                    path.push((to.clone(), ti, sf, st));
                    stack.push((to, 0));
                }
                1 => {
                    // The cycle: from `to` along the path back to `node`,
                    // then this edge.
                    let mut cyc: Vec<(usize, usize, usize, Occurrence, Occurrence)> = Vec::new();
                    let pos = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                    for k in pos + 1..stack.len() {
                        let (n, ti, sf, st) = &path[k - 1];
                        cyc.push((*ti, *sf, *st, stack[k - 1].0.clone(), n.clone()));
                    }
                    cyc.push((ti, sf, st, node.clone(), to.clone()));
                    let story: Vec<String> = cyc
                        .iter()
                        .map(|(ti, _, _, a, b)| {
                            format!(
                                "tester `{}` joins {} then {}",
                                sc.testers[*ti].name,
                                show(a),
                                show(b)
                            )
                        })
                        .collect();
                    for (ti, sf, st, a, _) in &cyc {
                        let first = sc.testers[*ti].name.clone();
                        probs.push(Problem {
                            at: Where::Step(*ti, *st, "barrier"),
                            offset: None,
                            message: format!(
                                "these barriers must deadlock: {} (tester `{first}` joins {} at its step {} before this one)",
                                story.join(", "),
                                show(a),
                                sf + 1
                            ),
                        });
                    }
                    return probs;
                }
                _ => {}
            }
        }
    }
    probs
}

/// The names a step captures (its patterns' named groups).
pub fn captures_of(kind: &StepKind) -> Vec<String> {
    let pats: Vec<(&str, bool)> = match kind {
        StepKind::Expect { pattern, literal } => vec![(pattern.as_str(), *literal)],
        StepKind::ExpectAll { patterns, literal } => {
            patterns.iter().map(|p| (p.as_str(), *literal)).collect()
        }
        StepKind::Poll { until: Some(u), .. } => vec![(u.as_str(), false)],
        _ => Vec::new(),
    };
    let mut v = Vec::new();
    for (p, literal) in pats {
        if literal {
            continue;
        }
        match Pattern::new(p, false) {
            Ok(p) => v.extend(p.capture_names()),
            // With variables the regex is known at run time only; its
            // groups are still written as `(?P<name>`.
            Err(_) => v.extend(group_names(p)),
        }
    }
    v
}

fn group_names(p: &str) -> Vec<String> {
    let mut v = Vec::new();
    for pre in ["(?P<", "(?<"] {
        let mut rest = p;
        while let Some(i) = rest.find(pre) {
            rest = &rest[i + pre.len()..];
            if let Some(end) = rest.find('>') {
                v.push(rest[..end].to_string());
            }
        }
    }
    v
}

/// Where tester `from` may use `${X.name}`: checks a use at step `step`
/// of tester `from`; `Ok` when some capture of `name` by `X` is ordered
/// before it by a barrier occurrence, else the reason.
pub fn cross_use(
    sc: &Scenario,
    occ: &[Vec<(usize, Occurrence)>],
    from: usize,
    step: usize,
    tester: usize,
    name: &str,
) -> Result<(), String> {
    let x = &sc.testers[tester];
    let caps: Vec<usize> = x
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| captures_of(&s.kind).iter().any(|c| c == name))
        .map(|(i, _)| i)
        .collect();
    if caps.is_empty() {
        let all: BTreeSet<String> = x.steps.iter().flat_map(|s| captures_of(&s.kind)).collect();
        let listed = if all.is_empty() {
            "it captures nothing".to_string()
        } else {
            format!(
                "its captures: {}",
                all.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        return Err(format!(
            "tester `{}` has no capture named `{name}` ({listed})",
            x.name
        ));
    }
    if from == tester {
        return Err(format!(
            "`${{{}.{name}}}` names this tester itself: write `${{{name}}}`",
            x.name
        ));
    }
    let first_cap = caps[0];
    // An occurrence joined by X after a capture and by `from` before `step`.
    let mine: Vec<&Occurrence> = occ[from]
        .iter()
        .filter(|(si, _)| *si < step)
        .map(|(_, o)| o)
        .collect();
    let ok = occ[tester]
        .iter()
        .filter(|(si, _)| *si > first_cap)
        .any(|(_, o)| mine.contains(&o));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`${{{}.{name}}}` is used with no barrier between tester `{}`'s capture (its step {}) and this step: add a barrier that `{}` joins after the capture and this tester joins before the use",
            x.name,
            x.name,
            first_cap + 1,
            x.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Step, Tester};

    #[test]
    fn crossed_barriers_deadlock() {
        let sc = Scenario::new("d")
            .tester(
                Tester::new("a")
                    .step(Step::barrier("A"))
                    .step(Step::barrier("B")),
            )
            .tester(
                Tester::new("b")
                    .step(Step::barrier("B"))
                    .step(Step::barrier("A")),
            );
        let p = deadlocks(&sc);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].message.contains("tester `a` joins \"A\" then \"B\""));
        assert!(p[0].message.contains("tester `b` joins \"B\" then \"A\""));
        let at: Vec<&Where> = p.iter().map(|p| &p.at).collect();
        assert!(at.contains(&&Where::Step(0, 1, "barrier")));
        assert!(at.contains(&&Where::Step(1, 1, "barrier")));
    }

    #[test]
    fn same_order_and_repeats_do_not_deadlock() {
        let t = |n: &str| {
            Tester::new(n)
                .step(Step::barrier("A"))
                .step(Step::barrier("B"))
                .step(Step::barrier("A"))
        };
        let sc = Scenario::new("d").tester(t("a")).tester(t("b")).tester(
            Tester::new("c")
                .step(Step::barrier("B"))
                .step(Step::barrier("C")),
        );
        assert!(deadlocks(&sc).is_empty());
    }

    #[test]
    fn three_way_cycle() {
        let sc = Scenario::new("d")
            .tester(
                Tester::new("a")
                    .step(Step::barrier("A"))
                    .step(Step::barrier("B")),
            )
            .tester(
                Tester::new("b")
                    .step(Step::barrier("B"))
                    .step(Step::barrier("C")),
            )
            .tester(
                Tester::new("c")
                    .step(Step::barrier("C"))
                    .step(Step::barrier("A")),
            );
        assert_eq!(deadlocks(&sc).len(), 3);
    }

    #[test]
    fn shared_values_need_a_barrier() {
        let sc = Scenario::new("v")
            .tester(
                Tester::new("srv")
                    .step(Step::expect(r"port=(?P<port>\d+)"))
                    .step(Step::barrier("up")),
            )
            .tester(
                Tester::new("cli")
                    .step(Step::run("echo ${srv.port}"))
                    .step(Step::barrier("up"))
                    .step(Step::run("echo ${srv.port}")),
            );
        let occ = occurrences(&sc);
        assert!(cross_use(&sc, &occ, 1, 2, 0, "port").is_ok());
        let e = cross_use(&sc, &occ, 1, 0, 0, "port").unwrap_err();
        assert!(e.contains("no barrier"), "{e}");
        let e = cross_use(&sc, &occ, 1, 2, 0, "nope").unwrap_err();
        assert!(e.contains("its captures: port"), "{e}");
    }
}
