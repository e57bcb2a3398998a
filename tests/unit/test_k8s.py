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
from dlenv.errors import SpecError, UsageError
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


def render(name: str, profile: str, workers: int | None = None, spec=None, kind="job"):
    spec = spec or load_spec(EXAMPLES / name)
    lock = read_lock(LOCKS / f"{name}.lock")

    return plan_manifests(spec, Workload(profile=profile, image=IMAGE,
                                         spec_digest=spec.digest(),
                                         lock_digest=lock_digest(lock),
                                         cuda=bool(lock.target.cuda), workers=workers,
                                         kind=kind))


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


def check_kubeflow(value, type_name: str, where: str = "") -> None:
    """Strict, against the Training Operator's published API types (its Python SDK is
    generated from them): every key a field of its type; Kubernetes' own types inside (the
    pod template, metadata) against the API's real schemas."""
    import re

    from kubeflow.training import models

    if m := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        assert isinstance(value, dict), where
        for key, item in value.items():
            check_kubeflow(item, m[1], f"{where}.{key}")
    elif type_name in ("str", "int", "bool"):
        assert isinstance(value, {"str": str, "int": int, "bool": bool}[type_name]), where
    elif type_name == "V1PodTemplateSpec":
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {
            "name": "t"}, "template": value}, K8S_VERSION, strict=True)
    elif type_name == "V1ObjectMeta":
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": value}, K8S_VERSION, strict=True)
    else:
        model = getattr(models, type_name)
        assert isinstance(value, dict), where
        fields = {key: model.openapi_types[attr] for attr, key in model.attribute_map.items()}
        assert set(value) <= set(fields), f"{where}: unknown {set(value) - set(fields)}"
        for key, item in value.items():
            check_kubeflow(item, fields[key], f"{where}.{key}")


