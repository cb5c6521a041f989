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
use crate::session::{HostUrl, Signal, TransportRegistry};

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

/// Variables every scenario has.
pub const BUILTIN_VARS: [&str; 3] = ["run_dir", "scenario_dir", "tester"];

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
        errors: Vec::new(),
        spans: HashMap::new(),
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
    sc.scenario_dir = scenario_dir;
    l.scenario(doc.as_table(), &mut sc, opts);
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
    errors: Vec<ScenarioError>,
    spans: HashMap<Where, Range<usize>>,
    /// Per `[vars]` entry (in `Scenario::vars` order): its value's span,
    /// or the name of a `--set` entry.
    var_spans: Vec<Result<Range<usize>, String>>,
    option_spans: Vec<Vec<(String, Option<Range<usize>>)>>,
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
    "defaults",
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
    "host",
    "shell",
    "pty",
    "cwd",
    "env",
    "record_output",
    "steps",
];
/// The step keywords of scenario files, from the step table.
fn step_kinds() -> Vec<&'static str> {
    crate::steps::STEPS.iter().map(|d| d.keyword).collect()
}

impl<'a> Loader<'a> {
    fn pos(&self, at: usize) -> (usize, usize) {
        line_col(self.text, at)
    }

    fn err(&mut self, at: usize, message: impl Into<String>) {
        let (line, col) = self.pos(at);
        self.errors.push(ScenarioError {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        });
    }

    fn err_span(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.err(span.map(|s| s.start).unwrap_or(0), message)
    }

    fn problem(&mut self, p: &Problem) {
        let span = match &p.at {
            Where::Var(i) => match self.var_spans.get(*i) {
                Some(Ok(s)) => Some(s.clone()),
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
        let mut at = span.as_ref().map(|s| s.start).unwrap_or(0);
        if let (Some(off), Some(s)) = (p.offset, &span) {
            let raw = &self.text[s.start.min(self.text.len())..s.end.min(self.text.len())];
            let q = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
                3
            } else if raw.starts_with('"') || raw.starts_with('\'') {
                1
            } else {
                0
            };
            at = (s.start + q + off).min(s.end);
        }
        let (line, col) = self.pos(at);
        self.errors.push(ScenarioError {
            file: self.file.to_string(),
            line,
            col,
            message: p.message.clone(),
        });
    }

    fn check_keys(&mut self, t: &dyn TableLike, allowed: &[&str], what: &str) {
        for (k, _) in t.iter() {
            if !allowed.contains(&k) {
                let span = t.key(k).and_then(|k| k.span());
                let hint = closest(k, allowed)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
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
            Some(s) => Some(s.to_string()),
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

    fn scenario(&mut self, root: &toml_edit::Table, sc: &mut Scenario, opts: &LoadOptions) {
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
                let hint = closest(k, &cands)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
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
            self.var_spans.push(Err(k.clone()));
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
        for (ti, t) in testers.into_iter().enumerate() {
            let tester = self.tester(ti, t, sc.testers.len());
            sc.testers.push(tester);
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
        for (ti, t) in sc.testers.iter().enumerate() {
            let local = HostUrl::parse(&t.host)
                .map(|u| u.scheme == "local")
                .unwrap_or(false);
            if local {
                let spans = self.option_spans.get(ti).cloned().unwrap_or_default();
                for (k, span) in spans {
                    let hint = closest(&k, TESTER_KEYS)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    self.err_span(
                        span,
                        format!(
                            "unknown key `{k}` in a tester{hint}; expected one of: {} (other keys are options of remote hosts)",
                            TESTER_KEYS.join(", ")
                        ),
                    );
                }
            }
            if t.host.contains("${") {
                continue;
            }
            if let Err(e) = registry.check(&t.host) {
                let from_cli = opts.hosts.iter().any(|(n, _)| *n == t.name);
                if from_cli {
                    self.err(
                        0,
                        format!("--host {}={}: tester `{}`: {e}", t.name, t.host, t.name),
                    );
                } else {
                    let sp = self.spans.get(&Where::Tester(ti, "host")).cloned();
                    self.err_span(sp, format!("tester `{}`: {e}", t.name));
                }
            }
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

    fn tester(&mut self, ti: usize, t: &dyn TableLike, _n: usize) -> Tester {
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
                    tester.options.insert(k.to_string(), val);
                    extra.push((k.to_string(), span));
                }
                None => {
                    let hint = closest(k, TESTER_KEYS)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
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
        self.spans
            .insert(Where::Tester(ti, ""), whole.clone().unwrap_or(0..0));
        for (k, v) in t.iter() {
            let key: &'static str = TESTER_KEYS.iter().find(|x| **x == k).copied().unwrap_or("");
            if let Some(s) = span_of(v) {
                self.spans.insert(Where::Tester(ti, key), s);
            }
        }
        match t.get("name") {
            Some(v) => tester.name = self.string(v, "name").unwrap_or_default(),
            None => self.err_span(whole.clone(), "tester without `name`"),
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
        let steps: Vec<(&dyn TableLike, Option<Range<usize>>)> = match t.get("steps") {
            None => Vec::new(),
            Some(Item::Value(Value::Array(a))) => {
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
            Some(Item::ArrayOfTables(a)) => {
                a.iter().map(|t| (t as &dyn TableLike, t.span())).collect()
            }
            Some(other) => {
                self.err_span(span_of(other), "`steps` must be an array of tables");
                Vec::new()
            }
        };
        for (si, (st, span)) in steps.into_iter().enumerate() {
            if let Some(s) = self.step(ti, si, st, span) {
                tester.steps.push(s);
            }
        }
        tester
    }

    fn step(
        &mut self,
        ti: usize,
        si: usize,
        t: &dyn TableLike,
        span: Option<Range<usize>>,
    ) -> Option<Step> {
        self.spans
            .insert(Where::Step(ti, si, ""), span.clone().unwrap_or(0..0));
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
                self.spans.insert(Where::Step(ti, si, key), s);
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
            "expect" => StepKind::Expect {
                pattern: self.string(v, kind)?,
                literal: get_bool(self, "literal").unwrap_or(false),
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
