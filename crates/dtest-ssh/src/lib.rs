//! SSH transports for dtest sessions.
//!
//! Two [`Transport`](dtest_exec::session::Transport)s put a tester's shell
//! on a remote host; everything above the transport (the shell protocol,
//! expect, signals escalation, logs, trace) is the same as for a local
//! session:
//!
//! * [`SshTransport`] (`ssh://[user@]host[:port]`) speaks SSH itself through
//!   libssh2. Testers on one (user, host, port) with the same security
//!   settings ([`native::PoolKey`]) share one TCP connection; one I/O thread
//!   per connection owns the libssh2 session and multiplexes the testers'
//!   channels (see [`conn`]).
//! * [`OpenSshTransport`] (`openssh://[user@]alias`) runs the system `ssh`
//!   client under a local pseudo-terminal, so everything the user's
//!   ssh_config does (ProxyJump, ControlMaster, certificates) works, and
//!   X11 forwarding too.
//!
//! Both start the remote shell so that it is a session leader whose id is
//! known, with a watchdog that stops the session if dtest dies, and end a
//! session by killing every process of that session and every process of
//! the tester that left it, found by the marks of its environment
//! (`DTEST_RUN_ID`, `DTEST_TESTER`), which they report ([`remote`]).
//!
//! ```
//! let mut reg = dtest_exec::session::TransportRegistry::with_local();
//! dtest_ssh::register(&mut reg);
//! assert_eq!(reg.schemes(), ["local", "openssh", "ssh"]);
//! assert!(reg.check("ssh://bob@aurore:2222").is_ok());
//! assert!(reg.check("ssh://aurore:x").is_err());
//! ```

pub mod config;
pub mod conn;
pub mod hostkey;
pub mod native;
pub mod openssh;
pub mod remote;

use std::sync::Arc;

pub use native::{SshChannel, SshTransport};
pub use openssh::OpenSshTransport;

/// Registers the `ssh` and `openssh` transports.
pub fn register(reg: &mut dtest_exec::session::TransportRegistry) {
    reg.register(Arc::new(SshTransport::new()));
    reg.register(Arc::new(OpenSshTransport::new()));
}
