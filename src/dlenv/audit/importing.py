"""``dlenv init --from FILE``: what an existing requirements.txt, conda environment.yml,
pyproject.toml or Dockerfile says about an environment, as the values of a spec, and the
lines that have no translation, said rather than dropped. Pure: text in, ``Imported`` out.

The input is untrusted (it comes with a repository): every value that reaches the spec is a
parsed requirement or a Debian package name, and what is not is a note."""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from dlenv.fsutil import shorten

Kind = Literal["requirements", "conda", "pyproject", "dockerfile"]
_APT = re.compile(r"[a-z0-9][a-z0-9.+-]{0,99}")
_NAME = re.compile(r"[^a-z0-9._-]+")
# Distributions that are a framework in a spec (``framework = ...``), by PyPI name.
_FRAMEWORKS = {"tensorflow": "tensorflow", "tensorflow-cpu": "tensorflow",
               "tensorflow-gpu": "tensorflow", "torch": "pytorch", "jax": "jax"}
# What dlenv chooses itself from the framework and the accelerator: never pinned by hand.
_CHOSEN = re.compile(r"jaxlib|jax-cuda\d+-(plugin|pjrt)|nvidia-.*|tensorflow-io-gcs-filesystem"
                     r"|tensorflow-intel|tensorflow-estimator|pip|setuptools|wheel")
# conda packages with no PyPI distribution of the same meaning (the toolchain, CUDA, BLAS).
_CONDA_ONLY = re.compile(r"python|pip|cudatoolkit|cudnn|cuda(-.*)?|pytorch-cuda|nccl|mkl.*|"
                         r"blas|libblas|openblas|intel-openmp|_.*|lib.*|ca-certificates|"
                         r"openssl|certifi|tk|xz|zlib|readline|sqlite|ncurses|bzip2|ld_impl.*|"
                         r"cpuonly|pytorch-mutex|tzdata")
_CONDA_NAMES = {"pytorch": "torch", "pytorch-gpu": "torch", "tensorflow-gpu": "tensorflow",
                "py-opencv": "opencv-python", "pillow-simd": "pillow"}


@dataclass(frozen=True, slots=True)
class Imported:
    kind: Kind
    name: str | None = None
    framework: str | None = None  # a spec's framework value (tensorflow==2.15.0)
    accelerator: str = "cpu"  # cpu | cuda | cuda11 | cuda12 | cuda13
    python: str | None = None
    packages: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    notes: tuple[str, ...] = ()  # what was not translated, and why


