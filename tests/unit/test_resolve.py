"""Resolve decisions: Python, base, CUDA, driver floor, and the known traps."""

from __future__ import annotations

import json
import re

import pytest

from dlenv.cli import main
from dlenv.compat import load_matrix
from dlenv.errors import ResolveError
from dlenv.resolve import resolve_target
from dlenv.spec import parse_spec


def target(**fields):
    return resolve_target(parse_spec({"name": "t", **fields}))


def refusal(**fields) -> ResolveError:
    with pytest.raises(ResolveError) as info:
        target(**fields)
    return info.value


def test_python_defaults_to_the_newest_debian_python_the_framework_supports():
    t = target(framework="tensorflow==2.15.*")
    assert (t.python, t.base) == ("3.11", "debian:bookworm")
    assert target(framework="tensorflow==2.9.*").base == "debian:bullseye"
    assert target(framework="tensorflow==2.20.*").base == "debian:trixie"
    assert target().base == "debian:trixie"


def test_explicit_suite_fixes_python_and_platform_tag():
    t = target(base="debian:bullseye")
    assert (t.python, t.glibc, t.wheel_platform) == ("3.9", "2.31", "manylinux_2_31_x86_64")
    assert t.uv_platform == "x86_64-manylinux_2_31"


def test_trixie_glibc_is_capped_to_what_the_resolver_knows():
    assert target(base="debian:trixie").wheel_platform == "manylinux_2_40_x86_64"


def test_python_that_no_suite_provides_is_refused_with_a_fix():
    err = refusal(python="3.12")
    assert "no Debian suite provides Python 3.12" in str(err) and "python:3.12-slim" in str(err)


def test_suite_and_python_disagreeing_is_refused():
    err = refusal(python="3.9", base="debian:bookworm")
    assert 'use base = "debian:bullseye"' in str(err)


def test_tensorflow_29_on_python_311_names_the_nearest_working_combinations():
    err = refusal(framework="tensorflow==2.9.*", python="3.11")
    assert "tensorflow 2.9 ships wheels for Python 3.7–3.10, not 3.11" in str(err)
    assert err.alternatives[0] == "tensorflow 2.9 with Python 3.9 (base debian:bullseye)"


def test_tensorflow_before_214_gets_cuda_11_from_nvidia_wheels():
    # TensorFlow 2.12 ships no CUDA wheels; NVIDIA's CUDA 11 wheels keep its sonames.
    t = target(framework="tensorflow==2.12.*", accelerator="cuda", python="3.11")
    assert (t.cuda, t.cuda_source, t.requirement) == ("11.8", "cu11-wheels", "tensorflow==2.12.*")
    assert "nvidia-cudnn-cu11>=8.6,<9" in t.cuda_packages and t.min_driver == "450.80.02"
    assert t.to_dict()["cuda_packages"] == list(t.cuda_packages)
    t29 = target(framework="tensorflow==2.9.0", accelerator="cuda")
    assert (t29.python, t29.cuda, t29.cudnn, t29.cuda_source) == ("3.9", "11.2", "8.1",
                                                                  "cu11-wheels")


def test_tensorflow_212_cuda_from_a_cuda_base_image_is_allowed():
    t = target(framework="tensorflow==2.12.*", accelerator="cuda", python="3.10",
               base="nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04")
    assert (t.cuda, t.cuda_source, t.requirement) == ("11.8", "base-image", "tensorflow==2.12.*")


def test_wheel_cuda_on_a_cuda_base_image_is_refused():
    err = refusal(framework="tensorflow==2.17.*", accelerator="cuda", python="3.11",
                  base="nvidia/cuda:12.3.2-cudnn9-runtime-ubuntu22.04")
    assert "never both" in str(err)


def test_pytorch_20_on_python_313_is_refused():
    err = refusal(framework="pytorch==2.0.*", python="3.13")
    assert "pytorch 2.0 ships wheels for Python 3.8–3.11, not 3.13" in str(err)
    assert "pytorch 2.0 with Python 3.11" in err.alternatives[0]


def test_tf_215_and_cuda_skips_the_unresolvable_release():
    t = target(framework="tensorflow==2.15.*", accelerator="cuda")
    assert t.requirement == "tensorflow[and-cuda]!=2.15.0,==2.15.*"
    assert any(d.key == "exclude" and "tensorrt" in d.reason for d in t.decisions)


def test_tf_215_on_cpu_keeps_the_plain_requirement():
    assert target(framework="tensorflow==2.15.*").requirement == "tensorflow==2.15.*"


