"""dlenv run, shell, jupyter, ssh, ps and stop against the real Docker engine: a project
locked from PyPI (with JupyterLab and Debian's OpenSSH in its dev profile), built natively,
loaded by digest and run as a new team member would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dlenv.lock import read_lock
from tests.conftest import docker_ready, free_port, locked_project, run_dlenv

pytestmark = pytest.mark.integration
OWNER = 1234  # the project's owner: files written in the container must be theirs
SPEC = """name = "runenv"
python = "3.11"
packages = ["six==1.16.0"]

[env]
TEAM = "vision"

[profiles.dev]
jupyter = true
ssh = true
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    docker_ready()
    root, cache = locked_project(tmp_path_factory, {"dlenv.toml": SPEC,
                                                    "notes.txt": "from the host\n"})
    for path in [root, *root.rglob("*")]:
        os.chown(path, OWNER, OWNER)
    data = tmp_path_factory.mktemp("data")
    env = {"DLENV_DATA_DIR": str(data), "DLENV_CACHE_DIR": str(cache)}
    yield root, env
    run_dlenv("stop", str(root), env=env)
    _remove_volumes(root)


def _remove_volumes(root: Path) -> None:
    ids = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                          f"label=dev.dlenv.project={root.resolve()}"],
                         capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["docker", "volume", "rm", "-f", *ids], capture_output=True, check=False)


def dlenv(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return run_dlenv(*args, env=env, timeout=600, **kw)


def inspect(name: str) -> dict:
    out = subprocess.run(["docker", "container", "inspect", name], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[0]


def assert_locked_down(info: dict) -> None:
    host, config = info["HostConfig"], info["Config"]
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert config["User"] and not config["User"].startswith("0")
    for bindings in (host["PortBindings"] or {}).values():
        assert all(b["HostIp"] == "127.0.0.1" for b in bindings)


def containers(root: Path) -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter",
                           f"label=dev.dlenv.project={root.resolve()}"],
                          capture_output=True, text=True, check=True).stdout.split()


def test_run_prints_the_locked_version_and_passes_the_exit_code(project):
    root, env = project
    six = next(w.version for w in read_lock(root / "dlenv.lock").wheels if w.name == "six")
    r = dlenv(env, "run", str(root), "--", "python3", "-c",
              "import six, os; print('six', six.__version__, os.getuid(), os.getcwd(), "
              "os.environ['TEAM']); raise SystemExit(7)")
    assert r.returncode == 7, r.stderr
    assert f"six {six} {OWNER} /workspace vision" in r.stdout
    assert containers(root) == []  # removed after it ended


def test_a_run_whose_image_docker_lost_loads_it_again(project):
    from dlenv.fsutil import location_id

    root, env = project
    tag = f"runenv:latest-run-{location_id(str(root.resolve()))}"
    first = dlenv(env, "run", str(root), "--", "python3", "-c", "print('first')")
    assert first.returncode == 0 and "first" in first.stdout, first.stderr
    # The run left a record (nothing changed: the next run reads no lock); the record is no
    # answer once Docker lost the image, and the run readies it again.
    subprocess.run(["docker", "rmi", "-f", tag, "runenv:latest-run"], capture_output=True,
                   check=True)
    again = dlenv(env, "run", str(root), "--", "python3", "-c", "print('again')")
    assert again.returncode == 0 and "again" in again.stdout, again.stderr
    assert subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                          check=False).returncode == 0


def test_project_files_and_volumes_persist_and_belong_to_the_owner(project):
    root, env = project
    write = ("import pathlib; pathlib.Path('made-inside.txt').write_text('hi'); "
             "p = pathlib.Path('/data/runs.txt'); p.write_text(p.read_text() + 'x' "
             "if p.exists() else 'x'); print(open('notes.txt').read().strip(), p.read_text())")
    first = dlenv(env, "run", str(root), "--", "python3", "-c", write)
    second = dlenv(env, "run", str(root), "--", "python3", "-c", write)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split()[-1] == "x" and second.stdout.split()[-1] == "xx"
    assert "from the host" in first.stdout
    made = root / "made-inside.txt"
    assert made.read_text() == "hi" and made.stat().st_uid == OWNER
    volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                              f"label=dev.dlenv.project={root.resolve()}"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert any(v.endswith("-data") for v in volumes)


