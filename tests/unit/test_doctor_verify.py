"""Doctor and verify decisions, replayed from what real hosts showed.

tests/fixtures/h200/ holds what `dlenv doctor --json` and `dlenv verify --host --json` printed
on an NVIDIA H200 node (docs/gpu-verification.md); the other cases change one recorded fact.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path

import certifi
import pytest

from dlenv.cli import main
from dlenv.compat import load_matrix
from dlenv.doctor import (
    HostFacts,
    Needs,
    diagnose,
    extra_cas,
    parse_gpus,
    parse_proc_driver,
)
from dlenv.resolve import resolve_target
from dlenv.spec import load_spec
from dlenv.verify import Request, evaluate, probe_host
from dlenv.workflows.check import verify_host
from tests.conftest import EXAMPLES

H200 = Path(__file__).resolve().parent.parent / "fixtures/h200"


def recorded(name: str) -> dict:
    return json.loads((H200 / name).read_text())


def h200() -> HostFacts:
    return HostFacts.from_json(recorded("doctor.json")["facts"])


def pytorch_gpu() -> Needs:
    spec = load_spec(EXAMPLES / "pytorch-gpu/dlenv.toml")
    target = resolve_target(spec).to_dict()
    return Needs(name=spec.name, cuda=target["cuda"], min_driver=target["min_driver"],
                 gpu_archs=tuple(target["gpu_archs"]), framework=target.get("framework"))


def by_id(checks) -> dict[str, tuple[str, str]]:
    return {c.id: (c.status, c.summary + " " + c.fix) for c in checks}


def test_the_h200_record_replays_to_the_same_checks():
    facts = HostFacts.from_json(recorded("doctor-pytorch-gpu.json")["facts"])
    checks = [asdict(c) for c in diagnose(facts, pytorch_gpu())]
    assert checks == recorded("doctor-pytorch-gpu.json")["checks"]
    got = by_id(diagnose(facts, pytorch_gpu()))
    assert got["gpu0"][0] == "ok" and "H200 (compute 9.0)" in got["gpu0"][1]
    assert got["driver"][0] == "ok" and "580.159.04" in got["driver"][1]
    assert got["toolkit"][0] == "fail"  # that node has no container toolkit
    assert got["engine"][0] == "fail"  # nor Docker


def test_parsing_nvidia_smi_and_the_proc_file():
    facts = h200()
    gpu, = parse_gpus(facts.nvidia_smi or "")
    assert (gpu.name, gpu.driver, gpu.memory_mib, gpu.capability) == \
        ("NVIDIA H200", "580.159.04", 143771, "9.0")
    assert parse_proc_driver(facts.proc_driver or "") == "580.159.04"


def test_a_driver_older_than_the_cuda_floor_fails_with_the_floor_named():
    facts = replace(h200(), nvidia_smi="0, NVIDIA H200, 470.82.01, 143771, 9.0\n")
    status, text = by_id(diagnose(facts, pytorch_gpu()))["driver"]
    assert status == "fail" and "older than CUDA 12.4 needs (525.60.13)" in text
    assert "upgrade the driver to 525.60.13" in text


def test_a_gpu_a_cuda_13_build_dropped_fails_and_a_newer_one_warns():
    needs = Needs(name="x", cuda="13.0", min_driver="580.65.06",
                  gpu_archs=load_matrix().gpu_archs("13.0"))
    old = replace(h200(), nvidia_smi="0, Tesla V100-SXM2-16GB, 580.159.04, 16384, 7.0\n")
    status, text = by_id(diagnose(old, needs))["gpu0"]
    assert status == "fail" and "older than this build supports (7.5–12.1)" in text
    newer = Needs(name="x", cuda="12.4", min_driver="525.60.13",
                  gpu_archs=load_matrix().gpu_archs("12.4"))
    blackwell = replace(h200(), nvidia_smi="0, NVIDIA B200, 580.159.04, 183359, 10.0\n")
    assert by_id(diagnose(blackwell, newer))["gpu0"][0] == "warn"


def test_toolkit_states():
    facts = h200()
    assert by_id(diagnose(facts))["toolkit"][0] == "fail"
    installed = replace(facts, toolkit=("nvidia-ctk",))
    status, text = by_id(diagnose(installed))["toolkit"]
    assert status == "warn" and "nvidia-ctk runtime configure" in text
    cdi = replace(facts, cdi_specs=("/etc/cdi/nvidia.yaml",))
    assert by_id(diagnose(cdi))["toolkit"][0] == "ok"
    docker = replace(facts, docker_info=json.dumps(
        {"ServerVersion": "27.3.1", "Runtimes": {"nvidia": {}, "runc": {}}}), docker_error=None)
    checks = by_id(diagnose(docker))
    assert checks["toolkit"][0] == "ok" and checks["buildkit"][0] == "ok"


def test_no_gpu_skips_the_gpu_checks_and_a_cuda_environment_cannot_run():
    facts = replace(h200(), nvidia_smi=None, proc_driver=None,
                    nvidia_smi_error="nvidia-smi: not found")
    checks = by_id(diagnose(facts, pytorch_gpu()))
    assert checks["gpu"][0] == "skip" and "toolkit" not in checks
    assert checks["fit"][0] == "fail" and "no NVIDIA driver" in checks["fit"][1]
    cpu = by_id(diagnose(facts, Needs(name="cpu-env")))
    assert cpu["fit"][0] == "ok"


def test_a_daemon_that_does_not_answer_is_named_with_how_to_start_it():
    facts = replace(h200(), docker_error="Cannot connect to the Docker daemon at "
                    "unix:///var/run/docker.sock. Is the docker daemon running?")
    status, text = by_id(diagnose(facts))["engine"]
    assert status == "fail" and "daemon does not answer" in text and "dockerd" in text


def test_tls_interception_is_found_from_the_host_bundle(tmp_path):
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=Corporate Proxy CA", "-keyout", str(key), "-out", str(cert),
                    "-days", "2"], capture_output=True, check=True)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(Path(certifi.where()).read_text() + cert.read_text())
    found = extra_cas(str(bundle))
    assert len(found) == 1
    assert extra_cas(certifi.where()) == ()
    facts = replace(h200(), ca_bundle=str(bundle), extra_cas=found)
    status, text = by_id(diagnose(facts))["tls"]
    assert status == "warn" and "never copies it into an image layer" in text


def test_doctor_cli_replays_facts_and_exits_1_on_a_failed_check(tmp_path, capsys):
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(recorded("doctor.json")["facts"]))
    assert main(["doctor", "--facts", str(facts), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "fail"


def test_the_h200_probe_records_evaluate_to_passing_checks():
    for name, framework in (("verify-torch.json", "torch"), ("verify-jax.json", "jax")):
        record = recorded(name)
        checks = evaluate(record["seen"], expect_gpu=True, in_image=False)
        assert [asdict(c) for c in checks] == record["checks"]
        got = by_id(checks)
        assert all(status == "ok" for status, _ in got.values()), got
        assert "matmul cuda:0" in got and "train step" in got
        assert record["seen"]["framework"]["name"] == framework


def seen_torch() -> dict:
    return copy.deepcopy(recorded("verify-torch.json")["seen"])


def test_verify_failures_say_what_was_seen_and_the_likely_fix():
    seen = seen_torch()
    seen["packages"]["missing"] = ["six"]
    seen["packages"]["mismatched"] = [["numpy", "1.26.4", "2.0.0"]]
    status, text = by_id(evaluate(seen, expect_gpu=True, in_image=False))["packages"]
    assert status == "fail"
    checks = {c.id: c for c in evaluate(seen, expect_gpu=True, in_image=False)}
    assert "missing: six" in checks["packages"].evidence
    assert "numpy is 2.0.0, the lock has 1.26.4" in checks["packages"].evidence

    no_gpu = seen_torch()
    no_gpu["framework"]["devices"] = no_gpu["framework"]["devices"][:1]
    no_gpu["framework"]["cuda_build"] = None
    status, text = by_id(evaluate(no_gpu, expect_gpu=True, in_image=True))["devices"]
    assert status == "fail" and "CPU build of torch" in text

    wrong = seen_torch()
    wrong["framework"]["matmul"][1]["result"]["max_rel_error"] = 0.7
    assert by_id(evaluate(wrong, expect_gpu=True, in_image=False))["matmul cuda:0"][0] == "fail"

    broken = seen_torch()
    broken["framework"] = {"name": "torch", "import_error":
                           "OSError: libcuda.so.1: cannot open shared object file"}
    status, text = by_id(evaluate(broken, expect_gpu=True, in_image=True))["import"]
    assert status == "fail" and "container toolkit" in text

    root = seen_torch()
    assert by_id(evaluate(root, expect_gpu=True, in_image=True))["user"][0] == "fail"


def test_the_probe_runs_on_this_python_and_compares_versions():
    have = metadata.version("packaging")
    seen = probe_host(Request(framework=None, packages=(("packaging", have),
                                                         ("no-such-dist", "1.0"))))
    assert seen["executable"] == sys.executable
    assert seen["packages"]["missing"] == ["no-such-dist"]
    assert seen["packages"]["mismatched"] == []
    wrong = probe_host(Request(framework=None, packages=(("packaging", "0.1"),)))
    assert wrong["packages"]["mismatched"] == [["packaging", "0.1", have]]
    checks = by_id(evaluate(wrong, expect_gpu=False, in_image=False))
    assert checks["packages"][0] == "fail" and "framework" not in checks


# A framework whose native code kills the process on its first matrix multiply (as XLA's
# LLVM did under TensorFlow 2.16 in a CPU image): the probe process really dies of SIGSEGV.
_CRASHING_TF = """
import os, signal, sys
__version__ = "0.0+crashes"
class sysconfig:
    get_build_info = staticmethod(lambda: {})