@dataclass(slots=True)
class _Found:
    """What one file says, gathered line by line."""

    kind: Kind
    name: str | None = None
    framework: str | None = None
    accelerator: str = "cpu"
    python: str | None = None
    packages: list[str] = field(default_factory=list)
    apt: list[str] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)
    workdir: str | None = None
    notes: list[str] = field(default_factory=list)

    def cuda(self, major: str | None = None) -> None:
        self.accelerator = f"cuda{major}" if major in ("11", "12", "13") else "cuda"

    def requirement(self, raw: str, where: str) -> None:
        """A PEP 508 requirement: the framework, something dlenv chooses, or a package."""
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            self.notes.append(f"{where}: {shorten(raw, 60)} is not a requirement")
            return
        if req.url:
            self.notes.append(f"{where}: {req.name} from a URL: add it by name and version")
            return
        name = str(canonicalize_name(req.name))
        local = [s for s in req.specifier if "+" in s.version]
        # The specifier as written (packaging's str() sorts its clauses), local labels cut.
        written = re.match(r"\s*[A-Za-z0-9._-]+\s*(?:\[[^\]]*\])?\s*\(?([^;)]*)", raw)
        specifier = re.sub(r"\+[A-Za-z0-9.]+|\s", "", written.group(1) if written else "")
        try:
            Requirement(f"x{specifier}")
        except InvalidRequirement:  # an odd spelling the pattern misread: packaging's form
            specifier = ",".join(str(s).split("+")[0] for s in req.specifier)
        for s in local:  # torch==2.1.0+cu118: PyTorch's own index builds
            variant = s.version.split("+", 1)[1]
            if variant.startswith("cu"):
                self.cuda(variant[2:4])
            self.notes.append(f"{where}: {req.name}{s} is a +{variant} build: dlenv picks the "
                              "variant from the accelerator (set index.pytorch_url for "
                              "PyTorch's own index)")
        if name in _FRAMEWORKS:
            if self.framework is not None:
                self.notes.append(f"{where}: {req.name} again: kept {self.framework}")
                return
            self.framework = f"{_FRAMEWORKS[name]}{specifier}"
            if name == "tensorflow-gpu" or req.extras & {"and-cuda", "cuda"} or any(
                    e.startswith("cuda") for e in req.extras):
                major = next((e[4:] for e in req.extras if re.fullmatch(r"cuda1\d", e)), None)
                self.cuda(major)
            return
        if _CHOSEN.fullmatch(name):
            self.notes.append(f"{where}: {req.name} is chosen by dlenv from the framework and "
                              "accelerator: left out")
            return
        marker = f"; {req.marker}" if req.marker else ""
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        self.packages.append(f"{req.name}{extras}{specifier}{marker}")

    def debian(self, names: list[str], where: str) -> None:
        for raw in names:
            bare = raw.split("=", 1)[0]
            if not _APT.fullmatch(bare):
                self.notes.append(f"{where}: {shorten(raw, 60)} is not a Debian package name")
            elif bare not in self.apt:
                if "=" in raw:
                    self.notes.append(f"{where}: {raw}: the version comes from the lock's "
                                      "Debian suite")
                self.apt.append(bare)

    def done(self) -> Imported:
        packages = tuple(dict.fromkeys(self.packages))
        return Imported(kind=self.kind, name=self.name, framework=self.framework,
                        accelerator=self.accelerator, python=self.python, packages=packages,
                        apt=tuple(self.apt), env=tuple(self.env), workdir=self.workdir,
                        notes=tuple(self.notes))


def kind_of(path: PurePosixPath) -> Kind | None:
    name = path.name.lower()
    if name.endswith((".yml", ".yaml")):
        return "conda"
    if name == "pyproject.toml":
        return "pyproject"
    if name == "dockerfile" or name.startswith("dockerfile.") or name.endswith(".dockerfile"):
        return "dockerfile"
    if name.endswith((".txt", ".in")) or name.startswith("requirements"):
        return "requirements"
    return None