def test_tf_214_and_cuda_has_no_python_311_path():
    err = refusal(framework="tensorflow==2.14.*", accelerator="cuda", python="3.11")
    assert "no wheel for Python 3.11" in str(err)
    assert "tensorflow 2.14 with Python 3.9" in " ".join(err.alternatives)
    # Without a pinned Python, dlenv finds the working one by itself.
    t = target(framework="tensorflow==2.14.*", accelerator="cuda")
    assert (t.python, t.cuda, t.min_driver) == ("3.9", "11.8", "450.80.02")


@pytest.mark.parametrize(("framework", "cuda", "cudnn", "driver"), [
    ("tensorflow==2.15.*", "12.2", "8.9", "525.60.13"),
    ("tensorflow==2.17.*", "12.3", "8.9", "525.60.13"),
    ("tensorflow==2.18.*", "12.5", "9.3", "525.60.13"),
    ("pytorch==2.5.*", "12.4", "9.1", "525.60.13"),
    ("pytorch==2.11.*", "13.0", "9.19", "580.65.06"),
    ("jax==0.4.*", "12.1", "9.1", "525.60.13"),
])
def test_cuda_cudnn_and_driver_floor_follow_the_matrix(framework, cuda, cudnn, driver):
    t = target(framework=framework, accelerator="cuda", python="3.11")
    assert (t.cuda, t.cudnn, t.min_driver, t.cuda_source) == (cuda, cudnn, driver, "wheels")


def test_cuda_13_drops_pre_turing_gpus():
    t = target(framework="jax==0.10.*", accelerator="cuda13", python="3.11")
    assert t.requirement == "jax[cuda13]==0.10.*"
    assert t.gpu_archs[0] == "7.5" and "7.0" not in t.gpu_archs and "9.0" in t.gpu_archs


def test_pytorch_variant_needs_the_pytorch_index_setting():
    err = refusal(framework="pytorch==2.5.*", accelerator="cuda11", python="3.11")
    assert "index.pytorch_url" in str(err)
    t = target(framework="pytorch==2.5.*", accelerator="cuda11", python="3.11",
               index={"pytorch_url": "https://mirror.example/whl/"})
    assert t.cuda == "11.8" and t.extra_index_urls == ("https://mirror.example/whl/cu118",)


def test_a_framework_version_beyond_the_matrix_is_explained():
    err = refusal(framework="tensorflow>=9")
    assert "no tensorflow release in the matrix matches" in str(err)


def test_registry_base_takes_python_from_its_tag_or_asks():
    assert target(base="python:3.12-slim").python == "3.12"
    assert "set python" in str(refusal(base="team/ml-base:1"))


def test_cuda_without_framework_is_refused():
    assert "needs a framework" in str(refusal(accelerator="cuda"))


def test_every_decision_has_a_reason():
    t = target(framework="tensorflow==2.17.*", accelerator="cuda")
    keys = [d.key for d in t.decisions]
    for key in ("framework", "python", "base", "platform", "cuda", "cudnn", "min_driver"):
        assert key in keys
    assert all(d.reason for d in t.decisions)


def test_matrix_driver_floors_follow_cudas_minor_version_rule():
    m = load_matrix()
    assert [m.min_driver(c) for c in ("11.8", "12.2", "12.9", "13.0")] == [
        "450.80.02", "525.60.13", "525.60.13", "580.65.06"]


def test_matrix_lists_every_tensorflow_release_from_24():
    lines = [r.line for r in load_matrix().lines("tensorflow")]
    assert lines[0] == "2.4" and lines[-1] == "2.21" and len(lines) == 18
    gpu = {r.line: r.cuda_options[0].source for r in load_matrix().lines("tensorflow")}
    assert gpu["2.13"] == "cu11-wheels" and gpu["2.14"] == "wheels"