class config:
    list_physical_devices = staticmethod(lambda kind: [])
def device(name):
    sys.stderr.write("LLVM ERROR: Failed to infer result type(s).\\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGSEGV)
"""


def test_a_step_that_kills_the_probe_is_that_steps_failure_with_what_ran_before(tmp_path):
    from dlenv.verify.launch import PROBE, _observed

    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(_CRASHING_TF)
    request = Request(framework="tensorflow", packages=(("packaging", "0.1"),))
    proc = subprocess.run([sys.executable, str(PROBE)], input=request.to_json(), text=True,
                          capture_output=True, env={"PYTHONPATH": str(tmp_path)}, check=False)
    assert proc.returncode == -11 and not proc.stdout  # no report on stdout: it died
    seen = _observed(proc.returncode, proc.stdout, proc.stderr, "this Python")
    checks = {c.id: c for c in evaluate(seen, expect_gpu=False, in_image=False)}
    assert checks["import"].status == "ok"  # what ran before the crash is kept
    assert checks["packages"].status == "fail"
    crashed = checks["matmul /CPU:0"]
    assert crashed.status == "fail"
    assert "signal 11" in crashed.evidence and "LLVM ERROR" in crashed.evidence
    assert checks["probe"].status == "warn" and "matmul on /CPU:0" in checks["probe"].summary
    assert "train step" not in checks  # it never started


def test_verify_on_the_host_reports_this_interpreter_and_passes_without_a_framework():
    report = verify_host()
    assert sys.executable in report.title
    assert report.status != "fail" and report.checks
    assert report.details["seen"]["executable"] == sys.executable


@pytest.mark.parametrize("framework", ["torch", "jax", "tensorflow"])
def test_a_framework_that_is_not_installed_is_an_import_failure(framework):
    try:
        __import__(framework)
        pytest.skip(f"{framework} is installed here")
    except ImportError:
        pass
    seen = probe_host(Request(framework=framework, packages=()))
    status, _ = by_id(evaluate(seen, expect_gpu=False, in_image=False))["import"]
    assert status == "fail"


def test_the_probe_imports_every_package_the_spec_names():
    from importlib import metadata

    from dlenv.verify import evaluate, probe

    assert probe.top_modules(metadata.distribution("packaging")) == ["packaging"]
    assert probe.top_modules(metadata.distribution("pyyaml")) == ["yaml"]  # not its name
    seen = {"uid": 1000, "packages": {"count": 2}, "imports": probe.imports(
        ["packaging", "pyyaml", "no-such-dist"])}
    assert seen["imports"]["imported"] == ["packaging", "yaml"]
    check = next(c for c in evaluate(seen, expect_gpu=False, in_image=True) if c.id == "imports")
    assert check.status == "fail" and "no-such-dist: not installed" in check.evidence
    seen["imports"]["failed"] = {}
    check = next(c for c in evaluate(seen, expect_gpu=False, in_image=True) if c.id == "imports")
    assert check.status == "ok" and "2 modules" in check.summary


# dlenv's real model server app (make_app, Versions) on a servable that needs no TensorFlow
SERVER = """
import os, sys
sys.path[:0] = {paths!r}
import uvicorn
from dlenv.serving import Versions, make_app
from tests.unit.test_serving import Doubler
name = os.environ["MODEL_NAME"]
versions = Versions(name, os.path.join(os.environ["MODEL_BASE_PATH"], name), load=Doubler)
app = make_app(versions)
versions.refresh()
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["DLENV_SERVE_PORT"]),
            log_level="warning")
