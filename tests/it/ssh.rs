//! End-to-end tests of the ssh area.
