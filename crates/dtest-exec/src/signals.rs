//! SIGINT and SIGTERM handling for the binary: the handler only records the
//! signal; the run loop notices it within 100 ms, aborts every tester,
//! stops every command, completes the TAP output and finishes the trace.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::session::Signal;

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    RECEIVED.store(sig, Ordering::SeqCst);
}

/// Installs the SIGINT and SIGTERM handlers (once per process; the CLI
/// calls it before a run). A second signal of the same kind is absorbed
/// too: cleanup always completes.
pub fn install() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores an
        // atomic; sigaction is given valid pointers.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The signal received since [`install`], if any.
pub fn received() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::from_number(n),
    }
}
