"""What a development container is made from, of a spec (``RunView``): its name and file,
the image's user, workdir and environment, and each profile's servers and ports.

``plan_run`` and ``choose_profile`` read this view, not the whole spec. A run records it
beside the image it readied, so that the next run of an unchanged project plans its
container from the record, without parsing the spec (or importing its parser and
``packaging``). Light at import: dataclasses only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    name: str = "dlenv"
    uid: int = 1000
    gid: int = 1000

    def account_files(self) -> dict[str, str]:
        """/etc/passwd, group and shadow of an image: root, nobody and this user. The image
        build writes them; ``dlenv run`` mounts them when it runs as another uid."""
        return {
            "passwd": "root:x:0:0:root:/root:/bin/bash\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                      f"{self.name}:x:{self.uid}:{self.gid}::/home/{self.name}:/bin/bash\n",
            "group": f"root:x:0:\nnogroup:x:65534:\n{self.name}:x:{self.gid}:\n",
            "shadow": f"root:*:1::::::\nnobody:*:1::::::\n{self.name}:*:1::::::\n",
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RunProfile:
    name: str
    jupyter: bool = False
    ssh: bool = False
    ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    name: str
    source: str  # the spec file, for errors that name it
    user: User
    workdir: str
    env: tuple[tuple[str, str], ...] = ()
    profiles: tuple[RunProfile, ...] = ()

    def profile(self, name: str) -> RunProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> RunView:
        """The view ``to_json`` wrote; ValueError when ``doc`` has another shape (a record
        from another dlenv, or damaged: the run then parses the spec)."""
        try:
            view = cls(
                name=doc["name"], source=doc["source"], user=User(**doc["user"]),
                workdir=doc["workdir"], env=tuple((k, v) for k, v in doc["env"]),
                profiles=tuple(RunProfile(name=p["name"], jupyter=p["jupyter"], ssh=p["ssh"],
                                          ports=tuple(p["ports"])) for p in doc["profiles"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a run view: {exc}") from None
        if not _typed(view):
            raise ValueError("not a run view: a value of the wrong type")
        return view


def _typed(view: RunView) -> bool:
    texts = (view.name, view.source, view.workdir, view.user.name,
             *(x for pair in view.env for x in pair), *(p.name for p in view.profiles))
    ints = (view.user.uid, view.user.gid, *(n for p in view.profiles for n in p.ports))
    flags = (*(p.jupyter for p in view.profiles), *(p.ssh for p in view.profiles))
    return (all(type(t) is str for t in texts) and all(type(n) is int for n in ints)
            and all(type(b) is bool for b in flags))
