"""The package as a user gets it: the wheel built from this tree, installed WITHOUT extras into a
fresh virtualenv (no access to the project's site-packages), where ``recsys --version`` and
``--help`` answer, every module imports (except the two that need an extra, which say which),
``recsys retrain`` runs all seven stages against the session's local S3 and MLflow servers, and
neither Airflow, moto nor the test tooling is installed.

About 1.5 minutes on 2 cores: the build copies only what the wheel is made of; the install takes
the pinned versions (``constraints.txt``) from the machine's local wheels with the project's pip
(``pip --python``, so the new venv needs no pip of its own) and skips byte-compiling
(``--no-compile``; mostly torch's files, which nothing here imports): about 30 s instead of 85 s for
a plain ``venv`` + ``pip install``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import recsys_lib
from tests.conftest import REPO

pytestmark = [pytest.mark.packaging, pytest.mark.integration]

#: What the wheel is built from (the same files docker/airflow.Dockerfile copies).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "recsys_lib")
STAGES = ("ingest", "validate", "features", "train", "register", "export", "publish")
#: Modules that need an extra, and the extra each names when it is missing. The plugin is loaded
#: only by Airflow (through the entry point), so Airflow is there whenever it is imported.
NEEDS_EXTRA = {"recsys_lib.live.app": "serve", "recsys_lib.ui.plugin": "airflow"}
NOT_INSTALLED = ("airflow", "moto", "pytest", "playwright", "prometheus_client", "faiss", "locust")

#: Runs in the fresh venv with the module names to look for as arguments; prints one JSON object.
PROBE = """
import importlib, importlib.metadata as md, importlib.util, json, pathlib, pkgutil, sys, recsys_lib
failed = {}
for info in pkgutil.walk_packages(recsys_lib.__path__, "recsys_lib."):
    if not importlib.util.find_spec(info.name).origin.endswith(".py"):
        continue  # the compiled kernel: a ctypes library, not a Python module
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed[info.name] = f"{type(exc).__name__}: {exc}"
dist = md.distribution("recsys-lib")
print(json.dumps({
    "file": recsys_lib.__file__,
    "version": recsys_lib.__version__,
    "dist_version": dist.version,
    "failed": failed,
    "installed": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None],
    "py_typed": (pathlib.Path(recsys_lib.__file__).parent / "py.typed").is_file(),
    "license": any(f.name == "LICENSE" for f in dist.files),
    "plugins": [e.value for e in md.entry_points(group="airflow.plugins")],
}))
"""


def _run(
    cmd: list[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    args = [str(c) for c in cmd]
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    if done.returncode != 0:
        pytest.fail(f"{done.args} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel installed and no extras; removed afterwards (about 1.8 GB)."""
    root = tmp_path_factory.mktemp("wheel")
    try:
        src = root / "src"
        src.mkdir()
        for name in BUILD_INPUTS:
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
            else:
                shutil.copy2(REPO / name, src / name)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        _ok(_run([*pip, "wheel", "--no-deps", "--wheel-dir", root / "dist", src]))
        [wheel] = (root / "dist").glob("recsys_lib-*.whl")
        venv = root / "venv"
        _ok(_run([sys.executable, "-m", "venv", "--without-pip", venv]))
        install = ["install", "--no-compile", "--progress-bar", "off", "-c", REPO / "constraints.txt", wheel]
        _ok(_run([*pip, "--python", venv / "bin" / "python", *install], timeout=600))
        yield venv
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _env(venv: Path) -> dict[str, str]:
    """This process's environment (the local stack's endpoints) without anything that would let the
    venv see the project: no PYTHONPATH, no active venv, PATH only the venv's and the system's."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.defpath}"
    return env


def test_version_and_help(bare_venv: Path, tmp_path: Path) -> None:
    recsys = bare_venv / "bin" / "recsys"
    assert _ok(_run([recsys, "--version"], env=_env(bare_venv), cwd=tmp_path)) == f"recsys {recsys_lib.__version__}\n"
    usage = _ok(_run([recsys, "--help"], env=_env(bare_venv), cwd=tmp_path))
    assert all(stage in usage for stage in STAGES)


def test_every_module_imports_without_extras(bare_venv: Path, tmp_path: Path) -> None:
    probe = json.loads(
        _ok(_run([bare_venv / "bin" / "python", "-c", PROBE, *NOT_INSTALLED], env=_env(bare_venv), cwd=tmp_path))
    )
    assert Path(probe["file"]).is_relative_to(bare_venv)  # the installed wheel, not this checkout
    assert probe["version"] == probe["dist_version"] == recsys_lib.__version__
    assert probe["installed"] == []  # no Airflow, moto, test tooling, serving or benchmark packages
    assert set(probe["failed"]) == set(NEEDS_EXTRA), probe["failed"]
    assert f"pip install 'recsys-lib[{NEEDS_EXTRA['recsys_lib.live.app']}]'" in probe["failed"]["recsys_lib.live.app"]
    assert probe["failed"]["recsys_lib.ui.plugin"] == "ModuleNotFoundError: No module named 'airflow'"
    assert probe["py_typed"] and probe["license"]
    assert probe["plugins"] == ["recsys_lib.ui.plugin:RecsysUIPlugin"]


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (["serve", "--bundle", "state"], "serve"),
        (["stack", "up", "--state-dir", "state"], "devstack"),
        (["demo", "--state-dir", "state"], "devstack,airflow"),
    ],
)
def test_optional_commands_name_their_extra(bare_venv: Path, tmp_path: Path, command: list[str], extra: str) -> None:
    done = _run([bare_venv / "bin" / "recsys", *command], env=_env(bare_venv), cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith("recsys: error: ") and line.endswith(f"pip install 'recsys-lib[{extra}]'")
    assert not (tmp_path / "state").exists()  # it stopped before touching anything


def test_retrain_runs_every_stage(bare_venv: Path, tmp_path: Path, local_stack: object) -> None:
    recsys, env, dataset = bare_venv / "bin" / "recsys", _env(bare_venv), "wheel-shop"
    shop = ["generate", "--dataset", dataset, "--users", "60", "--items", "40", "--days", "20", "--end", "2026-03-01"]
    _ok(_run([recsys, *shop], env=env, cwd=tmp_path))
    retrain = ["retrain", "--dataset", dataset, "--ds", "2026-03-01", "--set", "model=popularity"]
    out = _ok(_run([recsys, *retrain], env=env, cwd=tmp_path))
    timed = re.findall(r"^(\S+) +[\d.]+s  (\{.*\})$", out, re.MULTILINE)  # "<stage>  1.2s  {result}"
    assert len(timed) == len(STAGES), out  # one line per stage: ingest ... publish
    name, result = timed[-1]
    assert name == "publish" and json.loads(result)["latest_dt"] == "2026-03-01" and json.loads(result)["rows"] > 0
