"""MLflow's HTTP retries and timeout come from ``registry.*`` (or MLflow's own variables), and its
failures to reach the server or to authenticate become errors naming the server and the setting."""

from __future__ import annotations

import os
import socket

import pytest

from recsys_lib.config import RegistryConfig
from recsys_lib.errors import ConfigError, RegistryAccessError, RegistryUnavailableError
from recsys_lib.registry import connection
from recsys_lib.registry.connection import MAX_RETRIES_VAR, TIMEOUT_VAR, apply_http_settings, registry_error


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_RETRIES_VAR, raising=False)
    monkeypatch.delenv(TIMEOUT_VAR, raising=False)
    monkeypatch.setattr(connection, "_applied", {})


def test_config_values_win_then_the_users_variables_then_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = {MAX_RETRIES_VAR: 3, TIMEOUT_VAR: 30}
    assert apply_http_settings(RegistryConfig()) == defaults
    assert apply_http_settings(RegistryConfig(max_retries=0, request_timeout=5)) == {MAX_RETRIES_VAR: 0, TIMEOUT_VAR: 5}
    assert (os.environ[MAX_RETRIES_VAR], os.environ[TIMEOUT_VAR]) == ("0", "5")  # where MLflow reads them
    assert apply_http_settings(RegistryConfig()) == defaults  # what we set earlier is not mistaken for the user's
    monkeypatch.setenv(TIMEOUT_VAR, "300")  # the user's own, MLflow's documented variable
    assert apply_http_settings(RegistryConfig()) == {MAX_RETRIES_VAR: 3, TIMEOUT_VAR: 300}
    assert apply_http_settings(RegistryConfig(request_timeout=7))[TIMEOUT_VAR] == 7  # the config is explicit
    monkeypatch.setenv(MAX_RETRIES_VAR, "many")
    with pytest.raises(ConfigError, match=f"{MAX_RETRIES_VAR} must be a whole number, got 'many'"):
        apply_http_settings(RegistryConfig())


def test_a_server_on_a_closed_port_is_unavailable_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    apply_http_settings(RegistryConfig(max_retries=1, request_timeout=2))
    import urllib3.util.connection

    connect, attempts = urllib3.util.connection.create_connection, []

    def counted(address, timeout=None, *args, **kwargs):
        attempts.append(timeout)
        return connect(address, timeout, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counted)
    with pytest.raises(Exception) as raised:  # MLflow's own exception, a traceback today
        MlflowClient().get_experiment_by_name("recsys-shop")
    assert len(attempts) == 2  # one try and max_retries=1 retry (MLflow's own default: 7 retries, ~4 minutes)
    assert set(attempts) == {2}  # each connection attempt bounded by request_timeout
    error = registry_error(raised.value, "looking up the experiment")
    assert isinstance(error, RegistryUnavailableError)
    assert str(error) == (
        f"MLflow tracking server {uri} is unreachable while looking up the experiment ([Errno 111] Connection refused; "
        "registry.max_retries=1, registry.request_timeout=2 s); check MLFLOW_TRACKING_URI"
    )


def test_refused_credentials_name_the_credential_variables() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import UNAUTHENTICATED

    exc = MlflowException("API request to endpoint /api/2.0/x failed with error code 401 != 200", UNAUTHENTICATED)
    error = registry_error(exc, "registering the model")
    assert isinstance(error, RegistryAccessError)
    assert "refused the credentials while registering the model" in str(error)
    assert str(error).endswith("check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)")


def test_other_errors_are_left_alone() -> None:
    from mlflow.exceptions import MlflowException

    assert registry_error(ConnectionRefusedError("not MLflow's"), "x") is None  # raised outside MLflow
    assert registry_error(MlflowException("Registered model 'x' not found"), "x") is None
