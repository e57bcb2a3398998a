"""The in-image probe of ``dlenv verify``: observe, do not judge.

This file runs by itself under the image's Python (standard library only, Python 3.8 or later), or
under the host's Python for ``--host``. It reads what to look at as JSON on stdin and prints
what it saw as JSON on stdout; ``dlenv.verify.evaluate`` decides what that means, so recorded
outputs from real GPUs can be replayed in tests.
"""

import json
import os
import platform
import sys
import tempfile
import time
import traceback


def _error(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def packages(expected):
    from importlib import metadata

    have = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-").replace(".", "-")
        have[name] = dist.version
    missing = sorted(n for n in expected if n not in have)
    mismatched = sorted([n, v, have[n]] for n, v in expected.items()
                        if n in have and have[n] != v)
    return {"count": len(have), "missing": missing, "mismatched": mismatched}


_NOT_MODULES = {"test", "tests", "docs", "doc", "examples", "benchmarks", "bin"}


def top_modules(dist):
    """The importable top-level names a distribution installs."""
    try:
        text = dist.read_text("top_level.txt")
    except Exception:  # some installers write none
        text = None
    names = set()
    if text:
        names = {line.strip() for line in text.splitlines()}
    else:
        for f in dist.files or ():
            parts = f.parts
            if not parts or parts[0] in ("..", "") or parts[0].endswith((".dist-info", ".data")):
                continue
            if len(parts) == 1 and parts[0].endswith(".py"):
                names.add(parts[0][:-3])
            elif len(parts) > 1 and parts[-1] == "__init__.py":
                names.add(parts[0])
    return sorted(n for n in names if n.isidentifier() and not n.startswith("_")
                  and n not in _NOT_MODULES)


def imports(names):
    """Import every top-level module of the named distributions; what failed, and why."""
    from importlib import metadata

    done, failed = [], {}
    for name in names:
        try:
            modules = top_modules(metadata.distribution(name))
        except metadata.PackageNotFoundError:
            failed[name] = "not installed"
            continue
        for module in modules:
            try:
                __import__(module)
                done.append(module)
            except BaseException as exc:  # a module may even call exit()
                failed[f"{name}: {module}"] = _error(exc)
    return {"imported": done, "failed": failed}


def writable(dirs):
    out = {}
    for d in dirs:
        try:
            with tempfile.NamedTemporaryFile(dir=d, prefix=".dlenv-verify-"):
                pass
            out[d] = True
        except OSError as exc:
            out[d] = _error(exc)
    return out


# Before each step the probe writes what it has seen so far to stderr, on one line after
# this mark: a step that kills the process (a segfault in a framework's native code) is then
# reported as that step's failure, with the steps before it, instead of as no report at all.
SNAPSHOT = "@dlenv-probe-step "
_SEEN = {}


def _step(result, key, fn, label=None):
    result[key] = {"ok": False, "running": True}
    _SEEN["running"] = label or key
    sys.stderr.write(SNAPSHOT + json.dumps(_SEEN, sort_keys=True) + "\n")
    sys.stderr.flush()
    start = time.perf_counter()
    try:
        value = fn()
        result[key] = dict(value or {}, ok=True, seconds=round(time.perf_counter() - start, 4))
    except Exception as exc:  # the probe reports every failure instead of stopping
        result[key] = {"ok": False, "error": _error(exc),
                       "trace": traceback.format_exc(limit=3)[-800:]}


def probe_torch(result):
    import torch

    result["version"] = torch.__version__
    result["cuda_build"] = torch.version.cuda
    result["devices"] = [{"id": "cpu", "kind": "cpu", "name": platform.processor() or "cpu"}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            result["devices"].append({"id": f"cuda:{i}", "kind": "gpu",
                                      "name": torch.cuda.get_device_name(i),
                                      "capability": f"{major}.{minor}"})
    result["matmul"] = []
    for dev in result["devices"]:
        entry = {"device": dev["id"]}

        def mm(dev=dev):
            g = torch.Generator().manual_seed(0)
            a = torch.randn(512, 512, generator=g, dtype=torch.float64)
            b = torch.randn(512, 512, generator=g, dtype=torch.float64)
            want = a @ b
            got = (a.float().to(dev["id"]) @ b.float().to(dev["id"])).double().cpu()
            if dev["kind"] == "gpu":
                torch.cuda.synchronize()
            return {"max_rel_error": float((got - want).abs().max() / want.abs().max())}

        result["matmul"].append(entry)
        _step(entry, "result", mm, "matmul on " + entry["device"])
    target = "cuda:0" if torch.cuda.is_available() else "cpu"

    def train():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 1)).to(target)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x, y = torch.randn(64, 16, device=target), torch.randn(64, 1, device=target)
        losses = []
        for _ in range(2):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss))
        return {"device": target, "loss_before": losses[0], "loss_after": losses[1]}

    _step(result, "train_step", train)

    def compiled():
        fn = torch.compile(lambda t: torch.sin(t) * 2, backend="eager")
        return {"value": float(fn(torch.ones(1, device=target)).cpu())}

    _step(result, "compile", compiled)

    def mixed():
        dtype = torch.bfloat16 if target == "cpu" or torch.cuda.is_bf16_supported() \
            else torch.float16
        with torch.autocast(device_type=target.split(":")[0], dtype=dtype):
            out = torch.ones(8, 8, device=target) @ torch.ones(8, 8, device=target)
        return {"dtype": str(out.dtype).replace("torch.", "")}

    _step(result, "mixed_precision", mixed)


