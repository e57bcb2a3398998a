"""dlenv's model server: TensorFlow Serving's REST API (v1) on Starlette and uvicorn, with
Prometheus metrics from prometheus_client, for SavedModels laid out as TensorFlow Serving
lays them out (``MODEL_BASE_PATH/MODEL_NAME/VERSION/saved_model.pb``).

Images of a TensorFlow spec's ``serve`` profile carry this file at ``PATH`` and run it. It
imports nothing of dlenv (the image has no dlenv), only what the serve profile locks:
starlette, uvicorn, prometheus-client, and TensorFlow itself. The official
``tensorflow_model_server`` binary is not on the package indexes images are built from, and
no maintained library implements TensorFlow Serving's REST protocol over a SavedModel, so
the protocol (routes, both request formats, its error shape) is written here; HTTP, the
event loop and the metrics format come from the libraries.

Settings (the tensorflow/serving image's names where it has one):
  MODEL_NAME (model), MODEL_BASE_PATH (/models): the versions live in BASE/NAME/N/;
  DLENV_SERVE_PORT (8501); DLENV_SERVE_VERSIONS: ``latest`` (the newest version only,
  as TensorFlow Serving's default policy) or ``all``; DLENV_SERVE_POLL (2): seconds between
  looks for new version directories (a new one is served without a restart);
  DLENV_SERVE_BATCH_SIZE (0, off): predicts that arrive together run as one call of up to
  this many rows (TensorFlow Serving's max_batch_size), waiting at most
  DLENV_SERVE_BATCH_TIMEOUT_MS (2) for others to join; DLENV_SERVE_THREADS (0, TensorFlow's
  choice): the threads one operation may use (intra-op parallelism).

Routes: GET /v1/models/NAME[/versions/N] (version status), GET .../metadata (signatures),
POST .../NAME[/versions/N]:predict (``instances`` or ``inputs``); GET /healthz (alive),
GET /readyz (200 once a version is loaded), GET /metrics (Prometheus)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

PATH = "/usr/local/lib/dlenv/serve.py"
PORT = 8501

log = logging.getLogger("dlenv.serve")


class RequestError(Exception):
    """A request TensorFlow Serving would refuse: its message and HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Servable:
    """One loaded version: its signatures' tensors and a way to run one."""

    def signatures(self) -> dict[str, dict[str, Any]]:
        """name -> {"inputs": {tensor: (dtype, shape)}, "outputs": {...}}; dtype as
        TensorFlow names it (``DT_FLOAT``), shape a list with -1 for unknown sizes."""
        raise NotImplementedError

    def run(self, signature: str, inputs: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class SavedModel(Servable):
    """A TensorFlow SavedModel, loaded with ``tf.saved_model.load``."""

    def __init__(self, path: str) -> None:
        import tensorflow as tf

        self.tf = tf
        self.model = tf.saved_model.load(path)
        self.functions = dict(self.model.signatures)
        if "serving_default" not in self.functions:
            raise ValueError(f"{path} has no serving_default signature "
                             f"(it has: {', '.join(sorted(self.functions)) or 'none'})")

    def _tensor(self, spec: Any) -> tuple[str, list[int] | None]:
        from tensorflow.core.framework import types_pb2  # TensorFlow's own names: DT_FLOAT

        shape = [-1 if d is None else int(d) for d in spec.shape] \
            if spec.shape.rank is not None else None
        return types_pb2.DataType.Name(spec.dtype.as_datatype_enum), shape

    def signatures(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, fn in self.functions.items():
            inputs = fn.structured_input_signature[1]
            out[name] = {"inputs": {k: self._tensor(v) for k, v in inputs.items()},
                         "outputs": {k: self._tensor(v)
                                     for k, v in fn.structured_outputs.items()}}
        return out

    def run(self, signature: str, inputs: dict[str, Any]) -> dict[str, Any]:
        fn = self.functions[signature]
        wanted = fn.structured_input_signature[1]
        try:
            tensors = {k: self.tf.constant(v, dtype=wanted[k].dtype) for k, v in inputs.items()}
            result = fn(**tensors)
        except (ValueError, TypeError, self.tf.errors.InvalidArgumentError) as exc:
            # TensorFlow's message starts "Graph execution error:"; the cause is below it
            said = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise RequestError(said[:2000]) from exc
        return {k: v.numpy() for k, v in result.items()}


class Versions:
    """The model's numbered version directories, loaded and kept current by ``refresh``."""

    def __init__(self, name: str, base: str, policy: str = "latest",
                 load: Callable[[str], Servable] = SavedModel,
                 loaded_hook: Callable[[str, float], None] | None = None) -> None:
        self.name, self.base, self.policy, self.load = name, base, policy, load
        self.loaded: dict[int, Servable] = {}
        self.failed: dict[int, tuple[str, tuple[tuple[str, int, int], ...]]] = {}
        self.lock = threading.Lock()
        self.loaded_hook = loaded_hook

    def on_disk(self) -> list[int]:
        try:
            names = os.listdir(self.base)
        except OSError:
            return []
        return sorted(int(n) for n in names
                      if n.isdigit() and os.path.isdir(os.path.join(self.base, n)))

    def _stamp(self, version: int) -> tuple[tuple[str, int, int], ...]:
        """What a version directory holds (names, sizes, times): a version that failed to
        load is tried again only once this changes, e.g. when its writer has finished."""
        top = os.path.join(self.base, str(version))
        found = []
        for here, _dirs, files in os.walk(top):
            for f in files:
                try:
                    st = os.stat(os.path.join(here, f))
                except OSError:
                    continue
                found.append((os.path.relpath(os.path.join(here, f), top), st.st_size,
                              st.st_mtime_ns))
        return tuple(sorted(found))

    def _ready(self, version: int) -> bool:
        """Whether ``version`` is loaded now, loading it if it has not failed as it is."""
        if version in self.loaded:
            return True
        stamp = self._stamp(version)
        if version in self.failed and self.failed[version][1] == stamp:
            return False
        started = time.monotonic()
        try:
            servable = self.load(os.path.join(self.base, str(version)))
        except Exception as exc:  # a bad version must not stop the others being served
            with self.lock:
                self.failed[version] = (f"{type(exc).__name__}: {exc}", stamp)
            log.error("model %s version %d failed to load: %s", self.name, version, exc)
            return False
        with self.lock:
            self.failed.pop(version, None)
            self.loaded[version] = servable
        if self.loaded_hook:
            self.loaded_hook(str(version), time.monotonic() - started)
        log.info("model %s version %d loaded", self.name, version)
        return True

    def refresh(self) -> None:
        """Load what the policy wants and is not loaded yet; drop what it no longer wants.

        As TensorFlow Serving's availability-preserving policy, ``latest`` keeps serving
        the version it has until a newer one has loaded: a version directory still being
        written (or broken) fails to load, is reported, and is tried again once its files
        change, while the older version goes on answering."""
        found = self.on_disk()
        if self.policy == "all":
            wanted = [v for v in found if self._ready(v)]
        else:
            wanted = next(([v] for v in reversed(found) if self._ready(v)), [])
        with self.lock:
            for version in [v for v in self.loaded if v not in wanted]:
                del self.loaded[version]
            for version in [v for v in self.failed if v not in found]:
                del self.failed[version]

    def get(self, version: int | None) -> tuple[int, Servable]:
        with self.lock:
            if not self.loaded:
                raise RequestError(f"Servable not found for request: Latest({self.name})", 404)
            chosen = max(self.loaded) if version is None else version
            if chosen not in self.loaded:
                raise RequestError(f"Servable not found for request: "
                                   f"Specific({self.name}, {version})", 404)
            return chosen, self.loaded[chosen]

    def status(self, version: int | None = None) -> dict[str, Any]:
        with self.lock:
            rows = [(v, "AVAILABLE", "OK", "") for v in self.loaded]
            rows += [(v, "END", "UNKNOWN", msg) for v, (msg, _) in self.failed.items()]
        if version is not None:
            rows = [r for r in rows if r[0] == version]
            if not rows:
                raise RequestError(f"Could not find version {version} of model {self.name}",
                                   404)
        if not rows:
            raise RequestError(f"Could not find any versions of model {self.name}", 404)
        return {"model_version_status": [
            {"version": str(v), "state": state,
             "status": {"error_code": code, "error_message": msg}}
            for v, state, code, msg in sorted(rows, reverse=True)]}


def _rows(instances: Any, names: list[str]) -> dict[str, Any]:
    """The row format: a list of instances (values, or objects keyed by input name)."""
    if not isinstance(instances, list) or not instances:
        raise RequestError("'instances' must be a non-empty list")
    if all(isinstance(i, dict) for i in instances):
        keys = set(instances[0])
        if any(set(i) != keys for i in instances):
            raise RequestError("every instance must name the same inputs")
        return {k: [i[k] for i in instances] for k in keys}
    if len(names) != 1:
        raise RequestError(f"the signature takes {len(names)} inputs "
                           f"({', '.join(names)}): give each instance as an object")
    return {names[0]: instances}


def _columns(inputs: Any, names: list[str]) -> dict[str, Any]:
    """The columnar format: one value (a single input) or an object of named inputs."""
    if isinstance(inputs, dict):  # a tensor is never a JSON object: these are named inputs
        return dict(inputs)
    if len(names) != 1:
        raise RequestError(f"the signature takes {len(names)} inputs "
                           f"({', '.join(names)}): give 'inputs' as an object")
    return {names[0]: inputs}


def _listed(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def predict_body(servable: Servable, body: Any,
                 batcher: Batcher | None = None) -> dict[str, Any]:
    """Answer one predict request's JSON body as TensorFlow Serving does."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    signature = body.get("signature_name") or "serving_default"
    signatures = servable.signatures()
    if signature not in signatures:
        raise RequestError(f"Serving signature name: \"{signature}\" not found in signature "
                           "def")
    names = sorted(signatures[signature]["inputs"])
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("Missing 'inputs' or 'instances' key" if "instances" not in body
                           else "'inputs' and 'instances' cannot both be given")
    rows = "instances" in body
    given = _rows(body["instances"], names) if rows else _columns(body["inputs"], names)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise RequestError(f"unknown input(s) {', '.join(unknown)}; the signature takes "
                           f"{', '.join(names)}")
    missing = sorted(set(names) - set(given))
    if missing:
        raise RequestError(f"missing input(s) {', '.join(missing)}")
    outputs = batcher.run(servable, signature, given) if batcher else \
        servable.run(signature, given)
    if not rows:
        if len(outputs) == 1:
            return {"outputs": _listed(next(iter(outputs.values())))}
        return {"outputs": {k: _listed(v) for k, v in outputs.items()}}
    listed = {k: _listed(v) for k, v in outputs.items()}
    if len(listed) == 1:
        return {"predictions": next(iter(listed.values()))}
    count = len(next(iter(listed.values())))
    return {"predictions": [{k: v[i] for k, v in listed.items()} for i in range(count)]}


class _Batch:
    def __init__(self) -> None:
        self.parts: list[dict[str, list[Any]]] = []
        self.counts: list[int] = []  # each part's rows
        self.closed = False
        self.done = threading.Event()
        self.results: list[dict[str, Any] | Exception] = []


class Batcher:
    """Server-side batching, as TensorFlow Serving's does: predicts for one version and
    signature that arrive within ``timeout`` seconds of the first run as one call of at most
    ``size`` rows, and each request gets its own rows back. A batch that fails, or whose
    outputs are not row-aligned, is run again request by request, so one bad request never
    fails the others. Written here: no serving library batches a SavedModel's calls."""

    def __init__(self, size: int, timeout: float,
                 observe: Callable[[int], None] | None = None) -> None:
        self.size, self.timeout, self.observe = size, timeout, observe
        self.cond = threading.Condition()
        self.open: dict[tuple[int, str, tuple[str, ...]], _Batch] = {}

    def run(self, servable: Servable, signature: str,
            inputs: dict[str, Any]) -> dict[str, Any]:
        counts = {len(v) if isinstance(v, list) else -1 for v in inputs.values()}
        if len(counts) != 1 or min(counts) < 1 or min(counts) >= self.size:
            return servable.run(signature, inputs)  # not rows, or a batch by itself
        rows = counts.pop()
        key = (id(servable), signature, tuple(sorted(inputs)))
        with self.cond:
            batch = self.open.get(key)
            leader = batch is None or batch.closed or sum(batch.counts) + rows > self.size
            if leader:
                batch = self.open[key] = _Batch()
            assert batch is not None
            index = len(batch.parts)
            batch.parts.append(inputs)
            batch.counts.append(rows)
            if sum(batch.counts) >= self.size:
                batch.closed = True
                self.cond.notify_all()
        if leader:
            self._lead(key, batch, servable, signature)
        else:
            batch.done.wait()
        result = batch.results[index]
        if isinstance(result, Exception):
            raise result
        return result

    def _lead(self, key: tuple[int, str, tuple[str, ...]], batch: _Batch,
              servable: Servable, signature: str) -> None:
        deadline = time.monotonic() + self.timeout
        with self.cond:
            while not batch.closed and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            batch.closed = True
            if self.open.get(key) is batch:
                del self.open[key]
        try:
            if self.observe:
                self.observe(sum(batch.counts))
            batch.results = self._together(batch, servable, signature)
        finally:
            batch.done.set()

    def _together(self, batch: _Batch, servable: Servable,
                  signature: str) -> list[dict[str, Any] | Exception]:
        if len(batch.parts) > 1:
            joined = {k: [row for part in batch.parts for row in part[k]]
                      for k in batch.parts[0]}
            try:
                out = servable.run(signature, joined)
                if all(len(v) == sum(batch.counts) for v in out.values()):
                    at = [0, *itertools.accumulate(batch.counts)]
                    return [{k: v[at[i]:at[i + 1]] for k, v in out.items()}
                            for i in range(len(batch.parts))]
            except Exception:  # run alone below: each error then reaches its own request
                pass
        alone: list[dict[str, Any] | Exception] = []
        for part in batch.parts:
            try:
                alone.append(servable.run(signature, part))
            except Exception as exc:  # raised again in the thread of the request
                alone.append(exc)
        return alone


def metadata_body(name: str, version: int, servable: Servable) -> dict[str, Any]:
    def tensors(found: dict[str, Any]) -> dict[str, Any]:
        return {k: {"dtype": dtype, "name": k,
                    "tensor_shape": {"unknown_rank": shape is None,
                                     "dim": [{"size": str(d), "name": ""}
                                             for d in shape or ()]}}
                for k, (dtype, shape) in found.items()}

    defs = {sig: {"inputs": tensors(t["inputs"]), "outputs": tensors(t["outputs"]),
                  "method_name": "tensorflow/serving/predict"}
            for sig, t in servable.signatures().items()}
    return {"model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": defs}}}


ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                   r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$")


def make_app(versions: Versions, batch_size: int = 0, batch_timeout: float = 0.002) -> Any:
    """The ASGI application: TensorFlow Serving's REST routes, health and metrics; predicts
    run in worker threads, batched together when ``batch_size`` is over 1."""
    import prometheus_client as prom
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    registry = prom.CollectorRegistry()
    requests = prom.Counter("dlenv_serve_requests", "Requests answered, by route and status",
                            ["model", "method", "code"], registry=registry)
    latency = prom.Histogram("dlenv_serve_request_seconds", "Time to answer a request",
                             ["model", "method"], registry=registry)
    load_seconds = prom.Gauge("dlenv_serve_model_load_seconds", "Time a version took to load",
                              ["model", "version"], registry=registry)
    loaded = prom.Gauge("dlenv_serve_loaded_versions", "Versions loaded now", ["model"],
                        registry=registry)
    loaded.labels(versions.name).set_function(lambda: len(versions.loaded))
    versions.loaded_hook = lambda v, s: load_seconds.labels(versions.name, v).set(s)
    batches = prom.Histogram("dlenv_serve_batch_rows", "Rows per batched model call",
                             ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                             registry=registry)
    batcher = Batcher(batch_size, batch_timeout, batches.labels(versions.name).observe) \
        if batch_size > 1 else None

    def error(message: str, status: int) -> Any:
        return JSONResponse({"error": message}, status_code=status)

    async def models(request: Request) -> Any:
        started = time.monotonic()
        match = ROUTE.match(request.url.path)
        method = "predict" if match and match["verb"] else \
            "metadata" if match and match["metadata"] else "status"
        try:
            if match is None or match["name"] != versions.name:
                name = match["name"] if match else request.url.path
                raise RequestError(f"Servable not found for request: Latest({name})", 404)
            version = int(match["version"]) if match["version"] else None
            if match["verb"]:
                if request.method != "POST":
                    raise RequestError("predict takes POST", 405)
                if match["verb"] != "predict":
                    raise RequestError(f"{match['verb']} is not served: this server answers "
                                       "predict, status and metadata", 501)
                try:
                    body = json.loads(await request.body())
                except ValueError as exc:
                    raise RequestError(f"JSON Parse error: {exc}") from exc
                _, servable = versions.get(version)
                answer = await run_in_threadpool(predict_body, servable, body, batcher)
            elif match["metadata"]:
                chosen, servable = versions.get(version)
                answer = metadata_body(versions.name, chosen, servable)
            else:
                answer = versions.status(version)
            response = JSONResponse(answer)
        except RequestError as exc:
            response = error(str(exc), exc.status)
        requests.labels(versions.name, method, str(response.status_code)).inc()
        latency.labels(versions.name, method).observe(time.monotonic() - started)
        return response

    async def healthz(request: Request) -> Any:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Any:
        ready = bool(versions.loaded)
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Any:
        return Response(prom.generate_latest(registry), media_type=prom.CONTENT_TYPE_LATEST)

    return Starlette(routes=[
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
        Route("/v1/models/{rest:path}", models, methods=["GET", "POST"])])


def watch(versions: Versions, every: float, stop: threading.Event) -> threading.Thread:
    """Look for new version directories every ``every`` seconds until ``stop`` is set."""
    def loop() -> None:
        while not stop.wait(every):
            versions.refresh()

    thread = threading.Thread(target=loop, name="versions", daemon=True)
    thread.start()
    return thread


def main() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    name = os.environ.get("MODEL_NAME", "model")
    base = os.path.join(os.environ.get("MODEL_BASE_PATH", "/models"), name)
    policy = os.environ.get("DLENV_SERVE_VERSIONS", "latest")
    if policy not in ("latest", "all"):
        raise SystemExit(f"DLENV_SERVE_VERSIONS is {policy!r}: use latest or all")
    threads = int(os.environ.get("DLENV_SERVE_THREADS", "0"))
    if threads > 0:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
    versions = Versions(name, base, policy)
    app = make_app(versions,  # before the first load, so its time is measured
                   batch_size=int(os.environ.get("DLENV_SERVE_BATCH_SIZE", "0")),
                   batch_timeout=float(os.environ.get("DLENV_SERVE_BATCH_TIMEOUT_MS", "2")) / 1000)
    versions.refresh()
    if not versions.on_disk():
        log.warning("no version directory (a number) in %s yet; waiting for one", base)
    watch(versions, float(os.environ.get("DLENV_SERVE_POLL", "2")), threading.Event())
    port = int(os.environ.get("DLENV_SERVE_PORT", str(PORT)))
    uvicorn.run(app, host="0.0.0.0", port=port, log_level="warning")


if __name__ == "__main__":
    main()
