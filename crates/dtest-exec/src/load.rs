//! The TOML scenario loader: every mistake as `FILE:LINE:COL: message`.
//!
//! The file is parsed with `toml_edit`, which keeps the byte span of every
//! key and value, then walked by hand: unknown keys, wrong types, bad
//! durations and signals are reported where they are; the whole-scenario
//! checks ([`Scenario::validate`]: variables, regexes, barriers, duplicate
//! testers) are mapped back to positions through a side table of spans.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{ImDocument, Item, TableLike, Value};

use crate::duration::parse_duration;
use crate::scenario::{Defaults, OnFail, Problem, Scenario, Step, StepKind, Tester, Where};
use crate::session::{Signal, TransportRegistry};

/// One mistake in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as named on the command line.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// All the mistakes found in a scenario file (at least one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

/// What the command line adds to a scenario file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--set NAME=VALUE`: variables overriding `[vars]`.
    pub sets: Vec<(String, String)>,
    /// `--host TESTER=URL`: host overrides.
    pub hosts: Vec<(String, String)>,
    /// The transports hosts are checked against (`local` when `None`).
    pub registry: Option<TransportRegistry>,
}

/// The most testers one template makes.
pub const MAX_TEMPLATE: i64 = 1000;

/// Variables every scenario has (`index` and `item` in tester templates).
pub const BUILTIN_VARS: [&str; 5] = ["run_dir", "scenario_dir", "tester", "index", "item"];

/// The largest scenario or spec file dtest reads: 16 MiB.
pub const MAX_INPUT: u64 = 16 << 20;

/// Why an input file could not be read, with the position of the problem
/// when it is in the text (invalid UTF-8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// Line and column (1-based, in characters) of the problem, when it is
    /// in the text.
    pub pos: Option<(usize, usize)>,
    /// What is wrong (no file name).
    pub message: String,
}

/// Reads a scenario or spec file (`what` names it in messages: `scenario`,
/// `spec`): a regular file of at most `limit` bytes of UTF-8. Anything
/// else (a device like `/dev/zero`, a FIFO, a directory, a bigger file) is
/// refused before more than `limit + 1` bytes are read; opening never
/// blocks (`O_NONBLOCK`, for a FIFO swapped in after the check).
pub fn read_input(path: &Path, what: &str, limit: u64) -> Result<String, InputError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let fail = |message: String| InputError { pos: None, message };
    let kind = |t: std::fs::FileType| {
        if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        }
    };
    let not_regular = |t: std::fs::FileType| {
        fail(format!(
            "cannot read the {what}: it is {}, not a regular file",
            kind(t)
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read the {what}: {e}")))?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| fail(format!("cannot read the {what}: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| fail(format!("cannot read the {what}: {e}")))?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let too_big = || {
        fail(format!(
            "the {what} is bigger than {} (the limit of a {what} file)",
            crate::vars::fmt_size(limit)
        ))
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read the {what}: {e}")))?;
    if bytes.len() as u64 > limit {
        // It grew while being read.
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        let ok = e.utf8_error().valid_up_to();
        let prefix = std::str::from_utf8(&e.as_bytes()[..ok]).unwrap_or("");
        InputError {
            pos: Some(line_col(prefix, ok)),
            message: format!("the {what} is not UTF-8 text (a byte that is not UTF-8 here)"),
        }
    })
}

/// Line and column (1-based, columns in characters) of byte `at` of `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let ls = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = text[ls..at].chars().count() + 1;
    (line, col)
}

/// Loads and validates a scenario file (a regular file of at most
/// [`MAX_INPUT`] bytes).
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Scenario, ScenarioErrors> {
    let name = path.display().to_string();
    let text = read_input(path, "scenario", MAX_INPUT).map_err(|e| {
        let (line, col) = e.pos.unwrap_or((1, 1));
        ScenarioErrors(vec![ScenarioError {
            file: name.clone(),
            line,
            col,
            message: e.message,
        }])
    })?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    load_str(&text, &name, dir, opts)
}

/// Loads and validates scenario text; `file` names it in messages and
/// `scenario_dir` is `${scenario_dir}`.
pub fn load_str(
    text: &str,
    file: &str,
    scenario_dir: PathBuf,
    opts: &LoadOptions,
) -> Result<Scenario, ScenarioErrors> {
    let mut l = Loader {
        text,
        file,
        extra: Vec::new(),
        cur: 0,
        errors: Vec::new(),
        spans: HashMap::new(),
        inst: Vec::new(),
        cur_tester: None,
        statics: HashMap::new(),
        scenario_dir: scenario_dir.display().to_string(),
        var_spans: Vec::new(),
        option_spans: Vec::new(),
    };
    let doc = match ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            let msg = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .trim()
                .to_string();
            l.err(at, format!("invalid TOML: {msg}"));
            return Err(ScenarioErrors(l.errors));
        }
    };
    let mut sc = Scenario::new("");
    sc.scenario_dir = scenario_dir.clone();
    // Included files: parsed first, their `[steps]` lists join the
    // scenario's own.
    let includes = l.includes(doc.as_table(), &scenario_dir);
    let mut lists: HashMap<String, StepList<'_>> = HashMap::new();
    l.step_lists(0, doc.as_table(), &mut lists);
    for (fi, d) in &includes {
        l.step_lists(*fi, d.as_table(), &mut lists);
    }
    l.scenario(doc.as_table(), &mut sc, opts, &lists);
    if !l.errors.is_empty() {
        return Err(ScenarioErrors(l.errors));
    }
    for p in sc.validate(&BUILTIN_VARS) {
        l.problem(&p);
    }
    if l.errors.is_empty() {
        Ok(sc)
    } else {
        l.errors.sort_by_key(|e| (e.line, e.col));
        Err(ScenarioErrors(l.errors))
    }
}

struct Loader<'a> {
    text: &'a str,
    file: &'a str,
    /// Included files (`include = [...]`): name and text; file `i + 1`.
    extra: Vec<(String, String)>,
    /// The file being read: 0 the scenario, `i + 1` `extra[i]`.
    cur: usize,
    errors: Vec<ScenarioError>,
    /// Spans of values, in the file they are in (`Span::file`).
    spans: HashMap<Where, Span>,
    /// The template values of the tester being read (`index`, `item`).
    inst: Vec<(String, String)>,
    /// The tester being read's name (`${tester}`), once known.
    cur_tester: Option<String>,
    /// Values of the variables known before the run (`[vars]` without
    /// `${run_dir}`, `--set`, free ports), for the strings that are read
    /// when the scenario is loaded: durations, signals, transport options.
    statics: HashMap<String, String>,
    scenario_dir: String,
    /// Per `[vars]` entry (in `Scenario::vars` order): its value's span,
    /// or the name of a `--set` entry.
    var_spans: Vec<Result<Range<usize>, String>>,
    option_spans: Vec<Vec<(String, Option<Range<usize>>)>>,
}

/// A span in file `file` (0: the scenario, `i + 1`: its `i`-th include).
#[derive(Clone, Debug)]
struct Span {
    file: usize,
    range: Range<usize>,
}

/// A named list of steps (`[steps]` of the scenario or an included file).
struct StepList<'d> {
    file: usize,
    item: &'d Item,
}

fn span_of(item: &Item) -> Option<Range<usize>> {
    match item {
        Item::Value(v) => v.span(),
        Item::Table(t) => t.span(),
        Item::ArrayOfTables(a) => a.span(),
        Item::None => None,
    }
}

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "timeout",
    "vars",
    "free_ports",
    "defaults",
    "include",
    "steps",
    "tester",
];
const DEFAULT_KEYS: &[&str] = &[
    "expect_timeout",
    "barrier_timeout",
    "wait_timeout",
    "terminate_grace",
    "on_fail",
];
const TESTER_KEYS: &[&str] = &[
    "name",
    "count",
    "each",
    "host",
    "shell",
    "pty",
    "cwd",
    "env",
    "record_output",
    "timeout",
    "defaults",
    "steps",
];
/// The step keywords of scenario files, from the step table.
fn step_kinds() -> Vec<&'static str> {
    crate::steps::STEPS.iter().map(|d| d.keyword).collect()
}

impl<'a> Loader<'a> {
    fn file_text(&self, file: usize) -> &str {
        match file {
            0 => self.text,
            i => &self.extra[i - 1].1,
        }
    }

    fn file_name(&self, file: usize) -> &str {
        match file {
            0 => self.file,
            i => &self.extra[i - 1].0,
        }
    }

