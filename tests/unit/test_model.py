"""A served model: its SavedModel checks (real saved_model.pb files from TensorFlow 2.15, made
by fixtures/savedmodel/make.py), and its version directories baked as layers of their own."""

from __future__ import annotations

import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest

from dlenv.cache import ContentCache
from dlenv.errors import UsageError
from dlenv.image.layers import LayerBuilder
from dlenv.image.model import model_versions, signatures
from dlenv.image.plan import plan_build
from dlenv.image.project import collect_project
from dlenv.lock import read_lock
from dlenv.oci.store import OCIStore
from dlenv.spec import parse_spec
from tests.conftest import EXAMPLES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
KERAS = FIXTURES / "savedmodel/keras-dense.pb"
NO_SIGNATURE = FIXTURES / "savedmodel/no-signature.pb"
SPEC = (EXAMPLES / "tensorflow-cpu/dlenv.toml").read_text() + """
[profiles.serve]
model = "models/half"
"""


def model_dir(root: Path, *versions: int, pb: Path = KERAS) -> Path:
    for v in versions:
        (root / str(v) / "variables").mkdir(parents=True)
        shutil.copyfile(pb, root / str(v) / "saved_model.pb")
        (root / str(v) / "variables/variables.index").write_bytes(b"w%d" % v)
    return root


def test_the_signatures_of_a_real_saved_model_are_read_without_tensorflow():
    assert signatures(KERAS) == ["serving_default"]
    assert signatures(NO_SIGNATURE) == []  # only TensorFlow's own __saved_model_init_op


def test_a_model_directory_is_checked_and_each_error_names_the_path(tmp_path):
    assert model_versions(model_dir(tmp_path / "ok", 2, 1, 10)) == [1, 2, 10]
    odd = model_dir(tmp_path / "odd", 1)
    (odd / "latest").mkdir()
    with pytest.raises(UsageError, match=f"{odd / 'latest'}: a version directory's name"):
        model_versions(odd)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="empty: no version directory"):
        model_versions(tmp_path / "empty")
    (tmp_path / "bare/1").mkdir(parents=True)
    with pytest.raises(UsageError, match=r"bare/1: not a SavedModel \(no saved_model.pb\)"):
        model_versions(tmp_path / "bare")
    nosig = model_dir(tmp_path / "nosig", 1, pb=NO_SIGNATURE)
    with pytest.raises(UsageError, match="nosig/1: the SavedModel has no serving_default") as e:
        model_versions(nosig)
    assert "signatures=" in e.value.fix
    broken = model_dir(tmp_path / "broken", 1)
    (broken / "1/saved_model.pb").write_bytes(b"\xff\xff\xff")
    with pytest.raises(UsageError, match=r"broken/1/saved_model\.pb: not a SavedModel"):
        model_versions(broken)


def served_plan(root: Path):
    (root / "dlenv.toml").write_text(SPEC)
    spec = parse_spec(tomllib.loads(SPEC), file=str(root / "dlenv.toml"), text=SPEC)
    lock = read_lock(FIXTURES / "locks/tensorflow-cpu.lock")
    return plan_build(spec, lock, profile="serve", project=collect_project(root))


def test_each_model_version_is_a_layer_of_its_own_and_a_new_one_leaves_the_rest(tmp_path):
    root = tmp_path / "project"
    model_dir(root / "models/half", 1, 2)
    (root / "models/half/README.md").write_text("how the model was trained\n")
    (root / "app.py").write_text("print('hi')\n")
    plan = served_plan(root)
    names = [layer.name for layer in plan.layers]
    assert names[-3:] == ["model half version 1", "model half version 2", "project files"]
    v1 = plan.layers[-3]
    assert v1.dest == "/models/half/1"
    assert [f.path for f in v1.files] == ["saved_model.pb", "variables/variables.index"]
    project = plan.layers[-1]  # the versions are not copied a second time into the workdir
    assert [f.path for f in project.files] == ["app.py", "models/half/README.md"]

    model_dir(root / "models/half", 3)
    again = served_plan(root)
    before = {layer.name: layer.key(plan) for layer in plan.layers}
    after = {layer.name: layer.key(again) for layer in again.layers}
    assert set(after) - set(before) == {"model half version 3"}
    assert all(after[name] == key for name, key in before.items())  # framework included

    # the same version's files under another directory of the project: the same layer
    moved = tmp_path / "moved"
    model_dir(moved / "models/half", 1)
    (moved / "dlenv.toml").write_text(SPEC)
    shown = served_plan(moved)
    assert shown.layers[-1].key(shown) == v1.key(plan)


