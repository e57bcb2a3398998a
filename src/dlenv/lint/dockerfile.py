"""Dockerfile rules, pure functions of the file's text (parsed by dockerfile-parse, which
handles continuations, comments and parser directives).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dlenv.compat import load_matrix
from dlenv.image.dockerfile import SEAL
from dlenv.lint.rules import Finding, _f


@dataclass(frozen=True, slots=True)
class _Instr:
    keyword: str
    value: str
    line: int


def _instructions(text: str) -> list[_Instr]:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    return [_Instr(i["instruction"], i["value"], i["startline"] + 1) for i in parser.structure
            if i["instruction"] != "COMMENT"]


_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|"
                          r"CREDENTIALS?)", re.I)


# Words that say a stage serves or trains (whole words: "ServerApp" is Jupyter's, not a server
# of models).
_SERVING = re.compile(r"\b(serve|serving|prod|tensorflow_model_server|torchserve|uvicorn|"
                      r"gunicorn|tritonserver)\b", re.I)
_TRAINING = re.compile(r"\b(train|training|torchrun|finetune|fine-tune)(\.py)?\b", re.I)
_PRIVATE_KEY = re.compile(r"(^|[\s/\"'\[])(id_(rsa|dsa|ecdsa|ed25519)(?!\.pub)|"
                          r"[\w.-]+\.(pem|key|p12|pfx))(?=[\s\"',\]]|$)")


_DEV_TOOLS = ("jupyter", "jupyterlab", "notebook", "ipykernel", "openssh-server", "vim",
              "tensorboard")


_CUDA_BASE = re.compile(r"(?:^|/)cuda:(\d+)\.(\d+)")


def unversioned(image: str) -> bool:
    """An image reference with no tag, ``latest`` or a ``latest-…`` tag (and no digest)."""
    if "@sha256:" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.split(":", 1)[1].startswith("latest")


def _env_names(value: str) -> list[tuple[str, str]]:
    """KEY=VALUE pairs of ENV/ARG (or the legacy `ENV KEY VALUE`)."""
    try:
        words = shlex.split(value, comments=False)
    except ValueError:
        words = value.split()
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [tuple(w.split("=", 1)) if "=" in w else (w, "") for w in words]  # type: ignore[misc]


def _pip_installs(run: str) -> list[list[str]]:
    """The argument lists of every `pip install` in a RUN's shell text."""
    out = []
    for part in re.split(r"&&|\|\||;|\n", run):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        for i, w in enumerate(words[:-1]):
            if (w == "pip" or w.endswith(("/pip", "pip3")) or w == "pip3") and \
                    words[i + 1] == "install":
                out.append(words[i + 2:])
                break
            if w == "-m" and words[i + 1] in ("pip", "pip3") and words[i + 2:i + 3] == \
                    ["install"]:
                out.append(words[i + 3:])
                break
    return out


def _requirements(args: Sequence[str]) -> list[str]:
    """Package requirements named on a pip command line (not options, files or URLs)."""
    reqs, skip = [], False
    takes_value = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url",
                   "--extra-index-url", "-f", "--find-links", "--target", "-t", "--prefix",
                   "--root", "--platform", "--python-version", "--only-binary",
                   "--no-binary", "--root-user-action", "--cache-dir", "--progress-bar"}
    for a in args:
        if skip:
            skip = False
            continue
        if a in takes_value:
            skip = True
            continue
        if a.startswith("-") or "/" in a or a.startswith("."):
            continue
        reqs.append(a)
    return reqs


def _framework_cuda(reqs: Iterable[str]) -> list[tuple[str, set[str]]]:
    """(requirement, CUDA majors the matrix says it was built for) for framework pins."""
    matrix = load_matrix()
    out = []
    for req in reqs:
        m = re.match(r"^(tensorflow|torch)(?:\[[^\]]*\])?==(\d+)\.(\d+)[^+]*(?:\+cu(\d+))?", req)
        if not m:
            continue
        name, major, minor, variant = m.groups()
        if variant:
            out.append((req, {variant[:-1]}))
            continue
        framework = "tensorflow" if name == "tensorflow" else "pytorch"
        line = f"{major}.{minor}"
        release = next((r for r in matrix.lines(framework) if r.line == line), None)
        if release is not None and release.cuda_options:
            out.append((req, {o.major for o in release.cuda_options}))
    return out