    fn err_in(&mut self, file: usize, at: usize, message: impl Into<String>) {
        let (line, col) = line_col(self.file_text(file), at);
        let e = ScenarioError {
            file: self.file_name(file).to_string(),
            line,
            col,
            message: message.into(),
        };
        // A template's mistake is the same for each of its testers: once.
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn err(&mut self, at: usize, message: impl Into<String>) {
        self.err_in(self.cur, at, message)
    }

    /// Records the span of a value of the file being read.
    fn span(&mut self, w: Where, range: Range<usize>) {
        let file = self.cur;
        self.spans.insert(w, Span { file, range });
    }

    /// The value of a variable known when the scenario is loaded.
    fn static_value(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.inst.iter().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        match name {
            "tester" => self.cur_tester.clone(),
            "scenario_dir" => Some(self.scenario_dir.clone()),
            _ => self.statics.get(name).cloned(),
        }
    }

    /// Expands a string that is used when the scenario is loaded (a
    /// duration, a signal, a transport option) with the variables known
    /// then; an error names the variable that is not known before the run.
    fn expand_static(&mut self, s: &str, span: Option<Range<usize>>, what: &str) -> Option<String> {
        if !s.contains('$') {
            return Some(s.to_string());
        }
        match crate::vars::expand(s, &|n| self.static_value(n)) {
            Ok(v) => Some(v),
            Err((_, m)) => {
                self.err_span(
                    span,
                    format!(
                        "`{what}`: {m}; this value is read before the run starts, so it may use \
                         the scenario's variables ([vars], --set, free_ports, ${{tester}}, \
                         ${{index}}, ${{item}}, ${{scenario_dir}}), not ${{run_dir}} or captures"
                    ),
                );
                None
            }
        }
    }

    fn err_span(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.err(span.map(|s| s.start).unwrap_or(0), message)
    }

    fn problem(&mut self, p: &Problem) {
        let span = match &p.at {
            Where::Var(i) => match self.var_spans.get(*i) {
                Some(Ok(s)) => Some(Span {
                    file: 0,
                    range: s.clone(),
                }),
                Some(Err(name)) => {
                    // A --set value: no position in the file.
                    let msg = format!("--set {name}: {}", p.message);
                    self.err(0, msg);
                    return;
                }
                None => None,
            },
            w => self.spans.get(w).cloned().or_else(|| match w {
                Where::Step(t, s, _) => self.spans.get(&Where::Step(*t, *s, "")).cloned(),
                Where::Tester(t, _) => self.spans.get(&Where::Tester(*t, "")).cloned(),
                Where::Var(_) => None,
            }),
        };
        let file = span.as_ref().map(|s| s.file).unwrap_or(0);
        let span = span.map(|s| s.range);
        let text = self.file_text(file);
        let mut at = span.as_ref().map(|s| s.start).unwrap_or(0);
        if let (Some(off), Some(s)) = (p.offset, &span) {
            let raw = &text[s.start.min(text.len())..s.end.min(text.len())];
            let q = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
                3
            } else if raw.starts_with('"') || raw.starts_with('\'') {
                1
            } else {
                0
            };
            at = (s.start + q + off).min(s.end);
        }
        self.err_in(file, at, p.message.clone());
    }

