"""`dlenv compose`'s file: valid against the Compose specification's JSON schema (the one
Debian's docker-compose validates with), clean under dlenv's own lint, and confined as
`dlenv run` confines containers; the GPUs only for CUDA specs, no secret written."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

from dlenv.errors import UsageError
from dlenv.lint.compose import lint_compose
from dlenv.run.compose import ComposeRequest, plan_compose
from dlenv.spec import parse_spec
from dlenv.workflows.cluster import yaml_text
from dlenv.workflows.compose import ComposeOptions, write_compose
from dlenv.workflows.project import open_project

# Debian's docker-compose package carries the specification's schema it checks files with.
SCHEMA = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")

SPEC = """
name = "vision"
framework = "tensorflow==2.15.*"
accelerator = "{accelerator}"
[profiles.dev]
jupyter = true
[profiles.serve]
model = "models/half"
"""


def spec(accelerator: str = "cpu"):
    text = SPEC.format(accelerator=accelerator)
    return parse_spec(tomllib.loads(text), text=text)


def compose(accelerator: str = "cpu"):
    return plan_compose(spec(accelerator), ComposeRequest(
        images={"dev": "vision:dev-run-0123abcd", "serve": "vision:serve-run-0123abcd"},
        model="./models/half", cuda=accelerator == "cuda", serve_port=18501))


@pytest.mark.parametrize("accelerator", ["cpu", "cuda"])
def test_the_file_passes_the_compose_schema_and_dlenvs_lint(accelerator):
    assert SCHEMA.is_file(), "scripts/setup installs Debian's docker-compose"
    plan = compose(accelerator)
    text = yaml_text(plan.document)
    schema = json.loads(SCHEMA.read_text())  # draft 2019-09, as its $schema says
    jsonschema.Draft201909Validator(schema).validate(yaml.safe_load(text))
    assert [f for f in lint_compose(text) if f.severity in ("error", "warning")] == []
    services = plan.document["services"]
    assert list(services) == ["jupyter", "serve", "prometheus"]
    for name in ("jupyter", "serve"):
        s = services[name]
        assert s["user"] == "1000:1000" and s["cap_drop"] == ["ALL"]
        assert s["security_opt"] == ["no-new-privileges:true"] and s["pids_limit"] > 0
        assert all(p.startswith("127.0.0.1:") for p in s["ports"])
        assert ("deploy" in s) is (accelerator == "cuda")
    if accelerator == "cuda":
        devices = services["serve"]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert services["serve"]["ports"] == ["127.0.0.1:18501:8501"]
    assert services["serve"]["volumes"] == ["./models/half:/models/half:ro"]
    assert "/readyz" in json.dumps(services["serve"]["healthcheck"])
    assert services["prometheus"]["ports"][0].startswith("127.0.0.1:")
    scrape = plan.prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert scrape == ["serve:8501"]  # the service's name on the project's network


def test_jupyters_token_is_asked_of_the_shell_never_written():
    env = compose().document["services"]["jupyter"]["environment"]
    assert env["JUPYTER_TOKEN"].startswith("${JUPYTER_TOKEN:?")


def test_a_spec_without_jupyter_or_a_model_has_nothing_to_compose(tmp_path):
    (tmp_path / "dlenv.toml").write_text('name = "plain"\nframework = "tensorflow==2.15.*"\n')
    with pytest.raises(UsageError, match="nothing to compose"):
        write_compose(open_project(str(tmp_path)), ComposeOptions())


def test_a_missing_model_directory_is_named_before_anything_is_built(tmp_path):
    (tmp_path / "dlenv.toml").write_text(SPEC.format(accelerator="cpu"))
    with pytest.raises(UsageError, match="models/half: no such model directory"):
        write_compose(open_project(str(tmp_path)), ComposeOptions())
    assert not (tmp_path / "compose.yaml").exists()
