//! The `flotilla` binary under the name the integration tests spawn.

fn main() -> std::process::ExitCode {
    flotilla_cli::main()
}
