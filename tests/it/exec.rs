//! End-to-end tests of the exec area.
