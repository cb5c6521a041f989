//! What each event says: its label, its tooltip, its status class. Shared by
//! the SVG and mscgen writers so both charts say the same thing.

use std::fmt::Write as _;

use dtest_trace::{Directive, Event, EventData, ExitStatus, Kind, Stream};

use crate::text;
use crate::view::{Other, View};

/// Bytes of payload kept in a tooltip.
pub(crate) const TOOLTIP_CAP: usize = 4096;

/// The label of shown event `i` in at most `max` columns and `max_lines`
/// lines: [`label`], except that output shows its most telling line (the
/// one a later `match` found its text in, else the last non-empty one) and
/// a run of output chunks drawn as one mark shows the run's, and a `match`
/// shows the line it matched. A compact mark drawing several events says
/// what each says ([`mark_label`]).
pub(crate) fn label_of(view: &View, i: u64, max: usize, max_lines: usize) -> String {
    if view.attached(i).is_empty() {
        one_label(view, i, max, max_lines)
    } else {
        mark_label(view, i, max)
    }
}

/// The label of a compact mark: what its events say, joined by ` → `, in
/// at most `max` columns, each part cut to a fair share of the room. `ok`
/// verdicts are left to the badge ([`badge`]), a barrier entry to the wait
/// bar, a normal close and blank output to the tooltip, an exit status 0
/// to the mark's colour ([`mark_ended`]); the output a `match` found its
/// text in is said by the match.
fn mark_label(view: &View, i: u64, max: usize) -> String {
    let t = view.trace;
    if t.event(i).kind() == Kind::Verdict {
        return verdicts_label(view, i, max);
    }
    let mut parts: Vec<u64> = Vec::new();
    // The repeats are said by the count.
    for &m in std::iter::once(&i).chain(view.own_attached(i)) {
        match t.event(m).kind() {
            // Said by the badge, the wait bar, the tooltip.
            Kind::Verdict | Kind::BarrierEnter | Kind::Close => {}
            Kind::Exit
                if matches!(
                    data(view, m),
                    EventData::Exit {
                        status: ExitStatus::Code(0)
                    }
                ) && m != i => {}
            Kind::Output if m != i && blank(view, m) => {}
            Kind::Match => {
                while parts
                    .last()
                    .is_some_and(|&p| t.event(p).kind() == Kind::Output)
                {
                    parts.pop();
                }
                parts.push(m);
            }
            _ => parts.push(m),
        }
    }
    if parts.is_empty() {
        return one_label(view, i, max, 1);
    }
    let times = match view.repeats(i) {
        Some((n, _)) => format!(" \u{d7}{}", n + 1),
        None => String::new(),
    };
    const SEP: &str = " \u{2192} ";
    // Too many parts for the room (each wants a few words): the output
    // between a command and its end goes first (the tooltip has it).
    const MIN_PART: usize = 9;
    while parts.len() > 1
        && parts.len() * MIN_PART + text::cols(SEP) * (parts.len() - 1) + text::cols(&times) > max
    {
        if let Some(k) = parts
            .iter()
            .rposition(|&p| p != i && t.event(p).kind() == Kind::Output)
        {
            parts.remove(k);
            continue;
        }
        // Then the action, when what came of it says more: a match, a
        // failure.
        let telling =
            |p: u64| t.event(p).kind() == Kind::Match || status(data(view, p)) == Some("fail");
        if parts[1..].iter().any(|&p| telling(p)) {
            parts.remove(0);
            continue;
        }
        break;
    }
    let seps = text::cols(SEP) * (parts.len() - 1) + text::cols(&times);
    let room = max.saturating_sub(seps);
    // Fair shares: what a part does not need goes to the others.
    let want: Vec<usize> = parts
        .iter()
        .map(|&m| text::cols(&part_label(view, m, 200, 1, false)))
        .collect();
    let mut share = vec![0usize; parts.len()];
    let mut left = room;
    loop {
        let open: Vec<usize> = (0..parts.len()).filter(|&k| share[k] < want[k]).collect();
        if open.is_empty() || left == 0 {
            break;
        }
        let each = (left / open.len()).max(1);
        for k in open {
            let give = (want[k] - share[k]).min(each).min(left);
            share[k] += give;
            left -= give;
        }
    }
    let labels: Vec<String> = parts
        .iter()
        .zip(&share)
        .map(|(&m, &n)| part_label(view, m, n.max(4), 1, false))
        .collect();
    text::short(&(labels.join(SEP) + &times), max)
}