def _seal_broken(text: str) -> int | None:
    """The line of a seal that does not match the text above it (None: intact or none)."""
    at = text.rfind(SEAL)
    if at < 0:
        return None
    body, digest = text[:at], text[at + len(SEAL):].strip()
    if digest == hashlib.sha256(body.encode()).hexdigest():
        return None
    return body.count("\n") + 1


def lint_dockerfile(text: str, file: str = "Dockerfile",
                    has_dockerignore: bool | None = None) -> list[Finding]:
    """Every finding for one Dockerfile. ``has_dockerignore`` None: not checked."""
    found: list[Finding] = []
    broken = _seal_broken(text)
    if broken is not None:
        found.append(_f("ML018", file, broken, "this Dockerfile says dlenv rendered it, but "
                        "its text is not what dlenv wrote",
                        "render it again with 'dlenv dockerfile' and review the diff; change "
                        "dlenv.toml, not the Dockerfile"))
    instrs = _instructions(text)
    stages: list[dict[str, Any]] = []
    names: set[str] = set()
    for ins in instrs:
        kw = ins.keyword
        if kw == "FROM":
            words = [w for w in ins.value.split() if not w.startswith("--")]
            image = words[0] if words else ""
            alias = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else ""
            parent = next((st for st in reversed(stages) if st["alias"] == image.lower()), None)
            stages.append({"image": image, "alias": alias, "line": ins.line,
                           "user": parent["user"] if parent else None,
                           "installs": list(parent["installs"]) if parent else [],
                           "cmd": parent["cmd"] if parent else "", "nvidia_wheels": False,
                           "reqs": [], "copied_all": None,
                           "base": parent["base"] if parent else image})
            if alias:
                names.add(alias)
            if image.lower() in names or image == "scratch" or image.startswith("$"):
                continue
            if "@sha256:" in image:
                continue
            if unversioned(image):
                found.append(_f("ML001", file, ins.line, f"FROM {image}: no fixed version",
                                "name a version tag and pin it by digest "
                                "(image:tag@sha256:…), or let dlenv lock the base"))
            else:
                found.append(_f("ML002", file, ins.line, f"FROM {image} is pinned by tag only",
                                "append @sha256:<digest> (docker buildx imagetools inspect, "
                                "or dlenv lock)"))
            continue
        if not stages:  # ARGs before the first FROM
            continue
        stage = stages[-1]
        value = ins.value
        if kw == "USER":
            stage["user"] = value.split(":")[0].strip()
        elif kw in ("CMD", "ENTRYPOINT"):
            stage["cmd"] += " " + value
        elif kw in ("ENV", "ARG"):
            for key, _ in _env_names(value):
                if _SECRET_NAME.search(key):
                    found.append(_f("ML015", file, ins.line, f"{kw} {key} holds a secret",
                                    "pass it at run time (a mounted file, or "
                                    "RUN --mount=type=secret at build time)"))
        elif kw == "ADD" and re.search(r"(^|\s)https?://", value):
            found.append(_f("ML016", file, ins.line, "ADD downloads a URL unverified",
                            "download in a RUN that checks a sha256, or vendor the file"))
        elif kw == "COPY" and re.search(r"ssh_host_\w+_key", value):
            found.append(_f("ML014", file, ins.line, "SSH host keys are copied into the image",
                            "generate them at first start into a volume (dlenv ssh does)"))
        elif kw in ("COPY", "ADD") and (private := _PRIVATE_KEY.search(value)):
            found.append(_f("ML021", file, ins.line,
                            f"{private.group(2)} is copied into the image",
                            "mount it at build time (RUN --mount=type=ssh or type=secret) or at "
                            "run time, never COPY it; and list it in .dockerignore"))
        if kw == "COPY" and stage["copied_all"] is None and _copies_context(value):
            stage["copied_all"] = ins.line
        if kw == "RUN":
            _lint_run(value, ins.line, file, stage, found)
        if kw in ("CMD", "ENTRYPOINT", "RUN"):
            _lint_jupyter(value, ins.line, file, found)
    if stages:
        final = stages[-1]
        if final["user"] in (None, "root", "0"):
            found.append(_f("ML004", file, final["line"],
                            "the final stage has no USER" if final["user"] is None
                            else f"the final stage runs as {final['user']}",
                            "create a user and end with USER <uid>:<gid> (dlenv images run "
                            "as 1000:1000)"))
        said = f"{final['alias']} {final['image']} {final['cmd']}"
        purpose = _SERVING.search(said) or _TRAINING.search(said)
        dev = [t for t in final["installs"] if t in _DEV_TOOLS]
        if "jupyter" in final["base"].lower():
            dev.append(f"the Jupyter base {final['base']}")
        if purpose and dev:
            what = "serves" if _SERVING.search(said) else "trains"
            found.append(_f("ML003", file, final["line"],
                            f"this image {what} ({purpose.group(0)}) but has "
                            f"{', '.join(sorted(set(dev)))}",
                            "start from a plain Python or framework image, and keep Jupyter "
                            "and dev tools in a separate dev stage or profile"))
        cuda = _CUDA_BASE.search(final["image"]) or next(
            (m for s in stages if (m := _CUDA_BASE.search(s["image"]))), None)
        gpu_base = cuda is not None or re.search(r"-gpu|cuda", final["image"], re.I)
        if gpu_base and any(s["nvidia_wheels"] for s in stages):
            found.append(_f("ML009", file, final["line"], "the base image ships CUDA and pip "
                            "installs nvidia-* wheels (or an [and-cuda] extra) on top",
                            "use a plain base (dlenv's Debian base) with the wheels, or the "
                            "CUDA base without the wheels"))
        if cuda is not None:
            base_major = cuda.group(1)
            for req, majors in _framework_cuda(r for s in stages for r in s["reqs"]):
                if base_major not in majors:
                    found.append(_f("ML010", file, final["line"],
                                    f"{req} is built for CUDA {'/'.join(sorted(majors))}, "
                                    f"the base has CUDA {cuda.group(1)}.{cuda.group(2)}",
                                    "pick the base image of the framework's CUDA "
                                    "('dlenv matrix' lists them)"))
    if has_dockerignore is False:
        found.append(_f("ML017", file, 1, "no .dockerignore in the build context",
                        "add one (.git, data, checkpoints, __pycache__); 'dlenv dockerfile' "
                        "writes one"))
    return found