def probe_jax(result):
    import jax
    import jax.numpy as jnp

    result["version"] = jax.__version__
    result["devices"] = [{"id": str(d), "kind": "gpu" if d.platform == "gpu" else d.platform,
                          "name": getattr(d, "device_kind", d.platform),
                          "capability": getattr(d, "compute_capability", None)}
                         for d in jax.devices()]
    result["matmul"] = []
    for d in jax.devices():
        entry = {"device": str(d)}

        def mm(d=d):
            import numpy as np

            rng = np.random.default_rng(0)
            a, b = rng.standard_normal((512, 512)), rng.standard_normal((512, 512))
            want = a @ b
            got = np.asarray(jax.device_put(a.astype("float32"), d)
                             @ jax.device_put(b.astype("float32"), d)).astype("float64")
            return {"max_rel_error": float(abs(got - want).max() / abs(want).max())}

        result["matmul"].append(entry)
        _step(entry, "result", mm, "matmul on " + entry["device"])

    def train():
        key = jax.random.PRNGKey(0)
        w = jax.random.normal(key, (16, 1))
        x = jax.random.normal(jax.random.PRNGKey(1), (64, 16))
        y = jax.random.normal(jax.random.PRNGKey(2), (64, 1))

        def loss(w):
            return jnp.mean((x @ w - y) ** 2)

        @jax.jit
        def step(w):
            value, grad = jax.value_and_grad(loss)(w)
            return w - 0.1 * grad, value

        w, before = step(w)
        _, after = step(w)
        return {"device": str(jax.devices()[0]), "loss_before": float(before),
                "loss_after": float(after)}

    _step(result, "train_step", train)

    def xla():
        lowered = jax.jit(lambda t: jnp.sin(t) * 2).lower(jnp.ones(4))
        compiled = lowered.compile()
        return {"value": float(compiled(jnp.ones(4))[0])}

    _step(result, "compile", xla)

    def mixed():
        out = jnp.ones((8, 8), dtype=jnp.bfloat16) @ jnp.ones((8, 8), dtype=jnp.bfloat16)
        return {"dtype": str(out.dtype)}

    _step(result, "mixed_precision", mixed)


def probe_tensorflow(result):
    import tensorflow as tf

    result["version"] = tf.__version__
    build = tf.sysconfig.get_build_info()
    result["cuda_build"] = build.get("cuda_version")
    result["devices"] = [{"id": "/CPU:0", "kind": "cpu", "name": "cpu"}]
    for i, d in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(d)
        cap = details.get("compute_capability")
        result["devices"].append({"id": f"/GPU:{i}", "kind": "gpu",
                                  "name": details.get("device_name", d.name),
                                  "capability": f"{cap[0]}.{cap[1]}" if cap else None})
    result["matmul"] = []
    for dev in result["devices"]:
        entry = {"device": dev["id"]}

        def mm(dev=dev):
            import numpy as np

            rng = np.random.default_rng(0)
            a, b = rng.standard_normal((512, 512)), rng.standard_normal((512, 512))
            with tf.device(dev["id"]):
                got = tf.matmul(tf.constant(a, tf.float32), tf.constant(b, tf.float32))
            want = a @ b
            return {"max_rel_error": float(abs(got.numpy() - want).max() / abs(want).max())}

        result["matmul"].append(entry)
        _step(entry, "result", mm, "matmul on " + entry["device"])

    def train():
        tf.keras.utils.set_random_seed(0)
        model = tf.keras.Sequential([tf.keras.Input((16,)), tf.keras.layers.Dense(32, "relu"),
                                     tf.keras.layers.Dense(1)])
        model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
        x, y = tf.random.normal((64, 16)), tf.random.normal((64, 1))
        before = float(model.evaluate(x, y, verbose=0))
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)
        after = float(model.evaluate(x, y, verbose=0))
        return {"device": result["devices"][-1]["id"], "loss_before": before,
                "loss_after": after}

    _step(result, "train_step", train)

    def xla():
        fn = tf.function(lambda t: tf.sin(t) * 2, jit_compile=True)
        return {"value": float(fn(tf.ones(4))[0])}

    _step(result, "compile", xla)

    def mixed():
        gpu = len(result["devices"]) > 1
        policy = tf.keras.mixed_precision.Policy("mixed_float16" if gpu else "mixed_bfloat16")
        return {"dtype": policy.compute_dtype}

    _step(result, "mixed_precision", mixed)

    def tflite():
        # A tiny Keras model converted through a concrete function (the one route that works
        # with Keras 2 and 3), then run by TFLite's interpreter against Keras's own answer.
        import numpy as np

        tf.keras.utils.set_random_seed(0)
        model = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(4, "relu"),
                                     tf.keras.layers.Dense(2)])
        fn = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec([1, 8], tf.float32)])
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [fn.get_concrete_function()], model)
        blob = converter.convert()
        interpreter = tf.lite.Interpreter(model_content=blob)
        interpreter.allocate_tensors()
        x = np.random.default_rng(0).standard_normal((1, 8)).astype("float32")
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        want = model(x).numpy()
        return {"bytes": len(blob), "max_abs_error": float(abs(got - want).max())}

    _step(result, "tflite", tflite)