def test_a_model_layer_is_roots_and_read_only_at_tensorflow_servings_path(tmp_path):
    root = tmp_path / "project"
    model_dir(root / "models/half", 1)
    plan = served_plan(root)
    layer = next(x for x in plan.layers if x.kind == "model")
    store = OCIStore(tmp_path / "store")
    builder = LayerBuilder(store, ContentCache(tmp_path / "cache/blobs"), tmp_path / "rootfs",
                           ca_bundle=None, progress=lambda *a: None, sdists=None)
    built = builder.build(plan, layer, {})
    with tarfile.open(store.blob_path(built.blob.descriptor.digest)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        pb = tar.extractfile("models/half/1/saved_model.pb")
        assert pb is not None and pb.read() == KERAS.read_bytes()
    assert {"models/half/1/saved_model.pb", "models/half/1/variables/variables.index"} <= \
        set(members)
    files = [m for m in members.values() if m.isfile()]
    assert all(m.uid == 0 and m.gid == 0 and m.mode == 0o644 for m in files)


def test_batching_and_threads_are_spec_keys_the_server_is_told_through_its_env(tmp_path):
    from dlenv.errors import SpecError

    text = SPEC + "batch_size = 32\nbatch_timeout_ms = 0\nthreads = 4\n"
    spec = parse_spec(tomllib.loads(text), text=text)
    serving = spec.profile("serve").serving
    assert (serving.batch_size, serving.batch_timeout_ms, serving.threads) == (32, 0, 4)
    env = dict(plan_build(spec, read_lock(FIXTURES / "locks/tensorflow-cpu.lock"),
                          profile="serve").config.env)
    assert env["DLENV_SERVE_BATCH_SIZE"] == "32" and env["DLENV_SERVE_THREADS"] == "4"
    assert env["DLENV_SERVE_BATCH_TIMEOUT_MS"] == "0" and env["MODEL_BASE_PATH"] == "/models"
    wrong = SPEC + "batch_size = -1\n"
    with pytest.raises(SpecError) as e:
        parse_spec(tomllib.loads(wrong), text=wrong)
    (problem,) = e.value.problems
    assert problem.key == "profiles.serve.batch_size" and "whole number from 0" in \
        problem.message


@pytest.mark.parametrize("mode", ["exact", "portable"])
def test_an_ejected_dockerfile_lays_the_model_and_the_server_out_as_the_native_build(
        tmp_path, mode):
    from dlenv import serving
    from dlenv.image import lock_digest
    from dlenv.image.dockerfile import render_dockerfile
    from dlenv.image.portable import PortableBase
    from dlenv.lint import lint_dockerfile

    root = tmp_path / "project"
    model_dir(root / "models/half", 1, 2)
    (root / "models/half/README.md").write_text("how the model was trained\n")
    (root / "models/other.txt").write_text("not served\n")
    (root / "app.py").write_text("print('hi')\n")
    served_plan(root)  # writes the spec
    spec = parse_spec(tomllib.loads(SPEC), file=str(root / "dlenv.toml"), text=SPEC)
    lock = read_lock(FIXTURES / "locks/tensorflow-cpu.lock")
    portable = PortableBase(image="debian:bookworm-slim@sha256:" + "5" * 64, pip="23.0.1")
    rendered = render_dockerfile(spec, lock, lock_digest(lock), collect_project(root),
                                 portable=portable if mode == "portable" else None)
    text = rendered.dockerfile
    serve = text[text.index("AS serve\n"):]
    lines = serve.splitlines()
    # each version where TensorFlow Serving looks, root's (no --chown), before USER
    assert 'COPY ["models/half/1", "/models/half/1"]' in lines
    assert 'COPY ["models/half/2", "/models/half/2"]' in lines
    assert lines.index('COPY ["models/half/2", "/models/half/2"]') < lines.index(
        "USER 1000:1000")
    # the project's other files go to the workdir, the versions do not (a level deeper)
    copies = [line for line in lines if line.startswith("COPY --chown")]
    assert copies == ['COPY --chown=1000:1000 ["app.py", "/workspace/"]',
                      'COPY --chown=1000:1000 ["models/other.txt", "/workspace/models/"]',
                      'COPY --chown=1000:1000 ["models/half/README.md", '
                      '"/workspace/models/half/"]']
    assert 'CMD ["python3", "/usr/local/lib/dlenv/serve.py"]' in lines
    # the server the native image carries, its copy in the context
    where = ".dlenv" if mode == "exact" else "requirements"
    server = next(line for line in lines if "/usr/local/lib/dlenv/serve.py\"]" in line)
    assert server == f'COPY --chmod=644 ["{where}/dlenv-serve.py", ' \
                     '"/usr/local/lib/dlenv/serve.py"]'
    body = dict(rendered.files)[f"{where}/dlenv-serve.py"]
    first, rest = body.split("\n", 1)
    assert first.startswith("# Written by 'dlenv dockerfile'")
    assert rest == Path(serving.__file__).read_text()
    # the runtime target keeps the whole models/ directory in the workdir, as natively
    runtime = text[text.index("AS runtime\n"):text.index("AS serve\n")]
    assert 'COPY --chown=1000:1000 ["models", "/workspace/models"]' in runtime
    assert "/models/half" not in runtime and "serve.py" not in runtime
    assert lint_dockerfile(text, has_dockerignore=True) == []
