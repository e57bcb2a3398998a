"""`dlenv diff`: two environments compared, from locks (the fixtures' real locks) and from image
layers (real tar streams with whiteouts and a dpkg database), with the CUDA libraries called
out and an exit code that says whether they differ."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from dlenv.audit.diff import (
    Inventory,
    LayerFacts,
    compare,
    cuda_libraries,
    dpkg_packages,
    dpkg_sources,
    lock_inventory,
    merge_layers,
    os_name,
)
from dlenv.lock import read_lock
from dlenv.workflows.diff import read_layer
from tests.conftest import run_dlenv

LOCKS = Path(__file__).resolve().parent.parent / "fixtures/locks"
SITE = "usr/local/lib/python3.11/dist-packages"
STATUS = """Package: libc6
Status: install ok installed
Version: 2.36-9+deb12u13
Source: glibc

Package: libgcc-s1
Status: install ok installed
Version: 12.2.0-14+b1
Source: gcc-12 (12.2.0-14)

Package: libcudnn8
Status: install ok installed
Version: 8.9.7.29-1+cuda12.2

Package: oldthing
Status: deinstall ok config-files
Version: 1.0
"""


def layer(members: dict[str, bytes], gz: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def facts_of(data: bytes) -> LayerFacts:
    facts = LayerFacts(size=len(data))
    read_layer(io.BytesIO(data), facts)
    return facts


def test_an_images_packages_are_read_from_its_layers_whiteouts_included():
    bottom = facts_of(layer({
        "usr/bin/python3.11": b"",
        f"{SITE}/numpy-1.26.4.dist-info/METADATA": b"",
        f"{SITE}/requests-2.31.0.dist-info/METADATA": b"",
        f"{SITE}/Typing_Extensions-4.9.0.dist-info/METADATA": b"",
        "var/lib/dpkg/status": STATUS.encode(),
        "etc/os-release": b'ID=debian\nVERSION_CODENAME=bookworm\nPRETTY_NAME="Debian 12"\n',
    }))
    top = facts_of(layer({  # numpy upgraded, requests removed (whiteouts), plain tar
        f"{SITE}/.wh.numpy-1.26.4.dist-info": b"",
        f"{SITE}/numpy-2.0.0.dist-info/METADATA": b"",
        f"{SITE}/.wh.requests-2.31.0.dist-info": b"",
    }, gz=False))
    packages, status, python = merge_layers([bottom, top])
    debs = dpkg_packages(status)
    assert packages == (("numpy", "2.0.0"), ("typing-extensions", "4.9.0"))
    assert debs == (("libc6", "2.36-9+deb12u13"), ("libcudnn8", "8.9.7.29-1+cuda12.2"),
                    ("libgcc-s1", "12.2.0-14+b1"))
    # what advisories name: the source package, at the source's version when it differs
    assert dpkg_sources(status) == (("libc6", "glibc", "2.36-9+deb12u13"),
                                    ("libcudnn8", "libcudnn8", "8.9.7.29-1+cuda12.2"),
                                    ("libgcc-s1", "gcc-12", "12.2.0-14"))
    assert python == "3.11"
    assert os_name(bottom.os_release) == "debian bookworm"
    assert cuda_libraries(packages, debs) == {"cudnn": "8.9.7.29-1"}


def test_cuda_libraries_are_named_from_nvidia_wheels_and_debs():
    found = cuda_libraries([("nvidia-cudnn-cu12", "9.1.0.70"), ("nvidia-nccl-cu12", "2.21.5"),
                            ("nvidia-cuda-runtime-cu12", "12.4.127"), ("numpy", "2.0")],
                           [("libnccl2", "2.18.3-1+cuda12.2"), ("libcudnn8-dev", "8.9")])
    # the wheel wins over a .deb of the same library; -dev packages are not libraries
    assert found == {"cudart": "12.4.127", "cudnn": "9.1.0.70", "nccl": "2.21.5"}


def test_two_locks_differ_in_the_framework_and_the_cuda_libraries_it_brings():
    cpu = lock_inventory(read_lock(LOCKS / "tensorflow-cpu.lock"), "cpu")
    gpu = lock_inventory(read_lock(LOCKS / "tensorflow-gpu.lock"), "gpu")
    found = compare(cpu, gpu)
    assert not found.same
    changed = {n: (a, b) for n, a, b in found.python_packages.changed}
    assert changed["tensorflow"] == ("2.15.1", "2.17.1")
    cuda = dict(found.cuda.added)
    assert cuda["cudnn"] == dict(gpu.python_packages)["nvidia-cudnn-cu12"]
    assert not found.cuda.removed and "nccl" in cuda
    data = found.to_json()
    assert data["same"] is False and data["cuda"]["added"]["cudnn"] == cuda["cudnn"]
    assert compare(cpu, cpu).same


def test_python_is_compared_as_far_as_both_sides_say():
    lock = Inventory(label="lock", kind="lock", python="3.11")
    host = Inventory(label="host", kind="host", python="3.11.2")
    other = Inventory(label="host", kind="host", python="3.12.1")
    assert compare(lock, host).facts[0] == ("python", "3.11", "3.11")
    assert compare(lock, other).facts[0] == ("python", "3.11", "3.12")
    assert not compare(lock, other).same


def test_layers_shared_and_the_bytes_only_one_side_has():
    a = Inventory(label="a", kind="image", layers=(("sha256:1", 100), ("sha256:2", 50)))
    b = Inventory(label="b", kind="image", layers=(("sha256:1", 100), ("sha256:3", 7)))
    found = compare(a, b)
    assert (found.shared_layers, found.bytes_only_a, found.bytes_only_b) == (1, 50, 7)


def test_the_command_exits_0_for_the_same_and_1_for_a_difference(tmp_path):
    cpu, gpu = str(LOCKS / "tensorflow-cpu.lock"), str(LOCKS / "tensorflow-gpu.lock")
    same = run_dlenv("diff", cpu, cpu, "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["same"] is True
    differ = run_dlenv("diff", cpu, gpu)
    assert differ.returncode == 1, differ.stderr
    assert "CUDA library cudnn" in differ.stdout and "tensorflow" in differ.stdout
    wrong = run_dlenv("diff", cpu, cpu, "--host")
    assert wrong.returncode == 2 and "name two (A B), or one and --host" in wrong.stderr
    missing = run_dlenv("diff", cpu, "no-such-image:never")
    assert missing.returncode == 2 and "no image 'no-such-image:never'" in missing.stderr