/// The label of `ok` verdicts drawn as one mark (the master's property
/// points): `ok 81-84: a, b, c, d`, their descriptions.
fn verdicts_label(view: &View, i: u64, max: usize) -> String {
    let mut nums = Vec::new();
    let mut what = Vec::new();
    for &m in std::iter::once(&i).chain(view.attached(i)) {
        if let EventData::Verdict {
            number,
            description,
            ..
        } = data(view, m)
        {
            nums.push(*number);
            what.push(
                description
                    .strip_prefix("property ")
                    .unwrap_or(description)
                    .to_string(),
            );
        }
    }
    let range = ranges(&nums);
    text::short(
        &text::printable(&format!("ok {range}: {}", what.join(", "))),
        max,
    )
}

/// The numbers of the `ok` verdicts drawn with mark `i` (compact charts),
/// as a badge text (`3`, `3,4`), if any. A mark of verdicts says them in
/// its label instead.
pub(crate) fn badge(view: &View, i: u64) -> Option<String> {
    if view.trace.event(i).kind() == Kind::Verdict {
        return None;
    }
    let nums: Vec<u32> = view
        .attached(i)
        .iter()
        .filter_map(|&m| match &view.trace.event(m).data {
            EventData::Verdict { number, .. } => Some(*number),
            _ => None,
        })
        .collect();
    (!nums.is_empty()).then(|| text::short(&ranges(&nums), 12))
}

/// Numbers as `1,2` or, three or more in a row, `3-6`.
fn ranges(nums: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut k = 0;
    while k < nums.len() {
        let mut j = k;
        while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
            j += 1;
        }
        if j >= k + 2 {
            out.push(format!("{}-{}", nums[k], nums[j]));
        } else {
            out.extend(nums[k..=j].iter().map(u32::to_string));
        }
        k = j + 1;
    }
    out.join(",")
}

/// Whether output mark `m` (a run, or one chunk) has nothing but blanks.
fn blank(view: &View, m: u64) -> bool {
    match (view.run(m), data(view, m)) {
        (Some(run), _) => run_text(view, run, 1 << 16).trim().is_empty(),
        (None, EventData::Output { bytes, .. }) => bytes.iter().all(u8::is_ascii_whitespace),
        _ => false,
    }
}

/// Whether a compact mark holds the end of its command with status 0 (and
/// no failure): drawn in the colour of `ok`.
pub(crate) fn mark_ended(view: &View, i: u64) -> bool {
    !mark_fails(view, i)
        && view.attached(i).iter().any(|&m| {
            matches!(
                data(view, m),
                EventData::Exit {
                    status: ExitStatus::Code(0)
                }
            )
        })
}

/// Whether a compact mark holds a failure (an exit status not 0).
pub(crate) fn mark_fails(view: &View, i: u64) -> bool {
    view.attached(i)
        .iter()
        .any(|&m| status(data(view, m)) == Some("fail"))
}

fn one_label(view: &View, i: u64, max: usize, max_lines: usize) -> String {
    part_label(view, i, max, max_lines, true)
}

/// [`one_label`]; `count`: whether an output label says how many lines
/// there were (not in a compact mark, where room is short).
fn part_label(view: &View, i: u64, max: usize, max_lines: usize, count: bool) -> String {
    let e = view.trace.event(i);
    let d = data(view, i);
    match d {
        EventData::Output { bytes, stream } => {
            let prefix = if *stream == Stream::Stderr {
                "stderr: "
            } else {
                ""
            };
            let text = match view.run(i) {
                Some(run) => run_text(view, run, usize::MAX),
                None => String::from_utf8_lossy(bytes).into_owned(),
            };
            telling_label(prefix, &text, count, view.matched_in(i), max)
        }
        EventData::Match {
            pattern, matched, ..
        } => match view.match_line(i) {
            Some(line) => {
                let room = max.saturating_sub(7);
                format!("match: {}", fit_line(line, Some(matched), room))
            }
            None => {
                let _ = pattern;
                label(e, view.trace.actor_name(e.actor), d, max, max_lines)
            }
        },
        _ => label(e, view.trace.actor_name(e.actor), d, max, max_lines),
    }
}

/// The text of a run of output chunks (its sends' payloads, in order), at
/// most about `cap` bytes.
pub(crate) fn run_text(view: &View, run: &[u64], cap: usize) -> String {
    let mut s = String::new();
    for &x in run {
        let e = view.trace.event(x);
        if e.dir != dtest_trace::Dir::Send {
            continue;
        }
        if let EventData::Output { bytes, .. } = &e.data {
            s.push_str(&String::from_utf8_lossy(bytes));
        }
        if s.len() >= cap {
            break;
        }
    }
    s
}

