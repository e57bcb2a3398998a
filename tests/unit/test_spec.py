"""The spec parser: every error path reports file, line, key and a fix, all at once."""

from __future__ import annotations

import argparse
import hashlib
import tomllib
from pathlib import Path

import pytest

from dlenv.cli import main
from dlenv.errors import SpecError
from dlenv.spec import load_spec, parse_spec


def problems(text: str, tmp_path: Path) -> list[str]:
    (tmp_path / "dlenv.toml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    return [str(p) for p in info.value.problems]


def test_a_full_spec_parses_into_its_fields(write_spec):
    spec = load_spec(write_spec('''
name = "vision"
framework = "tensorflow>=2.15,<2.17"
accelerator = "cuda12"
python = "3.11"
base = "debian:bookworm"
packages = ["pandas>=2"]
apt = ["git", "libgl1"]
workdir = "/work"
[user]
name = "ml"
uid = 1234
gid = 1235
[env]
A = "1"
B = true
[index]
url = "https://pypi.example.internal/simple"
ca_bundle = "/etc/ssl/certs/ca-certificates.crt"
[profiles.dev]
jupyter = true
ssh = true
ports = [8888]
[profiles.serve]
command = ["python", "serve.py"]
'''))
    assert spec.framework is not None
    assert (spec.framework.name, spec.framework.specifier) == ("tensorflow", "<2.17,>=2.15")
    assert (spec.accelerator, spec.cuda_major) == ("cuda", "12")
    assert spec.apt == ("git", "libgl1") and spec.workdir == "/work"
    assert (spec.user.name, spec.user.uid, spec.user.gid) == ("ml", 1234, 1235)
    assert spec.env == (("A", "1"), ("B", "true"))
    assert spec.index.ca_bundle == "/etc/ssl/certs/ca-certificates.crt"
    dev = spec.profile("dev")
    assert dev is not None and dev.jupyter and dev.ssh and dev.ports == (8888,)
    assert spec.profile("serve").command == ("python", "serve.py")  # type: ignore[union-attr]


def test_pytorch_is_an_alias_for_the_torch_distribution(write_spec):
    spec = load_spec(write_spec('name = "t"\nframework = "pytorch==2.5.*"\n'))
    assert spec.framework is not None
    assert (spec.framework.name, spec.framework.distribution) == ("pytorch", "torch")


def test_no_framework_means_a_plain_python_environment(write_spec):
    assert load_spec(write_spec('name = "p"\nframework = "none"\n')).framework is None


def test_all_problems_are_reported_at_once_with_lines(tmp_path):
    found = problems('''name = "ok"
framwork = "tensorflow"
accelerator = "tpu"
[user]
uid = 0
[profiles.deev]
jupyter = true
''', tmp_path)
    file = str(tmp_path / "dlenv.toml")
    assert f"{file}:2: framwork: unknown key — did you mean 'framework'?" in found
    assert any(p.startswith(f"{file}:3: accelerator: unknown accelerator 'tpu'") for p in found)
    assert any(p.startswith(f"{file}:5: user.uid: images run as a non-root user") for p in found)
    assert any(p.startswith(f"{file}:6: profiles.deev: unknown profile") and "'dev'" in p
               for p in found)
    assert len(found) == 4


@pytest.mark.parametrize(("text", "expected"), [
    ('framework = "tensorfow==2.15"', "unknown framework 'tensorfow' — did you mean 'tensorflow'"),
    ('framework = "tensorflow>=3,<2"', "admits no version"),
    ('framework = "tensorflow[and-cuda]==2.15.*"', "extras [and-cuda] are chosen by dlenv"),
    ('framework = "tensorflow=2.15"', "cannot parse"),
    ('python = "3"', "is not a Python version"),
    ('python = 3.11', "expected a string, got a number"),
    ('base = "debian:bookwrm"', "did you mean 'debian:bookworm'"),
    ('packages = ["tensorflow-gpu==2.12.0"]', "tensorflow-gpu is a stub"),
    ('packages = ["torch"]', 'set framework = "torch" instead'),
    ('packages = ["pandas>=>2"]', "is not a PEP 508 requirement"),
    ('packages = "pandas"', "expected a list of strings"),
    ('apt = ["Git Tools"]', "is not a Debian package name"),
    ('workdir = "work"', "is not absolute"),
    ('env = { "1BAD" = "x" }', "not a valid environment variable name"),
    ('index = { url = "ftp://x" }', "is not an http(s) or file URL"),
    ('profiles = { dev = { ports = [70000] } }', "expected a list of port numbers"),
    ('profiles = { dev = { jupyter = "yes" } }', "expected true or false"),
    ('profiles = { dev = { jupiter = true } }', "did you mean 'jupyter'"),
])
def test_each_bad_value_names_its_key_and_a_fix(tmp_path, text, expected):
    found = problems(f'name = "x"\n{text}\n', tmp_path)
    assert len(found) == 1, found
    assert "dlenv.toml:2: " in found[0] and expected in found[0]


def test_missing_name_is_reported(tmp_path):
    assert any("name: missing" in p for p in problems('framework = "jax"\n', tmp_path))


def test_bad_toml_names_the_line(tmp_path):
    found = problems('name = "x"\nframework = \n', tmp_path)
    assert len(found) == 1 and ":2: not valid TOML" in found[0]


def test_pyproject_tool_table_is_read_with_its_lines(write_spec, tmp_path):
    write_spec('[project]\nname = "p"\n\n[tool.dlenv]\nname = "p"\nframwork = "jax"\n',
               name="pyproject.toml")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(info.value).endswith("pyproject.toml:6: framwork: unknown key — did you mean "
                                    "'framework'?")


def test_digest_ignores_comments_and_order():
    a = parse_spec({"name": "x", "packages": ["a"], "framework": "jax"})
    b = parse_spec({"framework": "jax", "name": "x", "packages": ["a"]})
    c = parse_spec({"framework": "jax", "name": "x", "packages": ["a", "b"]})
    assert a.digest() == b.digest() != c.digest()


def test_cli_reports_spec_errors_with_exit_2_and_no_traceback(write_spec, capsys):
    directory = write_spec('name = "x"\nframework = "caffe"\n')
    assert main(["resolve", str(directory)]) == 2
    captured = capsys.readouterr()
    assert "framework: unknown framework 'caffe'" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_missing_spec_says_how_to_make_one(tmp_path, capsys):
    assert main(["resolve", str(tmp_path)]) == 2
    assert "dlenv init" in capsys.readouterr().err


def test_init_writes_a_spec_that_parses(tmp_path):
    assert main(["init", str(tmp_path / "proj"), "--framework", "tensorflow==2.15.*", "--gpu",
                 "--python", "3.11", "--package", "pandas"]) == 0
    spec = load_spec(tmp_path / "proj")
    assert spec.name == "proj" and spec.accelerator == "cuda"
    assert spec.framework is not None and spec.framework.specifier == "==2.15.*"
    assert spec.packages == ("pandas",) and spec.python == "3.11"
    assert "#" in (tmp_path / "proj" / "dlenv.toml").read_text()  # commented


def test_init_without_framework_is_plain_python_and_refuses_to_overwrite(tmp_path):
    assert main(["init", str(tmp_path)]) == 0
    assert load_spec(tmp_path).framework is None
    assert main(["init", str(tmp_path)]) == 2  # bad input, not the outside world


def test_init_with_a_bad_framework_leaves_no_file(tmp_path):
    assert main(["init", str(tmp_path), "--framework", "caffe==1"]) == 2
    assert not (tmp_path / "dlenv.toml").exists()


def test_every_argument_of_every_command_says_what_it_is():
    from dlenv.cli.parser import build_parser

    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{verb} {action.dest}" for verb, sub in verbs.choices.items()
               for action in sub._actions if not action.help]
    assert missing == []