def _copies_context(value: str) -> bool:
    """Whether a COPY takes the whole build context (``COPY . .``, ``COPY ./ /app``)."""
    words = [w for w in _command_words(value) if not w.startswith("--")]
    return len(words) >= 2 and any(w in (".", "./") for w in words[:-1])


def _command_words(value: str) -> list[str]:
    """The words of an instruction: exec form as JSON (no shell sees it), else as the shell
    splits them (quotes removed)."""
    text = value.strip()
    if text.startswith("["):
        try:
            words = json.loads(text)
        except json.JSONDecodeError:
            words = None
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            return words
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _lint_run(value: str, line: int, file: str, stage: dict[str, Any],
              found: list[Finding]) -> None:
    mounts = " ".join(re.findall(r"--mount=\S+", value))
    for args in _pip_installs(value):
        reqs = _requirements(args)
        stage["reqs"] += reqs
        stage["installs"] += [re.split(r"[=<>\[!~ ]", r)[0].lower() for r in reqs]
        if any(r.startswith("nvidia-") or "[and-cuda]" in r for r in reqs):
            stage["nvidia_wheels"] = True
        loose = [r for r in reqs if "==" not in r and not r.startswith("-")]
        has_req_file = any(a in ("-r", "--requirement") for a in args)
        if has_req_file and stage["copied_all"] is not None:
            found.append(_f("ML019", file, line, f"line {stage['copied_all']} copies the whole "
                            "project before this pip install -r: every code edit reinstalls "
                            "every package",
                            "COPY only the requirements file, install, then COPY the rest"))
        if reqs and not loose and "--require-hashes" not in args:
            found.append(_f("ML020", file, line, f"pip installs {', '.join(reqs)} pinned by "
                            "version only", "pin the files too: a requirements file with "
                            "--hash=sha256:… and --require-hashes ('dlenv lock' writes them)"))
        if loose:
            found.append(_f("ML005", file, line, f"pip installs {', '.join(loose)} unpinned",
                            "pin every package (name==version) with hashes: 'dlenv lock "
                            "--requirements requirements.txt' and --require-hashes"))
        elif has_req_file and "--require-hashes" not in args:
            found.append(_f("ML005", file, line, "pip -r without --require-hashes",
                            "lock with hashes ('dlenv lock --requirements FILE') and add "
                            "--require-hashes"))
        for r in reqs:
            m = re.match(r"^tensorflow-gpu(==(\d+)\.(\d+))?", r)
            if m and (m.group(1) is None or (int(m.group(2)), int(m.group(3))) >= (2, 12)):
                found.append(_f("ML011", file, line, f"{r}: tensorflow-gpu stopped at 2.11; "
                                "its later releases are source packages that fail to build on "
                                "purpose" if m.group(1) else f"{r}: unpinned, pip takes the "
                                "newest tensorflow-gpu, a source package that fails to build "
                                "on purpose (the package stopped at 2.11)",
                                "install 'tensorflow' (or 'tensorflow[and-cuda]' for CUDA "
                                "from pip)"))
        if "--no-cache-dir" not in args and "cache" not in mounts and \
                "PIP_NO_CACHE_DIR" not in value:
            found.append(_f("ML006", file, line, "pip keeps its download cache in the layer",
                            "add --no-cache-dir, or RUN --mount=type=cache,"
                            "target=/root/.cache/pip"))
    if re.search(r"apt-get\s+(-\S+\s+)*install", value) or re.search(r"\bapt\s+install",
                                                                     value):
        if "--no-install-recommends" not in value:
            found.append(_f("ML007", file, line, "apt-get install pulls Recommends",
                            "add --no-install-recommends"))
        if "/var/lib/apt/lists" not in value and "target=/var/lib/apt" not in mounts:
            found.append(_f("ML008", file, line, "the apt lists stay in this layer",
                            "end the RUN with 'rm -rf /var/lib/apt/lists/*', or use cache "
                            "mounts for /var/cache/apt and /var/lib/apt"))
        for pkg in re.findall(r"\b(openssh-server|jupyter\S*|vim)\b", value):
            stage["installs"].append(pkg)
    if re.search(r"ssh-keygen\s+-A|ssh-keygen\s[^&;]*ssh_host_", value):
        found.append(_f("ML014", file, line, "SSH host keys are generated at build time",
                        "generate them at first start into a volume (dlenv ssh does)"))
    if re.search(r"chpasswd|(?<!getent )\bpasswd\s+\S|PasswordAuthentication\s+yes|"
                 r"PermitRootLogin\s+yes", value):
        found.append(_f("ML014", file, line, "SSH passwords or root login are enabled",
                        "key-only: PasswordAuthentication no, PermitRootLogin no, and mount "
                        "authorized_keys at run time"))


