"""The embedded local stack: a moto S3 server and an MLflow tracking server, as real processes.

Used by ``make demo`` and the integration tests, on one laptop, with nothing shared beyond
127.0.0.1. Each service runs in its own process group (so stopping it stops its children) and is
described in ``<state_dir>/stack.json`` so another command can find or stop it.

The S3 credentials here are moto's dummies for a throwaway local endpoint, handed to child
processes through the environment; real deployments supply their own through the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from recsys_lib.extras import require_extra
from recsys_lib.storage.buckets import ensure_buckets

LOCAL_S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local-moto", "AWS_SECRET_ACCESS_KEY": "local-moto"}
REGION = "us-east-1"
MLFLOW_ARTIFACT_BUCKET = "mlflow-artifacts"


@dataclass(frozen=True)
class Service:
    """One running local service, as recorded in ``stack.json``: ``pid`` leads its process group,
    ``url`` is its ``http://127.0.0.1:<port>`` address and ``log`` the file its output goes to."""

    name: str
    pid: int
    url: str
    log: str


@dataclass(frozen=True)
class Stack:
    """The local S3 and MLflow services and the data bucket; persisted as ``<state_dir>/stack.json``
    so another command can find or stop them."""

    s3: Service
    mlflow: Service
    bucket: str
    state_dir: str

    def client_env(self) -> dict[str, str]:
        """Environment for anything that talks to the stack (pipelines, Airflow, the CLI)."""
        return {
            **LOCAL_S3_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.s3.url,
            "MLFLOW_TRACKING_URI": self.mlflow.url,
            "RECSYS_BUCKET": self.bucket,
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }

    def save(self) -> Path:
        """Write ``<state_dir>/stack.json`` (overwriting it) and return its path."""
        path = Path(self.state_dir) / "stack.json"
        path.write_text(
            json.dumps(
                {
                    "s3": asdict(self.s3),
                    "mlflow": asdict(self.mlflow),
                    "bucket": self.bucket,
                    "state_dir": self.state_dir,
                },
                indent=2,
            )
        )
        return path

    @classmethod
    def load(cls, state_dir: str | Path) -> Stack:
        """The stack recorded in ``<state_dir>/stack.json`` by :meth:`save`; raises
        FileNotFoundError when there is none. Does not check that the processes still run."""
        data = json.loads((Path(state_dir) / "stack.json").read_text())
        return cls(Service(**data["s3"]), Service(**data["mlflow"]), data["bucket"], data["state_dir"])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it); another process may
    take it before it is used."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None, log: str = "") -> None:
    """Poll ``url`` until it answers; fail early with the log tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url} process exited with {proc.returncode}; log {log}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s; log {log}:\n{_tail(log)}")


def _tail(path: str, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _spawn(name: str, cmd: list[str], env: dict[str, str], state_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = str(state_dir / f"{name}.log")
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, log


def start_s3(state_dir: str | Path, buckets: list[str], port: int = 0) -> Service:
    """Start a moto S3 server on 127.0.0.1 (its own process group) with ``buckets``; returns once
    it answers over HTTP. Stop it with ``stop_pid(service.pid)``."""
    require_extra("devstack", "moto", feature="the local S3 endpoint (recsys stack, recsys demo)")
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **LOCAL_S3_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
    moto, log = _spawn("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env, state)
    wait_http(f"{url}/moto-api/", 60, moto, log)
    ensure_buckets(
        url,
        buckets,
        region=REGION,
        access_key_id=LOCAL_S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_access_key=LOCAL_S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return Service("s3", moto.pid, url, log)


#: MLflow 3's server starts seven huey job consumers for its GenAI jobs (prompt optimisation,
#: trace rollups) unless told not to; they poll all the time, about 8% of a core each, and on a
#: 2-core machine that slowed a training epoch by half. Nothing here uses server-side jobs.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def start_mlflow(state_dir: str | Path, s3_url: str, port: int = 0) -> Service:
    """Start an MLflow tracking server on 127.0.0.1 (SQLite backend ``state_dir/mlflow.db``,
    artifacts in the ``mlflow`` bucket of the S3 at ``s3_url``); returns once it answers.
    Restarting it on the same ``state_dir`` keeps every run, model and alias."""
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **LOCAL_S3_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
    env.update({"MLFLOW_S3_ENDPOINT_URL": s3_url, "AWS_ENDPOINT_URL_S3": s3_url})
    env.update(MLFLOW_SERVER_ENV)
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{state / 'mlflow.db'}",
        "--artifacts-destination",
        f"s3://{MLFLOW_ARTIFACT_BUCKET}/",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    proc, log = _spawn("mlflow", cmd, env, state)
    try:
        wait_http(f"{url}/health", 120, proc, log)
    except BaseException:
        stop_pid(proc.pid)
        raise
    return Service("mlflow", proc.pid, url, log)


def start_stack(state_dir: str | Path, bucket: str = "recsys", s3_port: int = 0, mlflow_port: int = 0) -> Stack:
    """Start moto and MLflow (SQLite backend in ``state_dir``, artifacts on the moto S3) and
    create the data and artifact buckets. Returns once both answer over HTTP."""
    state = Path(state_dir).resolve()
    s3 = start_s3(state, [bucket, MLFLOW_ARTIFACT_BUCKET], s3_port)
    try:
        mlflow = start_mlflow(state, s3.url, mlflow_port)
    except BaseException:
        stop_pid(s3.pid)
        raise
    stack = Stack(s3, mlflow, bucket, str(state))
    stack.save()
    return stack


def start_airflow(
    home: str | Path, *, dags: str | Path, plugins: str | Path, env: dict[str, str], port: int = 0
) -> Service:
    """Start ``airflow standalone`` (API server with the UI, scheduler with LocalExecutor,
    dag-processor, triggerer; SQLite in ``home``) on 127.0.0.1 and return once its health endpoint
    says every component is healthy. Only manually triggered runs are created (no schedule).

    ``env`` is added to the processes' environment (S3 and MLflow endpoints). The login is the
    simple auth manager's ``admin`` user; :func:`airflow_token` gets a JWT for the REST API.
    Stop it with ``stop_pid(service.pid)`` (the whole process group: standalone orphans its
    children on a plain SIGTERM).
    """
    require_extra("airflow", "airflow", feature="airflow standalone")
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    bin_dir = str(Path(sys.executable).parent)
    airflow_env = {
        **os.environ,
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # standalone runs `airflow` from PATH
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(dags).resolve()),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(Path(plugins).resolve()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    proc, log = _spawn("airflow", [str(Path(bin_dir) / "airflow"), "standalone"], airflow_env, home)
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
                health = json.load(response)
            if all(part.get("status") == "healthy" for part in health.values()):
                return Service("airflow", proc.pid, url, log)
        except (OSError, ValueError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_pid(proc.pid)
            raise RuntimeError(f"airflow standalone did not become healthy at {url}; its log ends:\n{_tail(log, 40)}")
        time.sleep(2)


def airflow_token(home: str | Path, url: str, user: str = "admin") -> str:
    """A JWT for Airflow's REST API, with the password standalone generated for ``user``."""
    passwords = json.loads((Path(home) / "simple_auth_manager_passwords.json.generated").read_text())
    request = urllib.request.Request(
        f"{url}/auth/token",
        data=json.dumps({"username": user, "password": passwords[user]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["access_token"])


def stop_pid(pid: int, timeout: float = 10) -> None:
    """Stop a service's whole process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):  # reap our own child so it does not linger as a zombie
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def stop_stack(stack: Stack) -> None:
    """Stop MLflow, then moto (each whole process group), and remove ``stack.json``."""
    stop_pid(stack.mlflow.pid)
    stop_pid(stack.s3.pid)
    (Path(stack.state_dir) / "stack.json").unlink(missing_ok=True)