def test_a_tfjob_gives_each_task_type_its_replicas_and_lets_the_operator_set_tf_config():
    spec = parse_spec(tomllib.loads(TF_ROLES), text=TF_ROLES)
    manifests = render("tensorflow-gpu", "train", workers=4, spec=spec, kind="tfjob")
    (job,) = manifests.objects  # the operator makes the pods' Services
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "TFJob")
    check_kubeflow(job, "KubeflowOrgV1TFJob")
    replicas = job["spec"]["tfReplicaSpecs"]
    assert {role: r["replicas"] for role, r in replicas.items()} == {
        "Chief": 1, "Worker": 3, "PS": 1, "Evaluator": 1}
    pod = replicas["Worker"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "tensorflow"  # the container the operator gives TF_CONFIG
    assert container["command"] == ["python", "train.py"]  # no launcher: not needed
    assert "TF_CONFIG" not in str(container.get("env")) and "DLENV_" not in str(container)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert restricted_violations(pod) == []
    assert job["spec"]["runPolicy"]["backoffLimit"] == 0
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["spec"]["runPolicy"]["suspend"] is True
    text = to_yaml(manifests)
    assert [f for f in lint_kubernetes(text) if f.severity in ("error", "warning")] == []
    assert any("Training Operator" in note for note in manifests.notes)


TF_ROLES = """
name = "tf-roles"
framework = "tensorflow==2.17.*"
accelerator = "cuda"
[profiles.train]
command = ["python", "train.py"]
[deploy]
queue = "team-a"
[deploy.train]
chief = true
ps = 1
evaluator = true
"""


def test_a_pytorchjob_has_one_master_and_the_other_ranks_as_workers():
    manifests = render("pytorch-gpu", "train", workers=4, kind="pytorchjob")
    (job,) = manifests.objects
    assert job["kind"] == "PyTorchJob"
    check_kubeflow(job, "KubeflowOrgV1PyTorchJob")
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert {role: r["replicas"] for role, r in replicas.items()} == {"Master": 1, "Worker": 3}
    assert replicas["Master"]["template"]["spec"]["containers"][0]["name"] == "pytorch"
    alone = render("pytorch-gpu", "train", workers=1, kind="pytorchjob").objects[-1]
    assert list(alone["spec"]["pytorchReplicaSpecs"]) == ["Master"]


def test_a_kubeflow_kind_must_run_the_specs_framework():
    with pytest.raises(SpecError) as found:
        render("pytorch-gpu", "train", workers=2, kind="tfjob")
    assert "a TFJob runs tensorflow, and this spec has pytorch" in str(found.value)
    assert "use --kind pytorchjob, or --kind job" in str(found.value)


def test_the_command_line_offers_the_kinds_the_planner_renders():
    from dlenv.cli.parser import build_parser
    from dlenv.cluster import KINDS

    k8s = build_parser()._subparsers._group_actions[0].choices["k8s"]
    kind = next(a for a in k8s._actions if a.dest == "kind")
    assert tuple(kind.choices) == KINDS


SERVED = """
name = "served"
framework = "tensorflow==2.15.*"
[profiles.serve]
model = "models/half"
[deploy.volumes.models]
claim = "team-models"
path = "/models/half"
read_only = true
"""


def test_dlenvs_model_server_is_probed_on_its_health_routes():
    spec = parse_spec(tomllib.loads(SERVED), text=SERVED)
    manifests = render("tensorflow-cpu", "serve", spec=spec)
    for obj in manifests.objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    deployment = manifests.objects[-1]
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"  # a slow load is not a death
    assert c["ports"] == [{"name": "http", "containerPort": 8501}]
    assert {"name": "models", "mountPath": "/models/half", "readOnly": True} in \
        c["volumeMounts"]
    assert not any("/models/half" in note for note in manifests.notes)
    # a model in the project is baked into the image: no volume is needed
    bare = SERVED.split("[deploy")[0]
    notes = render("tensorflow-cpu", "serve", spec=parse_spec(tomllib.loads(bare),
                                                               text=bare)).notes
    assert not any("/models/" in note for note in notes)
    # a model named nowhere: the notes say where the volume must be
    unnamed = bare.replace('model = "models/half"', 'model_name = "half"')
    notes = render("tensorflow-cpu", "serve", spec=parse_spec(tomllib.loads(unnamed),
                                                               text=unnamed)).notes
    assert any('path = "/models/half"' in note for note in notes)


# The JobSet API's fields (jobset.x-k8s.io/v1alpha2, from its published Go types): no JobSet
# schema or SDK is reachable from PyPI, so the JobSet's own level is checked against these,
# strictly, and the Job template inside it against Kubernetes' real schema.
JOBSET_FIELDS = {
    "JobSet": {"apiVersion", "kind", "metadata", "spec"},
    "spec": {"replicatedJobs", "network", "successPolicy", "failurePolicy", "startupPolicy",
             "suspend", "coordinator", "managedBy", "ttlSecondsAfterFinished",
             "volumeClaimPolicies"},
    "replicatedJob": {"name", "groupName", "template", "replicas", "dependsOn"},
    "network": {"enableDNSHostnames", "subdomain", "publishNotReadyAddresses"},
    "successPolicy": {"operator", "targetReplicatedJobs"},
    "failurePolicy": {"maxRestarts", "restartStrategy", "rules"},
}


def check_jobset(obj: dict) -> None:
    assert set(obj) <= JOBSET_FIELDS["JobSet"], set(obj) - JOBSET_FIELDS["JobSet"]
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": obj["metadata"]}, K8S_VERSION, strict=True)
    spec = obj["spec"]
    assert set(spec) <= JOBSET_FIELDS["spec"], set(spec) - JOBSET_FIELDS["spec"]
    for key in ("network", "successPolicy", "failurePolicy"):
        assert set(spec.get(key, {})) <= JOBSET_FIELDS[key], (key, spec[key])
    assert spec["successPolicy"]["operator"] in ("All", "Any")
    for rjob in spec["replicatedJobs"]:
        assert set(rjob) <= JOBSET_FIELDS["replicatedJob"], set(rjob)
        assert isinstance(rjob["replicas"], int) and isinstance(rjob["name"], str)
        # a JobTemplateSpec: the metadata and spec of a batch/v1 Job
        kubernetes_validate.validate({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": "t", **rjob["template"]["metadata"]}, "spec": rjob["template"]["spec"]},
            K8S_VERSION, strict=True)


def test_a_jobset_runs_the_indexed_job_with_the_launcher_and_names_its_pods():
    from dlenv.launcher import cluster_env, host_names, parse_roles

    spec = parse_spec(tomllib.loads(DEPLOY), text=DEPLOY)
    manifests = render("pytorch-gpu", "train", workers=3, spec=spec, kind="jobset")
    claims = [o for o in manifests.objects if o["kind"] == "PersistentVolumeClaim"]
    (jobset,) = [o for o in manifests.objects if o not in claims]  # no Service: the
    check_jobset(jobset)                                           # controller makes it
    assert (jobset["apiVersion"], jobset["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    assert [c["metadata"]["name"] for c in claims] == ["team-env-train-checkpoints"]
    name = jobset["metadata"]["name"]
    assert jobset["spec"]["network"]["enableDNSHostnames"] is True
    assert jobset["spec"]["failurePolicy"] == {"maxRestarts": 0}
    assert jobset["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert jobset["spec"]["suspend"] is True
    (rjob,) = jobset["spec"]["replicatedJobs"]
    job = rjob["template"]["spec"]
    assert (rjob["replicas"], job["completionMode"], job["completions"]) == (1, "Indexed", 3)
    assert "kueue.x-k8s.io/queue-name" not in rjob["template"]["metadata"]["labels"]
    pod = job["template"]["spec"]
    assert "subdomain" not in pod  # the controller sets it to the JobSet's name
    assert restricted_violations(pod) == []
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
    env = {e["name"]: e.get("value") for e in container["env"]}
    # the JobSet's pod INDEX is NAME-workers-0-INDEX in the subdomain NAME: the launcher,
    # given the index Kubernetes sets, names the same hosts torchrun's rank 0 listens on
    hosts = host_names(env["DLENV_HOSTS"], 3)
    assert hosts == [f"{name}-workers-0-{i}.{name}" for i in range(3)]
    assert cluster_env(2, hosts, parse_roles(env["DLENV_ROLES"]),
                       int(env["DLENV_PORT"]))["MASTER_ADDR"] == hosts[0]
    assert all(len(h.split(".")[0]) <= 63 for h in hosts)
    text = to_yaml(manifests)
    assert [f for f in lint_kubernetes(text) if f.severity in ("error", "warning")] == []
    assert any("JobSet controller" in note for note in manifests.notes)
    assert any(f"jobset.sigs.k8s.io/jobset-name={name}" in note for note in manifests.notes)


def test_a_long_name_is_cut_so_the_jobsets_pod_names_stay_valid_host_names():
    long = DEPLOY.replace('name = "team-env"', 'name = "' + "a" * 60 + '"')
    spec = parse_spec(tomllib.loads(long), text=long)
    jobset = next(o for o in render("pytorch-gpu", "train", workers=12, spec=spec,
                                    kind="jobset").objects if o["kind"] == "JobSet")
    name = jobset["metadata"]["name"]
    assert len(f"{name}-workers-0-11") == 63
    pod = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["DLENV_HOSTS"] == f"{name}-workers-0-{{index}}.{name}"
