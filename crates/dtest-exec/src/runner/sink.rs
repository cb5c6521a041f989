//! Where a session's captured output goes: the tester's `.out`/`.err` logs
//! and the trace, the moment it arrives (the session's [`CaptureSink`]).
//! Also the run's record health: the first trace or log write error, which
//! fails the run instead of being dropped.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use dtest_trace::{ActorId, EventData, ExitStatus, Recorder, Stream};

use crate::session::capture::CaptureSink;

/// The first error writing the record (trace or logs) of a run.
#[derive(Debug, Default)]
pub(crate) struct Health(Mutex<Option<String>>);

impl Health {
    /// Notes `what` failed, if nothing failed before.
    pub(crate) fn fail(&self, what: impl FnOnce() -> String) {
        let mut h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if h.is_none() {
            *h = Some(what());
        }
    }

    /// The result of a trace write, its error noted.
    pub(crate) fn trace<T>(&self, r: dtest_trace::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(|| format!("the trace could not be written: {e}"));
                None
            }
        }
    }

    /// The first error, if any.
    pub(crate) fn error(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A tester's three logs: `.in` (what was sent), `.out`, `.err`.
pub(crate) struct Logs {
    tester: String,
    pub(crate) inp: Option<BufWriter<File>>,
    out: Option<BufWriter<File>>,
    err: Option<BufWriter<File>>,
    health: Arc<Health>,
}

impl Logs {
    pub(crate) fn open(dir: &Path, tester: &str, health: Arc<Health>) -> Logs {
        let f = |ext: &str| {
            let p = dir.join(format!("{tester}.{ext}"));
            match File::create(&p) {
                // Chunks of 64 KiB or more (a flood) bypass the buffer.
                Ok(f) => Some(BufWriter::with_capacity(64 << 10, f)),
                Err(e) => {
                    health.fail(|| format!("the log {} could not be created: {e}", p.display()));
                    None
                }
            }
        };
        Logs {
            tester: tester.to_string(),
            inp: f("in"),
            out: f("out"),
            err: f("err"),
            health,
        }
    }

    fn write(&mut self, ext: &str, bytes: &[u8]) {
        let w = match ext {
            "in" => &mut self.inp,
            "out" => &mut self.out,
            _ => &mut self.err,
        };
        if let Some(w) = w {
            if let Err(e) = w.write_all(bytes) {
                let t = &self.tester;
                self.health
                    .fail(|| format!("the log {t}.{ext} could not be written: {e}"));
            }
        }
    }

    /// Writes to `.in`.
    pub(crate) fn input(&mut self, bytes: &[u8]) {
        self.write("in", bytes);
    }

    /// Writes output of `stream` to `.out` or `.err`.
    pub(crate) fn output(&mut self, stream: Stream, bytes: &[u8]) {
        self.write(
            if stream == Stream::Stderr {
                "err"
            } else {
                "out"
            },
            bytes,
        );
    }

    /// A line of dtest's own in `.err`, flushed.
    pub(crate) fn note(&mut self, line: &str) {
        self.write("err", line.as_bytes());
        self.write("err", b"\n");
        if let Some(w) = &mut self.err {
            let _ = w.flush();
        }
    }

    pub(crate) fn flush(&mut self) {
        for (ext, w) in [
            ("in", &mut self.inp),
            ("out", &mut self.out),
            ("err", &mut self.err),
        ] {
            if let Some(w) = w {
                if let Err(e) = w.flush() {
                    let t = &self.tester;
                    self.health
                        .fail(|| format!("the log {t}.{ext} could not be written: {e}"));
                }
            }
        }
    }
}

/// A tester's logs, shared by its thread and its session's capture.
pub(crate) type SharedLogs = Arc<Mutex<Logs>>;

pub(crate) fn lock(l: &SharedLogs) -> std::sync::MutexGuard<'_, Logs> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

/// The capture sink of one tester's session.
pub(crate) struct TesterSink {
    pub(crate) rec: Arc<Recorder>,
    pub(crate) tester: ActorId,
    pub(crate) session: ActorId,
    pub(crate) target: String,
    /// `record_output`: whether output goes to the logs and the trace.
    pub(crate) record: bool,
    pub(crate) logs: SharedLogs,
    pub(crate) health: Arc<Health>,
}

impl CaptureSink for TesterSink {
    fn banner(&mut self, stream: Stream, bytes: &[u8]) {
        lock(&self.logs).output(stream, bytes);
    }

    fn opened(&mut self) {
        let r = self.rec.local(
            self.session,
            EventData::Open {
                target: self.target.clone(),
            },
        );
        self.health.trace(r);
    }

    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        if !self.record {
            return;
        }
        lock(&self.logs).output(stream, bytes);
        let r = self.rec.output(self.session, self.tester, stream, bytes);
        self.health.trace(r);
    }

    fn exit(&mut self, status: &ExitStatus) {
        let r = self.rec.message(
            self.session,
            self.tester,
            EventData::Exit {
                status: status.clone(),
            },
        );
        self.health.trace(r);
    }
}
