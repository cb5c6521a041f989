//! End-to-end tests of the check area.
