"""dlenv's model server speaks TensorFlow Serving's REST API: routes, both request formats,
its error shape, version policy and new versions without a restart, health and metrics.
The model here is a stand-in with TensorFlow's signature shapes; the integration test
serves a real SavedModel in a built image."""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # it asks for httpx2 now; httpx, which dlenv uses, works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from dlenv.serving import RequestError, Servable, Versions, make_app


class Doubler(Servable):
    """y = 2x + version, one input and one output; or two of each (``pair``)."""

    def __init__(self, path: str, pair: bool = False) -> None:
        self.version = int(path.rsplit("/", 1)[-1])
        self.pair = pair

    def signatures(self):
        ins = {"x": ("DT_FLOAT", [-1, 2])}
        outs = {"y": ("DT_FLOAT", [-1, 2])}
        if self.pair:
            ins["z"] = ("DT_FLOAT", [-1])
            outs["total"] = ("DT_FLOAT", [-1])
        return {"serving_default": {"inputs": ins, "outputs": outs}}

    def run(self, signature, inputs):
        x = np.asarray(inputs["x"], dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != 2:
            raise RequestError(f"input x has shape {list(x.shape)}, expected [-1, 2]")
        out = {"y": 2 * x + self.version}
        if self.pair:
            out["total"] = x.sum(axis=1) + np.asarray(inputs["z"], dtype=np.float32)
        return out


def serve(tmp_path, versions=(1,), policy="latest", pair=False):
    base = tmp_path / "mnist"
    for v in versions:
        (base / str(v)).mkdir(parents=True)
    found = Versions("mnist", str(base), policy, load=lambda p: Doubler(p, pair))
    app = make_app(found)
    found.refresh()
    return found, TestClient(app), base


def test_predict_in_both_formats_from_the_newest_version(tmp_path):
    _, client, _ = serve(tmp_path, versions=(1, 2))
    rows = client.post("/v1/models/mnist:predict", json={"instances": [[1, 2], [3, 4]]})
    assert rows.status_code == 200
    assert rows.json() == {"predictions": [[4.0, 6.0], [8.0, 10.0]]}  # 2x + 2: version 2
    cols = client.post("/v1/models/mnist:predict", json={"inputs": [[1, 2]]})
    assert cols.json() == {"outputs": [[4.0, 6.0]]}
    named = client.post("/v1/models/mnist:predict", json={"inputs": {"x": [[0, 0]]}})
    assert named.json() == {"outputs": [[2.0, 2.0]]}


def test_several_inputs_and_outputs_keep_tensorflow_servings_shapes(tmp_path):
    _, client, _ = serve(tmp_path, pair=True)
    rows = client.post("/v1/models/mnist:predict", json={"instances": [
        {"x": [1, 2], "z": 10}, {"x": [0, 1], "z": 0}]})
    assert rows.json() == {"predictions": [{"y": [3.0, 5.0], "total": 13.0},
                                           {"y": [1.0, 3.0], "total": 1.0}]}
    cols = client.post("/v1/models/mnist:predict", json={"inputs": {"x": [[1, 2]], "z": [1]}})
    assert cols.json() == {"outputs": {"y": [[3.0, 5.0]], "total": [4.0]}}
    bare = client.post("/v1/models/mnist:predict", json={"instances": [[1, 2]]})
    assert bare.status_code == 400 and "give each instance as an object" in bare.json()["error"]


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"instances": [[1, 2, 3]]}, 400, "expected [-1, 2]"),
    ({"rows": [[1, 2]]}, 400, "Missing 'inputs' or 'instances' key"),
    ({"instances": [[1, 2]], "inputs": [[1, 2]]}, 400, "cannot both be given"),
    ({"instances": []}, 400, "non-empty list"),
    ({"inputs": {"w": [[1, 2]]}}, 400, "unknown input(s) w; the signature takes x"),
    ({"instances": [[1, 2]], "signature_name": "other"}, 400, "\"other\" not found"),
])
def test_bad_requests_get_tensorflow_servings_error_shape(tmp_path, body, status, says):
    _, client, _ = serve(tmp_path)
    r = client.post("/v1/models/mnist:predict", json=body)
    assert r.status_code == status
    assert set(r.json()) == {"error"} and says in r.json()["error"]


