"""The audit commands' arguments: sbom, export, diff, scan and upgrade."""

from __future__ import annotations

import argparse

from dlenv.cli.options import cache_dir, command, frozen, json_flag, project_dir
from dlenv.engine.base import ENGINES


def audit_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """sbom, export, diff, scan, upgrade"""
    text = ("write the software bill of materials of the project's image: every .deb and "
            "Python distribution by hash, the image's digest as the subject")
    s = sub.add_parser("sbom", help=text, description=text + " (CycloneDX 1.6 or SPDX 2.3 "
                       "JSON, validated; the image is built first, not loaded). Given a "
                       "registry reference instead of a directory, the SBOM pushed with that "
                       "image ('dlenv push --sbom'), fetched and checked.")
    s.add_argument("dir", nargs="?", default=".", metavar="DIR|REF",
                   help="the project directory (default: the current one), or an image in a "
                   "registry (registry/repository:tag or @digest)")
    s.add_argument("--profile", help="the profile's image (default: the base image)")
    s.add_argument("--format", choices=["cyclonedx", "spdx"], default="cyclonedx",
                   help="the document's format (default cyclonedx)")
    s.add_argument("-o", "--output", metavar="FILE", help="write it here (default: stdout)")
    frozen(s)
    cache_dir(s)
    s.set_defaults(func=command("audit", "cmd_sbom"))

    text = "write the lock's Python packages for pip, PEP 751 tools or conda"
    s = sub.add_parser("export", help=text, description=text + ": requirements.txt with "
                       "hashes, pylock.toml, or an environment.yml whose pip section pins them.")
    project_dir(s)
    s.add_argument("--format", choices=["requirements", "pylock", "conda"],
                   default="requirements", help="the file's form (default requirements)")
    s.add_argument("--profile", help="the profile's packages (default: the base image's)")
    s.add_argument("-o", "--output", metavar="FILE", help="write it here (default: stdout)")
    frozen(s)
    cache_dir(s)
    s.set_defaults(func=command("audit", "cmd_export"))

    text = ("compare two environments: Python, the base, Python packages, .debs, CUDA "
            "libraries, env and layers")
    s = sub.add_parser("diff", help=text, description=text + " (the 'works on my machine' "
                       "explainer). A side is a spec directory (its lock), a dlenv.lock, an "
                       "image in dlenv's store or the engine, or --host. Exit 0: the same; "
                       "1: they differ.")
    s.add_argument("a", help="the first side")
    s.add_argument("b", nargs="?", help="the second side (leave it out with --host)")
    s.add_argument("--host", action="store_true",
                   help="compare with this machine: python3's packages, dpkg, the driver")
    s.add_argument("--profile", help="the profile's image, for directories and locks")
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("audit", "cmd_diff"))

    text = ("scan the locked Debian and Python packages for known vulnerabilities: against "
            "a directory or zip of OSV records kept offline, or the OSV API")
    s = sub.add_parser("scan", help=text, description=text + ", and Debian's security suite "
                       "for newer .debs. Exit 1: a finding at or above --fail-on, or an expired "
                       "ignore entry.")
    s.add_argument("dir", nargs="?", default=".", metavar="DIR|LOCK|IMAGE",
                   help="a project directory (its lock), a dlenv.lock, or an image in dlenv's "
                   "store, the engine or a registry, read from its layers (default: .)")
    s.add_argument("--db", metavar="PATH", help="the OSV records, offline: a directory of "
                   "ID.json files or a zip of them (default: ask the OSV API, scan.osv-url)")
    s.add_argument("--profile", help="only the profile's image (default: every package of "
                   "the lock)")
    s.add_argument("--fail-on", choices=["low", "medium", "high", "critical"],
                   help="exit 1 when a finding is at least this severe (default: never)")
    s.add_argument("--ignore", metavar="FILE", help="accepted findings, each with a reason and "
                   "an expiry date (default: dlenv.scan-ignore.toml beside the lock)")
    s.add_argument("--format", choices=["text", "json", "sarif"], default="text",
                   help="the report's form (default text)")
    s.add_argument("--no-security-suite", action="store_true",
                   help="do not ask Debian's -security suite for newer .debs (no network)")
    cache_dir(s)
    s.set_defaults(func=command("audit", "cmd_scan"))

    text = "try another framework version beside the lock before adopting it"
    s = sub.add_parser("upgrade", help=text, description=text + ": lock the candidate under "
                       ".dlenv/upgrade/, build and verify both images, run the spec's test "
                       "command in each, compare them. Exit 0: the candidate is ready (and "
                       "with --apply, now the project's spec and lock); 1: it is not.")
    project_dir(s)
    s.add_argument("--framework", required=True, metavar="SPEC",
                   help="the candidate: a requirement ('tensorflow==2.16.*'), a version (2.16 "
                   "means its newest 2.16.x) or a specifier ('>=2.16,<2.18')")
    s.add_argument("--profile", help="the profile's image (default: the base image)")
    s.add_argument("--apply", action="store_true",
                   help="when the candidate is ready, make it the project's dlenv.toml and lock")
    s.add_argument("--engine", default="docker", choices=ENGINES,
                   help="container engine to verify and test in (default docker)")
    s.add_argument("--allow-cpu", action="store_true",
                   help="a CUDA image without a GPU here: verify on the CPU")
    cache_dir(s)
    json_flag(s)
    s.set_defaults(func=command("audit", "cmd_upgrade"))
