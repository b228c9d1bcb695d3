//! The `flotilla` binary; everything lives in the `flotilla_cli` library.

fn main() -> std::process::ExitCode {
    flotilla_cli::main()
}