def test_resolve_json_has_the_documented_keys(write_spec, capsys):
    directory = write_spec('name = "g"\nframework = "tensorflow==2.17.*"\naccelerator = "cuda"\n')
    assert main(["resolve", str(directory), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("python", "base", "platform", "cuda", "cudnn", "min_driver", "gpu_archs",
                "cuda_source"):
        assert key in data
    assert data["min_driver"] == "525.60.13" and data["cuda"] == "12.3"


def test_resolve_refusal_exits_2(write_spec, capsys):
    directory = write_spec('name = "g"\nframework = "tensorflow==2.9.*"\npython = "3.11"\n')
    assert main(["resolve", str(directory)]) == 2
    assert "nearest working combinations" in capsys.readouterr().err


def test_matrix_command_prints_json(capsys):
    assert main(["matrix", "tensorflow", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    line = next(r for r in data["frameworks"]["tensorflow"] if r["line"] == "2.15")
    assert line["cuda"][0]["extra"] == "and-cuda" and line["python"] == ["3.9", "3.11"]


def test_an_exact_pin_on_tf_2150_with_cuda_takes_its_fixed_release():
    # `tensorflow==2.15.0` was "2.15.0 and not 2.15.0": dlenv's own exclusion conflicted.
    t = target(framework="tensorflow==2.15.0", accelerator="cuda")
    assert t.requirement == "tensorflow[and-cuda]==2.15.*,==2.15.0.post1"
    replaced = next(d for d in t.decisions if d.key == "replace")
    assert replaced.value == "2.15.0 -> 2.15.0.post1" and "tensorrt" in replaced.reason


def test_post_releases_parse_and_keep_the_exclusion():
    t = target(framework="tensorflow==2.15.0.post1", accelerator="cuda")
    assert "==2.15.0.post1" in t.requirement and "!=2.15.0" in t.requirement


@pytest.mark.parametrize(("framework", "needs"), [
    ("tensorflow==2.9.*", ("numpy<2", "protobuf<3.20", "setuptools<82")),
    ("tensorflow==2.11.0", ("numpy<2", "protobuf<3.20", "setuptools<82")),
    ("tensorflow==2.15.*", ("setuptools<82",)),  # TensorBoard imports pkg_resources
    ("pytorch==2.2.*", ("numpy<2",)),
    ("pytorch==2.3.*", ()),
    ("jax==0.4.20", ("numpy<2",)),
    ("jax==0.4.*", ()),  # 0.4.26 and later run on NumPy 2: the resolver picks those
])
def test_runtime_needs_the_metadata_leaves_out_come_from_the_matrix(framework, needs):
    t = target(framework=framework)
    assert t.constraints == needs
    assert t.to_dict()["constraints"] == list(needs)
    if "numpy<2" in needs:
        assert any(d.key == "constraints" and "NumPy 1.x" in d.reason for d in t.decisions)


def test_patch_releases_past_9_are_in_their_line():
    assert target(framework="jax==0.4.38").framework_line == "0.4"


def test_the_cuda_images_dlenv_names_are_ones_that_were_published():
    # CUDA 11.2 images exist as 11.2.2 on Ubuntu 20.04; 11.2.0 was withdrawn, 22.04 never had it.
    assert load_matrix().cuda_images["11.2"] == "nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04"


@pytest.mark.parametrize("fields", [
    {"framework": "tensorflow==2.14.*", "accelerator": "cuda", "python": "3.11"},
    {"framework": "pytorch==2.15.*", "python": "3.9"},
    {"framework": "pytorch==2.0.*", "python": "3.13"},
    {"framework": "tensorflow==2.21.*", "python": "3.9"},
    {"framework": "jax==0.4.*", "accelerator": "cuda13"},
])
def test_every_suggested_combination_resolves_when_followed(fields):
    # A refusal names the nearest combinations that work: write each into the spec as a
    # user would, and it must resolve to what was promised.
    err = refusal(**fields)
    assert err.alternatives
    for text in err.alternatives:
        found = re.fullmatch(r"(\w+) ([\d.]+) with Python ([\d.]+) \(base (\S+?)(?:, CUDA "
                             r"([\d.]+))?\)", text)
        assert found, text
        framework, line, python, base, cuda = found.groups()
        spec = {"framework": f"{framework}=={line}.*", "python": python, "base": base}
        if cuda:
            spec["accelerator"] = f"cuda{cuda.split('.')[0]}"
        t = target(**spec)
        assert (t.framework_line, t.python, t.base) == (line, python, base)
        assert t.cuda == cuda


@pytest.mark.parametrize("text", [
    "==2.15.*", "==2.15", "==2.15.1", "==2.*", "==2", "==2.15.0.0", "==2.150.*", ">=2.14,<2.16",
    "~=2.15.0", "==2.15.*,!=2.15.1", "===2.15.1", "==0.4.38", "==2.16.0rc1", "==1!2.15.1",
])
def test_skipping_lines_an_equals_clause_excludes_gives_the_probe_by_probe_answer(text):
    # The shortcut may only skip work: every line must get the answer full probing gives.
    from packaging.specifiers import SpecifierSet

    from dlenv.compat.matrix import _probes

    spec = SpecifierSet(text)
    for releases in load_matrix().releases.values():
        for release in releases:
            full = [v for v in _probes(release.line) if spec.contains(v, prereleases=True)]
            assert release.versions(spec) == full, (text, release.line)
            assert release.allowed_by(spec) == bool(full), (text, release.line)
