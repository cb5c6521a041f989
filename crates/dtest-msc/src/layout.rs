//! Vertical layout: a row for every shown event, from the happens-before
//! graph.
//!
//! The graph has one node per event of the window (shown or on a hidden
//! lane) and an edge for each step of an actor and for each message. Every
//! edge goes forward in trace order (a receive is only paired with an earlier
//! send), so the graph is acyclic by construction. The receives of one
//! barrier release (the run of `barrier_leave` sends of one actor for one
//! barrier name) are merged into one node, which puts them on one row; if
//! that would create a cycle (a damaged trace), the layout is redone without
//! merging, so it never fails.
//!
//! Rows are assigned in a topological order that takes the ready node with
//! the smallest event index first (Kahn's algorithm with a min-heap), which
//! makes the result a pure function of the trace. Each node gets the first
//! row at or below its lower bound (one below each shown predecessor; a
//! hidden predecessor passes its own bound on without adding a row) where
//! the horizontal room it needs is free, as told by the writer's
//! [`Geometry`]. Hence:
//!
//! - **Causality is never drawn upside down**: along every edge the row
//!   strictly increases (hidden events in between included).
//! - **Same height means concurrent**: two events on one row are never
//!   ordered by happens-before, except the merged barrier receives, which
//!   are a real synchronisation.
//! - **Time layout: moments in order**: nodes are placed by time; a moment
//!   starts with the first node more than [`View::slice_ns`] after the
//!   start of the previous moment, and its rows all come below the rows
//!   used before it.
//! - **Nothing overlaps**: two things on one row never need the same room.
//!
//! One exception to "as high as it can go": the trace's final `end` event
//! goes below everything else, where a reader looks for the outcome.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use dtest_trace::{ActorId, Dir, EventData, Kind};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::view::{Other, View};

/// A horizontal interval `[lo, hi]` in the writer's units.
pub(crate) type Span = (f64, f64);

/// The horizontal room things take, as a writer draws them.
pub(crate) trait Geometry {
    /// Room shown event `i` needs on its row, if any.
    fn span(&self, view: &View, i: u64) -> Option<Span>;
    /// Room an aligned barrier release needs on its row (`members` are its
    /// shown receives, left to right).
    fn group_span(&self, view: &View, members: &[u64]) -> Option<Span>;
}

/// A barrier release drawn on one row across its participants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    /// The barrier's name.
    pub name: String,
    /// The shown `barrier_leave` receives, left to right by lane.
    pub members: Vec<u64>,
    /// Their common row.
    pub row: u32,
}

