//! dtest's end-to-end tests: one integration-test binary, one module per area.
//! They run the real `dtest` binary and real peer tools (sshd, mscgen,
//! xmllint, rsvg-convert, Perl's TAP::Parser), on loopback only.

mod capture;
mod check;
mod common;
mod exec;
mod hostile;
mod lifecycle;
mod msc;
mod plan;
mod report;
mod scenario;
mod sentinel;
mod ssh;
mod ssh_transport;
mod sshd;
mod status;
mod trace;
