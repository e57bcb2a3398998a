"""The team's policies (``[policy]`` in the team configuration) checked against a spec and
its lock: which frameworks and versions are allowed, which profiles every spec defines, and
the newest driver floor the team's GPU machines can meet. Pure."""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from dlenv.config import Config
from dlenv.errors import PolicyError
from dlenv.lock import Lock
from dlenv.spec import Spec


def _driver(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def policy_problems(config: Config, spec: Spec, lock: Lock) -> list[str]:
    """What the spec and lock break, each naming the key and where it was set."""
    problems = []
    allowed = config["policy.frameworks"]
    if allowed:
        where = config.settings["policy.frameworks"].source
        framework = spec.framework
        locked = None
        if framework is not None:
            locked = next((w.version for w in lock.wheels
                           if w.name == framework.distribution), None)
        reqs = [Requirement(r) for r in allowed]
        fits = framework is not None and locked is not None and any(
            r.name == framework.name and _contains(r, locked) for r in reqs)
        if not fits:
            got = f"{framework.name} {locked or framework.specifier or ''}".strip() \
                if framework else "no framework"
            problems.append(f"{got} is not allowed by policy.frameworks in {where} "
                            f"(allowed: {', '.join(allowed)})")
    for name in config["policy.required-profiles"]:
        if spec.profile(name) is None:
            where = config.settings["policy.required-profiles"].source
            problems.append(f"the spec has no [profiles.{name}], which "
                            f"policy.required-profiles in {where} requires")
    ceiling = config["policy.max-driver"]
    floor = lock.target.min_driver
    if ceiling and lock.target.cuda and floor and _driver(floor) > _driver(ceiling):
        where = config.settings["policy.max-driver"].source
        problems.append(f"CUDA {lock.target.cuda} needs NVIDIA driver {floor} or newer; the "
                        f"team's machines run {ceiling} (policy.max-driver in {where})")
    return problems


def _contains(req: Requirement, version: str) -> bool:
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def check_policy(config: Config, spec: Spec, lock: Lock) -> None:
    problems = policy_problems(config, spec, lock)
    if problems:
        raise PolicyError("; ".join(problems) if len(problems) == 1 else
                          "the team's policies refuse this environment:\n  - "
                          + "\n  - ".join(problems),
                          fix="change the spec to fit (a framework version the team allows, "
                              "the profiles it requires), or ask who keeps the team file")