/// The line of `text` holding the last occurrence of `needle` (its first
/// line when the needle spans lines), if any.
pub(crate) fn line_with<'a>(text: &'a str, needle: &str) -> Option<&'a str> {
    let at = text.rfind(needle)?;
    let start = text[..at].rfind('\n').map(|p| p + 1).unwrap_or(0);
    let end = text[at..].find('\n').map(|p| at + p).unwrap_or(text.len());
    Some(text[start..end].trim_end_matches('\r'))
}

/// The last line of `text` with something on it.
pub(crate) fn last_line(text: &str) -> &str {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// A line of output in at most `max` columns, printable. When it does not
/// fit, what matters is kept: from the matched text on if there is one,
/// else without the log prefix (pid, date, time, level marks: `12618:M 01
/// Dec 2026 05:51:58.177 * `), marking the cut with `…`.
pub(crate) fn fit_line(line: &str, matched: Option<&str>, max: usize) -> String {
    let line = text::printable(line.trim());
    if text::cols(&line) <= max {
        return line;
    }
    let from = matched
        .map(|m| text::printable(m.trim()))
        .filter(|m| !m.is_empty())
        .and_then(|m| line.find(m.as_str()))
        .filter(|&at| at > 0)
        .or_else(|| log_prefix(&line).filter(|&p| p > 0 && p < line.len()));
    match from {
        Some(at) => text::short(&format!("\u{2026}{}", &line[at..]), max),
        None => text::short(&line, max),
    }
}

/// Length of a log line's prefix: leading words that hold a digit, month
/// or day names, and lone marks (`*`, `-`, `|`, `[...]`), with their spaces.
fn log_prefix(line: &str) -> Option<usize> {
    const NAMES: [&str; 19] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", "mon",
        "tue", "wed", "thu", "fri", "sat", "sun",
    ];
    let mut end = 0;
    let mut words = 0;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b' ' {
            i += 1;
        }
        let w = &line[start..i];
        if w.is_empty() {
            break;
        }
        let lower = w.to_ascii_lowercase();
        let prefixy = w.bytes().any(|b| b.is_ascii_digit())
            || NAMES.contains(&lower.trim_end_matches([',', '.']))
            || (w.len() <= 2 && !w.bytes().any(|b| b.is_ascii_alphanumeric()))
            || (w.starts_with('[') && w.ends_with(']'));
        if !prefixy {
            break;
        }
        words += 1;
        end = i;
    }
    // One word is not a prefix (it may be the message: `ok 3`, `404`).
    (words >= 2).then(|| {
        let rest = &line[end..];
        end + (rest.len() - rest.trim_start().len())
    })
}

/// An output label: the telling line (matched, else the last non-empty
/// one) and how much more there is.
fn telling_label(
    prefix: &str,
    text: &str,
    count: bool,
    matched: Option<&str>,
    max: usize,
) -> String {
    let line = matched
        .and_then(|m| line_with(text, m))
        .unwrap_or_else(|| last_line(text));
    let lines = text
        .split('\n')
        .filter(|l| !l.trim_end_matches('\r').trim().is_empty())
        .count();
    let suffix = match lines {
        _ if !count => String::new(),
        0 | 1 => String::new(),
        n => format!(" ({n} lines)"),
    };
    let room = max.saturating_sub(text::cols(prefix) + text::cols(&suffix));
    let mut out = text::printable(prefix);
    if line.trim().is_empty() && lines == 0 {
        out.push_str(&text::short(
            &format!("({} bytes of blank output)", text.len()),
            room,
        ));
    } else {
        out.push_str(&fit_line(line, matched, room.max(4)));
    }
    out.push_str(&suffix);
    text::short(&out, max)
}

