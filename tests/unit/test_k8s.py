"""Kubernetes manifests from a spec: valid against the real API schemas (strict: an unknown
field fails), inside the restricted Pod Security Standard, GPUs only for CUDA specs, the
launcher told the Indexed Job's DNS names, and the image named by the digest last pushed."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from dlenv.cluster import Workload, plan_manifests
from dlenv.errors import UsageError
from dlenv.image import lock_digest
from dlenv.lint.kubernetes import lint_kubernetes, restricted_violations
from dlenv.lock import read_lock
from dlenv.spec import load_spec, parse_spec
from dlenv.workflows.cluster import render_k8s, to_yaml
from dlenv.workflows.project import open_project
from dlenv.workflows.registry import LastPush
from tests.conftest import EXAMPLES

HERE = Path(__file__).resolve().parent.parent
GOLDEN = HERE / "golden/k8s"
IMAGE = "registry.example.internal/team/env@sha256:" + "ab" * 32
K8S_VERSION = "1.31"
LOCKS = HERE / "fixtures/locks"  # the examples' real locks
EXAMPLE_NAMES = sorted(p.stem for p in LOCKS.glob("*.lock"))


def render(name: str, profile: str, workers: int | None = None, spec=None):
    spec = spec or load_spec(EXAMPLES / name)
    lock = read_lock(LOCKS / f"{name}.lock")

    return plan_manifests(spec, Workload(profile=profile, image=IMAGE,
                                         spec_digest=spec.digest(),
                                         lock_digest=lock_digest(lock),
                                         cuda=bool(lock.target.cuda), workers=workers))


def pods(obj: dict) -> list[dict]:
    template = obj.get("spec", {}).get("template")
    return [template["spec"]] if template else []


@pytest.mark.parametrize("profile", ["train", "dev", "serve"])
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_and_profile_passes_the_schemas_and_the_restricted_profile(name,
                                                                                  profile):
    train = load_spec(EXAMPLES / name).profile("train")
    many = profile == "train" and train is not None and bool(train.command)
    manifests = render(name, profile, workers=2 if many else None)
    kinds = [o["kind"] for o in manifests.objects]
    assert kinds == {"train": ["Service", "Job"] if many else ["Job"],
                     "dev": ["Service", "StatefulSet"],
                     "serve": ["Service", "Deployment"]}[profile]
    for obj in manifests.objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises when invalid
        for pod in pods(obj):
            assert restricted_violations(pod) == []
            for c in pod["containers"]:
                assert c["image"] == IMAGE
                assert c["securityContext"]["readOnlyRootFilesystem"] is True
                assert "NVIDIA_VISIBLE_DEVICES" not in str(c.get("env"))
            assert pod["automountServiceAccountToken"] is False
            shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
            assert shm["emptyDir"]["medium"] == "Memory"
    cuda = bool(read_lock(LOCKS / f"{name}.lock").target.cuda)
    text = to_yaml(manifests)
    assert ("nvidia.com/gpu" in text) is cuda
    # and dlenv's own lint finds nothing to say about them
    assert [f for f in lint_kubernetes(text) if f.severity in ("error", "warning")] == []


@pytest.mark.parametrize("golden, name, profile, workers", [
    ("tensorflow-gpu-train-2-workers.yaml", "tensorflow-gpu", "train", 2),
    ("jupyter-dev-dev.yaml", "jupyter-dev", "dev", None),
    ("tensorflow-cpu-serve.yaml", "tensorflow-cpu", "serve", None),
])
def test_rendered_manifests_match_their_golden_files(golden, name, profile, workers):
    text = to_yaml(render(name, profile, workers))
    path = GOLDEN / golden
    if os.environ.get("DLENV_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_the_indexed_job_tells_the_launcher_the_names_its_pods_get():
    job = next(o for o in render("tensorflow-gpu", "train", 3).objects if o["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    name = job["metadata"]["name"]
    # An Indexed Job's pod INDEX is the host NAME-INDEX in the subdomain (the Service)
    assert env["DLENV_HOSTS"] == f"{name}-{{index}}.{pod['subdomain']}"
    assert pod["subdomain"] == name and env["DLENV_ROLES"] == "worker=3"
    assert (job["spec"]["completionMode"], job["spec"]["completions"],
            job["spec"]["parallelism"]) == ("Indexed", 3, 3)
    assert pod["containers"][0]["command"][:3] == ["python3", "/usr/local/lib/dlenv/launch.py",
                                                   "--"]
    single = next(o for o in render("tensorflow-gpu", "train", 1).objects)
    assert single["kind"] == "Job" and "completionMode" not in single["spec"]


DEPLOY = """
name = "team-env"
framework = "torch"
accelerator = "cuda"
[profiles.train]
command = ["torchrun", "train.py"]
[profiles.serve]
ports = [8080]
[deploy]
namespace = "vision"
image_pull_secret = "registry-login"
service_account = "trainer"
queue = "team-a"
priority_class = "batch-low"
scheduler = "volcano"
gpu_product = "NVIDIA-H100-80GB-HBM3"
[deploy.volumes.datasets]
claim = "imagenet"
read_only = true
[deploy.volumes.checkpoints]
size = "200Gi"
storage_class = "fast"
[deploy.train]
workers = 4
gpus = 8
cpu = "32"
memory = "256Gi"
shm = "64Gi"
env = { NCCL_DEBUG = "WARN" }
secrets = { WANDB_API_KEY = "wandb/api-key" }
[deploy.serve]
gpus = 0
service_type = "LoadBalancer"
"""


def test_the_specs_deploy_keys_reach_the_manifests():
    spec = parse_spec(tomllib.loads(DEPLOY), text=DEPLOY)
    objects = render("pytorch-gpu", "train", spec=spec).objects
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"]["namespace"] == "vision"
    claim, service, job = objects
    assert service["spec"]["clusterIP"] == "None"  # headless: the pods' DNS names
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # four pods share it
    assert claim["spec"]["storageClassName"] == "fast"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["spec"]["suspend"] is True
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert "nvidia.com/gpu" not in c["resources"]["requests"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                   "effect": "NoSchedule"}]
    assert (pod["serviceAccountName"], pod["priorityClassName"], pod["schedulerName"],
            pod["imagePullSecrets"]) == ("trainer", "batch-low", "volcano",
                                         [{"name": "registry-login"}])
    assert {"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": "wandb", "key": "api-key"}}} in c["env"]
    assert {"name": "datasets", "mountPath": "/datasets", "readOnly": True} in \
        c["volumeMounts"]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["sizeLimit"] == "64Gi"
    serve = render("pytorch-gpu", "serve", spec=spec).objects
    deployment = serve[-1]
    scrape = deployment["spec"]["template"]["metadata"]["annotations"]
    assert scrape["prometheus.io/port"] == "8080" and scrape["prometheus.io/scrape"] == "true"
    assert serve[-2]["spec"]["type"] == "LoadBalancer"  # asked for
    assert "nvidia.com/gpu" not in to_yaml(render("pytorch-gpu", "serve", spec=spec))


def test_the_image_comes_from_the_last_push_of_the_current_lock(tmp_path, monkeypatch):
    import shutil

    project_dir = tmp_path / "tensorflow-gpu"
    shutil.copytree(EXAMPLES / "tensorflow-gpu", project_dir)
    shutil.copy(LOCKS / "tensorflow-gpu.lock", project_dir / "dlenv.lock")
    cache = str(tmp_path / "cache")
    project = open_project(str(project_dir))
    with pytest.raises(UsageError, match="never pushed"):
        render_k8s(project, "train", cache_dir=cache)
    with pytest.raises(UsageError, match="by digest"):
        render_k8s(project, "train", image="team/env:latest", cache_dir=cache)
    LastPush(cache).record(project, "train", IMAGE, "sha256:" + "0" * 64)
    with pytest.raises(UsageError, match="another lock"):
        render_k8s(project, "train", cache_dir=cache)
    LastPush(cache).record(project, "train", IMAGE,
                           lock_digest(read_lock(project_dir / "dlenv.lock")))
    done = render_k8s(project, "train", workers=2, output=tmp_path / "out", cache_dir=cache)
    assert done.image == IMAGE
    assert [p.name for p in done.written] == ["01-service-tensorflow-gpu-train.yaml",
                                              "02-job-tensorflow-gpu-train.yaml"]
    assert yaml.safe_load(done.written[1].read_text())["kind"] == "Job"
