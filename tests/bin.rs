//! The `dtest` binary, built inside the test package so the integration tests
//! always run the current code (`CARGO_BIN_EXE_dtest-under-test`).

fn main() -> std::process::ExitCode {
    dtest_cli::main()
}
