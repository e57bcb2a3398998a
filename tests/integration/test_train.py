"""`dlenv train` against the real Docker engine: the TensorFlow CPU example's train image,
two workers that find each other through the image's launcher and train one Keras model with
MultiWorkerMirroredStrategy; a worker killed mid-run fails the job and nothing stays."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from dlenv import launcher
from tests.conftest import EXAMPLES, docker_ready, run_dlenv

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_cache):
    docker_ready()
    root = tmp_path_factory.mktemp("train") / "tensorflow-cpu"
    shutil.copytree(EXAMPLES / "tensorflow-cpu", root)
    env = {"DLENV_DATA_DIR": str(tmp_path_factory.mktemp("data")),
           "DLENV_CACHE_DIR": str(shared_cache)}
    yield root, env
    run_dlenv("stop", str(root), env=env)


def left_behind(root) -> tuple[list[str], list[str]]:
    label = f"label=dev.dlenv.project={root.resolve()}"
    found = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True,
                           text=True, check=True).stdout.split()
    networks = subprocess.run(["docker", "network", "ls", "-q", "--filter",
                               "label=dev.dlenv.job"], capture_output=True, text=True,
                              check=True).stdout.split()
    return found, networks


def test_two_workers_train_one_model_and_the_chief_saves_it(project):
    root, env = project
    r = run_dlenv("train", str(root), "--workers", "2", "--", "python", "train.py",
                  "--replicas", "2", env=env, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = [line for line in r.stdout.splitlines() if "replicas in sync" in line]
    assert sorted(line.split("|")[0].strip() for line in summary) == ["worker-0", "worker-1"]
    for line in summary:
        first, last = (float(x) for x in line.rsplit("loss ", 1)[1].split(" -> "))
        assert last < first / 2, line  # the loss falls, the same on both workers
    assert (root / "checkpoints/checkpoint").is_file()
    assert any((root / "checkpoints").glob("ckpt-1.index"))
    assert left_behind(root) == ([], [])


def test_the_launcher_in_the_image_gives_index_i_its_tf_config(project):
    """The image's own launcher, run as an Indexed Job's pod runs it (the index from
    JOB_COMPLETION_INDEX, hosts that resolve), tells worker 1 of 2 what TFJob would."""
    root, env = project
    r = run_dlenv("build", str(root), "--profile", "train", "--load", env=env, timeout=1800)
    assert r.returncode == 0, r.stderr
    script = "import os; print(os.environ['TF_CONFIG'])"
    run = subprocess.run(
        ["docker", "run", "--rm", "--env", "JOB_COMPLETION_INDEX=1",
         "--env", "DLENV_HOSTS=localhost,localhost", "--env", "DLENV_ROLES=worker=2",
         "--env", "DLENV_PORT=2222", "tensorflow-cpu:train", "python3", launcher.PATH, "--",
         "python3", "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "cluster": {"worker": ["localhost:2222", "localhost:2222"]},
        "task": {"type": "worker", "index": 1}, "environment": "cloud"}


def test_a_killed_worker_fails_the_job_by_name_and_leaves_nothing(project):
    root, env = project
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlenv", "train", str(root), "--workers", "2", "--", "python3",
         "-c", "import time; print('ready', flush=True); time.sleep(600)"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        victim = None
        while victim is None and time.monotonic() < deadline:
            time.sleep(1)
            running = subprocess.run(
                ["docker", "ps", "--filter", f"label=dev.dlenv.project={root.resolve()}",
                 "--filter", "label=dev.dlenv.worker=1", "--format", "{{.Names}}"],
                capture_output=True, text=True, check=True).stdout.split()
            if running:
                logs = subprocess.run(["docker", "logs", running[0]], capture_output=True,
                                      text=True, check=False).stdout
                victim = running[0] if "ready" in logs else None
        assert victim, "the workers never started"
        subprocess.run(["docker", "kill", victim], capture_output=True, check=True)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 137, err
    assert "worker-1 exited with 137" in err and "ready" in err
    assert left_behind(root) == ([], [])


def test_the_indexed_job_dlenv_k8s_renders_trains_as_its_pods_would(project, registry,
                                                                     tmp_path):
    """The train image pushed to a registry, the Job rendered for it, and its two pods played
    by Docker as the kubelet would start them: the image pulled by the digest the manifest
    names, the manifest's command and environment, JOB_COMPLETION_INDEX, the pods' DNS names
    (NAME-INDEX.SERVICE), a read-only root with the manifest's emptyDirs, and a volume for
    the checkpoints."""
    root, env = project
    r = run_dlenv("push", f"{registry}/team/tensorflow-cpu:train", str(root), "--profile",
                  "train", "--json", env=env, timeout=1800)
    assert r.returncode == 0, r.stderr
    digest = json.loads(r.stdout)["digest"]
    out = tmp_path / "k8s"
    r = run_dlenv("k8s", str(root), "--workers", "2", "-o", str(out), env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    job = yaml.safe_load(next(out.glob("*-job-*.yaml")).read_text())
    service = yaml.safe_load(next(out.glob("*-service-*.yaml")).read_text())
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == f"{registry}/team/tensorflow-cpu@{digest}"
    subprocess.run(["docker", "pull", container["image"]], capture_output=True, check=True)
    name, subdomain = job["metadata"]["name"], pod["subdomain"]
    assert subdomain == service["metadata"]["name"]
    network = f"dlenv-test-k8s-{name}"
    subprocess.run(["docker", "network", "create", network], capture_output=True, check=True)
    user = pod["securityContext"]
    pods = [f"{name}-{i}" for i in range(job["spec"]["completions"])]
    try:
        for i, pod_name in enumerate(pods):
            args = ["docker", "run", "--detach", "--name", pod_name, "--network", network,
                    "--hostname", pod_name, "--network-alias", f"{pod_name}.{subdomain}",
                    "--user", f"{user['runAsUser']}:{user['runAsGroup']}", "--read-only",
                    "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                    "--workdir", container["workingDir"], "--env", f"JOB_COMPLETION_INDEX={i}"]
            for var in container.get("env", []):
                args += ["--env", f"{var['name']}={var['value']}"]
            # The emptyDirs as Kubernetes makes them (empty, mode 0777: Docker's tmpfs-mode is
            # not applied below a directory of the image), /dev/shm in memory, and a volume
            # for the checkpoints, as [deploy.volumes.checkpoints] would give.
            mounts = [m["mountPath"] for m in container["volumeMounts"]]
            for path in [*mounts, f"{container['workingDir']}/checkpoints"]:
                if path == "/dev/shm":
                    args += ["--mount", "type=tmpfs,destination=/dev/shm"]
                    continue
                empty = tmp_path / f"pod{i}{path.replace('/', '-')}"
                empty.mkdir()
                empty.chmod(0o777)
                args += ["--mount", f"type=bind,source={empty},destination={path}"]
            command = [*container["command"], "--replicas", "2"]
            subprocess.run([*args, "--entrypoint", command[0], container["image"],
                            *command[1:]], capture_output=True, text=True, check=True)
        codes = [subprocess.run(["docker", "wait", p], capture_output=True, text=True,
                                timeout=900, check=True).stdout.strip() for p in pods]
        logs = [subprocess.run(["docker", "logs", p], capture_output=True, text=True,
                               check=True) for p in pods]
        shown = ["\n".join(line for line in (log.stdout + log.stderr).splitlines()
                           if "register factory" not in line)[-3000:] for log in logs]
        assert codes == ["0", "0"], shown
        for i, log in enumerate(logs):
            assert f"worker {i}: 2 replicas in sync" in log.stdout
            assert f"dlenv launcher: worker:{i} of 2, coordinator {pods[0]}.{subdomain}" \
                in log.stderr
    finally:
        subprocess.run(["docker", "rm", "--force", *pods], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
