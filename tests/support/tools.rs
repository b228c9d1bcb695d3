//! Tools the tests run that are not Rust: the Python of `.venv`, which the test command
//! (`scripts/ensure-deps.sh`) fills from `scripts/requirements-test.txt`.

use std::path::PathBuf;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// A program installed in `.venv/bin`, such as `python` or `checkov`.
pub fn venv_tool(name: &str) -> PathBuf {
    let tool = repo_root().join(".venv").join("bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: run ./scripts/ensure-deps.sh (the test command does) to install the \
         test tools into .venv",
        tool.display()
    );
    tool
}