/// The label of an event in at most `max` columns and `max_lines` lines.
/// For messages it describes the message (the same on both sides).
/// `actor` is the name of the event's actor: a verdict description that
/// starts with it (`tester1: run ...`) drops it, the lane already says so.
pub(crate) fn label(
    ev: &Event,
    actor: &str,
    data: &EventData,
    max: usize,
    max_lines: usize,
) -> String {
    let p = |prefix: &str, s: &str| text::label_lines(prefix, s, s.len(), max, max_lines);
    let short = |s: String| text::short(&s, max);
    match data {
        EventData::Open { target } => p("open ", target),
        EventData::Close { reason } if reason.is_empty() => short("close".into()),
        EventData::Close { reason } => p("close: ", reason),
        EventData::Start { command } => p("$ ", command),
        EventData::Input { secret: true, .. } => short("input (secret)".into()),
        EventData::Input { bytes, .. } => text::payload_lines(
            "in: ",
            &String::from_utf8_lossy(bytes),
            bytes.len(),
            max,
            max_lines,
        ),
        EventData::Output { bytes, stream } => text::payload_lines(
            if *stream == Stream::Stderr {
                "stderr: "
            } else {
                ""
            },
            &String::from_utf8_lossy(bytes),
            bytes.len(),
            max,
            max_lines,
        ),
        EventData::Signal { name } => short(format!("signal {name}")),
        EventData::Exit { status } => short(format!("exit {status}")),
        EventData::Match { pattern, .. } => p("match ", &format!("/{pattern}/")),
        EventData::Timeout { pattern, waited_ns } => p(
            &format!("timeout {} ", text::secs(*waited_ns)),
            &format!("/{pattern}/"),
        ),
        EventData::BarrierEnter { name } => p("enter ", name),
        EventData::BarrierLeave { name, .. } => p(
            if ev.dir == dtest_trace::Dir::Send {
                "leave "
            } else {
                ""
            },
            name,
        ),
        EventData::BarrierBroken { name, reason } => p("broken ", &format!("{name}: {reason}")),
        EventData::Put(t) => p("put ", &format!("{} ({})", t.remote, text::size(t.size))),
        EventData::Get(t) => p("get ", &format!("{} ({})", t.remote, text::size(t.size))),
        EventData::Verdict {
            number,
            ok,
            description,
            directive,
            ..
        } => {
            let d = match directive {
                Some(Directive::Skip) => " # SKIP",
                Some(Directive::Todo) => " # TODO",
                None => "",
            };
            let description = description
                .strip_prefix(actor)
                .and_then(|d| d.strip_prefix(": "))
                .unwrap_or(description);
            let head = format!("{}ok {number} - ", if *ok { "" } else { "not " });
            let room = max.saturating_sub(d.len());
            let mut s = text::label(&head, description, description.len(), room);
            s.push_str(d);
            s
        }
        EventData::Custom { name, status, .. } => p("local ", &format!("{name}: {status}")),
        EventData::End { ok, summary } => p(if *ok { "end ok: " } else { "end NOT OK: " }, summary),
    }
}

/// The status class of an event: `ok`, `notok`, `skip`, `todo`, `fail` (a
/// non-zero exit, a timeout, a broken barrier, a failed custom step).
pub(crate) fn status(data: &EventData) -> Option<&'static str> {
    match data {
        EventData::Verdict {
            directive: Some(Directive::Skip),
            ..
        } => Some("skip"),
        EventData::Verdict {
            directive: Some(Directive::Todo),
            ..
        } => Some("todo"),
        EventData::Verdict { ok: true, .. } | EventData::End { ok: true, .. } => Some("ok"),
        EventData::Verdict { ok: false, .. } | EventData::End { ok: false, .. } => Some("notok"),
        EventData::Exit {
            status: ExitStatus::Code(0),
        } => Some("ok"),
        EventData::Exit { .. } | EventData::Timeout { .. } | EventData::BarrierBroken { .. } => {
            Some("fail")
        }
        EventData::Custom { status, .. } if *status != 0 => Some("fail"),
        _ => None,
    }
}

/// The event's data (a receive carries the data of its send).
pub(crate) fn data<'t>(view: &View<'t>, i: u64) -> &'t EventData {
    &view.trace.event(i).data
}

/// The full tooltip of event `i` (plain text, printable, capped), and of
/// the events drawn with it in a compact mark.
pub(crate) fn tooltip(view: &View, i: u64) -> String {
    let mut s = one_tooltip(view, i);
    if let Some((n, last)) = view.repeats(i) {
        let _ = write!(
            s,
            "\n(done {} times in a row, the same each time, until {})",
            n + 1,
            text::secs(last)
        );
    }
    for &m in view.attached(i) {
        if s.len() > 4 * TOOLTIP_CAP {
            s.push_str("\n\n...");
            break;
        }
        s.push_str("\n\n");
        s.push_str(&one_tooltip(view, m));
    }
    s
}

