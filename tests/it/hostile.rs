//! End-to-end tests of issue 11 (hostile).
