//! A scripted [`Channel`] for unit tests of the layers above the transport.
//!
//! The mock has no shell: a handler closure receives every write and returns
//! the output the "shell" produces in reply, queued as chunks of at most
//! `chunk` bytes (so tests can split output, and markers, anywhere).

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use dtest_trace::{ExitStatus, Stream};

use super::{Channel, FileInfo, ReadEvent, Result, SessionError, Signal};

type Handler = Box<dyn FnMut(&[u8]) -> Vec<(Stream, Vec<u8>)> + Send>;

/// A scripted channel: writes go to a handler, its replies come back as
/// output chunks.
pub struct MockChannel {
    handler: Handler,
    queue: VecDeque<(Stream, Vec<u8>)>,
    chunk: usize,
    pty: bool,
    /// Every byte written, in order.
    pub written: Vec<u8>,
    /// Every signal delivered, in order.
    pub signals: Vec<Signal>,
    closed: bool,
}

impl std::fmt::Debug for MockChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockChannel")
            .field("pty", &self.pty)
            .field("queued", &self.queue.len())
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
            queue: VecDeque::new(),
            chunk: chunk.max(1),
            pty,
            written: Vec::new(),
            signals: Vec::new(),
            closed: false,
        }
    }

    /// Queues output as if the shell had printed it unprompted.
    pub fn push_output(&mut self, stream: Stream, bytes: &[u8]) {
        for c in bytes.chunks(self.chunk) {
            self.queue.push_back((stream, c.to_vec()));
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

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.closed {
            return Err(SessionError::Closed("mock closed".into()));
        }
        self.written.extend_from_slice(bytes);
        for (s, b) in (self.handler)(bytes) {
            self.push_output(s, &b);
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<ReadEvent> {
        if let Some((stream, mut data)) = self.queue.pop_front() {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            if n < data.len() {
                data.drain(..n);
                self.queue.push_front((stream, data));
            }
            return Ok(ReadEvent::Data { stream, n });
        }
        if self.closed {
            return Ok(ReadEvent::Closed {
                status: Some(ExitStatus::Code(0)),
            });
        }
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
        Ok(ReadEvent::Timeout)
    }

    fn signal(&mut self, sig: Signal) -> Result<()> {
        self.signals.push(sig);
        Ok(())
    }

    fn put(&mut self, local: &Path, remote: &str) -> Result<FileInfo> {
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: remote.to_string(),
            size: 0,
            sha256: [0; 32],
        })
    }

    fn get(&mut self, remote: &str, local: &Path) -> Result<FileInfo> {
        Ok(FileInfo {
            local: local.to_path_buf(),
            remote: remote.to_string(),
            size: 0,
            sha256: [0; 32],
        })
    }

    fn close(&mut self, _grace: Duration) -> Result<Option<ExitStatus>> {
        self.closed = true;
        Ok(Some(ExitStatus::Code(0)))
    }
}
