//! End-to-end tests of the trace area.
