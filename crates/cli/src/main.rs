//! The `flotilla` binary; everything lives in the `flotilla_cli` library.

/// A worker allocates and frees small buffers for every job it reads, runs and reports;
/// glibc's allocator spent about a quarter of the worker's time on them, jemalloc under
/// a tenth.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    flotilla_cli::main()
}