    fn check_keys(&mut self, t: &dyn TableLike, allowed: &[&str], what: &str) {
        for (k, _) in t.iter() {
            if !allowed.contains(&k) {
                let span = t.key(k).and_then(|k| k.span());
                let hint = did_you_mean(k, allowed);
                self.err_span(
                    span,
                    format!(
                        "unknown key `{k}` in {what}{hint}; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn string(&mut self, item: &Item, what: &str) -> Option<String> {
        match item.as_str() {
            Some(s) => Some(crate::vars::substitute(s, &self.inst)),
            None => {
                self.err_span(
                    span_of(item),
                    format!("`{what}` must be a string, not {}", type_name(item)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, item: &Item, what: &str) -> Option<bool> {
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.err_span(
                    span_of(item),
                    format!("`{what}` must be true or false, not {}", type_name(item)),
                );
                None
            }
        }
    }

    fn duration(&mut self, item: &Item, what: &str) -> Option<Duration> {
        let s = self.string(item, what)?;
        let s = self.expand_static(&s, span_of(item), what)?;
        match parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err_span(span_of(item), format!("`{what}`: {e}"));
                None
            }
        }
    }

    /// A step's `status` key (`run`, `wait`): an exit status from 0 to 255.
    fn status(&mut self, t: &dyn TableLike) -> Option<i32> {
        let i = t.get("status")?;
        match i.as_integer() {
            Some(n) if (0..=255).contains(&n) => Some(n as i32),
            _ => {
                self.err_span(span_of(i), "`status` must be an integer from 0 to 255");
                None
            }
        }
    }

    fn on_fail(&mut self, item: &Item) -> Option<OnFail> {
        let s = self.string(item, "on_fail")?;
        match OnFail::parse(&s) {
            Some(o) => Some(o),
            None => {
                self.err_span(
                    span_of(item),
                    format!("`on_fail` must be `continue`, `abort` or `abort-all`, not `{s}`"),
                );
                None
            }
        }
    }

    /// Reads the files of `include = ["shared.toml"]` (relative to the
    /// scenario's directory); each may hold `[steps]` lists only.
    fn includes(
        &mut self,
        root: &toml_edit::Table,
        dir: &Path,
    ) -> Vec<(usize, ImDocument<String>)> {
        let mut docs = Vec::new();
        let Some(i) = root.get("include") else {
            return docs;
        };
        let Some(a) = i.as_array() else {
            self.err_span(
                span_of(i),
                "`include` must be an array of file names (`include = [\"shared.toml\"]`)",
            );
            return docs;
        };
        let mut names = Vec::new();
        for v in a.iter() {
            match v.as_str() {
                Some(n) => names.push((n.to_string(), v.span())),
                None => self.err_span(v.span(), "`include` lists file names (strings)"),
            }
        }
        for (name, span) in names {
            let path = dir.join(&name);
            let text = match read_input(&path, "included file", MAX_INPUT) {
                Ok(t) => t,
                Err(e) => {
                    self.err_span(span, format!("include `{name}`: {}", e.message));
                    continue;
                }
            };
            self.extra.push((path.display().to_string(), text.clone()));
            let fi = self.extra.len();
            match ImDocument::parse(text) {
                Ok(d) => {
                    for (k, _) in d.as_table().iter() {
                        if k != "steps" {
                            let at = d.as_table().key(k).and_then(|k| k.span());
                            self.err_in(
                                fi,
                                at.map(|s| s.start).unwrap_or(0),
                                format!(
                                    "unknown key `{k}` in an included file; it may hold `[steps]` lists only"
                                ),
                            );
                        }
                    }
                    docs.push((fi, d));
                }
                Err(e) => {
                    let at = e.span().map(|s| s.start).unwrap_or(0);
                    let msg = e
                        .message()
                        .lines()
                        .next()
                        .unwrap_or("invalid TOML")
                        .trim()
                        .to_string();
                    self.err_in(fi, at, format!("invalid TOML: {msg}"));
                }
            }
        }
        docs
    }

    /// Collects the named step lists of `[steps]` in file `file`.
    fn step_lists<'d>(
        &mut self,
        file: usize,
        root: &'d toml_edit::Table,
        lists: &mut HashMap<String, StepList<'d>>,
    ) {
        let Some(i) = root.get("steps") else {
            return;
        };
        let Some(t) = i.as_table_like() else {
            let at = span_of(i).map(|s| s.start).unwrap_or(0);
            self.err_in(
                file,
                at,
                "`steps` must be a table of named step lists (`[steps]`, then `name = [ ... ]`)",
            );
            return;
        };
        for (k, v) in t.iter() {
            let at = t
                .key(k)
                .and_then(|k| k.span())
                .map(|s| s.start)
                .unwrap_or(0);
            if !matches!(v, Item::Value(Value::Array(_)) | Item::ArrayOfTables(_)) {
                self.err_in(
                    file,
                    at,
                    format!("step list `{k}` must be an array of steps"),
                );
                continue;
            }
            if lists.contains_key(k) {
                self.err_in(file, at, format!("step list `{k}` is defined twice"));
                continue;
            }
            lists.insert(k.to_string(), StepList { file, item: v });
        }
    }

    /// Free TCP ports on the controller, one per name of `free_ports`,
    /// distinct, chosen when the scenario is loaded (fixed for the run).
    fn free_ports(&mut self, root: &toml_edit::Table, sc: &mut Scenario) {
        let Some(i) = root.get("free_ports") else {
            return;
        };
        let Some(a) = i.as_array() else {
            self.err_span(
                span_of(i),
                "`free_ports` must be an array of variable names (`free_ports = [\"port\"]`)",
            );
            return;
        };
        // The listeners are held until every port is chosen: distinct ports.
        let mut held = Vec::new();
        for v in a.iter() {
            let Some(name) = v.as_str() else {
                self.err_span(v.span(), "`free_ports` lists variable names (strings)");
                continue;
            };
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                self.err_span(v.span(), format!("bad variable name `{name}`"));
                continue;
            }
            if BUILTIN_VARS.contains(&name) || sc.vars.iter().any(|(n, _)| n == name) {
                self.err_span(
                    v.span(),
                    format!("`{name}` is already a variable (built-in or in [vars])"),
                );
                continue;
            }
            match std::net::TcpListener::bind(("127.0.0.1", 0)).and_then(|l| {
                let port = l.local_addr()?.port();
                Ok((l, port))
            }) {
                Ok((l, port)) => {
                    held.push(l);
                    sc.vars.push((name.to_string(), port.to_string()));
                    sc.free_ports.push(name.to_string());
                    self.var_spans.push(Ok(v.span().unwrap_or(0..0)));
                }
                Err(e) => self.err_span(v.span(), format!("no free TCP port for `{name}`: {e}")),
            }
        }
    }

    /// The template values of a tester table: one set per tester it makes
    /// (`count = 3`: `index` 1, 2, 3; `each = [...]`: `index` and `item`),
    /// or one empty set for a plain tester.
    fn instances(&mut self, t: &dyn TableLike) -> Vec<Vec<(String, String)>> {
        let count = t.get("count");
        let each = t.get("each");
        if count.is_some() && each.is_some() {
            let sp = t.key("each").and_then(|k| k.span());
            self.err_span(sp, "a tester template has `count` or `each`, not both");
            return Vec::new();
        }
        let list: Vec<Option<String>> = if let Some(c) = count {
            let n = match c {
                Item::Value(Value::Integer(i)) => Some(*i.value()),
                Item::Value(Value::String(x)) => self
                    .expand_static(x.value(), span_of(c), "count")
                    .and_then(|v| v.trim().parse::<i64>().ok()),
                _ => None,
            };
            match n {
                Some(n) if (0..=MAX_TEMPLATE).contains(&n) => (0..n).map(|_| None).collect(),
                _ => {
                    self.err_span(
                        span_of(c),
                        format!("`count` must be an integer from 0 to {MAX_TEMPLATE}"),
                    );
                    return Vec::new();
                }
            }
        } else if let Some(e) = each {
            let Some(a) = e.as_array() else {
                self.err_span(
                    span_of(e),
                    "`each` must be an array of values (strings or integers)",
                );
                return Vec::new();
            };
            if a.len() as i64 > MAX_TEMPLATE {
                self.err_span(
                    span_of(e),
                    format!("`each` has more than {MAX_TEMPLATE} values"),
                );
                return Vec::new();
            }
            let mut v = Vec::new();
            for x in a.iter() {
                match x {
                    Value::String(s) => v.push(Some(s.value().clone())),
                    Value::Integer(i) => v.push(Some(i.value().to_string())),
                    _ => {
                        self.err_span(x.span(), "`each` values must be strings or integers");
                        return Vec::new();
                    }
                }
            }
            v
        } else {
            return vec![Vec::new()];
        };
        // Each tester needs a name of its own.
        if let Some(n) = t.get("name").and_then(|n| n.as_str()) {
            let refs = crate::vars::references(n).unwrap_or_default();
            if !refs.iter().any(|r| r.name == "index" || r.name == "item") {
                self.err_span(
                    t.get("name").and_then(span_of),
                    format!(
                        "the name of a tester template must use `${{index}}` or `${{item}}` (`{n}` would name every tester alike)"
                    ),
                );
                return Vec::new();
            }
        }
        list.into_iter()
            .enumerate()
            .map(|(i, item)| {
                let mut v = vec![("index".to_string(), (i + 1).to_string())];
                if let Some(item) = item {
                    v.push(("item".to_string(), item));
                }
                v
            })
            .collect()
    }

    fn scenario(
        &mut self,
        root: &toml_edit::Table,
        sc: &mut Scenario,
        opts: &LoadOptions,
        lists: &HashMap<String, StepList<'_>>,
    ) {
        self.check_keys(root, TOP_KEYS, "the scenario");
        match root.get("name") {
            Some(i) => {
                if let Some(n) = self.string(i, "name") {
                    if n.trim().is_empty() {
                        self.err_span(span_of(i), "`name` must not be empty");
                    }
                    sc.name = n;
                }
            }
            None => self.err(0, "missing `name = \"...\"` (the scenario's name)"),
        }
        if let Some(i) = root.get("description") {
            sc.description = self.string(i, "description").unwrap_or_default();
        }
        if let Some(i) = root.get("timeout") {
            if let Some(d) = self.duration(i, "timeout") {
                sc.timeout = d;
            }
        }
        if let Some(i) = root.get("vars") {
            match i.as_table_like() {
                Some(t) => {
                    for (k, v) in t.iter() {
                        if let Some(s) = self.string(v, k) {
                            if BUILTIN_VARS.contains(&k) {
                                let sp = t.key(k).and_then(|k| k.span());
                                self.err_span(sp, format!("`{k}` is a built-in variable"));
                            }
                            sc.vars.push((k.to_string(), s));
                            self.var_spans.push(Ok(span_of(v).unwrap_or(0..0)));
                        }
                    }
                }
                None => self.err_span(span_of(i), "`vars` must be a table"),
            }
        }
        self.free_ports(root, sc);
        // A --set must name a variable of the scenario: one of `[vars]` or
        // one used as `${name}` somewhere (a typo would be silently ignored).
        let mut known: Vec<String> = sc.vars.iter().map(|(n, _)| n.clone()).collect();
        for n in referenced_names(self.text) {
            if !known.contains(&n) {
                known.push(n);
            }
        }
        for (k, _) in &opts.sets {
            if !known.contains(k) && !BUILTIN_VARS.contains(&k.as_str()) {
                let cands: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
                let hint = did_you_mean(k, &cands);
                let listed = if cands.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("it has: {}", cands.join(", "))
                };
                self.err(
                    0,
                    format!("--set {k}: the scenario has no variable `{k}`{hint}; {listed}"),
                );
            }
        }
        for (k, v) in &opts.sets {
            // --set values are plain strings: no position in the file.
            if let Some(i) = sc.vars.iter().position(|(n, _)| n == k) {
                sc.vars.remove(i);
                if i < self.var_spans.len() {
                    let _ = self.var_spans.remove(i);
                }
            }
            sc.vars.push((k.clone(), v.replace("${", "$${")));
            sc.free_ports.retain(|n| n != k);
            self.var_spans.push(Err(k.clone()));
        }
        // The variables known before the run, for the values read now.
        for (k, v) in &sc.vars {
            if let Ok(x) = crate::vars::expand(v, &|n| self.static_value(n)) {
                self.statics.insert(k.clone(), x);
            }
        }
        if let Some(i) = root.get("defaults") {
            match i.as_table_like() {
                Some(t) => {
                    self.check_keys(t, DEFAULT_KEYS, "[defaults]");
                    self.defaults(t, &mut sc.defaults);
                }
                None => self.err_span(span_of(i), "`defaults` must be a table"),
            }
        }
        let testers: Vec<&dyn TableLike> = match root.get("tester") {
            None => {
                self.err(0, "no tester: add a `[[tester]]` table");
                return;
            }
            Some(Item::ArrayOfTables(a)) => a.iter().map(|t| t as &dyn TableLike).collect(),
            Some(Item::Value(Value::Array(a))) => {
                let mut v = Vec::new();
                for x in a.iter() {
                    match x.as_inline_table() {
                        Some(t) => v.push(t as &dyn TableLike),
                        None => self.err_span(x.span(), "each tester must be a table"),
                    }
                }
                v
            }
            Some(other) => {
                self.err_span(
                    span_of(other),
                    "`tester` must be an array of tables (`[[tester]]`)",
                );
                return;
            }
        };
        let registry = opts.registry.clone().unwrap_or_default();
        for t in testers {
            for inst in self.instances(t) {
                self.inst = inst;
                let ti = sc.testers.len();
                let tester = self.tester(ti, t, lists, &sc.defaults);
                sc.testers.push(tester);
            }
            self.inst.clear();
            self.cur_tester = None;
        }
        if sc.testers.is_empty() && self.errors.is_empty() {
            let sp = root.get("tester").and_then(span_of);
            self.err_span(
                sp,
                "no tester: the scenario's templates make none (`count = 0` or `each = []`)",
            );
        }
        for (name, url) in &opts.hosts {
            match sc.testers.iter_mut().find(|t| t.name == *name) {
                Some(t) => t.host = url.clone(),
                None => self.err(
                    0,
                    format!("--host {name}={url}: the scenario has no tester named `{name}`"),
                ),
            }
        }
        for ti in 0..sc.testers.len() {
            self.cur_tester = Some(sc.testers[ti].name.clone());
            self.check_host(ti, &mut sc.testers[ti], &registry, opts);
        }
        self.cur_tester = None;
    }

    /// Checks a tester's host and its transport options (keys and values,
    /// with the variables known before the run), where they are written.
    fn check_host(
        &mut self,
        ti: usize,
        t: &mut Tester,
        registry: &TransportRegistry,
        opts: &LoadOptions,
    ) {
        let host_span = self
            .spans
            .get(&Where::Tester(ti, "host"))
            .map(|s| s.range.clone());
        let from_cli = opts.hosts.iter().any(|(n, _)| *n == t.name);
        let Some(host) = self.expand_static(&t.host, host_span.clone(), "host") else {
            return;
        };
        let url = match registry.check(&host) {
            Ok(u) => u,
            Err(e) => {
                if from_cli {
                    self.err(
                        0,
                        format!("--host {}={}: tester `{}`: {e}", t.name, t.host, t.name),
                    );
                } else {
                    self.err_span(host_span, format!("tester `{}`: {e}", t.name));
                }
                return;
            }
        };
        let Ok(transport) = registry.transport(&url) else {
            return;
        };
        let keys = transport.option_keys();
        let spans = self.option_spans.get(ti).cloned().unwrap_or_default();
        for (k, span) in spans {
            if !keys.contains(&k.as_str()) {
                let mut all: Vec<&str> = TESTER_KEYS.to_vec();
                all.extend_from_slice(keys);
                let hint = did_you_mean(&k, &all);
                let theirs = if keys.is_empty() {
                    format!("a `{}` host takes no other key", url.scheme)
                } else {
                    format!("a `{}` host also takes: {}", url.scheme, keys.join(", "))
                };
                self.err_span(
                    span,
                    format!(
                        "unknown key `{k}` in a tester{hint}; expected one of: {}; {theirs}",
                        TESTER_KEYS.join(", ")
                    ),
                );
                continue;
            }
            let raw = t.options.get(&k).cloned().unwrap_or_default();
            // `${run_dir}` is known at the run only: such a value is
            // expanded and checked when the session opens.
            let runtime_only = crate::vars::references(&raw)
                .map(|r| r.iter().any(|r| self.static_value(&r.name).is_none()))
                .unwrap_or(false);
            if runtime_only {
                continue;
            }
            let Some(v) = self.expand_static(&raw, span.clone(), &k) else {
                continue;
            };
            if let Err(e) = transport.check_option(&k, &v) {
                self.err_span(span, format!("tester `{}`: {e}", t.name));
                continue;
            }
            t.options.insert(k, v);
        }
    }

    fn defaults(&mut self, t: &dyn TableLike, d: &mut Defaults) {
        for (k, v) in t.iter() {
            match k {
                "expect_timeout" => {
                    if let Some(x) = self.duration(v, k) {
                        d.expect_timeout = x
                    }
                }
                "barrier_timeout" => {
                    if let Some(x) = self.duration(v, k) {
                        d.barrier_timeout = x
                    }
                }
                "wait_timeout" => {
                    if let Some(x) = self.duration(v, k) {
                        d.wait_timeout = x
                    }
                }
                "terminate_grace" => {
                    if let Some(x) = self.duration(v, k) {
                        d.terminate_grace = x
                    }
                }
                "on_fail" => {
                    if let Some(x) = self.on_fail(v) {
                        d.on_fail = x
                    }
                }
                _ => {}
            }
        }
    }

    fn tester(
        &mut self,
        ti: usize,
        t: &dyn TableLike,
        lists: &HashMap<String, StepList<'_>>,
        scenario_defaults: &Defaults,
    ) -> Tester {
        let mut tester = Tester::new("");
        // Keys this loader does not know are transport options (SSH's
        // `identity`, `x11`, ...); whether the transport takes them is
        // decided once the host is known.
        let mut extra = Vec::new();
        for (k, v) in t.iter() {
            if TESTER_KEYS.contains(&k) {
                continue;
            }
            let span = t.key(k).and_then(|k| k.span());
            let val = match v {
                Item::Value(Value::String(s)) => Some(s.value().clone()),
                Item::Value(Value::Boolean(b)) => Some(b.value().to_string()),
                Item::Value(Value::Integer(i)) => Some(i.value().to_string()),
                _ => None,
            };
            match val {
                Some(val) => {
                    let val = crate::vars::substitute(&val, &self.inst);
                    tester.options.insert(k.to_string(), val);
                    extra.push((k.to_string(), span));
                }
                None => {
                    let hint = did_you_mean(k, TESTER_KEYS);
                    self.err_span(
                        span,
                        format!(
                            "unknown key `{k}` in a tester{hint}; expected one of: {}",
                            TESTER_KEYS.join(", ")
                        ),
                    )
                }
            }
        }
        self.option_spans.push(extra);
        let whole = t
            .iter()
            .next()
            .and_then(|(k, _)| t.key(k).and_then(|k| k.span()));
        self.span(Where::Tester(ti, ""), whole.clone().unwrap_or(0..0));
        for (k, v) in t.iter() {
            let key: &'static str = TESTER_KEYS.iter().find(|x| **x == k).copied().unwrap_or("");
            if let Some(s) = span_of(v) {
                self.span(Where::Tester(ti, key), s);
            }
        }
        match t.get("name") {
            Some(v) => tester.name = self.string(v, "name").unwrap_or_default(),
            None => self.err_span(whole.clone(), "tester without `name`"),
        }
        self.cur_tester = Some(tester.name.clone());
        // This tester's defaults: `timeout` (every deadline of its steps, as
        // the original DTest's per-tester timeout), then `defaults`.
        let mut own = scenario_defaults.clone();
        let mut has_own = false;
        if let Some(v) = t.get("timeout") {
            if let Some(d) = self.duration(v, "timeout") {
                own.expect_timeout = d;
                own.barrier_timeout = d;
                own.wait_timeout = d;
                has_own = true;
            }
        }
        if let Some(v) = t.get("defaults") {
            match v.as_table_like() {
                Some(d) => {
                    self.check_keys(d, DEFAULT_KEYS, "a tester's `defaults`");
                    self.defaults(d, &mut own);
                    has_own = true;
                }
                None => self.err_span(span_of(v), "`defaults` must be a table"),
            }
        }
        if has_own {
            tester.defaults = Some(own);
        }
        if let Some(v) = t.get("host") {
            tester.host = self.string(v, "host").unwrap_or_else(|| "local".into());
        }
        if let Some(v) = t.get("shell") {
            tester.shell = self.string(v, "shell").unwrap_or_else(|| "/bin/sh".into());
        }
        if let Some(v) = t.get("pty") {
            tester.pty = self.boolean(v, "pty").unwrap_or(true);
        }
        if let Some(v) = t.get("cwd") {
            tester.cwd = self.string(v, "cwd");
        }
        if let Some(v) = t.get("record_output") {
            tester.record_output = self.boolean(v, "record_output").unwrap_or(true);
        }
        if let Some(v) = t.get("env") {
            match v.as_table_like() {
                Some(e) => {
                    for (k, x) in e.iter() {
                        if let Some(s) = self.string(x, k) {
                            tester.env.push((k.to_string(), s));
                        }
                    }
                }
                None => self.err_span(span_of(v), "`env` must be a table of strings"),
            }
        }
        let mut steps = Vec::new();
        if let Some(v) = t.get("steps") {
            self.step_tables(v, lists, &mut Vec::new(), &mut steps);
        }
        for (file, st, span) in steps {
            self.cur = file;
            let si = tester.steps.len();
            if let Some(s) = self.step(ti, si, st, span) {
                tester.steps.push(s);
            }
            self.cur = 0;
        }
        tester
    }

    /// The step tables of a `steps` array, with `{ include = "list" }`
    /// replaced by the tables of that list (of `[steps]`), each with the
    /// file it is in. `within` is the chain of lists being included.
    fn step_tables<'d>(
        &mut self,
        v: &'d Item,
        lists: &HashMap<String, StepList<'d>>,
        within: &mut Vec<String>,
        out: &mut Vec<(usize, &'d dyn TableLike, Option<Range<usize>>)>,
    ) {
        let tables: Vec<(&'d dyn TableLike, Option<Range<usize>>)> = match v {
            Item::Value(Value::Array(a)) => {
                let mut v = Vec::new();
                for x in a.iter() {
                    match x.as_inline_table() {
                        Some(t) => v.push((t as &dyn TableLike, x.span())),
                        None => self.err_span(
                            x.span(),
                            format!(
                                "a step must be a table like `{{ run = \"...\" }}`, not {}",
                                x.type_name()
                            ),
                        ),
                    }
                }
                v
            }
            Item::ArrayOfTables(a) => a.iter().map(|t| (t as &dyn TableLike, t.span())).collect(),
            other => {
                self.err_span(span_of(other), "`steps` must be an array of tables");
                Vec::new()
            }
        };
        for (t, span) in tables {
            let Some(inc) = t.get("include") else {
                out.push((self.cur, t, span));
                continue;
            };
            if let Some((k, _)) = t.iter().find(|(k, _)| *k != "include") {
                let sp = t.key(k).and_then(|k| k.span());
                self.err_span(
                    sp,
                    format!("`{k}`: an `include` step has no other key (it stands for the steps of a list)"),
                );
                continue;
            }
            let Some(name) = inc.as_str() else {
                self.err_span(span_of(inc), "`include` names a step list of `[steps]`");
                continue;
            };
            let Some(list) = lists.get(name) else {
                let names: Vec<&str> = lists.keys().map(|s| s.as_str()).collect();
                let hint = did_you_mean(name, &names);
                let mut known = names.clone();
                known.sort();
                let listed = if known.is_empty() {
                    "there is no `[steps]` list".to_string()
                } else {
                    format!("the lists are: {}", known.join(", "))
                };
                self.err_span(
                    span_of(inc),
                    format!("no step list `{name}`{hint}; {listed}"),
                );
                continue;
            };
            if within.iter().any(|w| w == name) || within.len() >= 16 {
                self.err_span(
                    span_of(inc),
                    format!(
                        "step list `{name}` includes itself ({} -> {name})",
                        within.join(" -> ")
                    ),
                );
                continue;
            }
            within.push(name.to_string());
            let saved = self.cur;
            self.cur = list.file;
            self.step_tables(list.item, lists, within, out);
            self.cur = saved;
            within.pop();
        }
    }

    fn step(
        &mut self,
        ti: usize,
        si: usize,
        t: &dyn TableLike,
        span: Option<Range<usize>>,
    ) -> Option<Step> {
        self.span(Where::Step(ti, si, ""), span.clone().unwrap_or(0..0));
        let step_kinds = step_kinds();
        let kinds: Vec<&str> = t
            .iter()
            .map(|(k, _)| k)
            .filter(|k| step_kinds.contains(k))
            .collect();
        let kind = match kinds.as_slice() {
            [] => {
                // A misspelt action (`expcet`) is named, at its position.
                let all: Vec<&str> = crate::steps::all_keys().collect();
                let mut named = false;
                for (k, _) in t.iter() {
                    if all.contains(&k) {
                        continue;
                    }
                    if let Some(c) = closest(k, &step_kinds) {
                        let sp = t.key(k).and_then(|k| k.span());
                        self.err_span(
                            sp,
                            format!("unknown key `{k}` in a step; did you mean `{c}`?"),
                        );
                        named = true;
                    }
                }
                if named {
                    return None;
                }
                self.err_span(
                    span,
                    format!(
                        "step without an action; add one of: {}",
                        step_kinds.join(", ")
                    ),
                );
                return None;
            }
            [k] => *k,
            [a, b, ..] => {
                let sp = t.key(b).and_then(|k| k.span());
                self.err_span(
                    sp,
                    format!("a step has one action, this one has `{a}` and `{b}`"),
                );
                return None;
            }
        };
        let mut allowed: Vec<&str> = vec![kind];
        allowed.extend_from_slice(crate::steps::COMMON_KEYS);
        allowed.extend_from_slice(crate::steps::def(kind).map(|d| d.keys).unwrap_or(&[]));
        let n_err = self.errors.len();
        self.check_keys(t, &allowed, &format!("a `{kind}` step"));
        for (k, v) in t.iter() {
            let key: &'static str = crate::steps::all_keys().find(|x| *x == k).unwrap_or("");
            if let Some(s) = span_of(v) {
                self.span(Where::Step(ti, si, key), s);
            }
        }
        let v = t.get(kind)?;
        let get_str = |l: &mut Self, k: &str| t.get(k).and_then(|i| l.string(i, k));
        let get_bool = |l: &mut Self, k: &str| t.get(k).and_then(|i| l.boolean(i, k));
        let sk = match kind {
            "ok" => StepKind::Ok {
                description: self.string(v, kind)?,
                pass: get_bool(self, "pass").unwrap_or(true),
                skip: get_str(self, "skip"),
                todo: get_str(self, "todo"),
            },
            "run" => StepKind::Run {
                command: self.string(v, kind)?,
                status: self.status(t),
            },
            "expect" => match v.as_array() {
                // `expect = ["a", "b"]`: each, in any order.
                Some(a) => {
                    let mut patterns = Vec::new();
                    for x in a.iter() {
                        match x.as_str() {
                            Some(p) => patterns.push(crate::vars::substitute(p, &self.inst)),
                            None => {
                                self.err_span(x.span(), "the patterns of `expect` are strings");
                                return None;
                            }
                        }
                    }
                    StepKind::ExpectAll {
                        patterns,
                        literal: get_bool(self, "literal").unwrap_or(false),
                    }
                }
                None => StepKind::Expect {
                    pattern: self.string(v, kind)?,
                    literal: get_bool(self, "literal").unwrap_or(false),
                },
            },
            "poll" => StepKind::Poll {
                command: self.string(v, kind)?,
                until: get_str(self, "until"),
                every: match t.get("every") {
                    Some(i) => self.duration(i, "every")?,
                    None => crate::steps::POLL_EVERY,
                },
            },
            "send" => StepKind::Send {
                text: self.string(v, kind)?,
                secret: get_bool(self, "secret").unwrap_or(false),
            },
            "put" => StepKind::Put {
                from: self.string(v, kind)?,
                to: get_str(self, "to"),
            },
            "get" => StepKind::Get {
                from: self.string(v, kind)?,
                to: get_str(self, "to"),
            },
            "barrier" => {
                let b = self.string(v, kind)?;
                if b.trim().is_empty() {
                    self.err_span(span_of(v), "a barrier needs a name");
                }
                StepKind::Barrier(b)
            }
            "terminate" => {
                let sig = match v {
                    Item::Value(Value::Boolean(_)) => Signal::Int,
                    _ => {
                        let s = self.string(v, kind)?;
                        let s = self.expand_static(&s, span_of(v), kind)?;
                        match Signal::parse(&s) {
                            Some(x) => x,
                            None => {
                                self.err_span(
                                    span_of(v),
                                    format!(
                                        "unknown signal `{s}`; expected one of: {}",
                                        Signal::TERMINATING.map(|s| s.name()).join(", ")
                                    ),
                                );
                                return None;
                            }
                        }
                    }
                };
                StepKind::Terminate(sig)
            }
            "wait" => StepKind::Wait {
                status: self.status(t),
            },
            "pause" | "resume" => {
                if v.as_bool() != Some(true) {
                    self.err_span(
                        span_of(v),
                        format!(
                            "`{kind}` takes `true` (`{{ {kind} = true }}`), not {}",
                            type_name(v)
                        ),
                    );
                    return None;
                }
                if kind == "pause" {
                    StepKind::Pause
                } else {
                    StepKind::Resume
                }
            }
            "sleep" => StepKind::Sleep(self.duration(v, kind)?),
            "local" => StepKind::Local(self.string(v, kind)?),
            _ => return None,
        };
        let mut step = Step {
            kind: sk,
            name: get_str(self, "name"),
            timeout: None,
            on_fail: t.get("on_fail").and_then(|i| self.on_fail(i)),
        };
        if let Some(i) = t.get("timeout") {
            step.timeout = self.duration(i, "timeout");
        }
        if kind == "wait" {
            match v {
                Item::Value(Value::Boolean(_)) => {}
                _ => {
                    if let Some(d) = self.duration(v, "wait") {
                        step.timeout = Some(d);
                    }
                }
            }
        }
        if self.errors.len() > n_err {
            return None;
        }
        Some(step)
    }
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "a table",
        },
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::None => "nothing",
    }
}