def test_run_help_shows_the_command_after_the_double_dash(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = capsys.readouterr().out
    assert "[-- CMD [ARG ...]]" in shown and "dlenv run . -- python train.py" in shown


def test_the_dev_profile_brings_a_toolset_the_spec_can_change_or_drop():
    from dlenv.spec import DEV_TOOLS

    def tools(table: str) -> tuple[str, ...]:
        spec = parse_spec(tomllib.loads(f'name = "t"\n{table}'))
        return spec.profiles[0].tools

    assert tools("[profiles.dev]\njupyter = true\n") == DEV_TOOLS
    assert "git" in DEV_TOOLS and "procps" in DEV_TOOLS and "less" in DEV_TOOLS
    assert tools('[profiles.dev]\ntools = ["git", "htop"]\n') == ("git", "htop")
    assert tools("[profiles.dev]\ntools = []\n") == ()
    assert tools("[profiles.train]\n") == ()
    with pytest.raises(SpecError, match=r"profiles\.dev\.tools"):
        tools('[profiles.dev]\ntools = ["no spaces allowed"]\n')


def test_a_spec_without_tools_keeps_the_digest_its_lock_was_made_for():
    # Locks made before the key existed stay fresh (re-locking would move every package).
    spec = load_spec(Path(__file__).parent.parent.parent / "examples/python-base")
    assert "tools" not in spec.to_dict()["profiles"][0]


TF = 'name = "m"\nframework = "tensorflow==2.15.*"\n'


def test_a_tensorflow_serve_profile_without_a_command_runs_dlenvs_model_server():
    from dlenv.resolve.locking import profile_packages
    from dlenv.spec import SERVE_PACKAGES

    spec = parse_spec(tomllib.loads(TF + '[profiles.serve]\nmodel = "models/mnist/"\n'
                                    'model_versions = "all"\n'))
    serve = spec.profile("serve")
    assert serve is not None and serve.serving is not None
    assert (serve.serving.name, serve.serving.path, serve.serving.versions) == (
        "mnist", "models/mnist", "all")
    assert serve.ports == (8501,)  # TensorFlow Serving's REST port
    assert set(SERVE_PACKAGES) <= set(profile_packages(serve))  # locked for its image
    own = parse_spec(tomllib.loads(TF + '[profiles.serve]\ncommand = ["python", "s.py"]\n'))
    assert own.profile("serve").serving is None  # its own server: nothing added
    assert not set(SERVE_PACKAGES) & set(profile_packages(own.profile("serve")))
    # the server changes the image, so it is in the digest; specs without it keep theirs
    assert "serving" in spec.to_dict()["profiles"][0]
    assert "serving" not in own.to_dict()["profiles"][0]


@pytest.mark.parametrize(("text", "expected"), [
    (TF + '[profiles.serve]\nmodel = "../outside"\n',
     "profiles.serve.model: '../outside' is not a directory inside the project"),
    (TF + '[profiles.serve]\nmodel = "/abs/path"\n',
     "profiles.serve.model: '/abs/path' is not a directory inside the project"),
    (TF + '[profiles.serve]\nmodel_name = "no spaces"\n',
     "profiles.serve.model_name: 'no spaces' is not a model name"),
    (TF + '[profiles.serve]\nmodel_versions = "newest"\n',
     "profiles.serve.model_versions: 'newest' is not a version policy"),
    (TF + '[profiles.train]\nmodel = "m"\n',
     "profiles.train.model: only the serve profile runs dlenv's model server"),
    (TF + '[profiles.serve]\ncommand = ["x"]\nmodel = "m"\n',
     "remove it, or remove command to use dlenv's server"),
    ('name = "m"\nframework = "torch==2.5.*"\n[profiles.serve]\nmodel = "m"\n',
     "dlenv's model server serves TensorFlow SavedModels"),
])
def test_model_keys_are_checked_and_name_their_key(tmp_path, text, expected):
    assert any(expected in p for p in problems(text, tmp_path)), problems(text, tmp_path)


def test_the_serve_image_carries_the_server_as_its_command_with_tensorflow_servings_names():
    from dlenv.image import plan_build
    from dlenv.lock import read_lock
    from dlenv.serving import PATH

    fixtures = Path(__file__).parent.parent / "fixtures/locks"
    lock = read_lock(fixtures / "tensorflow-cpu.lock")
    text = (Path(__file__).parent.parent.parent / "examples/tensorflow-cpu/dlenv.toml"
            ).read_text() + '\n[profiles.serve]\nmodel = "models/half"\n'
    spec = parse_spec(tomllib.loads(text))
    plan = plan_build(spec, lock, profile="serve")
    assert [x.kind for x in plan.layers][-1] == "server"
    assert plan.config.cmd == ("python3", PATH)
    env = dict(plan.config.env)
    assert (env["MODEL_NAME"], env["MODEL_BASE_PATH"], env["DLENV_SERVE_VERSIONS"]) == (
        "half", "/models", "latest")
    assert plan.config.exposed_ports == (8501,)
    server = (Path(__file__).parent.parent.parent / "src/dlenv/serving.py").read_bytes()
    assert plan.config.labels["dev.dlenv.server"] == hashlib.sha256(server).hexdigest()
