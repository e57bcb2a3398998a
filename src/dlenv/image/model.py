"""A model base directory as TensorFlow Serving lays it out (``NAME/1/``, ``NAME/2/`` …, each
a SavedModel), checked before it is served or baked into an image: numbered versions only,
none empty, each with a ``serving_default`` signature. The errors name the path.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from dlenv.errors import UsageError

SIGNATURE = "serving_default"
SERVE_TAG = "serve"


@cache
def _saved_model_type() -> Any:
    """A message type that reads only what the check needs of ``saved_model.pb``.

    TensorFlow's own protobuf classes come with TensorFlow (hundreds of MB, absent on most
    hosts), so the few fields read here are described to the protobuf library by number, as
    tensorflow/core/protobuf/saved_model.proto and meta_graph.proto number them; the parser
    skips every other field. A map is, on the wire, a repeated message of key = 1, value = 2.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FileDescriptorProto(name="dlenv_saved_model.proto",
                                            package="dlenv_saved_model", syntax="proto3")
    f = descriptor_pb2.FieldDescriptorProto
    repeated, optional = f.LABEL_REPEATED, f.LABEL_OPTIONAL

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = fd.message_type.add(name=name)
        for fname, number, label, ftype, type_name in fields:
            m.field.add(name=fname, number=number, label=label, type=ftype,
                        type_name=type_name or None)

    own = ".dlenv_saved_model."
    message("SavedModel", ("meta_graphs", 2, repeated, f.TYPE_MESSAGE, own + "MetaGraph"))
    message("MetaGraph", ("meta_info_def", 1, optional, f.TYPE_MESSAGE, own + "MetaInfo"),
            ("signature_def", 5, repeated, f.TYPE_MESSAGE, own + "Signature"))
    message("MetaInfo", ("tags", 4, repeated, f.TYPE_STRING, ""))
    message("Signature", ("key", 1, optional, f.TYPE_STRING, ""),
            ("value", 2, optional, f.TYPE_BYTES, ""))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(
        "dlenv_saved_model.SavedModel"))


def signatures(saved_model_pb: Path) -> list[str]:
    """The signature names of the ``serve``-tagged graph of a SavedModel (sorted)."""
    from google.protobuf.message import DecodeError

    try:
        parsed = _saved_model_type().FromString(saved_model_pb.read_bytes())
    except DecodeError as exc:
        raise UsageError(f"{saved_model_pb}: not a SavedModel ({exc})",
                         fix="export it again with model.export(path) or "
                             "tf.saved_model.save") from None
    for graph in parsed.meta_graphs:
        if SERVE_TAG in graph.meta_info_def.tags or len(parsed.meta_graphs) == 1:
            # TensorFlow's own entries (__saved_model_init_op) are not signatures to call
            return sorted(s.key for s in graph.signature_def if not s.key.startswith("__"))
    return []


def model_versions(path: Path) -> list[int]:
    """The numbered versions of a model base directory, or a clear error naming the path."""
    if not path.is_dir():
        raise UsageError(f"{path}: no such model directory",
                         fix="give a directory holding numbered versions (1/, 2/ …), each a "
                             "SavedModel (saved_model.pb)")
    found: list[Path] = []
    odd: list[Path] = []
    for entry in sorted(path.iterdir()):
        if not entry.is_dir():
            continue
        (found if entry.name.isdigit() else odd).append(entry)
    if odd:
        raise UsageError(f"{odd[0]}: a version directory's name must be a number",
                         fix=f"rename it (e.g. {path / '1'}); TensorFlow Serving loads only "
                             "numbered versions")
    if not found:
        raise UsageError(f"{path}: no version directory",
                         fix=f"save the model into {path / '1'} (model.export or "
                             "tf.saved_model.save)")
    for version in found:
        pb = version / "saved_model.pb"
        if not pb.is_file():
            raise UsageError(f"{version}: not a SavedModel (no saved_model.pb)",
                             fix="export it with model.export(path) or tf.saved_model.save")
        names = signatures(pb)
        if SIGNATURE not in names:
            have = ", ".join(names) or "none"
            raise UsageError(f"{version}: the SavedModel has no {SIGNATURE} signature "
                             f"(signatures: {have})",
                             fix="export it with model.export(path), or pass "
                                 f"signatures={{'{SIGNATURE}': fn}} to tf.saved_model.save")
    return sorted(int(v.name) for v in found)
