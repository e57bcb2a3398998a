"""Multi-worker training: what the launcher tells each worker (TF_CONFIG, torchrun, JAX), the
spec's [deploy] keys, the job's containers, and how a job ends (chief's code, a failed worker,
Ctrl-C) with nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from dlenv import launcher
from dlenv.cluster import plan_workers
from dlenv.errors import SpecError
from dlenv.image import plan_build
from dlenv.lock import read_lock
from dlenv.run import Host, RunOptions, plan_run
from dlenv.run.train import plan_train
from dlenv.spec import load_spec, parse_spec
from dlenv.workflows.train import PreparedTrain, run_train
from tests.conftest import EXAMPLES

HERE = Path(__file__).resolve().parent.parent


def kubeflow_tf_config(job: str, replicas: dict[str, int], kind: str, index: int) -> dict:
    """The TF_CONFIG Kubeflow's Training Operator (v1) gives a TFJob replica: a cluster of
    every replica type but the evaluator, addresses in index order, the task's type and
    index, and "environment": "cloud"."""
    cluster = {t: [f"{job}-{t}-{i}.default.svc:2222" for i in range(n)]
               for t, n in replicas.items() if t != "evaluator" and n}
    return {"cluster": cluster, "task": {"type": kind, "index": index},
            "environment": "cloud"}


def shape(config: dict) -> tuple:
    return (sorted(config), {t: len(a) for t, a in config["cluster"].items()},
            config["task"], config["environment"])


@pytest.mark.parametrize("roles", [{"worker": 2}, {"worker": 4},
                                   {"chief": 1, "worker": 2, "ps": 1, "evaluator": 1}])
def test_tf_config_has_the_shape_a_tfjob_replica_gets(roles):
    text = ",".join(f"{k}={v}" for k, v in roles.items())
    every = launcher.tasks(launcher.parse_roles(text))
    hosts = [f"job-{i}.job" for i in range(len(every))]
    for index, (kind, task_index) in enumerate(every):
        ours = json.loads(launcher.cluster_env(index, hosts, launcher.parse_roles(text),
                                               2222)["TF_CONFIG"])
        assert shape(ours) == shape(kubeflow_tf_config("job", roles, kind, task_index))
    # cluster lists follow the index order, one entry per member
    first = json.loads(launcher.cluster_env(0, hosts, launcher.parse_roles(text), 2222)
                       ["TF_CONFIG"])
    assert [a for t in ("chief", "worker", "ps") for a in first["cluster"].get(t, [])] == \
        [f"{h}:2222" for h, (k, _) in zip(hosts, every, strict=True) if k != "evaluator"]


def test_torchrun_and_jax_variables_from_the_same_index_and_names():
    hosts = [f"train-{i}.train" for i in range(3)]
    env = launcher.cluster_env(2, hosts, [("worker", 3)], 29500)
    assert {k: env[k] for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK",
                                "NODE_RANK", "PET_NNODES", "PET_NODE_RANK")} == {
        "MASTER_ADDR": "train-0.train", "MASTER_PORT": "29500", "WORLD_SIZE": "3",
        "RANK": "2", "NODE_RANK": "2", "PET_NNODES": "3", "PET_NODE_RANK": "2"}
    assert (env["JAX_COORDINATOR_ADDRESS"], env["JAX_NUM_PROCESSES"],
            env["JAX_PROCESS_ID"]) == ("train-0.train:29500", "3", "2")


def test_the_index_comes_from_kubernetes_when_dlenv_does_not_set_it():
    env, hosts = launcher.env_from({"JOB_COMPLETION_INDEX": "1", "DLENV_HOSTS": "j-{index}.j",
                                    "DLENV_ROLES": "worker=2", "DLENV_PORT": "2222"})
    assert hosts == ["j-0.j", "j-1.j"]
    assert json.loads(env["TF_CONFIG"])["task"] == {"type": "worker", "index": 1}


@pytest.mark.parametrize("environ, words", [
    ({"DLENV_HOSTS": "w-{index}"}, "no worker index"),
    ({"DLENV_INDEX": "2", "DLENV_HOSTS": "w-{index}", "DLENV_ROLES": "worker=2"},
     "outside 0..1"),
    ({"DLENV_INDEX": "0", "DLENV_HOSTS": "w-{index}", "DLENV_ROLES": "boss=1"}, "ROLE=COUNT"),
    ({"DLENV_INDEX": "0", "DLENV_HOSTS": "a,b", "DLENV_ROLES": "worker=3"}, "names 2 hosts"),
    ({"DLENV_INDEX": "0", "DLENV_HOSTS": "w-{index}", "DLENV_PORT": "99999"}, "port"),
])
def test_bad_launcher_settings_are_named(environ, words):
    with pytest.raises(launcher.LaunchError, match=words):
        launcher.env_from(environ)


def test_the_launcher_runs_the_command_with_the_variables(tmp_path):
    """The file as it runs in an image: by itself, resolving its peers, then exec."""
    code = "import json,os;print(json.dumps({k: os.environ[k] for k in ('TF_CONFIG','RANK')}))"
    env = {"PATH": "/usr/bin:/bin", "DLENV_INDEX": "1", "DLENV_HOSTS": "localhost,localhost",
           "DLENV_WAIT": "5"}
    done = subprocess.run([sys.executable, launcher.__file__, "--", sys.executable, "-c", code],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["RANK"] == "1"
    assert json.loads(seen["TF_CONFIG"])["cluster"] == {"worker": ["localhost:29500"] * 2}
    assert "worker:1 of 2" in done.stderr
    gone = subprocess.run([sys.executable, launcher.__file__, "true"],
                          env={**env, "DLENV_HOSTS": "nowhere.invalid,localhost",
                               "DLENV_WAIT": "0"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert gone.returncode == 3 and "nowhere.invalid" in gone.stderr


DEPLOY = """
name = "t"
framework = "tensorflow"
[profiles.train]
command = ["python", "train.py"]
[deploy]
namespace = "ml"
[deploy.volumes.data]
claim = "datasets"
read_only = true
[deploy.train]
workers = 3
chief = true
ps = 1
gpus = 2
secrets = { WANDB_API_KEY = "wandb/api-key" }
"""


def test_deploy_keys_merge_per_profile_and_leave_the_digest_alone():
    spec = parse_spec(tomllib.loads(DEPLOY), text=DEPLOY)
    train = spec.deploy.for_profile("train")
    assert (train.namespace, train.workers, train.chief, train.ps, train.gpus) == \
        ("ml", 3, True, 1, 2)
    assert train.secrets == (("WANDB_API_KEY", "wandb", "api-key"),)
    assert [(v.name, v.claim, v.path, v.read_only) for v in train.volumes] == \
        [("data", "datasets", "/data", True)]
    assert spec.deploy.for_profile("dev").gpus is None
    bare = DEPLOY.split("[deploy]")[0]
    assert spec.digest() == parse_spec(tomllib.loads(bare), text=bare).digest()
    workers = plan_workers(spec, train)
    assert workers.roles == (("chief", 1), ("worker", 2), ("ps", 1))
    assert plan_workers(spec, train, 5).roles[1] == ("worker", 4)


@pytest.mark.parametrize("extra, key", [
    ('[deploy.train]\ngpus = "two"', "deploy.train.gpus"),
    ('[deploy]\nnamespace = "ML_Team"', "deploy.namespace"),
    ('[deploy.train]\nsecrets = { TOKEN = "hunter2" }', "deploy.train.secrets.TOKEN"),
    ('[deploy.volumes.data]\nclaim = "x"\nsize = "1Gi"', "deploy.volumes.data"),
    ('[deploy.volumes.data]\nclaim = "x"\npath = "/etc/x"', "deploy.volumes.data.path"),
    ('[deploy]\nmemory = "lots"', "deploy.memory"),
    ('[deploy]\ntolerations = [{ key = "a", effect = "Never" }]',
     "deploy.tolerations[0].effect"),
    ('[deploy.serve]\nservice_type = "Ingress"', "deploy.serve.service_type"),
    ('[deploy.train]\nworker = 2', "deploy.train.worker"),
])
def test_bad_deploy_values_name_the_key_and_the_fix(extra, key):
    text = 'name = "t"\n' + extra
    with pytest.raises(SpecError) as caught:
        parse_spec(tomllib.loads(text), text=text)
    problem = caught.value.problems[0]
    assert problem.key == key and problem.fix


def test_tensorflow_roles_are_refused_for_other_frameworks():
    text = 'name = "t"\nframework = "torch"\n[deploy.train]\nchief = true\n'
    spec = parse_spec(tomllib.loads(text), text=text)
    with pytest.raises(SpecError, match="TensorFlow task types"):
        plan_workers(spec, spec.deploy.for_profile("train"))


def single_plan(tmp_path):
    spec = load_spec(EXAMPLES / "tensorflow-cpu")
    host = Host(project_dir=str(tmp_path), uid=1000, gid=1000, data_dir=str(tmp_path / "d"),
                memory_bytes=8 << 30)
    return spec, plan_run(spec.run_view(), "img", "train", RunOptions(mode="run"), host)


def test_the_job_is_one_confined_run_container_per_worker_on_its_own_network(tmp_path):
    spec, single = single_plan(tmp_path)
    plan = plan_train(spec.name, single, plan_workers(spec, spec.deploy.for_profile("train"),
                                                      3), ("python", "train.py"),
                      str(tmp_path), "abc")
    assert [plan.name_of(i) for i in range(3)] == ["worker-0", "worker-1", "worker-2"]
    for i, worker in enumerate(plan.workers):
        args = worker.args("docker")
        assert args[args.index("--network") + 1] == plan.network
        assert args[args.index("--network-alias") + 1] == f"worker-{i}"
        assert {"--cap-drop", "ALL", "no-new-privileges"} <= set(args)
        assert "--publish" not in args and "--rm" not in args
        assert args[-5:] == ["python3", launcher.PATH, "--", "python", "train.py"]
        assert (f"DLENV_INDEX={i}") in args and "DLENV_HOSTS=worker-{index}" in args
        assert ("dev.dlenv.mode", "train") in worker.labels
    assert len({w.name for w in plan.workers}) == 3


def test_only_train_images_carry_the_launcher():
    spec = load_spec(EXAMPLES / "tensorflow-cpu")
    lock = read_lock(HERE / "fixtures/locks/tensorflow-cpu.lock")
    kinds = [layer.kind for layer in plan_build(spec, lock, profile="train").layers]
    assert kinds.count("launcher") == 1
    assert "launcher" not in [layer.kind for layer in plan_build(spec, lock).layers]


class JobEngine:
    """Containers as threads that end with a chosen exit code (or never, until removed)."""

    kind = "docker"

    def __init__(self, codes: dict[int, int | None]) -> None:
        self.codes = codes
        self.running: dict[str, threading.Event] = {}
        self.removed: list[str] = []
        self.networks: list[str] = []

    def image_id(self, ref):
        return "sha256:1"

    def existing_volumes(self, names):
        return set(names)

    def create_network(self, name, labels):
        self.networks.append(name)

    def remove_network(self, name):
        self.networks.remove(name)

    def start(self, args):
        name = args[args.index("--name") + 1]
        self.running[name] = threading.Event()
        return name

    def _index(self, name):
        return int(name.rsplit("-", 1)[1])

    def wait(self, name):
        code = self.codes[self._index(name)]
        if code is None:
            self.running[name].wait(10)
            return -1
        return code

    def follow(self, name):
        yield f"hello from {self._index(name)}"
        if self.codes[self._index(name)]:
            yield "Traceback: it broke"

    def remove(self, name):
        self.removed.append(name)
        self.running[name].set()


def prepared(tmp_path, engine, workers=2):
    spec, single = single_plan(tmp_path)
    single = replace(single, volumes=(), files=(), mounts=())
    plan = plan_train(spec.name, single, plan_workers(spec, spec.deploy.for_profile("train"),
                                                      workers), ("python", "train.py"),
                      str(tmp_path), "abc")
    return PreparedTrain(plan=plan, engine=engine)


def test_the_job_ends_with_the_chief_and_leaves_nothing(tmp_path):
    engine = JobEngine({0: 0, 1: 0})
    lines: list[tuple[str, str]] = []
    result = run_train(prepared(tmp_path, engine), lambda w, line: lines.append((w, line)))
    assert result.code == 0 and result.failed is None
    assert ("worker-1", "hello from 1") in lines
    assert sorted(engine.removed) == sorted(engine.running) and engine.networks == []


def test_a_failed_worker_fails_the_job_with_its_name_and_last_lines(tmp_path):
    engine = JobEngine({0: None, 1: 137})  # the chief would wait for ever
    result = run_train(prepared(tmp_path, engine), lambda w, line: None)
    assert (result.code, result.failed) == (137, "worker-1")
    assert result.tail[-1] == "Traceback: it broke"
    assert sorted(engine.removed) == sorted(engine.running) and engine.networks == []


def test_a_worker_that_outlives_the_chief_is_removed_after_the_grace(tmp_path):
    engine = JobEngine({0: 0, 1: None})
    result = run_train(prepared(tmp_path, engine), lambda w, line: None, grace=0.2)
    assert result.code == 0 and result.codes == {"worker-0": 0}
    assert sorted(engine.removed) == sorted(engine.running) and engine.networks == []


def test_ctrl_c_removes_every_worker_and_the_network(tmp_path):
    import _thread

    engine = JobEngine({0: None, 1: None})  # both would run for ever
    threading.Timer(0.5, _thread.interrupt_main).start()  # Ctrl-C while the job runs
    with pytest.raises(KeyboardInterrupt):
        run_train(prepared(tmp_path, engine), lambda w, line: None)
    assert sorted(engine.removed) == sorted(engine.running) and engine.networks == []
