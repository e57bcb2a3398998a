"""The dev StatefulSet `dlenv k8s --profile dev` renders, its pod played by Docker as the
kubelet would start it: the image pulled by the digest the manifest names, the init
container first, then JupyterLab and sshd in one network namespace, each with the
manifest's command, user, read-only root and volumes. The home claim is what fsGroup makes
of a fresh volume (root's, group the user's, mode 2775), the emptyDirs are empty 0777
directories, and the ssh key is a secret's file (root's, mode 0440, the fsGroup's)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest
import yaml

from tests.conftest import EXAMPLES, docker_ready, run_dlenv

pytestmark = pytest.mark.integration


def _play(container: dict, pod: dict, name: str, mounts: dict[str, str],
          env: dict[str, str], network: str | None = None, detach: bool = True) -> None:
    """``docker run`` of one container of the pod spec, its volumes from ``mounts``."""
    user = pod["securityContext"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] and context["capabilities"]["drop"] == ["ALL"]
    args = ["docker", "run", "--name", name, "--user", f"{user['runAsUser']}:"
            f"{user['runAsGroup']}", "--group-add", str(user["fsGroup"]), "--read-only",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--workdir", container["workingDir"],
            *(["--detach"] if detach else []),
            *(["--network", f"container:{network}"] if network else [])]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    for mount in container["volumeMounts"]:
        path = mount["mountPath"]
        if mount["name"] == "dshm":
            args += ["--mount", f"type=tmpfs,destination={path}"]
            continue
        source = mounts[mount["name"]]
        if "subPath" in mount:
            source = os.path.join(source, mount["subPath"])
        readonly = ",readonly" if mount.get("readOnly") else ""
        args += ["--mount", f"type=bind,source={source},destination={path}{readonly}"]
    command = container["command"]
    done = subprocess.run([*args, "--entrypoint", command[0], container["image"], *command[1:]],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_dev_statefulset_serves_jupyter_and_ssh_as_its_pod_would(tmp_path, registry,
                                                                      shared_cache):
    docker_ready()
    root = tmp_path / "jupyter-dev"
    shutil.copytree(EXAMPLES / "jupyter-dev", root)
    env = {"DLENV_CACHE_DIR": str(shared_cache)}
    pushed = run_dlenv("push", f"{registry}/team/jupyter-dev:dev", str(root), "--profile", "dev",
                       "--json", env=env, timeout=1800)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    out = tmp_path / "k8s"
    made = run_dlenv("k8s", str(root), "--profile", "dev", "-o", str(out), env=env, timeout=300)
    assert made.returncode == 0, made.stderr
    statefulset = yaml.safe_load(next(out.glob("*-statefulset-*.yaml")).read_text())
    pod = statefulset["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    jupyter, sshd = pod["containers"]
    subprocess.run(["docker", "pull", jupyter["image"]], capture_output=True, check=True)

    gid = pod["securityContext"]["fsGroup"]
    home, scratch = tmp_path / "home-claim", tmp_path / "tmp-emptydir"
    for directory, mode in ((home, 0o2775), (scratch, 0o777)):
        directory.mkdir()
        os.chown(directory, 0, gid)
        directory.chmod(mode)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(tmp_path / "key")], check=True)
    secret = tmp_path / "ssh-keys"  # the secret volume, its item mounted by subPath
    secret.mkdir()
    shutil.copy(tmp_path / "key.pub", secret / "authorized_keys")
    os.chown(secret / "authorized_keys", 0, gid)
    (secret / "authorized_keys").chmod(0o440)
    mounts = {"home": str(home), "tmp": str(scratch), "ssh-keys": str(secret)}
    names = [f"dlenv-test-dev-{os.getpid()}-{n}" for n in ("init", "jupyter", "sshd")]
    token = "t" * 48
    try:
        _play(init, pod, names[0], mounts, {}, detach=False)
        assert (home / "workspace").is_dir() and (home / "workspace").stat().st_uid == \
            pod["securityContext"]["runAsUser"]  # the user's, not root's
        _play(jupyter, pod, names[1], mounts, {"JUPYTER_TOKEN": token})
        _play(sshd, pod, names[2], mounts, {}, network=names[1])
        address = subprocess.run(
            ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}"
             "{{end}}", names[1]], capture_output=True, text=True, check=True).stdout.strip()
        status = None
        for _ in range(60):  # JupyterLab starts in a few seconds; bounded
            try:
                with urllib.request.urlopen(f"http://{address}:8888/api/status?token={token}",
                                            timeout=2) as r:
                    status = json.loads(r.read())
                break
            except OSError:
                time.sleep(1)
        logs = subprocess.run(["docker", "logs", names[1]], capture_output=True, text=True,
                              check=False)
        assert status is not None and "started" in status, logs.stderr[-2000:]
        login = None
        for _ in range(30):
            login = subprocess.run(
                ["ssh", "-p", "2222", "-i", str(tmp_path / "key"), "-o", "BatchMode=yes",
                 "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                 "-o", "ConnectTimeout=5", f"dlenv@{address}",
                 "id -u; touch /workspace/from-ssh; touch /usr/nope || echo read-only"],
                capture_output=True, text=True, timeout=60, check=False)
            if login.returncode == 0:
                break
            time.sleep(1)
        shown = subprocess.run(["docker", "logs", names[2]], capture_output=True, text=True,
                               check=False)
        assert login is not None and login.returncode == 0, login.stderr + shown.stderr[-2000:]
        assert login.stdout.split() == [str(pod["securityContext"]["runAsUser"]), "read-only"]
        assert (home / "workspace" / "from-ssh").is_file()  # the working copy, on the claim
        assert (home / ".sshd" / "host_ed25519_key").is_file()  # host key kept on the claim
    finally:
        subprocess.run(["docker", "rm", "--force", *names], capture_output=True, check=False)
