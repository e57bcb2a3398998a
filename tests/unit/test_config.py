"""The team configuration: layering and sources, validation of untrusted files, what reaches
the environment, the policies, and the push target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlenv.cli import main
from dlenv.config import TEAM_FILE, Config, load_config, parse_mirrors
from dlenv.errors import ConfigError, PolicyError, UsageError
from dlenv.lock import Lock, LockedBase, LockedTarget, LockedWheel
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.resolve.policy import check_policy, policy_problems
from dlenv.spec import parse_spec
from dlenv.workflows.project import Project
from dlenv.workflows.registry import push_target

TEAM = """
[registry]
push = "harbor.example.org/ml-team"
[registry.mirrors]
"docker.io" = ["https://mirror-a.example.org", "mirror-b.example.org:5000"]
[python]
index-url = "https://pypi.example.org/simple"
[debian]
security-mirror = "http://127.0.0.1:8080/debian-security"
[tls]
ca-bundle = "certs/team.pem"
[policy]
frameworks = ["tensorflow>=2.15,<2.17", "pytorch>=2.4"]
required-profiles = ["dev"]
max-driver = "535.104"
"""


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment with an empty home and no variables that set anything."""
    (tmp_path / "home").mkdir()
    return {"HOME": str(tmp_path / "home")}


def team_project(tmp_path: Path, text: str = TEAM) -> Path:
    (tmp_path / "team").mkdir(exist_ok=True)
    (tmp_path / "team" / TEAM_FILE).write_text(text)
    project = tmp_path / "team" / "projects" / "vision"
    project.mkdir(parents=True, exist_ok=True)
    return project


def test_the_team_file_is_found_walking_up_and_each_value_names_its_source(tmp_path, home):
    project = team_project(tmp_path)
    config = load_config(project, home)
    team = str(tmp_path / "team" / TEAM_FILE)
    assert config.files == (team,)
    assert config["registry.push"] == "harbor.example.org/ml-team"
    assert config.settings["registry.push"].source == team
    assert config["registry.mirrors"] == {"docker.io": ("https://mirror-a.example.org",
                                                        "mirror-b.example.org:5000")}
    assert config["tls.ca-bundle"] == str(tmp_path / "team" / "certs" / "team.pem")
    assert config.settings["registry.default"].source == "default"
    assert config["registry.default"] == "docker.io"


def test_user_file_over_team_file_and_environment_over_both(tmp_path, home):
    project = team_project(tmp_path)
    user = Path(home["HOME"]) / ".config" / "dlenv" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[registry]\npush = "registry.user.example/me"\n')
    config = load_config(project, home)
    assert config["registry.push"] == "registry.user.example/me"
    assert config.settings["registry.push"].source == str(user)
    env = {**home, "DLENV_PUSH_TO": "127.0.0.1:5000/ci", "PIP_INDEX_URL": "http://127.0.0.1/s"}
    config = load_config(project, env)
    assert (config["registry.push"], config.settings["registry.push"].source) == \
        ("127.0.0.1:5000/ci", "$DLENV_PUSH_TO")
    assert config.settings["python.index-url"].source == "$PIP_INDEX_URL"