def test_unknown_models_versions_and_bodies_are_refused(tmp_path):
    _, client, _ = serve(tmp_path)
    assert client.post("/v1/models/other:predict", json={"instances": [[1, 2]]}
                       ).status_code == 404
    missing = client.post("/v1/models/mnist/versions/7:predict", json={"instances": [[1, 2]]})
    assert missing.status_code == 404 and "Specific(mnist, 7)" in missing.json()["error"]
    garbled = client.post("/v1/models/mnist:predict", content=b"{not json")
    assert garbled.status_code == 400 and "JSON Parse error" in garbled.json()["error"]
    assert client.post("/v1/models/mnist:classify", json={}).status_code == 501


def test_status_metadata_and_a_new_version_without_restart(tmp_path):
    found, client, base = serve(tmp_path)
    status = client.get("/v1/models/mnist").json()
    assert status == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                                "status": {"error_code": "OK",
                                                           "error_message": ""}}]}
    meta = client.get("/v1/models/mnist/metadata").json()
    assert meta["model_spec"] == {"name": "mnist", "signature_name": "", "version": "1"}
    x = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in x["tensor_shape"]["dim"]] == ["-1", "2"]
    (base / "2").mkdir()  # what the watcher thread does every few seconds
    found.refresh()
    assert client.get("/v1/models/mnist").json()["model_version_status"][0]["version"] == "2"
    assert client.post("/v1/models/mnist:predict", json={"instances": [[0, 0]]}
                       ).json() == {"predictions": [[2.0, 2.0]]}
    # the latest policy unloads the older version; asking for it is a 404
    assert client.get("/v1/models/mnist/versions/1").status_code == 404


def test_all_versions_stay_loaded_and_each_can_be_asked(tmp_path):
    _, client, _ = serve(tmp_path, versions=(1, 3), policy="all")
    v1 = client.post("/v1/models/mnist/versions/1:predict", json={"instances": [[0, 0]]})
    v3 = client.post("/v1/models/mnist/versions/3:predict", json={"instances": [[0, 0]]})
    assert v1.json() == {"predictions": [[1.0, 1.0]]}
    assert v3.json() == {"predictions": [[3.0, 3.0]]}
    versions = [s["version"] for s in client.get("/v1/models/mnist").json()[
        "model_version_status"]]
    assert versions == ["3", "1"]


def test_a_version_that_fails_to_load_is_reported_and_the_others_serve(tmp_path):
    base = tmp_path / "mnist"
    (base / "1").mkdir(parents=True)
    (base / "2").mkdir()

    def load(path):
        if path.endswith("/2"):
            raise ValueError("no serving_default signature")
        return Doubler(path)

    found = Versions("mnist", str(base), "all", load=load)
    client = TestClient(make_app(found))
    found.refresh()
    rows = client.get("/v1/models/mnist").json()["model_version_status"]
    assert rows[0]["version"] == "2" and rows[0]["state"] == "END"
    assert "no serving_default signature" in rows[0]["status"]["error_message"]
    assert client.post("/v1/models/mnist:predict", json={"instances": [[0, 0]]}
                       ).json() == {"predictions": [[1.0, 1.0]]}


def test_a_version_still_being_written_keeps_the_old_one_serving_until_it_loads(tmp_path):
    base = tmp_path / "mnist"
    (base / "1").mkdir(parents=True)
    tries = []

    def load(path):  # as a SavedModel whose writer has not finished: no saved_model.pb yet
        tries.append(path)
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise OSError(f"SavedModel file does not exist at: {path}")
        return Doubler(path)

    (base / "1" / "saved_model.pb").write_text("done")
    found = Versions("mnist", str(base), "latest", load=load)
    client = TestClient(make_app(found))
    found.refresh()
    (base / "2" / "variables").mkdir(parents=True)  # the writer has begun version 2
    found.refresh()
    rows = client.get("/v1/models/mnist").json()["model_version_status"]
    assert [(r["version"], r["state"]) for r in rows] == [("2", "END"), ("1", "AVAILABLE")]
    assert client.post("/v1/models/mnist:predict", json={"instances": [[0, 0]]}
                       ).json() == {"predictions": [[1.0, 1.0]]}  # version 1 goes on
    found.refresh()
    assert len(tries) == 2  # unchanged files: not loaded again on every look
    (base / "2" / "saved_model.pb").write_text("done")  # the writer has finished
    found.refresh()
    rows = client.get("/v1/models/mnist").json()["model_version_status"]
    assert [(r["version"], r["state"]) for r in rows] == [("2", "AVAILABLE")]
    assert client.post("/v1/models/mnist:predict", json={"instances": [[0, 0]]}
                       ).json() == {"predictions": [[2.0, 2.0]]}