/// The names used as `${name}` in `text` (`$${` is a literal `${`).
fn referenced_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find("${") {
        let at = i + off;
        i = at + 2;
        if at > 0 && b[at - 1] == b'$' {
            continue;
        }
        let rest = &text[i..];
        let Some(end) = rest.find('}') else { break };
        let name = &rest[..end];
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_string());
        }
    }
    names
}

/// The allowed key closest to a misspelt one, if any is close.
/// ` (did you mean `x`?)` for the candidate closest to `k`, or nothing.
fn did_you_mean(k: &str, allowed: &[&str]) -> String {
    closest(k, allowed)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn closest<'k>(k: &str, allowed: &[&'k str]) -> Option<&'k str> {
    allowed
        .iter()
        .map(|a| (edit_distance(k, a), *a))
        .filter(|(d, a)| *d <= 2 && *d < a.len())
        .min()
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let c = if a[i - 1] == b[j - 1] { 0 } else { 1 };
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + c);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Step, Tester};

    fn load(s: &str) -> Result<Scenario, String> {
        load_str(s, "t.toml", PathBuf::from("/"), &LoadOptions::default())
            .map_err(|e| e.to_string())
    }

    const OK: &str = r#"
name = "x"
[vars]
a = "${run_dir}/a"
[[tester]]
name = "t1"
steps = [
  { run = "echo ${a}" },
  { expect = 'port=(?P<port>\d+)' },
  { send = "${port}\n" },
  { barrier = "b" },
]
[[tester]]
name = "t2"
pty = false
steps = [{ barrier = "b", timeout = "1s" }, { wait = "2s", status = 0 }]
"#;

    #[test]
    fn loads() {
        let s = load(OK).unwrap();
        assert_eq!(s.testers.len(), 2);
        assert_eq!(s.plan(), 6);
        assert!(!s.testers[1].pty);
    }

    fn err_of(s: &str) -> String {
        load(s).unwrap_err()
    }

    #[test]
    fn errors_have_positions() {
        let e = err_of("name = \"x\"\nbogus = 1\n[[tester]]\nname = \"t\"\n");
        assert!(e.starts_with("t.toml:2:1: unknown key `bogus`"), "{e}");
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t\"\npty = \"yes\"\n");
        assert!(
            e.starts_with("t.toml:4:7: `pty` must be true or false"),
            "{e}"
        );
        let e =
            err_of("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"a ${nope}\" }]\n");
        assert!(
            e.starts_with("t.toml:4:21: undefined variable `${nope}`"),
            "{e}"
        );
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ expect = \"a(\" }]\n");
        assert!(e.starts_with("t.toml:4:21: bad regex"), "{e}");
        let e =
            err_of("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ sleep = \"3 parsecs\" }]\n");
        assert!(e.starts_with("t.toml:4:20: `sleep`: bad duration"), "{e}");
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ barrier = \"b\" }]\n");
        assert!(
            e.starts_with("t.toml:4:22: barrier `b` is joined by tester `t` only"),
            "{e}"
        );
        let e = err_of(
            "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ barrier = \"b${tester}\" }]\n",
        );
        assert!(
            e.contains("t.toml:4:24: a barrier name cannot use variables"),
            "{e}"
        );
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t\"\n[[tester]]\nname = \"t\"\n");
        assert!(e.starts_with("t.toml:5:8: duplicate tester `t`"), "{e}");
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ rnu = \"x\" }]\n");
        assert!(
            e.starts_with("t.toml:4:12: unknown key `rnu` in a step; did you mean `run`?"),
            "{e}"
        );
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ zzzzzz = \"x\" }]\n");
        assert!(e.contains("step without an action"), "{e}");
        let e = err_of(
            "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"x\", tiemout = \"1s\" }]\n",
        );
        assert!(e.contains("did you mean `timeout`"), "{e}");
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t\"\nhost = \"ftp://h\"\n");
        assert!(
            e.starts_with("t.toml:4:8: tester `t`: unknown host scheme `ftp`"),
            "{e}"
        );
        let e = err_of("name = [\n");
        assert!(e.starts_with("t.toml:"), "{e}");
    }

    #[test]
    fn misspelt_keys_are_named() {
        let e = tester_err("steps = [{ run = \"x\" }, { expcet = \"a\", timeout = \"1s\" }]\n");
        assert_eq!(
            e,
            "t.toml:4:27: unknown key `expcet` in a step; did you mean `expect`?"
        );
        let e = tester_err("step = [{ run = \"x\" }]\n");
        assert!(
            e.starts_with("t.toml:4:1: unknown key `step` in a tester (did you mean `steps`?)"),
            "{e}"
        );
    }

    #[test]
    fn run_takes_a_status() {
        let s = load(
            "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"false\", status = 1 }]\n",
        )
        .unwrap();
        match &s.testers[0].steps[0].kind {
            StepKind::Run { command, status } => {
                assert_eq!(command, "false");
                assert_eq!(*status, Some(1));
            }
            k => panic!("{k:?}"),
        }
        let e = tester_err("steps = [{ run = \"x\", status = 300 }]\n");
        assert!(
            e.starts_with("t.toml:4:32: `status` must be an integer from 0 to 255"),
            "{e}"
        );
        let e = tester_err("steps = [{ run = \"x\", stauts = 0 }]\n");
        assert!(
            e.starts_with(
                "t.toml:4:23: unknown key `stauts` in a `run` step (did you mean `status`?)"
            ),
            "{e}"
        );
    }

    fn load_with_sets(s: &str, sets: &[(&str, &str)]) -> Result<Scenario, String> {
        let opts = LoadOptions {
            sets: sets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..LoadOptions::default()
        };
        load_str(s, "t.toml", PathBuf::from("/"), &opts).map_err(|e| e.to_string())
    }

    #[test]
    fn a_set_names_a_variable_of_the_scenario() {
        let s = "name = \"x\"\n[vars]\nhost = \"h\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"echo ${host}:${port}\" }]\n";
        // `port` is used but not in [vars]: --set gives it.
        assert!(load_with_sets(s, &[("port", "1"), ("host", "x")]).is_ok());
        let e = load_with_sets(s, &[("port", "1"), ("prot", "1234")]).unwrap_err();
        assert_eq!(
            e,
            "t.toml:1:1: --set prot: the scenario has no variable `prot` (did you mean `port`?); it has: host, port"
        );
        let e = load_with_sets(s, &[("port", "1"), ("zzz", "1")]).unwrap_err();
        assert!(e.contains("no variable `zzz`; it has: host, port"), "{e}");
        // `$${x}` is a literal `${x}`, not a use of `x`.
        let s = "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"echo $${x}\" }]\n";
        let e = load_with_sets(s, &[("x", "1")]).unwrap_err();
        assert!(e.contains("no variable `x`; it has none"), "{e}");
    }

    /// The first error of a scenario made of `tail` after a tester header.
    fn tester_err(tail: &str) -> String {
        err_of(&format!("name = \"x\"\n[[tester]]\nname = \"t\"\n{tail}"))
    }

    #[test]
    fn tester_templates() {
        let s = load(
            r#"
name = "t"
[vars]
base = "700"
[[tester]]
name = "sentinel${index}"
count = 3
steps = [{ run = "serve ${base}${index} as ${tester}" }]
[[tester]]
name = "r-${item}"
each = ["a", 7]
timeout = "${base}ms"
steps = [{ expect = "${item} up" }]
"#,
        )
        .unwrap();
        let names: Vec<&str> = s.testers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["sentinel1", "sentinel2", "sentinel3", "r-a", "r-7"]);
        match &s.testers[1].steps[0].kind {
            StepKind::Run { command, .. } => assert_eq!(command, "serve ${base}2 as ${tester}"),
            k => panic!("{k:?}"),
        }
        let d = s.testers[4].defaults.as_ref().unwrap();
        assert_eq!(d.expect_timeout, Duration::from_millis(700));
        assert_eq!(d.barrier_timeout, Duration::from_millis(700));
        assert!(s.testers[0].defaults.is_none());
        let e = tester_err("count = 2\nsteps = []");
        assert!(
            e.starts_with("t.toml:3:8: the name of a tester template must use"),
            "{e}"
        );
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t${index}\"\ncount = 2\nsteps = [{ sleep = \"1\" }]");
        // One error for the template, not one per tester.
        assert_eq!(e.lines().count(), 1, "{e}");
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t${index}\"\ncount = 0\n");
        assert!(e.contains("the scenario's templates make none"), "{e}");
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t${index}\"\ncount = 1\nenv = { N = \"${item}\" }\n");
        assert!(
            e.starts_with("t.toml:5:7: `${item}` is defined in `each` templates only"),
            "{e}"
        );
        let e = tester_err("steps = [{ run = \"echo ${index}\" }]");
        assert!(
            e.contains("`${index}` is defined in tester templates only"),
            "{e}"
        );
        let e = tester_err("each = [1]\ncount = 1");
        assert!(e.contains("`count` or `each`, not both"), "{e}");
    }

    #[test]
    fn tester_defaults() {
        let s = load(
            "name = \"x\"\n[defaults]\nexpect_timeout = \"3s\"\n[[tester]]\nname = \"t\"\ndefaults = { barrier_timeout = \"40s\" }\n",
        )
        .unwrap();
        let d = s.testers[0].defaults.as_ref().unwrap();
        assert_eq!(d.expect_timeout, Duration::from_secs(3));
        assert_eq!(d.barrier_timeout, Duration::from_secs(40));
        let e = tester_err("defaults = { barier_timeout = \"1s\" }");
        assert!(e.contains("did you mean `barrier_timeout`"), "{e}");
    }

    #[test]
    fn variables_in_durations_and_signals() {
        let s = load_with_sets(
            "name = \"x\"\n[vars]\nd = \"2s\"\nsig = \"TERM\"\n[[tester]]\nname = \"t\"\nsteps = [{ sleep = \"${d}\" }, { terminate = \"${sig}\" }]\n",
            &[("d", "250ms")],
        )
        .unwrap();
        assert!(
            matches!(s.testers[0].steps[0].kind, StepKind::Sleep(d) if d == Duration::from_millis(250))
        );
        assert!(matches!(
            s.testers[0].steps[1].kind,
            StepKind::Terminate(Signal::Term)
        ));
        let e = tester_err("steps = [{ sleep = \"${run_dir}\" }]");
        assert!(
            e.starts_with("t.toml:4:20: `sleep`: undefined variable `${run_dir}`"),
            "{e}"
        );
        assert!(e.contains("read before the run starts"), "{e}");
    }

    #[test]
    fn step_lists_and_includes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("shared.toml"),
            "[steps]\nstart = [{ run = \"serve ${index}\" }, { include = \"ready\" }]\n",
        )
        .unwrap();
        let text = "name = \"x\"\ninclude = [\"shared.toml\"]\n[steps]\nready = [{ expect = \"up\" }]\n[[tester]]\nname = \"s${index}\"\ncount = 2\nsteps = [{ include = \"start\" }, { ok = \"done\" }]\n";
        let s = load_str(
            text,
            "x.toml",
            dir.path().to_path_buf(),
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(s.testers[1].steps.len(), 3);
        match &s.testers[1].steps[0].kind {
            StepKind::Run { command, .. } => assert_eq!(command, "serve 2"),
            k => panic!("{k:?}"),
        }
        // A mistake in an included file is reported in that file.
        std::fs::write(
            dir.path().join("shared.toml"),
            "[steps]\nstart = [{ rnu = \"x\" }]\n",
        )
        .unwrap();
        let e = load_str(
            text,
            "x.toml",
            dir.path().to_path_buf(),
            &LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        let shared = dir.path().join("shared.toml").display().to_string();
        assert!(
            e.starts_with(&format!("{shared}:2:12: unknown key `rnu`")),
            "{e}"
        );
        let e = err_of("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ include = \"nope\" }]");
        assert!(e.contains("no step list `nope`"), "{e}");
        let e = err_of("name = \"x\"\n[steps]\na = [{ include = \"a\" }]\n[[tester]]\nname = \"t\"\nsteps = [{ include = \"a\" }]");
        assert!(e.contains("includes itself"), "{e}");
    }

    #[test]
    fn free_ports_are_distinct_variables() {
        let s = load("name = \"x\"\nfree_ports = [\"a\", \"b\"]\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"serve ${a} ${b}\" }]\n").unwrap();
        let a: u16 = s
            .vars
            .iter()
            .find(|v| v.0 == "a")
            .unwrap()
            .1
            .parse()
            .unwrap();
        let b: u16 = s
            .vars
            .iter()
            .find(|v| v.0 == "b")
            .unwrap()
            .1
            .parse()
            .unwrap();
        assert!(a > 0 && b > 0 && a != b);
        let e = err_of("name = \"x\"\nfree_ports = [\"tester\"]\n[[tester]]\nname = \"t\"\n");
        assert!(
            e.starts_with("t.toml:2:15: `tester` is already a variable"),
            "{e}"
        );
    }

    #[test]
    fn unordered_expect_and_poll() {
        let s = load("name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ expect = [\"a\", \"(?P<n>\\\\d+)\"] }, { poll = \"check\", until = \"ok\", every = \"100ms\" }]\n").unwrap();
        assert!(
            matches!(&s.testers[0].steps[0].kind, StepKind::ExpectAll { patterns, .. } if patterns.len() == 2)
        );
        assert!(
            matches!(&s.testers[0].steps[1].kind, StepKind::Poll { every, .. } if *every == Duration::from_millis(100))
        );
        let e = tester_err("steps = [{ expect = [\"a\", \"(\"] }]");
        assert!(e.contains("bad regex"), "{e}");
        let e = tester_err("steps = [{ poll = \"x\", untill = \"y\" }]");
        assert!(e.contains("did you mean `until`"), "{e}");
    }

    #[test]
    fn values_across_testers_and_deadlocks() {
        let ok = "name = \"x\"\n[[tester]]\nname = \"srv\"\nsteps = [{ expect = 'port=(?P<port>\\d+)' }, { barrier = \"up\" }]\n[[tester]]\nname = \"cli\"\nsteps = [{ barrier = \"up\" }, { run = \"connect ${srv.port}\" }]\n";
        load(ok).unwrap();
        let early = ok.replace(
            "steps = [{ barrier = \"up\" }, { run = \"connect ${srv.port}\" }]",
            "steps = [{ run = \"connect ${srv.port}\" }, { barrier = \"up\" }]",
        );
        let e = err_of(&early);
        assert!(
            e.starts_with("t.toml:7:27: `${srv.port}` is used with no barrier"),
            "{e}"
        );
        let plain = ok.replace("${srv.port}", "${port}");
        assert!(err_of(&plain).contains("undefined variable `${port}`"));
        let dead = "name = \"x\"\n[[tester]]\nname = \"a\"\nsteps = [{ barrier = \"A\" }, { barrier = \"B\" }]\n[[tester]]\nname = \"b\"\nsteps = [{ barrier = \"B\" }, { barrier = \"A\" }]\n";
        let e = err_of(dead);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 2, "{e}");
        assert!(
            lines[0].starts_with("t.toml:4:41: these barriers must deadlock"),
            "{e}"
        );
        assert!(
            lines[1].starts_with("t.toml:7:41: these barriers must deadlock"),
            "{e}"
        );
    }

    #[test]
    fn expansion_sizes_are_bounded() {
        // v0 is 32 bytes, v_k = 8 x v_(k-1): v5 is exactly 1 MiB (allowed),
        // v6 (line 8) is 8 MiB.
        let mut s =
            String::from("name = \"x\"\n[vars]\nv0 = \"0123456789abcdef0123456789abcdef\"\n");
        for i in 1..=5 {
            s.push_str(&format!(
                "v{i} = \"{}\"\n",
                format!("${{v{}}}", i - 1).repeat(8)
            ));
        }
        let ok = format!("{s}[[tester]]\nname = \"t\"\nsteps = [{{ run = \"${{v5}}\" }}]\n");
        assert!(load(&ok).is_ok(), "{:?}", load(&ok).err());
        let e = err_of(&format!(
            "{s}v6 = \"{}\"\n[[tester]]\nname = \"t\"\n",
            "${v5}".repeat(8)
        ));
        assert!(
            e.starts_with(
                "t.toml:9:6: `v6` expands to 8 MiB, more than the 1 MiB an expanded value may have"
            ),
            "{e}"
        );
        // The classic bomb: ten doublings of ten, a few hundred bytes.
        let mut b = String::from("name = \"x\"\n[vars]\na = \"aaaaaaaaaa\"\n");
        let mut prev = "a".to_string();
        for i in 0..10 {
            let n = format!("b{i}");
            b.push_str(&format!(
                "{n} = \"{}\"\n",
                format!("${{{prev}}}").repeat(10)
            ));
            prev = n;
        }
        b.push_str("[[tester]]\nname = \"t\"\n");
        assert!(b.len() < 700, "{}", b.len());
        let e = err_of(&b);
        // b4 is 1e6 bytes (allowed), b5 (line 9) 1e7.
        assert!(e.starts_with("t.toml:9:6: `b5` expands to 9.5 MiB"), "{e}");
        // A step that expands too much, with the built-ins counted.
        let e = err_of(&format!(
            "{s}[[tester]]\nname = \"t\"\nsteps = [{{ run = \"${{v5}}${{run_dir}}\" }}]\n"
        ));
        assert!(
            e.starts_with(
                "t.toml:11:18: `run` expands to 1.0 MiB (1052672 bytes), more than the 1 MiB"
            ),
            "{e}"
        );
        // Together, the [vars] may not pass 4 MiB.
        let mut t = s.clone();
        for i in 0..4 {
            t.push_str(&format!("w{i} = \"${{v5}}\"\n"));
        }
        t.push_str("[[tester]]\nname = \"t\"\n");
        let e = err_of(&t);
        assert_eq!(
            e,
            "t.toml:11:6: the [vars] values expand to more than 4 MiB together (with `w2`)"
        );
    }

    #[test]
    fn tester_names_stay_in_the_run_directory() {
        for (name, msg) in [
            ("..", "bad tester name `..`: it names a directory"),
            (".", "bad tester name `.`: it names a directory"),
            ("a/b", "bad tester name `a/b`: use letters"),
            (
                "trace.dtrace",
                "tester `trace.dtrace` collides with the run directory's `trace.dtrace`",
            ),
            (
                "dtest.lock",
                "tester `dtest.lock` collides with the run directory's `dtest.lock`",
            ),
            ("master", "`master` is reserved"),
        ] {
            let e = err_of(&format!("name = \"x\"\n[[tester]]\nname = \"{name}\"\n"));
            assert!(e.starts_with(&format!("t.toml:3:8: {msg}")), "{e}");
        }
        let long = "x".repeat(129);
        let e = err_of(&format!("name = \"x\"\n[[tester]]\nname = \"{long}\"\n"));
        assert!(
            e.starts_with("t.toml:3:8: tester name too long (129 characters; at most 128)"),
            "{e}"
        );
        assert!(load(&format!(
            "name = \"x\"\n[[tester]]\nname = \"{}\"\n",
            "x".repeat(128)
        ))
        .is_ok());
        // A tester's working directory would be another's log.
        for ext in ["in", "out", "err"] {
            let e = err_of(&format!(
                "name = \"x\"\n[[tester]]\nname = \"t\"\n[[tester]]\nname = \"t.{ext}\"\n"
            ));
            assert!(
                e.starts_with(&format!(
                    "t.toml:5:8: tester `t.{ext}` collides with tester `t`'s log `t.{ext}`"
                )),
                "{e}"
            );
        }
        assert!(load("name = \"x\"\n[[tester]]\nname = \"t.in\"\n").is_ok());
        assert!(load("name = \"x\"\n[[tester]]\nname = \".hidden-ok\"\n").is_ok());
    }

    #[test]
    fn builtin_variables_cannot_be_replaced() {
        let e = tester_err("steps = [{ run = \"echo a\" }, { expect = 'a(?P<run_dir>.*)' }]\n");
        assert!(
            e.starts_with(
                "t.toml:4:43: the capture group `run_dir` has the name of a built-in variable"
            ),
            "{e}"
        );
        let e = tester_err("steps = [{ run = \"echo a\" }, { expect = 'x(?<tester>.)' }]\n");
        assert!(
            e.starts_with("t.toml:4:43: the capture group `tester`"),
            "{e}"
        );
        let e = tester_err("steps = [{ run = \"e\" }, { expect = '(?P<scenario_dir>.)' }]\n");
        assert!(
            e.starts_with("t.toml:4:37: the capture group `scenario_dir`"),
            "{e}"
        );
        let e = err_of("name = \"x\"\n[vars]\nrun_dir = \"/\"\n[[tester]]\nname = \"t\"\n");
        assert!(
            e.starts_with("t.toml:3:1: `run_dir` is a built-in variable"),
            "{e}"
        );
        let e = err_of("name = \"x\"\n[vars]\nd = \"/x/${tester}\"\n[[tester]]\nname = \"t\"\n");
        assert!(
            e.starts_with("t.toml:3:9: `${tester}` cannot be used in [vars]"),
            "{e}"
        );
        let o = LoadOptions {
            sets: vec![("tester".into(), "x".into())],
            ..Default::default()
        };
        let e = load_str(OK, "t.toml", PathBuf::from("/"), &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.toml:1:1: --set tester: `tester` is a built-in variable"),
            "{e}"
        );
        // --set replaces a [vars] entry, and the others keep their positions.
        let o = LoadOptions {
            sets: vec![("a".into(), "1".into())],
            ..Default::default()
        };
        let e = load_str(
            "name = \"x\"\n[vars]\na = \"1\"\nb = \"${nope}\"\n[[tester]]\nname = \"t\"\n",
            "t.toml",
            PathBuf::from("/"),
            &o,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("t.toml:4:6: undefined variable `${nope}`"),
            "{e}"
        );
    }

    #[test]
    fn pause_and_resume_steps() {
        let s = load(
            "name = \"x\"\n[[tester]]\nname = \"t\"\nsteps = [{ run = \"sleep 9\" }, { pause = true, timeout = \"1s\" }, { resume = true, name = \"go on\" }]\n",
        )
        .unwrap();
        let kinds: Vec<&str> = s.testers[0]
            .steps
            .iter()
            .map(|s| s.kind.keyword())
            .collect();
        assert_eq!(kinds, ["run", "pause", "resume"]);
        assert_eq!(s.testers[0].steps[1].timeout, Some(Duration::from_secs(1)));
        let e = tester_err("steps = [{ pause = false }]\n");
        assert!(
            e.starts_with("t.toml:4:20: `pause` takes `true` (`{ pause = true }`), not a boolean"),
            "{e}"
        );
        let e = tester_err("steps = [{ resume = \"now\" }]\n");
        assert!(e.starts_with("t.toml:4:21: `resume` takes `true`"), "{e}");
        let e = tester_err("steps = [{ pause = true, literal = true }]\n");
        assert!(
            e.starts_with("t.toml:4:26: unknown key `literal` in a `pause` step"),
            "{e}"
        );
        let e = tester_err("steps = [{ terminate = \"STOP\" }]\n");
        assert!(
            e.starts_with("t.toml:4:24: `terminate` cannot send STOP: a stopped command does not end; `pause` stops it"),
            "{e}"
        );
        let e = tester_err("steps = [{ terminate = \"SIGCONT\" }]\n");
        assert!(
            e.starts_with("t.toml:4:24: `terminate` cannot send CONT"),
            "{e}"
        );
        let e = tester_err("steps = [{ terminate = \"BOGUS\" }]\n");
        assert!(
            e.starts_with("t.toml:4:24: unknown signal `BOGUS`; expected one of: INT, TERM, KILL, HUP, QUIT, USR1, USR2"),
            "{e}"
        );
        // The Rust API is checked the same way.
        let sc = Scenario::new("x").tester(Tester::new("t").step(Step::terminate(Signal::Stop)));
        let p = sc.validate(&BUILTIN_VARS);
        assert!(
            p[0].message.contains("`terminate` cannot send STOP"),
            "{p:?}"
        );
    }

    #[test]
    fn inputs_are_read_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_input(Path::new("/dev/zero"), "scenario", MAX_INPUT).unwrap_err();
        assert_eq!(
            e.message,
            "cannot read the scenario: it is a character device, not a regular file"
        );
        let e = read_input(dir.path(), "spec", MAX_INPUT).unwrap_err();
        assert_eq!(
            e.message,
            "cannot read the spec: it is a directory, not a regular file"
        );
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_input(&fifo, "scenario", MAX_INPUT).unwrap_err();
        assert!(e.message.contains("it is a FIFO"), "{e:?}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; 101]).unwrap();
        let e = read_input(&big, "scenario", 100).unwrap_err();
        assert_eq!(
            e.message,
            "the scenario is bigger than 100 bytes (the limit of a scenario file)"
        );
        assert_eq!(read_input(&big, "scenario", 101).unwrap().len(), 101);
        let e = read_input(&dir.path().join("none"), "scenario", 100).unwrap_err();
        assert!(
            e.message
                .starts_with("cannot read the scenario: No such file"),
            "{e:?}"
        );
        // Not UTF-8: the position of the bad byte.
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, b"name = \"x\"\n# caf\xe9\n").unwrap();
        let e = load_file(&bad, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}:2:6: the scenario is not UTF-8 text (a byte that is not UTF-8 here)",
                bad.display()
            )
        );
        let e = load_file(Path::new("/dev/zero"), &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/dev/zero:1:1: cannot read the scenario: it is a character device, not a regular file"
        );
    }

    #[test]
    fn host_override() {
        let o = LoadOptions {
            hosts: vec![("t2".into(), "ftp://x".into())],
            ..Default::default()
        };
        let e = load_str(OK, "t.toml", PathBuf::from("/"), &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--host t2=ftp://x: tester `t2`: unknown host scheme"),
            "{e}"
        );
        let o = LoadOptions {
            hosts: vec![("zz".into(), "local".into())],
            ..Default::default()
        };
        let e = load_str(OK, "t.toml", PathBuf::from("/"), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no tester named `zz`"), "{e}");
    }
}
