//! End-to-end tests of the msc area.
