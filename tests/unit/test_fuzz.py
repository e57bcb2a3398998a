"""Fuzzing the two files that arrive with `git clone`: whatever a dlenv.toml or dlenv.lock
holds, reading it ends in a value or a DlenvError (a located message and an exit code),
never another exception."""

from __future__ import annotations

import contextlib
import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlenv.errors import DlenvError
from dlenv.lock import dumps, loads, read_lock
from dlenv.resolve.locking import check_lock
from dlenv.spec import TOP_KEYS, load_spec, parse_spec
from tests.conftest import EXAMPLES

HERE = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Values that look like what specs and locks hold, plus the awkward ones.
text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["tensorflow==2.15.*", "pytorch===", "torch>=2,<1", "jax~=0.4",
                     "tensorflow==2.15.0.post1", "cuda12", "3.11", "/workspace", "/../x",
                     "debian:bookworm", "a\nb", "root", "", "pool/main/x.deb", "sha256:x",
                     "https://idx.example/x-1-py3-none-any.whl", "file:///etc/passwd"]),
)
scalar = st.one_of(text, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(),
                   st.floats(allow_nan=False))
values = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(text, st.sampled_from(TOP_KEYS)), inner, max_size=4)),
    max_leaves=20)
spec_docs = st.dictionaries(st.one_of(st.sampled_from(TOP_KEYS), text), values, max_size=8)


def _ends_well(call) -> None:
    with contextlib.suppress(DlenvError):
        call()


@FUZZ
@given(spec_docs)
def test_any_spec_document_parses_or_gives_a_dlenv_error(doc):
    _ends_well(lambda: parse_spec(doc))


_REAL = tomllib.loads(dumps(read_lock(HERE / "fixtures/locks/python-base.lock")))
_PATHS = [("version",), ("spec_digest",), ("source_date_epoch",), ("target",),
          ("target", "python"), ("base",), ("base", "kind"), ("base", "suite"), ("wheels",),
          ("wheels", 0, "name"), ("wheels", 0, "filename"), ("wheels", 0, "url"),
          ("wheels", 0, "size"), ("wheels", 0, "profiles"), ("debs", 0, "filename"),
          ("debs", 0, "sha256"), ("debs",)]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(_PATHS), values), min_size=1, max_size=3))
def test_a_real_lock_with_any_field_changed_reads_or_gives_a_dlenv_error(changes):
    import copy

    doc = copy.deepcopy(_REAL)
    for path, value in changes:
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        encoded = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return  # not expressible in TOML at all
    spec = load_spec(EXAMPLES / "python-base/dlenv.toml")
    _ends_well(lambda: check_lock(spec, loads(encoded)))


@pytest.mark.parametrize(("name", "read"), [("dlenv.toml", load_spec),
                                            ("dlenv.lock", read_lock)])
@FUZZ
@given(data=st.binary(max_size=300))
def test_any_file_bytes_give_a_value_or_a_dlenv_error(tmp_path_factory, name, read, data):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    _ends_well(lambda: read(path))