def _requirement_lines(found: _Found, text: str, where: str) -> None:
    """pip's requirements format: one requirement a line; options are notes."""
    joined = re.sub(r"\\\n", " ", text)
    for number, line in enumerate(joined.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*", "", line).strip()
        if not line:
            continue
        here = f"{where}:{number}"
        if line.startswith("-"):
            option = line.split()[0]
            what = {"-r": "another requirements file", "--requirement": "another requirements "
                    "file", "-c": "a constraints file", "-e": "an editable install",
                    "--index-url": "an index (set [index] url)", "-i": "an index (set [index] "
                    "url)", "--extra-index-url": "an index (set [index] extra_urls)"}
            found.notes.append(f"{here}: {shorten(line, 60)}: "
                               f"{what.get(option, 'a pip option')}, not translated")
            continue
        found.requirement(line.split(" --hash", 1)[0].strip(), here)


def from_requirements(text: str, where: str) -> Imported:
    found = _Found("requirements")
    _requirement_lines(found, text, where)
    return found.done()


def _conda_spec(raw: str) -> tuple[str, str]:
    """A conda match spec (``numpy=1.24``, ``conda-forge::scipy>=1.10``, ``numpy 1.24.*``)
    as a name and a PEP 440 specifier: conda's ``=1.24`` is the 1.24 series, ``==`` exact;
    a build string after the version is dropped."""
    raw = raw.split("::")[-1].strip()
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", raw)
    if not m:
        return raw, ""
    name, rest = m.group(1), m.group(2).replace(" ", "")
    if rest.startswith("=="):
        return name, "==" + rest[2:].split("=")[0]
    if rest.startswith("=") or rest[:1].isdigit():
        version = rest.lstrip("=").split("=")[0].removesuffix(".*").removesuffix("*")
        return name, f"=={version}.*" if version else ""
    return name, rest


def from_conda(data: Any, where: str) -> Imported:
    found = _Found("conda")
    if not isinstance(data, dict):
        found.notes.append(f"{where}: not a conda environment (no mapping at the top)")
        return found.done()
    if isinstance(data.get("name"), str):
        found.name = data["name"]
    for entry in data.get("dependencies") or []:
        if isinstance(entry, dict) and isinstance(entry.get("pip"), list):
            for line in entry["pip"]:
                if isinstance(line, str):
                    _requirement_lines(found, line, f"{where} pip")
            continue
        if not isinstance(entry, str):
            continue
        name, specifier = _conda_spec(entry)
        lower = name.lower()
        if lower == "python":
            m = re.match(r"[=~<>!]*=?(3\.\d+)", specifier)
            found.python = m.group(1) if m else None
        elif lower in ("cudatoolkit", "pytorch-cuda", "cuda-version", "cuda"):
            m = re.search(r"(\d+)\.", specifier)
            found.cuda(m.group(1) if m else None)
        elif _CONDA_ONLY.fullmatch(lower):
            found.notes.append(f"{where}: {entry}: a conda-only package, left out")
        else:
            found.requirement(f"{_CONDA_NAMES.get(lower, name)}{specifier}", where)
    if data.get("channels"):
        found.notes.append(f"{where}: channels: PyPI and Debian replace conda's channels")
    return found.done()


def from_pyproject(data: dict[str, Any], where: str) -> Imported:
    found = _Found("pyproject")
    table = data.get("project")
    project: dict[str, Any] = table if isinstance(table, dict) else {}
    if isinstance(project.get("name"), str):
        found.name = project["name"]
    for raw in project.get("dependencies") or []:
        if isinstance(raw, str):
            found.requirement(raw, f"{where} [project] dependencies")
    requires = project.get("requires-python")
    if isinstance(requires, str):
        found.notes.append(f"{where}: requires-python = {requires!r}: dlenv picks the newest "
                           "Python the framework supports; set python to choose one")
    for extra in project.get("optional-dependencies") or {}:
        found.notes.append(f"{where}: the optional dependencies {extra!r}: add them to a "
                           "profile's packages if an image needs them")
    return found.done()


_IMAGE = re.compile(r"(?:.*/)?(tensorflow|pytorch|python|cuda|jax)[:](\S+)")


def _from_image(found: _Found, ref: str, where: str) -> None:
    """What a FROM image says: tensorflow/tensorflow:2.15.0-gpu-jupyter, pytorch/pytorch:
    2.1.0-cuda11.8-cudnn8-runtime, python:3.11-slim, nvidia/cuda:12.2.0-runtime-…"""
    m = _IMAGE.fullmatch(ref.split("@")[0])
    if not m:
        found.notes.append(f"{where}: FROM {shorten(ref, 60)}: dlenv assembles its own Debian "
                           "base (base = \"IMAGE\" in the spec uses a registry image instead)")
        return
    repo, tag = m.groups()
    version = re.match(r"\d+(\.\d+)*", tag)
    if repo == "python":
        found.python = ".".join(version.group(0).split(".")[:2]) if version else None
    elif repo == "cuda":
        found.cuda(version.group(0).split(".")[0] if version else None)
    elif repo in ("tensorflow", "pytorch"):
        name = "tensorflow" if repo == "tensorflow" else "pytorch"
        found.framework = f"{name}=={version.group(0)}" if version else name
        cuda = re.search(r"cuda(\d+)", tag)
        if "gpu" in tag or cuda:
            found.cuda(cuda.group(1) if cuda else None)


def _run(found: _Found, command: str, where: str, read: Any) -> None:
    """The pip and apt installs of one RUN; every other command is a note."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        found.notes.append(f"{where}: cannot split {shorten(command, 60)}")
        return
    commands: list[list[str]] = [[]]
    for token in tokens:  # a shell list: commands between ; && || | (quotes respected)
        if token and all(c in "();<>|&" for c in token):
            commands.append([])
        else:
            commands[-1].append(token)
    for words in filter(None, commands):
        part = " ".join(words)
        if words[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"]):
            words = ["pip", *words[3:]]
        tool = PurePosixPath(words[0]).name
        if tool in ("pip", "pip3") and words[1:2] == ["install"]:
            args = iter(words[2:])
            for word in args:
                if word in ("-r", "--requirement"):
                    name = next(args, "")
                    text = read(name)
                    if text is None:
                        found.notes.append(f"{where}: pip install -r {shorten(name, 60)}: not "
                                           "found beside the Dockerfile")
                    else:
                        _requirement_lines(found, text, name)
                elif word in ("-i", "--index-url", "--extra-index-url", "-c", "-f"):
                    found.notes.append(f"{where}: pip {word} {next(args, '')}: not translated")
                elif not word.startswith("-") and not word.startswith("."):
                    found.requirement(word, where)
        elif tool in ("apt-get", "apt") and "install" in words:
            after = words[words.index("install") + 1:]
            found.debian([w for w in after if not w.startswith("-")], where)
        elif tool in ("apt-get", "apt", "rm") or words[0] in ("cd", "echo", "mkdir", "true"):
            continue  # update, clean-up and shell plumbing: dlenv's build does its own
        else:
            found.notes.append(f"{where}: RUN {shorten(part.strip(), 60)}: not translated")


def from_dockerfile(text: str, where: str, read: Any) -> Imported:
    """``read(name)``: the text of a file the Dockerfile names (pip's -r), or None."""
    from dockerfile_parse import DockerfileParser

    found = _Found("dockerfile")
    # From a stream: given no file, the parser would write the text to ./Dockerfile.
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"].strip()
        here = f"{where}:{item['startline'] + 1}"
        if instruction == "FROM":
            _from_image(found, value.split()[0], here)
        elif instruction == "RUN":
            _run(found, value, here, read)
        elif instruction == "ENV":
            pairs = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S*)", value)
            for key, raw in pairs or []:
                if key == "DEBIAN_FRONTEND":
                    continue  # the build's concern, and dlenv's build asks nothing
                if key in ("PATH", "LD_LIBRARY_PATH", "HOME") or "$" in raw:
                    found.notes.append(f"{here}: ENV {key}: dlenv sets it, or it refers to "
                                       "another variable")
                else:
                    found.env.append((key, raw.strip('"')))
        elif instruction == "WORKDIR":
            found.workdir = value
        elif instruction in ("COPY", "ADD"):
            found.notes.append(f"{here}: {instruction}: dlenv copies the project's files "
                               "itself (.dlenvignore leaves some out)")
        elif instruction in ("CMD", "ENTRYPOINT") and "jupyter" in value:
            found.notes.append(f"{here}: {instruction} jupyter …: the dev profile's JupyterLab "
                               "replaces it ('dlenv jupyter')")
        elif instruction == "EXPOSE":
            found.notes.append(f"{here}: EXPOSE {shorten(value, 30)}: a profile's ports = "
                               "[...] publishes ports (the dev profile has 8888)")
        elif instruction in ("USER", "LABEL", "ARG", "SHELL", "HEALTHCHECK",
                             "CMD", "ENTRYPOINT", "VOLUME", "STOPSIGNAL"):
            found.notes.append(f"{here}: {instruction} {shorten(value, 50)}: not translated "
                               "(a profile's command = [...] starts it; images run as their "
                               "own non-root user)")
    return found.done()


def spec_name(raw: str | None, fallback: str) -> str:
    """A spec's name from a project's or environment's name (lowercase, digits, . _ -)."""
    name = _NAME.sub("-", (raw or "").lower()).strip("-.") or fallback
    return name[:60]
