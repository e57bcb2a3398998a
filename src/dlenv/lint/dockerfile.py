"""Dockerfile rules, pure functions of the file's text (parsed by dockerfile-parse, which
handles continuations, comments and parser directives).
"""

from __future__ import annotations

import hashlib
import io
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


_SERVING = re.compile(r"(serv(e|ing)|prod|tensorflow_model_server|torchserve|uvicorn|gunicorn|"
                      r"tritonserver)", re.I)


_DEV_TOOLS = ("jupyter", "jupyterlab", "notebook", "ipykernel", "openssh-server", "vim",
              "tensorboard")


_CUDA_BASE = re.compile(r"(?:^|/)cuda:(\d+)\.(\d+)")


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
            stages.append({"image": image, "alias": alias, "line": ins.line, "user": None,
                           "installs": [], "cmd": "", "nvidia_wheels": False, "reqs": []})
            if alias:
                names.add(alias)
            if image.lower() in names or image == "scratch" or image.startswith("$"):
                continue
            tagless = image.rsplit("/", 1)[-1]
            if "@sha256:" in image:
                continue
            if ":" not in tagless or tagless.endswith(":latest") or "latest-" in tagless:
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
        serving = _SERVING.search(f"{final['alias']} {final['image']} {final['cmd']}")
        dev = [t for t in final["installs"] if t in _DEV_TOOLS]
        if "jupyter" in final["image"].lower():
            dev.append(final["image"])
        if serving and dev:
            found.append(_f("ML003", file, final["line"],
                            f"this image serves ({serving.group(0)}) but has "
                            f"{', '.join(sorted(set(dev)))}",
                            "install dev tools in a separate dev stage or profile"))
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
                found.append(_f("ML011", file, line, f"{r}: no such release",
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
    if re.search(r"chpasswd|passwd\s+\S|PasswordAuthentication\s+yes|PermitRootLogin\s+yes",
                 value):
        found.append(_f("ML014", file, line, "SSH passwords or root login are enabled",
                        "key-only: PasswordAuthentication no, PermitRootLogin no, and mount "
                        "authorized_keys at run time"))


def _lint_jupyter(value: str, line: int, file: str, found: list[Finding]) -> None:
    if not re.search(r"\bjupyter(-lab|-notebook)?\b|\bjupyter\s+(lab|notebook|server)", value):
        return
    if re.search(r"(NotebookApp|ServerApp|IdentityProvider)\.token\s*=\s*(''|\"\"|(\s|,|\]|$))",
                 value) or re.search(r"\.(disable_check_xsrf|password)\s*=\s*(''|\"\")", value):
        found.append(_f("ML012", file, line, "Jupyter runs with an empty token",
                        "keep token authentication; pass the token in a mounted config file "
                        "(dlenv jupyter does)"))
    if re.search(r"--ip[= ]\s*['\"]?(0\.0\.0\.0|\*)", value) or "--allow-root" in value:
        found.append(_f("ML013", file, line, "Jupyter listens on every interface"
                        + (" as root" if "--allow-root" in value else ""),
                        "run as a non-root user and publish the port on 127.0.0.1 only "
                        "(-p 127.0.0.1:8888:8888)"))
