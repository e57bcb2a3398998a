"""The argument parser: every command, its options and their help."""

from __future__ import annotations

import argparse
from typing import Any, cast

from dlenv import __version__
from dlenv.cli.options import cache_dir, command, frozen, json_flag, project_dir
from dlenv.cli.parser_audit import audit_commands
from dlenv.engine.base import ENGINES, PIDS_LIMIT


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` when it names one: a command's own
    arguments are all that one run reads (``--help`` and an unknown word get every command)."""
    p = argparse.ArgumentParser(prog="dlenv", description="Reproducible deep-learning "
                                "container environments from one spec.")
    p.add_argument("--version", action="version", version=f"dlenv {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    commands = cast("argparse._SubParsersAction[argparse.ArgumentParser]",
                    _Only(sub, only)) if only else sub
    for add in (_project_commands, _image_commands, _check_commands, audit_commands,
                _run_commands, _cluster_commands):
        add(commands)
    return p if not only or only in sub.choices else build_parser()


class _Only:
    """The subcommands' registry, passing on only the command asked for: the others' parsers
    are not built (argparse builds a parser with every argument for each one, about 40 ms of
    every start here; argparse has no lazy subcommands)."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser],
                 only: str) -> None:
        self._sub, self._only = sub, only

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name == self._only:
            return self._sub.add_parser(name, **kwargs)
        return cast("argparse.ArgumentParser", _Unbuilt())


class _Unbuilt:
    """A command's parser that is not built: what its builder asks of it does nothing."""

    def __getattr__(self, name: str) -> Any:
        return self._nothing

    def _nothing(self, *args: Any, **kwargs: Any) -> _Unbuilt:
        return self


def _cluster_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """train, k8s"""
    text = ("train on several workers on this machine: the train profile's image as N "
            "containers that find each other (TF_CONFIG, torchrun, jax.distributed)")
    s = sub.add_parser("train", help=text, description=text + ".",
                       usage="dlenv train [DIR] [--workers N] [options] [-- CMD [ARG ...]]",
                       epilog="-- CMD [ARG ...]: the command each worker runs instead of the "
                              "train profile's (e.g. dlenv train --workers 2 -- python "
                              "train.py --epochs 3)")
    project_dir(s)
    s.add_argument("--workers", type=int, help="how many workers (default: [deploy.train] "
                   "workers in the spec, else 1)")
    s.add_argument("--engine", choices=ENGINES,
                   help="container engine (default: the first that answers)")
    s.add_argument("--memory", help="memory limit of each worker, e.g. 8g")
    s.add_argument("--cpus", help="CPU limit of each worker, e.g. 2")
    s.add_argument("--shm-size", help="/dev/shm size of each worker")
    s.add_argument("--mount", action="append", default=[], metavar="HOST:CONTAINER[:ro]",
                   help="also bind-mount a host path into every worker (repeatable)")
    s.add_argument("--allow-cpu", action="store_true",
                   help="train a CUDA environment without a GPU")
    s.add_argument("--no-host-ca", action="store_true",
                   help="do not mount the host's CA bundle (read-only)")
    s.add_argument("--dry-run", action="store_true",
                   help="print the workers' plans and engine commands, start nothing")
    cache_dir(s)
    s.set_defaults(func=command("cluster", "cmd_train"), cmd=[])

    text = ("render Kubernetes manifests for a profile: a Job (an Indexed Job and a headless "
            "Service for several workers), a dev StatefulSet or a serving Deployment")
    s = sub.add_parser("k8s", help=text, description=text + ", the image named by digest.")
    project_dir(s)
    s.add_argument("--profile", default="train", choices=("train", "dev", "serve"),
                   help="the workload (default: train)")
    s.add_argument("--workers", type=int, help="train: how many workers (default: "
                   "[deploy.train] workers, else 1)")
    s.add_argument("--kind", default="job", choices=("job", "jobset", "tfjob", "pytorchjob"),
                   help="train: a batch Job with dlenv's launcher (default), a JobSet (the "
                        "launcher too), or Kubeflow's TFJob or PyTorchJob (its Training "
                        "Operator sets the variables)")
    s.add_argument("--image", metavar="REPOSITORY@sha256:…",
                   help="the image (default: the last 'dlenv push' of the profile from here)")
    s.add_argument("-o", "--output", metavar="DIR",
                   help="write one file per object into DIR instead of YAML on stdout")
    cache_dir(s)
    s.set_defaults(func=command("cluster", "cmd_k8s"))

    text = ("serve a TensorFlow SavedModel with the serve profile's image: TensorFlow "
            "Serving's REST API on 127.0.0.1, health and Prometheus metrics")
    s = sub.add_parser("serve", help=text, description=text + ". The model directory holds "
                       "numbered versions (1/, 2/ …); a new one is served without a restart.")
    project_dir(s)
    s.add_argument("--model", metavar="DIR", help="the model's base directory, mounted "
                   "read-only (default: [profiles.serve] model, else the project's models "
                   "volume)")
    s.add_argument("--name", help="the NAME in /v1/models/NAME (default: [profiles.serve] "
                   "model_name)")
    s.add_argument("--port", type=int, help="the port on 127.0.0.1 (default 8501)")
    s.add_argument("--detach", action="store_true",
                   help="return once a version is loaded; 'dlenv stop' ends it")
    s.add_argument("--engine", choices=ENGINES,
                   help="the container engine (default: the first that answers)")
    json_flag(s)
    cache_dir(s)
    s.set_defaults(func=command("serve", "cmd_serve"))

    text = ("write a Compose file for the dev profile's JupyterLab, the model server and a "
            "Prometheus scraping it, confined as 'dlenv run' confines containers")
    s = sub.add_parser("compose", help=text, description=text + "; the images are built and "
                       "loaded first, so 'docker compose up' starts at once.")
    project_dir(s)
    s.add_argument("-o", "--output", metavar="FILE",
                   help="where to write it (default: compose.yaml in the project); "
                        "prometheus.yml goes beside it")
    s.add_argument("--port", type=int, default=8501,
                   help="the model server's port on 127.0.0.1 (default 8501)")
    s.add_argument("--jupyter-port", type=int, default=8888,
                   help="JupyterLab's port on 127.0.0.1 (default 8888)")
    s.add_argument("--prometheus-image", metavar="REF",
                   help="Prometheus' image, e.g. a mirror's (default: prom/prometheus, "
                        "a fixed version)")
    s.add_argument("--engine", choices=ENGINES,
                   help="the container engine to load the images into (default: the "
                        "first that answers)")
    json_flag(s)
    cache_dir(s)
    s.set_defaults(func=command("serve", "cmd_compose"))


def _project_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """init, matrix, resolve, lock"""
    s = sub.add_parser("init", help="write a commented starter dlenv.toml")
    s.add_argument("dir", nargs="?", default=".", metavar="DIR",
                   help="where to write dlenv.toml (default: the current directory)")
    s.add_argument("--framework", help='e.g. "tensorflow==2.15.*"')
    s.add_argument("--gpu", action="store_true", help="a CUDA environment")
    s.add_argument("--python", help="Python version, e.g. 3.11")
    s.add_argument("--package", action="append", default=[], help="extra pip requirement")
    s.add_argument("--from", dest="source", metavar="FILE",
                   help="fill it from a requirements.txt, conda environment.yml, "
                   "pyproject.toml or Dockerfile (what has no translation is listed)")
    s.add_argument("--force", action="store_true", help="overwrite an existing dlenv.toml")
    s.set_defaults(func=command("commands", "cmd_init"))

    s = sub.add_parser("matrix", help="show the compatibility matrix")
    s.add_argument("framework", nargs="?", choices=["tensorflow", "pytorch", "torch", "jax"],
                   help="only this framework (default: all)")
    json_flag(s)
    s.set_defaults(func=command("commands", "cmd_matrix"))

    s = sub.add_parser("resolve", help="decide Python, base, CUDA and driver floor, and say why")
    project_dir(s)
    json_flag(s)
    s.set_defaults(func=command("commands", "cmd_resolve"))

    s = sub.add_parser("lock", help="pin every wheel and .deb by hash in dlenv.lock")
    project_dir(s)
    s.add_argument("--check", action="store_true", help="exit 1 when the lock is stale")
    s.add_argument("--update-base", action="store_true",
                   help="take the .debs again from the suite, its -updates and -security "
                        "(security fixes); the wheels stay")
    s.add_argument("--requirements", metavar="FILE", help="also write requirements.txt "
                   "with hashes")
    s.add_argument("--profile", help="profile for --requirements (default: the base set)")
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("commands", "cmd_lock"))


def _image_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """build, dockerfile, push, pull"""
    s = sub.add_parser("build", help="build the image natively (no Docker daemon needed)")
    project_dir(s)
    s.add_argument("--profile", help="build this profile's image (dev, train, serve)")
    s.add_argument("--output", action="append", default=[],
                   help="also write oci:DIR or docker-archive:FILE (repeatable)")
    s.add_argument("--load", action="store_true", help="load the image into Docker")
    s.add_argument("--tag", help="image name:tag (default NAME:latest or NAME:PROFILE)")
    s.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip",
                   help="layer compression (default gzip: every engine reads it)")
    s.add_argument("--backend", choices=["native", "docker"], default="native",
                   help="docker: render the Dockerfile and build it with BuildKit")
    frozen(s)
    s.add_argument("--no-bytecode", action="store_true",
                   help="do not precompile .pyc (smaller, but every start compiles imports)")
    s.add_argument("--no-project", action="store_true",
                   help="do not copy the spec's directory into the workdir")
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("build", "cmd_build"))

    s = sub.add_parser("dockerfile", help="render the lock as a multi-stage Dockerfile (eject)")
    project_dir(s)
    s.add_argument("-o", "--output", help="where to write it (default DIR/Dockerfile)")
    s.add_argument("--stdout", action="store_true", help="print it, write nothing")
    s.add_argument("--mode", choices=["portable", "exact"], default="portable",
                   help="portable (default): FROM a registry base pinned by digest, apt and "
                        "pip install the lock, builds with Docker alone; exact: the native "
                        "build's Debian base as a tarball in .dlenv/ (the very .debs)")
    s.add_argument("--base", metavar="REF",
                   help="portable mode's base (default debian:SUITE-slim; pinned by digest)")
    frozen(s)
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("commands", "cmd_dockerfile"))

    s = sub.add_parser("push", help="push the built image to a registry")
    s.add_argument("ref", nargs="?", help="registry/repository:tag (default: NAME:PROFILE "
                                         "under the team configuration's registry.push)")
    project_dir(s)
    s.add_argument("--profile", help="the profile's image (default: the base image)")
    s.add_argument("--sbom", action="store_true", help="attach the image's SBOM as an "
                   "artifact that refers to it (the referrers API, else the referrers tag)")
    s.add_argument("--sbom-format", choices=["cyclonedx", "spdx"], default="cyclonedx",
                   help="the attached SBOM's format (default cyclonedx)")
    cache_dir(s)
    json_flag(s)
    frozen(s)
    s.set_defaults(func=command("distribute", "cmd_push"))

    s = sub.add_parser("pull", help="pull an image (by tag or digest) into the local store")
    s.add_argument("ref", help="registry/repository:tag or @sha256:…")
    s.add_argument("--load", action="store_true", help="also load it into Docker")
    s.add_argument("--tag", help="name to load it under")
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("distribute", "cmd_pull"))

    s = sub.add_parser("copy", help="copy an image between repositories or registries, "
                                    "keeping its digest (only missing blobs travel)")
    s.add_argument("source", metavar="SRC", help="registry/repository:tag or @sha256:…")
    s.add_argument("target", metavar="DST", help="registry/repository:tag")
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("distribute", "cmd_copy"))

    s = sub.add_parser("mirror", help="copy every tag (or those matching --tags) of "
                                      "repositories to another registry; idempotent")
    s.add_argument("sources", metavar="REPO", nargs="+",
                   help="registry/repository (every tag) or registry/repository:tag")
    s.add_argument("--to", required=True, metavar="REGISTRY[/PREFIX]",
                   help="the destination; repositories keep their paths under it")
    s.add_argument("--tags", default="*", metavar="GLOB", help="tags to copy (default: all)")
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("distribute", "cmd_mirror"))

    s = sub.add_parser("bundle", help="environments for machines with no network: one file "
                                      "with specs, locks, wheels, .debs and images")
    verbs = s.add_subparsers(dest="verb", required=True, help="create, import or push")
    v = verbs.add_parser("create", help="write a bundle of the projects (built first)")
    v.add_argument("dirs", nargs="*", default=["."], metavar="DIR", help="projects (default .)")
    v.add_argument("-o", "--output", required=True, metavar="FILE", help="the bundle to write")
    cache_dir(v)
    json_flag(v)
    v.set_defaults(func=command("distribute", "cmd_bundle"))
    v = verbs.add_parser("import", help="load a bundle into the cache and store, checked "
                                        "member by member")
    v.add_argument("file", metavar="FILE", help="a bundle 'dlenv bundle create' wrote")
    v.add_argument("--projects", metavar="DIR", help="also write each spec and lock into "
                                                     "DIR/NAME/")
    cache_dir(v)
    json_flag(v)
    v.set_defaults(func=command("distribute", "cmd_bundle"))
    v = verbs.add_parser("push", help="import a bundle and push its images to a registry")
    v.add_argument("file", metavar="FILE", help="a bundle 'dlenv bundle create' wrote")
    v.add_argument("destination", metavar="REGISTRY[/PREFIX]",
                   help="where its images go, as PREFIX/NAME:latest")
    cache_dir(v)
    json_flag(v)
    v.set_defaults(func=command("distribute", "cmd_bundle"))

    s = sub.add_parser("config", help="show the effective team configuration and where each "
                                      "value comes from")
    project_dir(s)
    json_flag(s)
    s.set_defaults(func=command("distribute", "cmd_config"))

    s = sub.add_parser("gc", help="free the space of images, layers and trees dlenv no longer "
                                  "needs (with sizes)")
    s.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    s.add_argument("--downloads", action="store_true",
                   help="also empty the download cache (wheels, .debs)")
    s.add_argument("--engine", choices=ENGINES,
                   help="whose dangling images to remove (default: the first that answers)")
    s.add_argument("--no-engine", action="store_true", help="leave the engine's images alone")
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("commands", "cmd_gc"))


def _check_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """doctor, verify, lint"""
    s = sub.add_parser("doctor", help="check this host: engine, disk, TLS, GPU, driver, toolkit")
    s.add_argument("dir", nargs="?", metavar="DIR",
                   help="also check that this project's environment can run here")
    cache_dir(s)
    s.add_argument("--no-network", action="store_true",
                   help="skip asking the index, the Debian mirrors and the registry")
    s.add_argument("--facts", help=argparse.SUPPRESS)  # replay recorded host facts (JSON)
    json_flag(s)
    s.set_defaults(func=command("commands", "cmd_doctor"))

    s = sub.add_parser("verify", help="prove an environment works: framework, devices, a "
                                      "matmul, a training step, XLA, the locked packages")
    project_dir(s, default=None)
    s.add_argument("--profile", help="the profile's image (default: the base image)")
    s.add_argument("--image", help="verify this image instead of the project's tag")
    s.add_argument("--host", action="store_true",
                   help="run the probe in this Python environment, without a container")
    s.add_argument("--framework", choices=["tensorflow", "torch", "jax"],
                   help="with --host: which framework to probe")
    s.add_argument("--gpu", action="store_true", help="with --host: fail when no GPU is seen")
    s.add_argument("--allow-cpu", action="store_true",
                   help="do not fail a CUDA environment for lack of a GPU")
    s.add_argument("--engine", default="docker", choices=ENGINES,
                   help="container engine to run the probe in (default docker)")
    frozen(s)
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("commands", "cmd_verify"))


    s = sub.add_parser("lint", help="ML-aware checks for Dockerfiles and compose files "
                                    "(and hadolint's, when installed)")
    s.add_argument("paths", nargs="*", help="Dockerfiles or compose files (default Dockerfile)")
    s.add_argument("--format", choices=["text", "json", "sarif"], default="text",
                   help="text for people, json or sarif (code scanning) for machines")
    s.add_argument("--failure-threshold", choices=["error", "warning", "info", "style", "none"],
                   default="warning", help="exit 1 when a finding is this severe or more")
    s.add_argument("--no-hadolint", action="store_true", help="dlenv's rules only")
    s.add_argument("--context", metavar="DIR",
                   help="the build context (where .dockerignore must be); without it a "
                        "missing .dockerignore beside the Dockerfile is only info")
    s.set_defaults(func=command("commands", "cmd_lint"))


def _run_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """run, shell, jupyter, ssh, ps, stop"""
    for mode, text in (
            ("run", "run the environment's command (or -- CMD) with the project mounted"),
            ("shell", "an interactive shell in the environment (dev profile by default)"),
            ("jupyter", "JupyterLab from the dev profile, on 127.0.0.1 with a token"),
            ("ssh", "an SSH server (key only) from the dev profile, for VS Code Remote-SSH")):
        takes_cmd = mode in ("run", "shell")
        s = sub.add_parser(mode, help=text, description=text + ".",
                           usage=f"dlenv {mode} [DIR] [options]"
                                 + (" [-- CMD [ARG ...]]" if takes_cmd else ""),
                           epilog="-- CMD [ARG ...]: the command to run instead of the "
                                  + ("profile's" if mode == "run" else "shell") + " (after "
                                  "'--', e.g. dlenv " + mode + " . -- python train.py)"
                           if takes_cmd else None)
        project_dir(s)
        s.add_argument("--profile", help="profile to run (default: dev for shell/jupyter/ssh)")
        s.add_argument("--image", help="run this image (tag or id) instead of building")
        s.add_argument("--engine", choices=ENGINES,
                       help="container engine (default: the first that answers)")
        s.add_argument("--memory", help="memory limit, e.g. 16g")
        s.add_argument("--cpus", help="CPU limit, e.g. 4")
        s.add_argument("--shm-size", help="/dev/shm size (default: a quarter of the host's "
                       "memory, 1g to 16g)")
        s.add_argument("--pids-limit", type=int, default=PIDS_LIMIT,
                       help=f"most processes and threads (default {PIDS_LIMIT}; 0: no limit)")
        s.add_argument("--mount", action="append", default=[], metavar="HOST:CONTAINER[:ro]",
                       help="also bind-mount a host path (repeatable)")
        s.add_argument("--no-volumes", action="store_true",
                       help="no named volumes for home, /data and /models")
        s.add_argument("--expose", action="store_true",
                       help="publish ports on every interface, not only 127.0.0.1")
        s.add_argument("--allow-cpu", action="store_true",
                       help="run a CUDA environment without a GPU")
        s.add_argument("--no-host-ca", action="store_true",
                       help="do not mount the host's CA bundle (read-only) for pip and HTTPS")
        s.add_argument("--dry-run", action="store_true",
                       help="print the plan and the engine command, start nothing")
        cache_dir(s)
        if takes_cmd:
            s.add_argument("--publish", "-p", action="append", default=[],
                           metavar="[HOST:]CONTAINER", help="publish a port on 127.0.0.1")
        else:
            s.add_argument("--port", type=int, help="host port (default: the first free from "
                           + ("8888)" if mode == "jupyter" else "2222)"))
            json_flag(s)
        if mode == "ssh":
            s.add_argument("--key", help="public key to log in with (default ~/.ssh/id_*.pub)")
            s.add_argument("--ssh-config", action="store_true",
                           help="add a Host entry to ~/.ssh/config (VS Code Remote-SSH)")
        s.set_defaults(func=command("run", "cmd_run"), mode=mode, cmd=[], json=False,
                       key=None, port=None, publish=[], ssh_config=False)

    s = sub.add_parser("ps", help="list the containers dlenv started")
    s.add_argument("dir", nargs="?", metavar="DIR", help="only this project's containers")
    s.add_argument("--engine", choices=ENGINES,
                   help="container engine (default: the first that answers)")
    json_flag(s)
    s.set_defaults(func=command("run", "cmd_ps"))

    s = sub.add_parser("stop", help="stop and remove containers dlenv started (a project's, "
                                    "or --name)")
    project_dir(s)
    s.add_argument("--name", action="append", default=[], help="only this container")
    s.add_argument("--engine", choices=ENGINES,
                   help="container engine (default: the first that answers)")
    json_flag(s)
    s.set_defaults(func=command("run", "cmd_stop"))