"""


def test_verify_sends_one_predict_through_the_model_server_of_a_serve_image(tmp_path):
    import socket

    from dlenv.verify import probe

    repo = Path(__file__).resolve().parents[2]
    server = tmp_path / "serve.py"
    server.write_text(SERVER.format(paths=[str(repo / "src"), str(repo)]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    request = {"name": "half", "base": str(tmp_path / "models"), "server": str(server),
               "port": port}
    absent = probe.probe_serve(request)
    assert absent == {"baked": False}
    check = next(c for c in evaluate({"uid": 1000, "serve": absent}, expect_gpu=False,
                                     in_image=True) if c.id == "serve")
    assert check.status == "skip" and "mounted at run time" in check.summary

    (tmp_path / "models/half/3").mkdir(parents=True)
    seen = probe.probe_serve(request, timeout=60)
    assert seen["versions"] == ["3"]
    assert seen["predict"]["status"] == 200
    # zeros shaped [-1, 2] make one row; one output comes unnamed, as TF Serving sends it
    assert seen["predict"]["outputs"] == {"outputs": [1, 2]}
    check = next(c for c in evaluate({"uid": 1000, "serve": seen}, expect_gpu=False,
                                     in_image=True) if c.id == "serve")
    assert check.status == "ok" and "version 3" in check.summary and "outputs 1×2" in check.summary

    server.write_text("import sys\nsys.exit('no model server here')\n")
    broken = probe.probe_serve(request, timeout=60)
    assert broken["error"] == "the server stopped (exit 1)"
    assert "no model server here" in broken["log"]
    check = next(c for c in evaluate({"uid": 1000, "serve": broken}, expect_gpu=False,
                                     in_image=True) if c.id == "serve")
    assert check.status == "fail" and "no model server here" in check.evidence


def test_a_tflite_conversion_that_differs_from_keras_is_a_warning():
    seen = {"uid": 1000, "framework": {"name": "tensorflow", "version": "2.15.1",
                                       "import_seconds": 1.0, "devices": [],
                                       "tflite": {"ok": True, "seconds": 0.4,
                                                  "max_abs_error": 0.3}}}
    status, text = by_id(evaluate(seen, expect_gpu=False, in_image=True))["tflite"]
    assert status == "warn" and "other results than Keras" in text
    seen["framework"]["tflite"] = {"ok": False, "error": "ConverterError: boom"}
    checks = {c.id: c for c in evaluate(seen, expect_gpu=False, in_image=True)}
    assert checks["tflite"].status == "warn" and checks["tflite"].evidence == \
        "ConverterError: boom"
