#!/usr/bin/env python3
"""Validates what an operator deploys, offline.

- deploy/compose/docker-compose.yml with `docker-compose config` (every
  service there, secrets required), and the Dockerfile's runtime rules;
- each Kubernetes overlay rendered with `kubectl kustomize`, every native
  object against the Kubernetes schemas (kubernetes-validate, strict), every
  KEDA ScaledObject against KEDA's CRD schema (deploy/k8s/crds/), and the
  rules this project keeps: probes, requests and limits, non-root, a
  PodDisruptionBudget per Deployment, a ScaledObject per stage on its own
  consumer (and no replica count beside it), a termination grace period
  longer than the consumer's ack wait, every image by registry and tag,
  NATS's address from a Secret, and an ingress that drains before it stops;
- the NATS chart's values: clients sign in, the server's release pinned;
  and the NATS NetworkPolicy against the Kubernetes schemas.

  scripts/validate-deploy.py                     everything
  scripts/validate-deploy.py --overlay DIR ...   only these overlays

Needs docker-compose, kubectl and kubernetes-validate (scripts/stack.sh
installs them). Exits non-zero with one line per problem.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S_VERSION = "1.30.0"
STAGES = {"context-gatherer", "llm-enhancer", "writeback", "incident-correlator", "incident-notifier"}
COMPOSE_SERVICES = {
    "nats", "postgres", "migrate", "nats-bootstrap", "ingress", "context-gatherer",
    "llm-enhancer", "writeback", "incident-correlator", "incident-notifier", "history-projector", "embedder", "admin",
    "otel-collector", "prometheus", "grafana", "tempo",
}
problems = []


def problem(text):
    problems.append(text)


def check_compose():
    compose = os.path.join(ROOT, "deploy/compose/docker-compose.yml")
    env = dict(os.environ)
    with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as secrets:
        secrets.write("\n".join([
            "AI_AGENTS_SECRET_KEYS=k1:AAAA", "AI_AGENTS_OWNER_DB_PASSWORD=x",
            "AI_AGENTS_APP_DB_PASSWORD=x", "AI_AGENTS_ADMIN_DB_PASSWORD=x",
            "AI_AGENTS_ADMIN_TOKEN=x", "GRAFANA_ADMIN_PASSWORD=x",
            "AI_AGENTS_NATS_PASSWORD=x", ""]))
    base = ["docker-compose", "-f", compose]
    run = subprocess.run(base + ["--env-file", secrets.name, "config", "--services"],
                         capture_output=True, text=True, env=env)
    if run.returncode != 0:
        problem(f"docker-compose config: {run.stderr.strip()}")
    else:
        missing = COMPOSE_SERVICES - set(run.stdout.split())
        if missing:
            problem(f"compose: services missing: {sorted(missing)}")
    run = subprocess.run(base + ["--env-file", secrets.name, "--profile", "multilingual", "config", "--services"],
                         capture_output=True, text=True, env=env)
    if run.returncode != 0 or "e5" not in run.stdout.split():
        problem(f"compose: the multilingual profile must add the e5 service {run.stderr.strip()}")
    empty = tempfile.NamedTemporaryFile("w", suffix=".env", delete=False)
    empty.close()
    run = subprocess.run(base + ["--env-file", empty.name, "config", "-q"],
                         capture_output=True, text=True, env={"PATH": env["PATH"]})
    if run.returncode == 0:
        problem("compose: starts without its secrets (AI_AGENTS_SECRET_KEYS and passwords must be required)")
    with open(os.path.join(ROOT, "deploy/compose/nats.conf")) as conf:
        nats_conf = conf.read()
    if "sync_interval: always" not in nats_conf:
        problem("compose: nats.conf must set sync_interval: always")
    if "authorization {" not in nats_conf:
        problem("compose: nats.conf must admit only named users (authorization)")
    run = subprocess.run(base + ["--env-file", secrets.name, "config"],
                         capture_output=True, text=True, env=env)
    if run.returncode == 0:
        # Only the ingress is for the world; everything else on loopback.
        for name, service in yaml.safe_load(run.stdout)["services"].items():
            for port in service.get("ports", []):
                loopback = (port.get("host_ip") == "127.0.0.1" if isinstance(port, dict)
                            else str(port).startswith("127.0.0.1:"))
                if name != "ingress" and not loopback:
                    problem(f"compose: {name} publishes {port} beyond this host")
    with open(os.path.join(ROOT, "Dockerfile")) as dockerfile:
        text = dockerfile.read()
    for stage in ("runtime", "e5"):
        body = text.split(f"AS {stage}\n", 1)[-1].split("\nFROM ", 1)[0]
        if "USER 10001" not in body:
            problem(f"Dockerfile: the {stage} stage must run as the unprivileged user 10001")
        if "HEALTHCHECK" not in body:
            problem(f"Dockerfile: the {stage} stage needs a HEALTHCHECK")


def check_nats():
    with open(os.path.join(ROOT, "deploy/k8s/nats-values.yaml")) as f:
        values = yaml.safe_load(f)
    auth = values.get("config", {}).get("merge", {}).get("authorization", {})
    if not (auth.get("user") and auth.get("password")) and not auth.get("token"):
        problem("nats-values.yaml: config.merge.authorization must admit only a named user (or token)")
    if not values.get("container", {}).get("image", {}).get("tag"):
        problem("nats-values.yaml: container.image.tag must pin the server's release")
    with open(os.path.join(ROOT, "deploy/k8s/nats-network-policy.yaml")) as f:
        for doc in yaml.safe_load_all(f):
            try:
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                problem(f"nats-network-policy.yaml: {err.message} at {'/'.join(map(str, err.path))}")


def pinned(image):
    """An image named by its registry and a tag (not `latest`) or digest."""
    if "@sha256:" in image:
        return "." in image.split("/")[0] or ":" in image.split("/")[0]
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or tag == "latest":
        return False
    first = name.split("/")[0]
    return "/" in name and ("." in first or ":" in first or first == "localhost")


def ack_waits():
    waits = {}
    folder = os.path.join(ROOT, "nats/consumers")
    for name in os.listdir(folder):
        with open(os.path.join(folder, name)) as f:
            consumer = json.load(f)
        waits[consumer["durable_name"]] = consumer["ack_wait"] / 1e9
    return waits


def check_overlay(overlay, scaled_schema):
    run = subprocess.run(["kubectl", "kustomize", overlay], capture_output=True, text=True)
    if run.returncode != 0:
        problem(f"{overlay}: kustomize: {run.stderr.strip()}")
        return
    docs = [doc for doc in yaml.safe_load_all(run.stdout) if doc]
    by_kind = {}
    for doc in docs:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        by_kind.setdefault(kind, {})[name] = doc
        where = f"{overlay}: {kind}/{name}"
        if kind == "ScaledObject":
            try:
                jsonschema.validate(doc, scaled_schema)
            except jsonschema.ValidationError as err:
                problem(f"{where}: {err.message} at {'/'.join(map(str, err.absolute_path))}")
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            problem(f"{where}: {err.message} at {'/'.join(map(str, err.path))}")
        except kubernetes_validate.SchemaNotFoundError as err:
            problem(f"{where}: no schema: {err}")
    waits = ack_waits()
    deployments = by_kind.get("Deployment", {})
    selected = {pdb["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/name")
                for pdb in by_kind.get("PodDisruptionBudget", {}).values()}
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in by_kind.get("ScaledObject", {}).values()}
    # The upgrade Jobs are applied alone first (`-l app.kubernetes.io/component=upgrade`):
    # whatever they read must come with them.
    upgrade = lambda doc: doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "upgrade"
    for kind in ("Deployment", "Job"):
        for name, doc in by_kind.get(kind, {}).items():
            for container in doc["spec"]["template"]["spec"]["containers"]:
                if not pinned(container.get("image", "")):
                    problem(f"{overlay}: {kind}/{name}: image {container.get('image')!r} must name its registry and a release tag or digest")
                for env in container.get("env", []):
                    if env["name"] == "AI_AGENTS_NATS_URL" and "valueFrom" not in env:
                        problem(f"{overlay}: {kind}/{name}: AI_AGENTS_NATS_URL carries NATS's password: take it from a Secret")
    for name, config in by_kind.get("ConfigMap", {}).items():
        if "AI_AGENTS_NATS_URL" in config.get("data", {}):
            problem(f"{overlay}: ConfigMap/{name} holds AI_AGENTS_NATS_URL, which carries NATS's password: put it in a Secret")
    for container in deployments.get("ingress", {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        if "preStop" not in container.get("lifecycle", {}):
            problem(f"{overlay}: Deployment/ingress needs a preStop wait: it leaves the Service's endpoints only after it is told to stop")
    for name, job in by_kind.get("Job", {}).items():
        if not upgrade(job):
            problem(f"{overlay}: Job/{name} must be labelled app.kubernetes.io/component=upgrade")
        for container in job["spec"]["template"]["spec"]["containers"]:
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                if ref and not upgrade(by_kind.get("ConfigMap", {}).get(ref, {"metadata": {}})):
                    problem(f"{overlay}: Job/{name} reads ConfigMap/{ref}, which is not applied with it (label it app.kubernetes.io/component=upgrade)")
    for name, deployment in deployments.items():
        where = f"{overlay}: Deployment/{name}"
        pod = deployment["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problem(f"{where}: must run as non-root")
        for container in pod["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    problem(f"{where}: {probe} missing")
            resources = container.get("resources", {})
            if "memory" not in resources.get("requests", {}) or "memory" not in resources.get("limits", {}):
                problem(f"{where}: memory request and limit required")
        if name not in selected:
            problem(f"{where}: no PodDisruptionBudget")
        if name in STAGES or name == "history-projector":
            # A stage serves health only once it has found its consumer (up to 60 s).
            for container in pod["containers"]:
                startup = container.get("startupProbe", {})
                allowed = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
                if not startup or allowed < 90:
                    problem(f"{where}: a startupProbe allowing at least 90 s is required (the consumer wait is 60 s)")
        consumer = name if name in STAGES else ("embedding-indexer" if name == "embedder" else None)
        if consumer:
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if grace <= waits[consumer]:
                problem(f"{where}: termination grace {grace}s does not outlast the ack wait {waits[consumer]:.0f}s")
            so = scaled.get(name)
            if not so:
                problem(f"{where}: no ScaledObject")
                continue
            if "replicas" in deployment["spec"]:
                problem(f"{where}: no replicas beside its ScaledObject: every apply would reset the scaled-out count to it")
            trigger = so["spec"]["triggers"][0]
            if trigger["type"] != "nats-jetstream" or trigger["metadata"].get("consumer") != consumer:
                problem(f"{overlay}: ScaledObject/{name} must scale on nats-jetstream consumer {consumer}")
            # On a cluster the scaler reads the consumer leader as
            # `<pod>.<endpoint>`: only the chart's headless Service resolves that.
            endpoint = trigger["metadata"].get("natsServerMonitoringEndpoint", "")
            if not endpoint.startswith("nats-headless."):
                problem(f"{overlay}: ScaledObject/{name} must read NATS monitoring through the headless Service (nats-headless.…:8222), not {endpoint!r}")
            low, high = so["spec"].get("minReplicaCount"), so["spec"].get("maxReplicaCount")
            if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
                problem(f"{overlay}: ScaledObject/{name} needs 1 <= minReplicaCount <= maxReplicaCount")
    for stage in STAGES:
        if stage not in deployments:
            problem(f"{overlay}: Deployment/{stage} missing")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--overlay", action="append", help="validate only these overlays")
    args = parser.parse_args()
    with open(os.path.join(ROOT, "deploy/k8s/crds/keda.sh_scaledobjects.yaml")) as crd:
        crd = yaml.safe_load(crd)
    scaled_schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")["schema"]["openAPIV3Schema"]
    overlays = args.overlay or [
        os.path.join(ROOT, "deploy/k8s/overlays", name)
        for name in sorted(os.listdir(os.path.join(ROOT, "deploy/k8s/overlays")))
    ]
    if not args.overlay:
        check_compose()
        check_nats()
    for overlay in overlays:
        check_overlay(overlay, scaled_schema)
    for line in problems:
        print(line)
    if problems:
        sys.exit(1)
    print(f"valid: {'compose, Dockerfile, ' if not args.overlay else ''}{len(overlays)} overlays")


if __name__ == "__main__":
    main()
