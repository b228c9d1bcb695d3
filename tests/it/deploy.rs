//! deploy/k8s and the Dockerfile, checked offline with the tools operators' pipelines
//! use: kustomize renders every overlay, kubernetes-validate accepts the result in strict
//! mode, checkov and hadolint find nothing, and the PrometheusRule matches the rules
//! promtool tests. Where a container engine works, the image is built and run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flotilla_tests::{repo_root, venv_tool};

/// Every kustomization a user can apply, and the base they share.
const KUSTOMIZATIONS: [&str; 4] = ["base", "overlays/dev", "overlays/keda", "overlays/hpa"];

fn k8s_dir() -> PathBuf {
    repo_root().join("deploy/k8s")
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// What a command printed, for failure messages.
fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn has_kubectl() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Renders each kustomization into `dir`, one file each; `None` when kubectl is absent.
fn render_all(dir: &Path) -> Option<Vec<PathBuf>> {
    if !has_kubectl() {
        eprintln!("kubectl not found: deploy/k8s was not rendered or validated here");
        return None;
    }
    let rendered = KUSTOMIZATIONS
        .iter()
        .map(|name| {
            let output = run(Command::new("kubectl")
                .arg("kustomize")
                .arg(k8s_dir().join(name)));
            assert!(
                output.status.success(),
                "{name} does not render: {}",
                printed(&output)
            );
            let file = dir.join(format!("{}.yaml", name.replace('/', "-")));
            std::fs::write(&file, &output.stdout).expect("write the rendering");
            file
        })
        .collect();
    Some(rendered)
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn every_overlay_renders_and_passes_strict_schema_validation() {
    let dir = tempfile::tempdir().expect("dir");
    let Some(rendered) = render_all(dir.path()) else {
        return;
    };
    for file in &rendered {
        let output = run(Command::new(venv_tool("kubernetes-validate"))
            .arg("--strict")
            .arg(file));
        let report = printed(&output);
        assert!(output.status.success(), "{}: {report}", file.display());
        // Custom resources (KEDA's, the Prometheus Operator's) have no schema here; every
        // built-in kind must have been checked, not skipped.
        for line in report
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
        {
            assert!(
                ["keda.sh/", "monitoring.coreos.com/"]
                    .iter()
                    .any(|group| line.contains(group)),
                "a built-in kind went unchecked: {line}"
            );
        }
    }
    let dev = std::fs::read_to_string(dir.path().join("overlays-dev.yaml")).expect("read");
    for must in [
        "kind: StatefulSet",
        "- --appendonly",
        "- everysec",
        "- noeviction",
        "kind: PodDisruptionBudget",
    ] {
        assert!(dev.contains(must), "the dev overlay lacks {must:?}");
    }
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn checkov_passes_the_manifests_and_the_dockerfile() {
    let dir = tempfile::tempdir().expect("dir");
    let mut scans = vec![("dockerfile", vec![repo_root().join("Dockerfile")])];
    if let Some(rendered) = render_all(dir.path()) {
        scans.push(("kubernetes", rendered));
    }
    for (framework, files) in scans {
        let mut command = Command::new(venv_tool("checkov"));
        command
            .args(["--framework", framework, "--compact", "--quiet"])
            // Offline: nothing to fetch from a vendor's service.
            .arg("--skip-download")
            .env("BC_SKIP_MAPPING", "TRUE");
        for file in &files {
            command.arg("-f").arg(file);
        }
        let output = run(&mut command);
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "checkov ({framework}) failed:\n{report}"
        );
        assert!(
            report.contains("Failed checks: 0") && !report.contains("Passed checks: 0,"),
            "checkov ({framework}) checked nothing or failed:\n{report}"
        );
    }
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn hadolint_passes_the_dockerfile() {
    let output = run(Command::new(venv_tool("hadolint")).arg(repo_root().join("Dockerfile")));
    assert!(output.status.success(), "{}", printed(&output));
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn the_prometheus_rule_is_the_rules_promtool_tests() {
    let output =
        run(Command::new(k8s_dir().join("components/monitoring/generate.sh")).arg("--check"));
    assert!(output.status.success(), "{}", printed(&output));
}

#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs tools beyond redis-server: ./scripts/test.sh runs it"
)]
#[test]
fn the_image_builds_and_runs_where_a_container_engine_works() {
    let engine_works = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !engine_works {
        eprintln!(
            "no working container engine (`docker info` failed): the image was not built; \
             hadolint and checkov checked its Dockerfile"
        );
        return;
    }
    let tag = "flotilla:test";
    let build = run(Command::new("docker")
        .args(["build", "-t", tag])
        .arg(repo_root()));
    assert!(build.status.success(), "{}", printed(&build));
    let version = run(Command::new("docker").args(["run", "--rm", tag, "--version"]));
    assert!(version.status.success(), "{}", printed(&version));
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("flotilla "),
        "{}",
        printed(&version)
    );
}

#[tokio::test]
async fn the_pods_settings_file_is_accepted_by_flotilla() {
    let env = crate::util::Env::start().await;
    let output = run(Command::new(env!("CARGO_BIN_EXE_flotilla-it"))
        .arg("--config")
        .arg(k8s_dir().join("base/flotilla.toml"))
        .args(["enqueue", "--type", "noop", "--queue", "critical"])
        .env("FLOTILLA_REDIS_URL", env.url()));
    assert!(output.status.success(), "{}", printed(&output));
}