fn one_tooltip(view: &View, i: u64) -> String {
    let t = view.trace;
    let e = &t.event(i);
    let mut s = String::new();
    let _ = write!(
        s,
        "#{i} {} {} ({}) at {}",
        text::printable(t.actor_name(e.actor)),
        e.kind(),
        e.dir.name(),
        text::secs(e.time_ns)
    );
    let other = |j: u64, a| format!("#{j} on {}", text::printable(t.actor_name(a)));
    match (e.dir, view.other(i)) {
        (dtest_trace::Dir::Local, _) => {}
        (d, o) => {
            let to = if d == dtest_trace::Dir::Send {
                "to"
            } else {
                "from"
            };
            let where_ = match o {
                Other::Drawn(j) => other(j, t.event(j).actor),
                Other::Own(j) => format!(
                    "{} (same lane)",
                    other(j, t.partner(i).map(|p| p.1).unwrap_or_default())
                ),
                Other::Hidden(j, a) => format!("{} (lane not shown)", other(j, a)),
                Other::Outside(j, a) => format!("{} (outside the window)", other(j, a)),
                Other::Missing if d == dtest_trace::Dir::Send => {
                    "nowhere: never received in this trace".into()
                }
                Other::Missing => "nowhere: its send is not in this trace".into(),
            };
            let _ = write!(s, "\n{to} {where_}");
        }
    }
    let body = match data(view, i) {
        EventData::Open { target } => format!("target: {target}"),
        EventData::Close { reason } => format!("reason: {reason}"),
        EventData::Start { command } => command.clone(),
        EventData::Input { secret: true, .. } => "(secret input, recorded redacted)".into(),
        EventData::Output { bytes, .. } if view.run(i).is_some() => {
            let run = view.run(i).unwrap_or_default();
            let text = run_text(view, run, TOOLTIP_CAP);
            let total: usize = run
                .iter()
                .filter(|&&x| view.trace.event(x).dir == dtest_trace::Dir::Send)
                .map(|&x| view.trace.event(x).data.payload_len())
                .sum();
            format!("({} output chunks, {total} bytes)\n{text}", run.len() / 2)
        }
        EventData::Input { bytes, .. } | EventData::Output { bytes, .. } => {
            let stream = match data(view, i) {
                EventData::Output {
                    stream: Stream::Stderr,
                    ..
                } => "stderr, ",
                EventData::Output { .. } => "stdout, ",
                _ => "",
            };
            format!(
                "({stream}{} bytes)\n{}",
                bytes.len(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(TOOLTIP_CAP)])
            )
        }
        EventData::Signal { name } => format!("signal {name}"),
        EventData::Exit { status } => format!("exit status {status}"),
        EventData::Match {
            pattern,
            matched,
            captures,
        } => {
            let mut b = format!("pattern: {pattern}\nmatched: {matched}");
            for (k, v) in captures {
                let _ = write!(b, "\n{k} = {v}");
            }
            b
        }
        EventData::Timeout { pattern, waited_ns } => {
            format!("pattern: {pattern}\nwaited {}", text::secs(*waited_ns))
        }
        EventData::BarrierEnter { name } => format!("barrier {name}"),
        EventData::BarrierLeave { name, participants } => {
            format!("barrier {name}\nparticipants: {}", participants.join(", "))
        }
        EventData::BarrierBroken { name, reason } => format!("barrier {name} broken: {reason}"),
        EventData::Put(tr) | EventData::Get(tr) => format!(
            "local: {}\nremote: {}\nsize: {} bytes\nsha256: {}",
            tr.local,
            tr.remote,
            tr.size,
            dtest_trace::model::hex(&tr.sha256)
        ),
        EventData::Verdict {
            number,
            ok,
            description,
            directive,
            reason,
        } => {
            let mut b = format!(
                "{}ok {number} - {description}",
                if *ok { "" } else { "not " }
            );
            if let Some(d) = directive {
                let _ = write!(b, " # {}", d.name().to_uppercase());
            }
            if !reason.is_empty() {
                let _ = write!(b, "\n{reason}");
            }
            b
        }
        EventData::Custom {
            name,
            status,
            output,
        } => format!("{name}: status {status}\n{output}"),
        EventData::End { ok, summary } => {
            format!("{}\n{summary}", if *ok { "ok" } else { "not ok" })
        }
    };
    s.push('\n');
    s.push_str(&text::tooltip(&body, TOOLTIP_CAP));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_keep_what_matters() {
        let l = "12618:M 01 Dec 2026 05:51:53.111 * Ready to accept connections tcp";
        assert_eq!(fit_line(l, None, 80), l);
        assert_eq!(
            fit_line(l, None, 40),
            "\u{2026}Ready to accept connections tcp"
        );
        assert_eq!(
            fit_line(l, Some("accept connections"), 30),
            "\u{2026}accept connections tcp"
        );
        // No prefix to drop: cut at the end.
        assert_eq!(fit_line("abcdefghij klm", None, 10), "abcdefg...");
        assert_eq!(last_line("a\r\nb\r\n\r\n  \n"), "b");
        assert_eq!(line_with("x\ny ok z\nw", "ok"), Some("y ok z"));
    }
}