def test_the_run_container_is_locked_down_and_ctrl_c_stops_it(project):
    root, env = project
    proc = subprocess.Popen(
        ["python3", "-m", "dlenv", "run", str(root), "--memory", "512m", "--cpus", "1",
         "--", "python3", "-c", "import time; time.sleep(120)"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        names: list[str] = []
        for _ in range(240):
            names = containers(root)
            if names and inspect(names[0])["State"]["Running"]:
                break
            time.sleep(0.5)
        assert names, "the container did not start"
        info = inspect(names[0])
        assert_locked_down(info)
        assert info["HostConfig"]["Memory"] == 512 << 20
        assert info["HostConfig"]["NanoCpus"] == 10**9
        assert info["HostConfig"]["ShmSize"] >= 1 << 30
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    for _ in range(60):
        if not containers(root):
            break
        time.sleep(0.5)
    assert containers(root) == []
    assert proc.returncode != 0


def _get(url: str, token: str | None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _save_notebook(port: int, token: str, name: str) -> int:
    """Save an empty notebook through Jupyter's contents API, as the editor does."""
    nb = {"type": "notebook", "content": {"cells": [], "metadata": {}, "nbformat": 4,
                                          "nbformat_minor": 5}}
    put = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/contents/{name}", method="PUT",
        data=json.dumps(nb).encode(), headers={"Authorization": f"token {token}",
                                               "Content-Type": "application/json"})
    with urllib.request.urlopen(put, timeout=10) as created:
        return int(created.status)


def test_jupyter_answers_with_its_token_only_on_127_0_0_1(project):
    root, env = project
    port = free_port()
    r = dlenv(env, "jupyter", str(root), "--port", str(port), "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    try:
        token = shown["url"].split("token=")[1]
        assert shown["url"].startswith(f"http://127.0.0.1:{port}/lab?token=")
        status = f"http://127.0.0.1:{port}/api/status"
        assert _get(status, token) == 200
        assert _get(status, None) == 403 and _get(status, "wrong") == 403
        info = inspect(shown["name"])
        assert_locked_down(info)
        assert info["HostConfig"]["PortBindings"] == {
            "8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        visible = json.dumps([info["Config"]["Env"], info["Config"]["Cmd"], info["Args"]])
        assert token not in visible
        # notebooks live in the mounted project, owned by its owner
        assert _save_notebook(port, token, "made-by-jupyter.ipynb") == 201
        assert (root / "made-by-jupyter.ipynb").stat().st_uid == OWNER
        listed = dlenv(env, "ps", str(root), "--json")
        assert [c["labels"]["dev.dlenv.mode"] for c in json.loads(listed.stdout)] == ["jupyter"]
    finally:
        stopped = dlenv(env, "stop", str(root), "--json")
    assert json.loads(stopped.stdout)["stopped"] == [shown["name"]]
    assert containers(root) == []


def _ssh(port: int, key: Path, user: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-p", str(port), "-i", str(key), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=10", *options, f"{user}@127.0.0.1",
         "python3 -c 'import os, six; print(os.getuid(), os.environ[\"TEAM\"], six.__name__)'"],
        capture_output=True, text=True, timeout=60, check=False)


def test_ssh_takes_the_key_and_refuses_passwords_and_root(project, tmp_path):
    root, env = project
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = free_port()
    r = dlenv(env, "ssh", str(root), "--port", str(port), "--key", f"{key}.pub", "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    try:
        assert shown["ssh"] == f"ssh -p {port} dlenv@127.0.0.1"
        ok = _ssh(port, key, "dlenv")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.split() == [str(OWNER), "vision", "six"]
        password = _ssh(port, key, "dlenv", "-o", "PubkeyAuthentication=no",
                        "-o", "PreferredAuthentications=password,keyboard-interactive")
        assert password.returncode == 255 and "Permission denied (publickey)" in password.stderr
        as_root = _ssh(port, key, "root")
        assert as_root.returncode == 255 and "Permission denied" in as_root.stderr
        assert_locked_down(inspect(shown["name"]))
        # the host key sits in the volume, made at the first start, not in the image
        keys = list((Path(env["DLENV_DATA_DIR"]) / "volumes").glob("*-sshd/ssh_host_*_key"))
        assert len(keys) == 1 and keys[0].stat().st_uid == OWNER
    finally:
        dlenv(env, "stop", str(root))
    assert containers(root) == []


def _volume_count() -> int:
    out = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True,
                         check=True).stdout
    return len(out.split())


def test_bad_input_is_refused_and_leaves_nothing_behind(project, tmp_path_factory):
    root, env = project
    fresh = tmp_path_factory.mktemp("fresh")  # a project with no volumes yet
    (fresh / "dlenv.toml").write_text(SPEC)
    (fresh / "dlenv.lock").write_bytes((root / "dlenv.lock").read_bytes())
    before = _volume_count()

    unknown = dlenv(env, "run", str(fresh), "--profile", "nightly", "--", "true")
    assert unknown.returncode == 2
    assert "profiles.nightly" in unknown.stderr and "dev" in unknown.stderr

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = dlenv(env, "jupyter", str(fresh), "--port", str(port))
    assert taken.returncode == 3 and f"port {port} on 127.0.0.1 is in use" in taken.stderr

    missing = dlenv(env, "run", str(fresh), "--image", "sha256:" + "0" * 64, "--", "true")
    assert missing.returncode == 3 and "is not in docker" in missing.stderr

    no_engine = dlenv({**env, "PATH": str(fresh)}, "run", str(fresh), "--", "true")
    assert no_engine.returncode == 3
    assert "no container engine answers" in no_engine.stderr and "docker.io" in no_engine.stderr
    down = dlenv({**env, "DOCKER_HOST": "unix:///nonexistent.sock"}, "run", str(fresh),
                 "--engine", "docker", "--", "true")
    assert down.returncode == 3 and "docker:" in down.stderr

    assert containers(fresh) == []
    assert _volume_count() == before


def test_podman_runs_the_same_plan(project, tmp_path):
    import shutil

    if shutil.which("podman") is None:
        pytest.fail("podman is not installed (scripts/setup installs it)")
    root, env = project
    # Podman as root here needs explicit ulimits (its defaults ask for a capability this
    # root lacks): a containers.conf, as a user would set one.
    conf = tmp_path / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", '
                    '"nproc=32768:32768"]\n')
    penv = {**env, "CONTAINERS_CONF": str(conf)}
    r = dlenv(penv, "run", str(root), "--engine", "podman", "--", "python3", "-c",
              "import os, pathlib, six; pathlib.Path('from-podman.txt').write_text('p'); "
              "print(os.getuid(), six.__name__); raise SystemExit(3)")
    assert r.returncode == 3, r.stderr
    assert r.stdout.split() == [str(OWNER), "six"]
    assert (root / "from-podman.txt").stat().st_uid == OWNER
    left = subprocess.run(["podman", "ps", "-aq", "--filter",
                           f"label=dev.dlenv.project={root.resolve()}"],
                          capture_output=True, text=True, env={**os.environ, **penv},
                          check=False).stdout.split()
    assert left == []
    subprocess.run(["podman", "volume", "prune", "-f", "--filter",
                    f"label=dev.dlenv.project={root.resolve()}"], capture_output=True,
                   env={**os.environ, **penv}, check=False)


def test_a_project_path_with_a_comma_mounts_that_directory_and_no_other(project,
                                                                         tmp_path_factory):
    # The project's path goes into --mount as a CSV field; pasted as text, the part after
    # the comma would become options of its own (here: a second source).
    root, env = project
    decoy = tmp_path_factory.mktemp("decoy")
    odd = tmp_path_factory.mktemp("odd") / f"team,source={decoy}"  # nested: decoy has '/'
    odd.mkdir(parents=True)
    for name in ("dlenv.toml", "dlenv.lock"):
        (odd / name).write_bytes((root / name).read_bytes())
    (odd / "here.txt").write_text("the project\n")
    os.chown(odd, OWNER, OWNER)
    r = dlenv(env, "run", str(odd), "--no-volumes", "--", "sh", "-c",
              "cat here.txt && echo made > out.txt")
    assert r.returncode == 0, r.stderr
    assert "the project" in r.stdout
    assert (odd / "out.txt").read_text() == "made\n" and not (decoy / "out.txt").exists()


# --- the first hour ------------------------------------------------------------------------

def test_jupyter_again_shows_its_url_and_keeps_its_port(project):
    root, env = project
    first = dlenv(env, "jupyter", str(root), "--json")
    assert first.returncode == 0, first.stderr
    shown = json.loads(first.stdout)
    try:
        again = dlenv(env, "jupyter", str(root), "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["again"] and json.loads(again.stdout)["url"] == \
            shown["url"]
        listed = json.loads(dlenv(env, "ps", str(root), "--json").stdout)
        assert [c["endpoint"] for c in listed] == [shown["url"]]
        token = shown["url"].split("token=")[1]
        assert _get(f"http://127.0.0.1:{shown['port']}/api/status", token) == 200
    finally:
        dlenv(env, "stop", str(root))
    restarted = dlenv(env, "jupyter", str(root), "--json")
    assert restarted.returncode == 0, restarted.stderr
    dlenv(env, "stop", str(root))
    assert json.loads(restarted.stdout)["port"] == shown["port"]  # the same port again
    assert json.loads(restarted.stdout)["url"] != shown["url"]  # with a new token


def test_ssh_keeps_its_port_across_quick_restarts(project, tmp_path):
    root, env = project
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ports = []
    for _ in range(3):
        r = dlenv(env, "ssh", str(root), "--key", f"{key}.pub", "--json")
        assert r.returncode == 0, r.stderr
        ports.append(json.loads(r.stdout)["port"])
        dlenv(env, "stop", str(root))
    assert len(set(ports)) == 1, ports


def test_the_dev_shell_has_tools_and_pip_installs_survive_a_restart(project):
    root, env = project
    r = dlenv(env, "shell", str(root), "--", "sh", "-c",
              "git --version && less --version >/dev/null && ps -o pid= -p 1 && "
              "pip install -q --disable-pip-version-check cowsay==6.1")
    assert r.returncode == 0, r.stdout + r.stderr
    again = dlenv(env, "shell", str(root), "--", "sh", "-c",
                  "cowsay -t moo && python3 -c 'import cowsay, six; print(cowsay.__file__)'")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "moo" in again.stdout and "/home/dlenv/.local/lib/" in again.stdout
    volumes = Path(env["DLENV_DATA_DIR"]) / "volumes"
    assert list(volumes.glob("*-home/.local/lib/python3.11/site-packages/cowsay"))


def test_a_root_owned_project_saves_notebooks_and_keeps_its_owners(project, tmp_path_factory):
    root, env = project
    mine = tmp_path_factory.mktemp("root-owned")
    for name in ("dlenv.toml", "dlenv.lock"):
        (mine / name).write_bytes((root / name).read_bytes())
    (mine / "old.txt").write_text("root's file\n")
    subprocess.run(["git", "init", "-q", str(mine)], check=True)  # root's repository
    for path in (mine, *mine.iterdir()):
        os.chown(path, 0, 0)
    r = dlenv(env, "shell", str(mine), "--", "sh", "-c",
              "git status --short >/dev/null && echo git-ok && touch made-inside")
    assert r.returncode == 0 and "git-ok" in r.stdout, r.stdout + r.stderr
    assert (mine / "made-inside").exists()
    assert "belongs to root" in r.stderr  # said when the access is given …
    r = dlenv(env, "jupyter", str(mine), "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    try:
        assert not any("belongs to root" in n for n in shown["notes"])  # … and only then
        token = shown["url"].split("token=")[1]
        assert _save_notebook(int(shown["port"]), token, "saved.ipynb") == 201
        assert json.loads((mine / "saved.ipynb").read_text())["nbformat"] == 4
        assert_locked_down(inspect(shown["name"]))
    finally:
        dlenv(env, "stop", str(mine))
        _remove_volumes(mine)
    assert (mine / "old.txt").stat().st_uid == 0 and mine.stat().st_uid == 0
    # re-locking as root keeps the lock's owner and mode
    (mine / "dlenv.toml").write_text((mine / "dlenv.toml").read_text() + "\n# edited\n")
    os.chown(mine / "dlenv.lock", OWNER, OWNER)
    lock_mode = (mine / "dlenv.lock").stat().st_mode
    r = dlenv(env, "lock", str(mine))
    assert r.returncode == 0, r.stderr
    st = (mine / "dlenv.lock").stat()
    assert (st.st_uid, st.st_mode) == (OWNER, lock_mode)