def test_dlenv_config_names_the_team_file_and_no_walk_happens(tmp_path, home):
    project = team_project(tmp_path)
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('[debian]\nmirror = "http://127.0.0.1:8080/debian"\n')
    config = load_config(project, {**home, "DLENV_CONFIG": str(elsewhere)})
    assert config.files == (str(elsewhere),)
    assert config["registry.push"] is None
    with pytest.raises(ConfigError, match="URL"):
        load_config(project, {**home, "DLENV_CONFIG": "https://example.org/team.toml"})
    with pytest.raises(ConfigError, match="not a file"):
        load_config(project, {**home, "DLENV_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize("text, key", [
    ('[registry]\npush = "Harbor.Example.org/x"\n', "registry.push"),
    ('[registry]\ndefault = "a.example\\nb"\n', "registry.default"),
    ('[python]\nindex-url = "file:///etc/passwd"\n', "python.index-url"),
    ('[python]\nindex-url = "https://a.example/s x"\n', "python.index-url"),
    ('[registry.mirrors]\n"docker.io" = "mirror.example"\n', "registry.mirrors"),
    ('[policy]\nframeworks = ["numpy>=1"]\n', "policy.frameworks"),
    ('[policy]\nframeworks = ["tensorflow; os_name==\'nt\'"]\n', "policy.frameworks"),
    ('[policy]\nrequired-profiles = "dev"\n', "policy.required-profiles"),
    ('[policy]\nmax-driver = "latest"\n', "policy.max-driver"),
    ('[registry]\ntoken = "secret"\n', "registry.token"),
])
def test_a_bad_team_file_names_the_file_and_the_key(tmp_path, home, text, key):
    project = team_project(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(project, home)
    assert str(tmp_path / "team" / TEAM_FILE) in str(caught.value)
    assert key in str(caught.value) and caught.value.fix


def test_a_broken_team_file_stops_every_command_with_exit_2(tmp_path, home, monkeypatch,
                                                            capsys):
    project = team_project(tmp_path, "[registry\n")
    monkeypatch.setenv("HOME", home["HOME"])
    assert main(["lock", str(project)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err


def test_the_environment_gets_what_files_set_and_keeps_what_the_user_set(tmp_path, home):
    config = load_config(team_project(tmp_path), home)
    env = config.environment({"UV_INDEX_URL": "http://127.0.0.1:3141/simple"})
    assert "UV_INDEX_URL" not in env  # the user's own variable stays
    assert env["DLENV_PUSH_TO"] == "harbor.example.org/ml-team"
    assert env["DLENV_DEBIAN_SECURITY_MIRROR"] == "http://127.0.0.1:8080/debian-security"
    assert env["SSL_CERT_FILE"] == str(tmp_path / "team" / "certs" / "team.pem")
    assert parse_mirrors(env["DLENV_REGISTRY_MIRRORS"]) == config["registry.mirrors"]
    assert "DLENV_DEFAULT_REGISTRY" not in env  # defaults are not exported
    assert Config.defaults().environment({}) == {}


def test_dlenv_config_json_shows_values_and_sources(tmp_path, home, monkeypatch, capsys):
    project = team_project(tmp_path)
    monkeypatch.setenv("HOME", home["HOME"])
    monkeypatch.setenv("DLENV_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    for var in ("SSL_CERT_FILE", "UV_INDEX_URL", "PIP_INDEX_URL", "DLENV_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    assert main(["config", str(project), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["files"] == [str(tmp_path / "team" / TEAM_FILE)]
    assert shown["settings"]["debian.mirror"] == {"value": "http://127.0.0.1:9/debian",
                                                  "source": "$DLENV_DEBIAN_MIRROR"}
    assert shown["settings"]["python.index-url"]["source"].endswith(TEAM_FILE)


def _lock(framework: str | None, version: str, cuda: str | None = None,
          min_driver: str | None = None) -> Lock:
    wheels = (LockedWheel(name=framework, version=version, filename=f"{framework}-{version}-"
                          "py3-none-any.whl", url="", sha256="0" * 64, size=1),) \
        if framework else ()
    return Lock(spec_digest="sha256:x", source_date_epoch=1,
                target=LockedTarget(python="3.11", cuda=cuda, min_driver=min_driver),
                base=LockedBase(kind="debian", ref="debian:bookworm"), wheels=wheels)


def test_policies_refuse_frameworks_missing_profiles_and_driver_floors(tmp_path, home):
    config = load_config(team_project(tmp_path), home)
    with_dev = {"profiles": {"dev": {"jupyter": True}}}
    ok = parse_spec({"name": "a", "framework": "tensorflow==2.16.*", **with_dev})
    assert policy_problems(config, ok, _lock("tensorflow", "2.16.2")) == []
    old = parse_spec({"name": "a", "framework": "tensorflow==2.14.*", **with_dev})
    (problem,) = policy_problems(config, old, _lock("tensorflow", "2.14.1"))
    assert "tensorflow 2.14.1 is not allowed by policy.frameworks" in problem
    jax = parse_spec({"name": "a", "framework": "jax", **with_dev})
    assert policy_problems(config, jax, _lock("jax", "0.4.30"))
    bare = parse_spec({"name": "a", "framework": "pytorch", "accelerator": "cuda"})
    problems = policy_problems(config, bare, _lock("torch", "2.5.1", "12.4", "550.54"))
    assert any("[profiles.dev]" in p for p in problems)
    assert any("needs NVIDIA driver 550.54" in p and "535.104" in p for p in problems)
    with pytest.raises(PolicyError) as caught:
        check_policy(config, bare, _lock("torch", "2.5.1", "12.4", "550.54"))
    assert caught.value.exit_code == 2 and caught.value.fix
    check_policy(Config.defaults(), bare, _lock("torch", "2.5.1", "12.4", "550.54"))


def test_push_goes_under_the_configured_prefix_and_asks_for_a_ref_without_one(tmp_path,
                                                                              home):
    spec = parse_spec({"name": "vision"})
    project = Project.of(spec, tmp_path / "dlenv.toml", load_config(team_project(tmp_path), home))
    assert str(push_target(project, None, "train")) == "harbor.example.org/ml-team/vision:train"
    assert str(push_target(project, "127.0.0.1:5000/x:1", None)) == "127.0.0.1:5000/x:1"
    with pytest.raises(UsageError, match="needs a REF") as caught:
        push_target(Project.of(spec, tmp_path / "dlenv.toml"), None, None)
    assert "registry.push" in (caught.value.fix or "")


def test_short_names_resolve_against_the_configured_default_registry(monkeypatch):
    assert str(Reference.parse("debian:bookworm-slim")) == "docker.io/library/debian:bookworm-slim"
    monkeypatch.setenv("DLENV_DEFAULT_REGISTRY", "harbor.example.org")
    assert str(Reference.parse("debian:bookworm-slim")) == "harbor.example.org/debian:bookworm-slim"
    assert Reference.parse("ghcr.io/org/img:1").registry == "ghcr.io"


def test_a_mirror_that_sends_other_bytes_is_an_error_not_a_miss():
    import httpx

    body = b'{"schemaVersion": 2, "config": {}, "layers": []}'
    asked = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if request.url.host == "mirror.example":
            return httpx.Response(200, content=body + b" ",
                                  headers={"content-type": "application/json"})
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    import hashlib

    from dlenv.errors import IntegrityError
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    client = RegistryClient(transport=httpx.MockTransport(handler), credentials=lambda r: None,
                            mirrors={"origin.example": ("mirror.example",)})
    with pytest.raises(IntegrityError):
        client.manifest(Reference.parse(f"origin.example/team/img@{digest}"))
    assert asked == ["mirror.example"]
    miss = RegistryClient(transport=httpx.MockTransport(
        lambda r: httpx.Response(404) if r.url.host == "mirror.example" else handler(r)),
        credentials=lambda r: None, mirrors={"origin.example": ("mirror.example",)},
        sleep=lambda s: None)
    assert miss.manifest(Reference.parse(f"origin.example/team/img@{digest}"))[2] == digest


def test_pushed_repositories_are_remembered_newest_first_and_a_damaged_record_is_ignored(
        tmp_path):
    from dlenv.workflows.registry import PushedRepositories

    record = PushedRepositories(tmp_path / "pushed.json")
    for repo in ("team/a", "team/b", "team/a", "team/c", "team/d", "team/e"):
        record.add("127.0.0.1:5000", repo)
    assert record.get("127.0.0.1:5000") == ("team/e", "team/d", "team/c", "team/a")
    assert record.get("elsewhere.example") == ()
    (tmp_path / "pushed.json").write_text('{"127.0.0.1:5000": ["ok/repo", "../x", 7]}')
    assert record.get("127.0.0.1:5000") == ("ok/repo",)
    (tmp_path / "pushed.json").write_text("[")
    assert record.get("127.0.0.1:5000") == ()


def test_registry_credentials_come_from_the_helper_docker_login_uses(tmp_path, monkeypatch):
    import base64

    from dlenv.oci.registry import docker_credentials

    helper = tmp_path / "bin" / "docker-credential-team"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = '
                      '"harbor.example.org" ] && printf \'{"Username":"robot","Secret":"s3"}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{__import__('os').environ['PATH']}")
    config = tmp_path / "config.json"
    plain = base64.b64encode(b"me:pw").decode()
    config.write_text(json.dumps({"credHelpers": {"harbor.example.org": "team"},
                                  "auths": {"other.example": {"auth": plain}}}))
    assert docker_credentials("harbor.example.org", config) == ("robot", "s3")
    assert docker_credentials("other.example", config) == ("me", "pw")
    config.write_text(json.dumps({"credsStore": "team"}))
    assert docker_credentials("harbor.example.org", config) == ("robot", "s3")
    config.write_text(json.dumps({"credsStore": "../../bin/sh"}))  # not a helper's name
    assert docker_credentials("harbor.example.org", config) is None


def test_a_spec_without_a_base_takes_the_teams_suite(tmp_path, home, monkeypatch):
    from dlenv.resolve import resolve_target
    from dlenv.workflows.project import open_project

    for var in ("DLENV_CONFIG", "DLENV_DEBIAN_SUITE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", home["HOME"])
    project = team_project(tmp_path, '[debian]\nsuite = "bullseye"\n')
    (project / "dlenv.toml").write_text('name = "vision"\n')
    opened = open_project(project)
    assert str(opened.spec.base) == "debian:bullseye"
    assert resolve_target(opened.spec).python == "3.9"  # bullseye's Python
    (project / "dlenv.toml").write_text('name = "vision"\nbase = "debian:bookworm"\n')
    assert str(open_project(project).spec.base) == "debian:bookworm"  # the spec wins
    (tmp_path / "team" / TEAM_FILE).write_text('[debian]\nsuite = "jessie"\n')
    (project / "dlenv.toml").write_text('name = "vision"\n')
    with pytest.raises(ConfigError, match="jessie"):
        open_project(project)


def test_a_team_file_published_at_a_url_is_fetched_and_kept_for_offline_use(tmp_path, home):
    import http.server
    import threading

    from dlenv.workflows.team import published_config

    served = tmp_path / "site"
    served.mkdir()
    (served / "team.toml").write_text('[registry]\npush = "127.0.0.1:5000/published"\n')
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/team.toml"
    cache = str(tmp_path / "cache")

    def fetch(u: str) -> Path:
        return published_config(u, cache)

    env = {**home, "DLENV_CONFIG": url}
    try:
        assert load_config(tmp_path, env, fetch)["registry.push"] == "127.0.0.1:5000/published"
    finally:
        httpd.shutdown()
        httpd.server_close()
    # the server is gone: the copy from the last fetch serves
    assert load_config(tmp_path, env, fetch)["registry.push"] == "127.0.0.1:5000/published"
    gone = url.replace("team.toml", "other.toml")
    with pytest.raises(ConfigError, match="no earlier copy"):
        load_config(tmp_path, {**home, "DLENV_CONFIG": gone}, fetch)
    with pytest.raises(ConfigError, match="not https"):
        load_config(tmp_path, {**home, "DLENV_CONFIG": "http://config.example/team.toml"},
                    fetch)
    with pytest.raises(ConfigError, match="takes files only"):
        load_config(tmp_path, env)