/// Rows of the shown events of a view.
#[derive(Debug)]
pub(crate) struct Layout {
    from: u64,
    row: Vec<u32>,
    /// Number of rows.
    pub rows: u32,
    /// Aligned barrier releases (two shown participants or more).
    pub groups: Vec<Group>,
    /// Index in `groups` of each window event's group, if any.
    group_of: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl Layout {
    /// Lays the view out.
    pub fn new(view: &View, geom: &dyn Geometry) -> Layout {
        let groups = find_groups(view);
        match Self::place(view, geom, groups, true) {
            Some(l) => l,
            // Only a damaged trace gets here (barrier receives ordered among
            // themselves, output received out of order); without merging
            // the graph is acyclic.
            None => Self::place(view, geom, Vec::new(), false).unwrap_or_else(|| Self::empty(view)),
        }
    }

    fn empty(view: &View) -> Layout {
        Layout {
            from: view.from,
            row: vec![NONE; (view.to - view.from) as usize],
            rows: 0,
            groups: Vec::new(),
            group_of: vec![NONE; (view.to - view.from) as usize],
        }
    }

    /// The row of event `i`, if shown.
    pub fn row(&self, i: u64) -> Option<u32> {
        let r = *self.row.get(i.checked_sub(self.from)? as usize)?;
        (r != NONE).then_some(r)
    }

    /// The aligned group event `i` belongs to, if any.
    pub fn group(&self, i: u64) -> Option<&Group> {
        let g = *self.group_of.get(i.checked_sub(self.from)? as usize)?;
        self.groups.get(g as usize)
    }

    fn place(view: &View, geom: &dyn Geometry, groups: Vec<Group>, runs: bool) -> Option<Layout> {
        let trace = view.trace;
        let (from, to) = (view.from, view.to);
        let m = (to - from) as usize;
        let mut group_of = vec![NONE; m];
        for (g, grp) in groups.iter().enumerate() {
            for &e in &grp.members {
                group_of[(e - from) as usize] = g as u32;
            }
        }
        // Merged nodes: a barrier release's receives, a run of output
        // chunks (numbered after the groups).
        let mut merge_of = group_of.clone();
        let ng = groups.len() as u32;
        // And the sends of a barrier release (a fan), after the runs.
        let no_runs = Vec::new();
        let view_runs = if runs { &view.runs } else { &no_runs };
        let view_fans = if runs { &view.fans } else { &no_runs };
        let nr = view_runs.len() as u32;
        for (r, run) in view_runs.iter().chain(view_fans.iter()).enumerate() {
            for &e in run {
                let k = (e - from) as usize;
                if merge_of[k] == NONE {
                    merge_of[k] = ng + r as u32;
                }
            }
        }
        // Nodes, numbered in order of their first event: the heap below then
        // orders by event index through the node number alone.
        let mut node_of = vec![0u32; m];
        let mut merge_node = vec![NONE; groups.len() + view_runs.len() + view_fans.len()];
        let mut first = Vec::with_capacity(m);
        let mut graph: DiGraph<(), (), u32> = DiGraph::with_capacity(m, 2 * m);
        for k in 0..m {
            let g = merge_of[k];
            if g != NONE && merge_node[g as usize] != NONE {
                node_of[k] = merge_node[g as usize];
                continue;
            }
            let id = graph.add_node(()).index() as u32;
            first.push(from + k as u64);
            node_of[k] = id;
            if g != NONE {
                merge_node[g as usize] = id;
            }
        }
        let node = |i: u64| NodeIndex::new(node_of[(i - from) as usize] as usize);
        let in_run =
            |i: u64| merge_of[(i - from) as usize] >= ng && merge_of[(i - from) as usize] != NONE;
        // An edge inside one run is expected (the run is one mark); inside a
        // barrier release it means a damaged trace.
        let edge = |graph: &mut DiGraph<(), (), u32>, a: u64, b: u64| -> bool {
            let (u, v) = (node(a), node(b));
            if u == v {
                return in_run(a) && in_run(b);
            }
            graph.add_edge(u, v, ());
            true
        };
        for a in 0..trace.header.actors.len() {
            let evs = trace.actor_events(a as ActorId);
            for w in evs.windows(2) {
                if !edge(&mut graph, w[0], w[1]) {
                    return None;
                }
            }
        }
        for i in from..to {
            let e = trace.event(i);
            if e.dir != Dir::Send {
                continue;
            }
            if let Some((j, _)) = trace.partner(i) {
                if j > i && j < to && !edge(&mut graph, i, j) {
                    return None;
                }
            }
        }

        let n = graph.node_count();
        let mut indeg: Vec<u32> = (0..n)
            .map(|v| {
                graph
                    .neighbors_directed(NodeIndex::new(v), Direction::Incoming)
                    .count() as u32
            })
            .collect();
        // The order nodes are placed in: by event index (causal layout) or
        // by time, then index (time layout).
        // A run of output goes where its telling line arrived.
        let times: Vec<u64> = if view.time_rows {
            first.iter().map(|&i| view.telling_time(i)).collect()
        } else {
            Vec::new()
        };
        let key = |v: u32| -> (u64, u32) {
            if view.time_rows {
                (times[v as usize], v)
            } else {
                (0, v)
            }
        };
        let mut heap: BinaryHeap<Reverse<(u64, u32)>> = (0..n as u32)
            .filter(|&v| indeg[v as usize] == 0)
            .map(|v| Reverse(key(v)))
            .collect();
        // Time layout: the run is cut into moments, each starting with the
        // first node more than `slice` after the start of the previous one.
        // A moment's rows all come below the rows of the moments before it;
        // inside a moment, nodes are placed as causality and room allow.
        let mut moment_row = 0u32;
        let mut moment_time: Option<u64> = None;
        let slice = view.slice_ns();
        let mut lower = vec![0u32; n];
        let mut node_row = vec![0u32; n];
        let mut occupied: Vec<Vec<Span>> = Vec::new();
        let mut done = 0usize;
        let mut groups = groups;
        while let Some(Reverse((_, v))) = heap.pop() {
            done += 1;
            let vi = v as usize;
            let i = first[vi];
            let g = group_of[(i - from) as usize];
            let shown = g != NONE || view.shown(i);
            if view.time_rows && shown {
                if moment_time.is_none_or(|m| times[vi] > m.saturating_add(slice)) {
                    moment_row = occupied.len() as u32;
                    moment_time = Some(times[vi]);
                }
                lower[vi] = lower[vi].max(moment_row);
            }
            // The `end` event closes the run: below everything else. It is
            // the last event, so this puts no causality upside down.
            if trace.event(i).kind() == Kind::End {
                lower[vi] = lower[vi].max(occupied.len() as u32);
            }
            let row = if shown {
                let m = merge_of[(i - from) as usize];
                let span = if g != NONE {
                    geom.group_span(view, &groups[g as usize].members)
                } else if m != NONE && m >= ng + nr {
                    geom.group_span(view, &view_fans[(m - ng - nr) as usize])
                } else {
                    geom.span(view, i)
                };
                let r = first_free(&mut occupied, lower[vi], span);
                if g != NONE {
                    groups[g as usize].row = r;
                }
                r
            } else {
                lower[vi]
            };
            node_row[vi] = row;
            let next = row + u32::from(shown);
            for w in graph.neighbors_directed(NodeIndex::new(vi), Direction::Outgoing) {
                let wi = w.index();
                lower[wi] = lower[wi].max(next);
                indeg[wi] -= 1;
                if indeg[wi] == 0 {
                    heap.push(Reverse(key(wi as u32)));
                }
            }
        }
        if done < n {
            return None;
        }
        let row = (0..m)
            .map(|k| {
                if view.shown(from + k as u64) {
                    node_row[node_of[k] as usize]
                } else {
                    NONE
                }
            })
            .collect();
        Some(Layout {
            from,
            row,
            rows: occupied.len() as u32,
            groups,
            group_of,
        })
    }
}

/// The first row at or below `lower` where `span` is free; marks it taken.
fn first_free(occupied: &mut Vec<Vec<Span>>, lower: u32, span: Option<Span>) -> u32 {
    let mut r = lower as usize;
    loop {
        if r >= occupied.len() {
            occupied.resize_with(r + 1, Vec::new);
        }
        let Some((lo, hi)) = span else {
            return r as u32;
        };
        if occupied[r].iter().all(|&(a, b)| hi <= a || b <= lo) {
            occupied[r].push((lo, hi));
            return r as u32;
        }
        r += 1;
    }
}

/// The barrier releases that can be aligned: for each actor, each run of
/// consecutive `barrier_leave` sends with one barrier name gives the shown
/// receives of those messages; kept when there are at least two, on
/// different lanes, and concurrent by their clocks.
fn find_groups(view: &View) -> Vec<Group> {
    let trace = view.trace;
    let mut groups = Vec::new();
    for a in 0..trace.header.actors.len() {
        let mut cur: Option<Group> = None;
        for &i in trace.actor_events(a as ActorId) {
            if !view.in_window(i) {
                continue;
            }
            let e = &trace.event(i);
            let name = match (&e.data, e.dir) {
                (EventData::BarrierLeave { name, .. }, Dir::Send) => Some(name),
                _ => None,
            };
            if cur.as_ref().map(|g| Some(&g.name) != name).unwrap_or(false) {
                groups.extend(cur.take());
            }
            let Some(name) = name else { continue };
            let g = cur.get_or_insert_with(|| Group {
                name: name.clone(),
                members: Vec::new(),
                row: 0,
            });
            if let Other::Drawn(j) = view.other(i) {
                if trace.event(j).kind() == Kind::BarrierLeave {
                    g.members.push(j);
                }
            }
        }
        groups.extend(cur.take());
    }
    groups.retain_mut(|g| {
        g.members.sort_by_key(|&j| view.lane(trace.event(j).actor));
        let lanes_distinct = g
            .members
            .windows(2)
            .all(|w| view.lane(trace.event(w[0]).actor) != view.lane(trace.event(w[1]).actor));
        let concurrent = g
            .members
            .iter()
            .enumerate()
            .all(|(k, &x)| g.members[k + 1..].iter().all(|&y| trace.concurrent(x, y)));
        g.members.len() >= 2 && lanes_distinct && concurrent
    });
    groups.sort_by_key(|g| g.members.iter().min().copied());
    groups
}
