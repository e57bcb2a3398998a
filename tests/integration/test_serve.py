"""`dlenv serve` against the real Docker engine: the TensorFlow CPU example with a serve
profile, a Keras model exported as a SavedModel inside its image, served by dlenv's model
server. Predictions over HTTP equal the model's own, in both request formats; a second
version directory is served without a restart; a bad request gets TensorFlow Serving's error
shape; the Prometheus counter counts the requests sent."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time

import httpx
import pytest

from tests.conftest import EXAMPLES, docker_ready, run_dlenv

pytestmark = pytest.mark.integration

SERVE = """
[profiles.serve]
model = "models/half"
"""
# A small Keras model with one dense layer whose weights are fixed, exported as
# TensorFlow Serving lays it out; it prints its own predictions for the test to compare.
EXPORT = """
import json, sys
import numpy as np, tensorflow as tf
version, bias = int(sys.argv[1]), float(sys.argv[2])
model = tf.keras.Sequential([tf.keras.Input(shape=(3,), name="x"), tf.keras.layers.Dense(2)])
model.layers[-1].set_weights([np.array([[0.5, 1.0], [0.5, -1.0], [0.5, 2.0]], "float32"),
                              np.array([bias, -bias], "float32")])
tf.saved_model.save(model, f"models/half/{version}")
x = np.array([[1, 2, 3], [0.5, -1, 4]], "float32")
print(json.dumps(model.predict(x, verbose=0).tolist()))
"""
X = [[1, 2, 3], [0.5, -1, 4]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_cache):
    docker_ready()
    root = tmp_path_factory.mktemp("serve") / "tensorflow-cpu"
    shutil.copytree(EXAMPLES / "tensorflow-cpu", root, ignore=shutil.ignore_patterns(
        "dlenv.lock"))
    with (root / "dlenv.toml").open("a") as f:
        f.write(SERVE)
    env = {"DLENV_DATA_DIR": str(tmp_path_factory.mktemp("data")),
           "DLENV_CACHE_DIR": str(shared_cache)}
    yield root, env
    run_dlenv("stop", str(root), env=env)


def export(root, env, version: int, bias: float) -> list[list[float]]:
    (root / "export.py").write_text(EXPORT)
    r = run_dlenv("run", str(root), "--profile", "serve", "--", "python3", "export.py",
                  str(version), str(bias), env=env, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def close(a, b) -> bool:
    return all(abs(x - y) < 1e-5 for ra, rb in zip(a, b, strict=True)
               for x, y in zip(ra, rb, strict=True))


def test_a_saved_model_is_served_with_tensorflow_servings_rest_api(project):
    root, env = project
    expected = export(root, env, 1, 0.25)
    port = free_port()
    r = run_dlenv("serve", str(root), "--detach", "--port", str(port), "--json", env=env,
                  timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    shown = json.loads(r.stdout)
    url = f"http://127.0.0.1:{port}/v1/models/half"
    assert shown["url"] == f"{url}:predict" and shown["name"] == "half"

    status = httpx.get(url, timeout=10).json()
    assert status["model_version_status"][0]["version"] == "1"
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    meta = httpx.get(f"{url}/metadata", timeout=10).json()
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert list(signature["inputs"]) == ["x"] and signature["inputs"]["x"]["dtype"] == "DT_FLOAT"

    rows = httpx.post(f"{url}:predict", json={"instances": X}, timeout=30)
    assert rows.status_code == 200, rows.text
    assert close(rows.json()["predictions"], expected)
    cols = httpx.post(f"{url}:predict", json={"inputs": {"x": X}}, timeout=30)
    assert close(cols.json()["outputs"], expected)

    bad = httpx.post(f"{url}:predict", json={"instances": [[1, 2]]}, timeout=30)
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    assert "Matrix size-incompatible" in bad.json()["error"]  # the cause, not only its title

    # a new version directory: served within the server's look-ups, no restart
    expected2 = export(root, env, 2, -1.0)
    for _ in range(120):  # bounded: up to 60 s
        versions = httpx.get(url, timeout=10).json()["model_version_status"]
        if versions[0]["version"] == "2" and versions[0]["state"] == "AVAILABLE":
            break  # (it may be reported END a moment while its writer is still at work)
        time.sleep(0.5)
    assert [v["version"] for v in versions] == ["2"]  # latest policy: version 1 unloaded
    again = httpx.post(f"{url}:predict", json={"instances": X}, timeout=30).json()
    assert close(again["predictions"], expected2) and not close(expected2, expected)
    pinned = httpx.post(f"{url}/versions/1:predict", json={"instances": X}, timeout=30)
    assert pinned.status_code == 404

    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    counted = re.search(r'dlenv_serve_requests_total\{code="200",method="predict",'
                        r'model="half"\} (\d+)', metrics)
    assert counted and int(float(counted.group(1))) == 3
    assert 'dlenv_serve_model_load_seconds{model="half",version="2"}' in metrics

    stopped = run_dlenv("stop", str(root), env=env, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=5)


def test_a_model_directory_without_numbered_versions_is_refused_by_name(project, tmp_path):
    root, env = project
    odd = tmp_path / "odd"
    (odd / "latest").mkdir(parents=True)
    r = run_dlenv("serve", str(root), "--model", str(odd), env=env, timeout=120)
    assert r.returncode == 2
    assert f"{odd / 'latest'}: a version directory's name must be a number" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_dlenv("serve", str(root), "--model", str(empty), env=env, timeout=120)
    assert r.returncode == 2 and f"{empty}: no version directory" in r.stderr


def test_the_model_is_baked_as_its_own_layers_and_verify_predicts_through_it(project):
    root, env = project
    if not (root / "models/half/1").is_dir():  # (the first test exports it, when it ran)
        export(root, env, 1, 0.25)
    r = run_dlenv("build", str(root), "--profile", "serve", "--json", env=env, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    layers = json.loads(r.stdout)["layers"]
    versions = sorted(p.name for p in (root / "models/half").iterdir())
    names = [x["name"] for x in layers]
    assert [n for n in names if n.startswith("model ")] == \
        [f"model half version {v}" for v in versions]
    assert names.index("model half version 1") > names.index("dlenv model server")

    r = run_dlenv("verify", str(root), "--profile", "serve", "--json", env=env, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(r.stdout)
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["serve"]["status"] == "ok", checks["serve"]
    assert f"version {versions[-1]}" in checks["serve"]["summary"]  # the latest policy
    assert report["seen"]["serve"]["predict"]["outputs"] == {"outputs": [1, 2]}
    assert checks["tflite"]["status"] == "ok", checks["tflite"]
    assert report["seen"]["framework"]["tflite"]["max_abs_error"] < 1e-4


def test_compose_runs_the_model_server_and_a_real_prometheus_scrapes_its_counter(project,
                                                                                 tmp_path):
    root, env = project
    if not (root / "models/half/1").is_dir():  # (the first test exports it, when it ran)
        export(root, env, 1, 0.25)
    port = free_port()
    r = run_dlenv("compose", str(root), "--port", str(port), "--json", env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    shown = json.loads(r.stdout)
    assert shown["services"] == ["serve", "prometheus"]  # the example has no JupyterLab
    linted = run_dlenv("lint", shown["file"], env=env, timeout=120)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    compose = ["docker-compose", "-f", shown["file"], "-p", f"dlenvtest{port}"]
    up = subprocess.run([*compose, "up", "-d", "serve"], capture_output=True, text=True,
                        timeout=300)
    prometheus = None
    try:
        assert up.returncode == 0, up.stderr
        url = f"http://127.0.0.1:{port}"
        for _ in range(180):  # bounded: up to 90 s for TensorFlow and the model to load
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        sent = 5
        for _ in range(sent):
            answer = httpx.post(f"{url}/v1/models/half:predict", json={"instances": X},
                                timeout=30)
            assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2

        # Debian's Prometheus, on the loopback, scraping the server through compose's port
        web = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({  # (JSON is YAML)
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "serve", "static_configs": [
                {"targets": [f"127.0.0.1:{port}"]}]}]}))
        prometheus = subprocess.Popen(
            ["/usr/bin/prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        query = ('dlenv_serve_requests_total{job="serve",method="predict",code="200",'
                 'model="half"}')
        value = None
        for _ in range(120):  # bounded: up to 60 s for a start and a scrape
            try:
                found = httpx.get(f"http://127.0.0.1:{web}/api/v1/query",
                                  params={"query": query}, timeout=5).json()
                results = found["data"]["result"]
                if results:
                    value = float(results[0]["value"][1])
                    if value == sent:
                        break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert value == sent
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=30)
        subprocess.run([*compose, "down", "--volumes"], capture_output=True, timeout=300)
