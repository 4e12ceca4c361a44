//! What an operator deploys validates offline: the compose file with
//! docker-compose, the Kubernetes overlays against the Kubernetes schemas
//! and KEDA's CRD (`scripts/validate-deploy.py`), and a broken overlay is
//! caught.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn validate(args: &[&str]) -> (bool, String) {
    let python = std::env::var("AI_AGENTS_DEPLOY_PYTHON").expect(
        "AI_AGENTS_DEPLOY_PYTHON is not set: run the tests through `./dev test`, which installs the validators",
    );
    let output = Command::new(python)
        .arg(root().join("scripts/validate-deploy.py"))
        .args(args)
        .output()
        .expect("run scripts/validate-deploy.py");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn the_compose_file_the_dockerfile_and_every_overlay_are_valid() {
    let (ok, output) = validate(&[]);
    assert!(ok, "{output}");
    assert!(
        output.contains("valid: compose, Dockerfile, 2 overlays"),
        "{output}"
    );
}

#[test]
fn a_broken_overlay_is_refused_with_the_reason() {
    // Kustomize takes only relative paths to a base: the overlay sits beside it.
    let dir = tempfile::Builder::new()
        .prefix(".test-overlay-")
        .tempdir_in(root().join("deploy/k8s"))
        .unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n  - ../base\npatchesStrategicMerge:\n  - broken.yaml\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: writeback\nspec:\n  replicas: two\n  template:\n    spec:\n      terminationGracePeriodSeconds: 5\n---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: llm-enhancer\nspec:\n  minReplicaCount: many\n",
    )
    .unwrap();
    let (ok, output) = validate(&["--overlay", dir.path().to_str().unwrap()]);
    assert!(!ok, "a broken overlay passed: {output}");
    assert!(
        output.contains("Deployment/writeback: 'two' is not of type"),
        "{output}"
    );
    assert!(
        output.contains("ScaledObject/llm-enhancer: 'many' is not of type"),
        "{output}"
    );
    assert!(output.contains("does not outlast the ack wait"), "{output}");
    assert!(output.contains("ScaledObject/llm-enhancer"), "{output}");
}
