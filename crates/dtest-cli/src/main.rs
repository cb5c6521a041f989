//! The `dtest` binary; everything is in the `dtest_cli` library.

fn main() -> std::process::ExitCode {
    dtest_cli::main()
}