def _lint_jupyter(value: str, line: int, file: str, found: list[Finding]) -> None:
    """Empty tokens and root, in a Dockerfile's or compose file's command."""
    if not re.search(r"\bjupyter(-lab|-notebook)?\b|start-notebook|start-singleuser|"
                     r"(NotebookApp|ServerApp|IdentityProvider)\.", value):
        return
    words = _command_words(value)
    empty = [w for w in words if (m := re.fullmatch(
        r"--(?:NotebookApp|ServerApp|IdentityProvider)\.token=(.*)", w))
        and m.group(1) in ("", "''", '""')]
    if empty or re.search(r"\bc\.(NotebookApp|ServerApp|IdentityProvider)\.token\s*=\s*"
                          r"(''|\"\")", value):
        quoted = [w for w in empty if w.endswith(("''", '""'))]
        found.append(_f("ML012", file, line, "Jupyter runs with an empty token"
                        + (f" ({quoted[0]}: with no shell the quotes reach Jupyter, and "
                           "traitlets strips a quoted value to the empty string)"
                           if quoted else ""),
                        "keep token authentication; pass the token in a mounted config file "
                        "(dlenv jupyter does), or let Jupyter make one and print it"))
    if "--allow-root" in words:
        found.append(_f("ML013", file, line, "Jupyter runs as root (--allow-root)",
                        "run it as a non-root user (USER 1000:1000)"))
