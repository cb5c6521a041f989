//! A scripted [`Channel`] for unit tests of the layers above the transport.
//!
//! The mock has no shell: a handler closure receives every write and returns
//! the output the "shell" produces in reply, queued as chunks of at most
//! `chunk` bytes (so tests can split output, and markers, anywhere). Its
//! [`Output`] half reads that queue from another thread, as a capture does.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use dtest_trace::{ExitStatus, Stream};

use super::{Channel, FileInfo, Output, ReadEvent, Result, SessionError, Signal, Until};

type Handler = Box<dyn FnMut(&[u8]) -> Vec<(Stream, Vec<u8>)> + Send>;
type SignalHandler = Box<dyn FnMut(Signal) -> Vec<(Stream, Vec<u8>)> + Send>;

#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<(Stream, Vec<u8>)>,
    closed: Option<Option<ExitStatus>>,
}

#[derive(Debug, Default)]
struct SharedQueue {
    q: Mutex<Queue>,
    cv: Condvar,
}

impl SharedQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A scripted channel: writes go to a handler, its replies come back as
/// output chunks.
pub struct MockChannel {
    handler: Handler,
    queue: Arc<SharedQueue>,
    output_taken: bool,
    chunk: usize,
    pty: bool,
    /// Every byte written, in order.
    pub written: Arc<Mutex<Vec<u8>>>,
    /// Every signal delivered, in order.
    pub signals: Arc<Mutex<Vec<Signal>>>,
    /// Called with each signal; its replies are queued as output (a command
    /// that prints on SIGINT, the end marker of a killed command).
    on_signal: Option<SignalHandler>,
}

impl std::fmt::Debug for MockChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockChannel")
            .field("pty", &self.pty)
            .finish_non_exhaustive()
    }
}

impl MockChannel {
    /// A mock whose replies are produced by `handler` and delivered in chunks
    /// of at most `chunk` bytes.
    pub fn new(
        pty: bool,
        chunk: usize,
        handler: impl FnMut(&[u8]) -> Vec<(Stream, Vec<u8>)> + Send + 'static,
    ) -> MockChannel {
        MockChannel {
            handler: Box::new(handler),
            queue: Arc::new(SharedQueue::default()),
            output_taken: false,
            chunk: chunk.max(1),
            pty,
            written: Arc::default(),
            signals: Arc::default(),
            on_signal: None,
        }
    }

    /// Sets what the "shell" prints when a signal is delivered.
    pub fn on_signal(
        mut self,
        f: impl FnMut(Signal) -> Vec<(Stream, Vec<u8>)> + Send + 'static,
    ) -> MockChannel {
        self.on_signal = Some(Box::new(f));
        self
    }

    /// Queues output as if the shell had printed it unprompted.
    pub fn push_output(&self, stream: Stream, bytes: &[u8]) {
        let mut q = self.queue.lock();
        for c in bytes.chunks(self.chunk) {
            q.chunks.push_back((stream, c.to_vec()));
        }
        self.queue.cv.notify_all();
    }

    /// Ends the "shell" with `status`: its output half reports
    /// [`ReadEvent::Closed`] once the queue is read.
    pub fn end(&self, status: Option<ExitStatus>) {
        let mut q = self.queue.lock();
        if q.closed.is_none() {
            q.closed = Some(status);
        }
        self.queue.cv.notify_all();
    }
}

struct MockOutput {
    queue: Arc<SharedQueue>,
}

impl Output for MockOutput {
    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        let mut q = self.queue.lock();
        loop {
            if let Some((stream, mut data)) = q.chunks.pop_front() {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                if n < data.len() {
                    data.drain(..n);
                    q.chunks.push_front((stream, data));
                }
                return Ok(ReadEvent::Data { stream, n });
            }
            if let Some(status) = &q.closed {
                return Ok(ReadEvent::Closed {
                    status: status.clone(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(ReadEvent::Timeout);
            }
            q = self
                .queue
                .cv
                .wait_timeout(q, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

impl Channel for MockChannel {
    fn target(&self) -> String {
        "mock".into()
    }

    fn is_pty(&self) -> bool {
        self.pty
    }

    fn take_output(&mut self) -> Result<Box<dyn Output>> {
        if std::mem::replace(&mut self.output_taken, true) {
            return Err(SessionError::Other("the output was already taken".into()));
        }
        Ok(Box::new(MockOutput {
            queue: Arc::clone(&self.queue),
        }))
    }

    fn write(&mut self, bytes: &[u8], _until: &Until) -> Result<()> {
        if self.queue.lock().closed.is_some() {
            return Err(SessionError::Closed("mock closed".into()));
        }
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        for (s, b) in (self.handler)(bytes) {
            self.push_output(s, &b);
        }
        Ok(())
    }

    fn signal(&mut self, sig: Signal) -> Result<Option<usize>> {
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sig);
        if let Some(f) = &mut self.on_signal {
            for (s, b) in f(sig) {
                self.push_output(s, &b);
            }
        }
        Ok(None)
    }

    fn put(&mut self, local: &Path, remote: &str, _until: &Until) -> Result<FileInfo> {
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: remote.to_string(),
            size: 0,
            sha256: [0; 32],
        })
    }

    fn get(&mut self, remote: &str, local: &Path, _until: &Until) -> Result<FileInfo> {
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: remote.to_string(),
            size: 0,
            sha256: [0; 32],
        })
    }

    fn close(&mut self, _grace: Duration) -> Result<Option<ExitStatus>> {
        self.end(Some(ExitStatus::Code(0)));
        Ok(Some(ExitStatus::Code(0)))
    }
}
