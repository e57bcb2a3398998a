"""Run plans: what every container dlenv starts gets (user, security, ports, volumes, files,
GPU), decided without an engine. The integration tests run the same plans in Docker."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace

import pytest

from dlenv.doctor import diagnose
from dlenv.engine import CliEngine
from dlenv.errors import EngineError, SpecError
from dlenv.run import Host, RunOptions, choose_profile, decide_gpus, default_shm, plan_run
from dlenv.spec import parse_spec
from dlenv.workflows.project import open_project
from dlenv.workflows.run import RunRequest, prepare_run
from tests.unit.test_doctor_verify import h200, pytorch_gpu

SPEC = """name = "team"
python = "3.11"
packages = ["six"]

[env]
TEAM = "vision"

[profiles.dev]
jupyter = true
ssh = true

[profiles.serve]
ports = [8501]
command = ["python3", "serve.py"]
"""
GIB = 1 << 30


def spec():
    """The run view of SPEC: what plan_run reads."""
    return parse_spec(tomllib.loads(SPEC), file="/p/dlenv.toml", text=SPEC).run_view()


def host(**kw) -> Host:
    base = dict(project_dir="/p", uid=1000, gid=1000, data_dir="/d", memory_bytes=24 * GIB,
                token="t0ken", nonce="ab12")
    base.update(kw)
    return Host(**base)


def args_of(plan, engine="docker") -> list[str]:
    return plan.args(engine)


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_every_container_is_unprivileged_and_local():
    plan = plan_run(spec(), "sha256:abc", "serve", RunOptions(mode="run"), host())
    a = args_of(plan)
    assert "--privileged" not in a and not any(x.startswith("--cap-add") for x in a)
    assert flag_values(a, "--cap-drop") == ["ALL"]
    assert flag_values(a, "--security-opt") == ["no-new-privileges"]
    assert flag_values(a, "--user") == ["1000:1000"] and "--init" in a and "--rm" in a
    assert flag_values(a, "--pull") == ["never"]  # a missing image never means a pull
    # the serve profile's port, on 127.0.0.1 only
    assert flag_values(a, "--publish") == ["127.0.0.1:8501:8501"]
    assert a[-1] == "sha256:abc"  # no command: the image's CMD (the profile's command)
    exposed = plan_run(spec(), "img", "serve", RunOptions(mode="run", expose=True), host())
    assert flag_values(args_of(exposed), "--publish") == ["0.0.0.0:8501:8501"]


def test_project_volumes_limits_and_host_ca():
    plan = plan_run(spec(), "img", None, RunOptions(mode="run", command=("python3", "-V"),
                                                     memory="8g", cpus="2"),
                    host(ca_bundle="/etc/ssl/certs/ca-certificates.crt"))
    a = args_of(plan)
    mounts = flag_values(a, "--mount")
    assert "type=bind,source=/p,target=/workspace" in mounts
    assert ("type=bind,source=/etc/ssl/certs/ca-certificates.crt,"
            "target=/run/dlenv/ca-certificates.crt,readonly") in mounts
    pid = plan.labels[-1][1]
    wanted = {"/home/dlenv": f"dlenv-team-{pid}-home", "/data": f"dlenv-team-{pid}-data",
              "/models": f"dlenv-team-{pid}-models"}
    # Podman: -v NAME:TARGET:nocopy, the volumes made by dlenv before the start
    podman = args_of(plan, "podman")
    volumes = dict(reversed(v.split(":")[:2]) for v in flag_values(podman, "--volume"))
    assert volumes == wanted
    assert all(v.endswith(":nocopy") for v in flag_values(podman, "--volume"))
    assert {v.device for v in plan.volumes} == {f"/d/volumes/{v.name}" for v in plan.volumes}
    # Docker: --mount, which makes a missing volume bound to its host directory, labelled
    assert flag_values(a, "--volume") == []
    docker = {dict(f.split("=", 1) for f in m.split(",") if "=" in f)["target"]: m
              for m in mounts if m.startswith("type=volume,")}
    assert docker.keys() == wanted.keys()
    for target, m in docker.items():
        name = wanted[target]
        assert m == (f"type=volume,source={name},target={target},volume-nocopy,"
                     "volume-driver=local,volume-opt=type=none,volume-opt=o=bind,"
                     f"volume-opt=device=/d/volumes/{name},volume-label=dev.dlenv.env=team,"
                     "volume-label=dev.dlenv.profile=,volume-label=dev.dlenv.project=/p,"
                     f"volume-label=dev.dlenv.project-id={pid}")
    assert flag_values(a, "--memory") == ["8g"] and flag_values(a, "--cpus") == ["2"]
    assert flag_values(a, "--shm-size") == ["6g"]
    assert "SSL_CERT_FILE=/run/dlenv/ca-certificates.crt" in flag_values(a, "--env")
    assert a[-2:] == ["python3", "-V"]
    assert dict(plan.labels)["dev.dlenv.project"] == "/p"


def test_shm_default_follows_host_memory_within_bounds():
    assert (default_shm(2 * GIB), default_shm(24 * GIB), default_shm(512 * GIB)) == \
        ("1g", "6g", "16g")


def test_files_belong_to_the_host_user_and_never_to_root():
    same = plan_run(spec(), "img", None, RunOptions(), host(uid=1000, gid=1000))
    assert same.files == () and (same.uid, same.gid) == (1000, 1000)
    other = plan_run(spec(), "img", None, RunOptions(), host(uid=1234, gid=1300))
    assert (other.uid, other.gid) == (1234, 1300)
    passwd = next(f for f in other.files if f.target == "/etc/passwd")
    assert "dlenv:x:1234:1300::/home/dlenv:/bin/bash" in passwd.content
    assert not any(f.target == "/etc/shadow" for f in other.files)
    root = plan_run(spec(), "img", None, RunOptions(), host(uid=0, gid=0))
    assert (root.uid, root.gid) == (1000, 1000) and "belongs to root" in root.notes[0]
    assert root.grant == "/p" and same.grant is None and other.grant is None
    # the ACL there already (an earlier run gave it): nothing to give, nothing said again
    again = plan_run(spec(), "img", None, RunOptions(), host(uid=0, gid=0, granted=True))
    assert (again.uid, again.gid) == (1000, 1000) and again.grant is None
    assert not any("belongs to root" in n for n in again.notes)


def test_jupyter_token_travels_in_a_file_only():
    plan = plan_run(spec(), "img", "dev", RunOptions(mode="jupyter", port=8890), host())
    a = args_of(plan)
    assert not any("t0ken" in x for x in a)
    config = next(f for f in plan.files if f.target.endswith("jupyter_server_config.json"))
    assert json.loads(config.content)["IdentityProvider"]["token"] == "t0ken"
    assert config.mode == 0o600
    assert f"type=bind,source={config.host_path},target={config.target},readonly" in \
        flag_values(a, "--mount")
    assert flag_values(a, "--publish") == ["127.0.0.1:8890:8888"]
    assert plan.extra["url"] == "http://127.0.0.1:8890/lab?token=t0ken"
    assert plan.detach and "--rm" not in a and "--interactive" not in a


def test_ssh_is_key_only_with_host_keys_in_a_volume():
    plan = plan_run(spec(), "img", "dev", RunOptions(mode="ssh", authorized_key="ssh-ed25519 K"),
                    host())
    config = next(f for f in plan.files if f.target.endswith("sshd_config")).content
    for line in ("PasswordAuthentication no", "PermitRootLogin no", "AllowUsers dlenv",
                 "KbdInteractiveAuthentication no",
                 "SetEnv TEAM=vision GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory "
                 "GIT_CONFIG_VALUE_0=/workspace"):
        assert line in config.splitlines()
    keys = next(f for f in plan.files if f.target.endswith("authorized_keys"))
    assert keys.content == "ssh-ed25519 K\n" and keys.mode == 0o600
    assert any(v.target == "/var/lib/dlenv/sshd" for v in plan.volumes)
    assert "ssh-keygen" in plan.command[-1] and plan.extra["ssh"].startswith("ssh -p 2222 dlenv@")
    with pytest.raises(EngineError, match="public key"):
        plan_run(spec(), "img", "dev", RunOptions(mode="ssh"), host())


def test_profiles_for_each_mode():
    s = spec()
    assert choose_profile(s, "shell", None) == "dev"
    assert choose_profile(s, "run", None) is None
    with pytest.raises(SpecError) as bad:
        choose_profile(s, "run", "nightly")
    assert "profiles.nightly" in str(bad.value) and "dev, serve" in str(bad.value)
    with pytest.raises(SpecError) as no_jupyter:
        choose_profile(s, "jupyter", "serve")
    assert "profiles.serve.jupyter" in str(no_jupyter.value)
    assert "set jupyter = true" in str(no_jupyter.value)


def test_gpus_only_where_containers_can_use_them():
    needs = pytorch_gpu()
    facts = h200()  # an H200, but no container toolkit on that node
    with pytest.raises(EngineError) as refused:
        decide_gpus(True, diagnose(facts, needs), allow_cpu=False)
    assert "toolkit" in str(refused.value) and "--allow-cpu" in str(refused.value)
    assert decide_gpus(True, diagnose(facts, needs), allow_cpu=True) is False
    wired = replace(facts, cdi_specs=("/etc/cdi/nvidia.yaml",))
    assert decide_gpus(True, diagnose(wired, needs), allow_cpu=False) is True
    assert decide_gpus(False, [], allow_cpu=False) is False
    no_gpu = replace(facts, nvidia_smi=None, proc_driver=None, nvidia_smi_error="not found")
    with pytest.raises(EngineError, match="no NVIDIA GPU"):
        decide_gpus(True, diagnose(no_gpu, needs), allow_cpu=False)
    plan = plan_run(spec(), "img", None, RunOptions(gpus=True), host())
    assert flag_values(plan.args("docker"), "--gpus") == ["all"]
    assert flag_values(plan.args("podman"), "--device") == ["nvidia.com/gpu=all"]


def test_a_prepared_run_plans_the_container_and_starts_nothing(tmp_path):
    (tmp_path / "dlenv.toml").write_text(SPEC)
    fake = CliEngine("docker", "/nonexistent/docker")  # any call to it would fail
    request = RunRequest(mode="run", image="team:serve", profile="serve",
                         command=("python3", "-c", "print(1)"))
    prepared = prepare_run(open_project(tmp_path), request, engine=fake)
    assert prepared.engine is fake and prepared.profile == "serve"
    argv = prepared.plan.args(fake.kind)
    assert argv[-4:] == ["team:serve", "python3", "-c", "print(1)"]
    assert [str(p) for p in prepared.plan.ports] == ["127.0.0.1:8501->8501"]
    assert (tmp_path / "dlenv.lock").exists()  # a missing lock is made first, as for a build
