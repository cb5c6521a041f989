//! Runner unit tests on the mock transport (data-driven).