def test_ready_only_once_a_version_is_loaded_and_metrics_count_requests(tmp_path):
    found, client, base = serve(tmp_path, versions=())
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    assert client.post("/v1/models/mnist:predict", json={"instances": [[0, 0]]}
                       ).status_code == 404
    (base / "1").mkdir(parents=True)
    found.refresh()
    assert client.get("/readyz").status_code == 200
    for _ in range(3):
        client.post("/v1/models/mnist:predict", json={"instances": [[0, 0]]})
    text = client.get("/metrics").text
    assert 'dlenv_serve_requests_total{code="200",method="predict",model="mnist"} 3.0' in text
    assert 'dlenv_serve_requests_total{code="404",method="predict",model="mnist"} 1.0' in text
    assert 'dlenv_serve_loaded_versions{model="mnist"} 1.0' in text
    assert 'dlenv_serve_model_load_seconds{model="mnist",version="1"}' in text
    assert 'dlenv_serve_request_seconds_count{method="predict",model="mnist"} 4.0' in text


class Counting(Doubler):
    """A Doubler that records the rows of every call the model gets."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls: list[int] = []

    def run(self, signature, inputs):
        self.calls.append(len(inputs["x"]))
        return super().run(signature, inputs)


def test_predicts_that_arrive_together_run_as_one_batch_and_get_their_own_rows():
    from concurrent.futures import ThreadPoolExecutor

    from dlenv.serving import Batcher

    model = Counting("/models/mnist/1")
    seen: list[int] = []
    batcher = Batcher(8, timeout=10.0, observe=seen.append)  # a full batch does not wait
    start = threading.Barrier(8)

    def one(i):
        start.wait()
        return batcher.run(model, "serving_default", {"x": [[i, -i]]})["y"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert model.calls == [8] and seen == [8]
    for i, y in enumerate(answers):
        assert y.tolist() == [[2 * i + 1, -2 * i + 1]]

    # one malformed request in the batch: the batch runs again request by request, and only
    # that request gets the error
    model.calls.clear()
    small = Batcher(4, timeout=10.0)
    together = threading.Barrier(4)

    def mixed(row):
        together.wait()
        try:
            return small.run(model, "serving_default", {"x": [row]})["y"].tolist()
        except RequestError as exc:
            return str(exc)

    with ThreadPoolExecutor(4) as pool:
        out = list(pool.map(mixed, [[1, 1], [2, 2], [1, 2, 3], [3, 3]]))
    assert out[0] == [[3, 3]] and out[1] == [[5, 5]] and out[3] == [[7, 7]]
    assert "expected [-1, 2]" in out[2]
    assert model.calls[0] == 4 and sorted(model.calls[1:]) == [1, 1, 1, 1]

    # as many rows as a batch holds, or a lone request after its wait: called at once
    model.calls.clear()
    assert small.run(model, "serving_default", {"x": [[0, 0]] * 4})["y"].shape == (4, 2)
    assert Batcher(4, timeout=0.01).run(model, "serving_default", {"x": [[0, 0]]})["y"] \
        .tolist() == [[1, 1]]
    assert model.calls == [4, 1]


def test_the_server_batches_when_asked_and_answers_as_without(tmp_path):
    base = tmp_path / "mnist"
    (base / "1").mkdir(parents=True)
    found = Versions("mnist", str(base), load=Doubler)
    client = TestClient(make_app(found, batch_size=4, batch_timeout=0.001))
    found.refresh()
    rows = client.post("/v1/models/mnist:predict", json={"instances": [[1, 2], [3, 4]]})
    assert rows.json() == {"predictions": [[3.0, 5.0], [7.0, 9.0]]}
    bad = client.post("/v1/models/mnist:predict", json={"instances": [[1, 2, 3]]})
    assert bad.status_code == 400 and "expected [-1, 2]" in bad.json()["error"]
    text = client.get("/metrics").text
    assert 'dlenv_serve_batch_rows_count{model="mnist"} 2.0' in text