_ZERO = {"DT_STRING": "", "DT_BOOL": False}


def _zeros(shape, value):
    """A nested list of ``value`` of ``shape`` (unknown sizes, -1, are 1)."""
    if not shape:
        return value
    return [_zeros(shape[1:], value) for _ in range(max(int(shape[0]), 1))]


def _shape(value):
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def probe_serve(request, timeout=180.0):
    """Start dlenv's model server on the model the image holds and send one predict
    through TensorFlow Serving's REST API: an input of zeros shaped by the signature."""
    import subprocess
    import urllib.error
    import urllib.request

    name, base = request["name"], request["base"]
    if not os.path.isdir(os.path.join(base, name)):
        return {"baked": False}
    port = str(request.get("port", 18501))  # the probe's container has no other server
    url = "http://127.0.0.1:" + port
    env = dict(os.environ, MODEL_NAME=name, MODEL_BASE_PATH=base, DLENV_SERVE_PORT=port)
    server = subprocess.Popen([sys.executable, request["server"]], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out = {"baked": True}
    start = time.perf_counter()
    try:
        ready = False
        while time.perf_counter() - start < timeout and server.poll() is None:
            try:
                ready = urllib.request.urlopen(url + "/readyz", timeout=2).status == 200
            except (urllib.error.URLError, OSError):
                ready = False
            if ready:
                break
            time.sleep(0.5)
        out["load_seconds"] = round(time.perf_counter() - start, 2)
        if not ready:
            code = server.poll()
            out["error"] = (f"the server stopped (exit {code})" if code is not None
                            else f"not ready in {timeout:.0f} s")
            return out
        models = url + "/v1/models/" + name
        status = json.load(urllib.request.urlopen(models, timeout=10))
        out["versions"] = [v["version"] for v in status["model_version_status"]]
        meta = json.load(urllib.request.urlopen(models + "/metadata", timeout=10))
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        inputs = {}
        for key, spec in sig["inputs"].items():
            dims = [int(d["size"]) for d in spec.get("tensor_shape", {}).get("dim", [])]
            inputs[key] = _zeros(dims, _ZERO.get(spec.get("dtype"), 0))
        body = json.dumps({"inputs": inputs}).encode()
        req = urllib.request.Request(models + ":predict", data=body,
                                     headers={"Content-Type": "application/json"})
        t = time.perf_counter()
        try:
            answer = json.load(urllib.request.urlopen(req, timeout=60))
            got = answer.get("outputs")
            named = got if isinstance(got, dict) else {"outputs": got}
            out["predict"] = {"status": 200, "seconds": round(time.perf_counter() - t, 3),
                              "outputs": {k: _shape(v) for k, v in sorted(named.items())}}
        except urllib.error.HTTPError as exc:
            out["predict"] = {"status": exc.code, "error": exc.read().decode()[:400]}
        return out
    except Exception as exc:  # the report says what went wrong instead of stopping
        out["error"] = _error(exc)
        return out
    finally:
        server.terminate()
        try:
            _, err = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
        if "error" in out:
            out["log"] = err.decode(errors="replace")[-800:]


PROBES = {"torch": ("torch", probe_torch), "pytorch": ("torch", probe_torch),
          "jax": ("jax", probe_jax), "tensorflow": ("tensorflow", probe_tensorflow)}


def main():
    request = json.loads(sys.stdin.read() or "{}")
    out = _SEEN
    out.update({"python": platform.python_version(), "uid": os.getuid(),
                "executable": sys.executable,
                "packages": packages(request.get("packages", {})),
                "dirs": writable(request.get("dirs", []))})
    if request.get("imports"):
        out["imports"] = imports(request["imports"])
    framework = request.get("framework")
    if framework in PROBES:
        module, fn = PROBES[framework]
        result = {"name": module}
        out["framework"] = result
        start = time.perf_counter()
        try:
            __import__(module)
            result["import_seconds"] = round(time.perf_counter() - start, 3)
        except Exception as exc:
            result["import_error"] = _error(exc)
        if "import_error" not in result:
            try:
                fn(result)
            except Exception as exc:
                result["error"] = _error(exc)
    if request.get("serve"):
        out["serve"] = probe_serve(request["serve"])
    out.pop("running", None)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
