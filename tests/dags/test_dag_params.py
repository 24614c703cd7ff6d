"""The DAGs' Params are generated from the typed config: one source of truth for every knob."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from recsys_lib.config import PARAM_ALIASES, PipelineConfig, load_config
from recsys_lib.params import SECTIONS, param_specs
from tests.conftest import DAGS


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return {dag_id: bag.get_dag(dag_id) for dag_id in ("recsys_retrain", "recsys_outcomes")}


def _config_value(config: PipelineConfig, path: str) -> object:
    value: object = config
    for part in path.split("."):
        value = getattr(value, part)
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("dag_id", ["recsys_retrain", "recsys_outcomes"])
def test_every_param_is_a_config_field_with_its_default_bounds_and_help(dags, dag_id: str) -> None:
    config = load_config()
    params = dags[dag_id].params
    for name in params:
        if name == "export_dt":  # which export to report on: a run argument, not a setting
            continue
        assert name in PARAM_ALIASES, name
        param = params.get_param(name)
        assert params[name] == _config_value(config, PARAM_ALIASES[name]), name
        assert param.schema["section"] in SECTIONS.values(), name
        assert param.schema["title"] and param.description, name
        spec = param_specs([name], config)[name]
        assert param.description == spec.pop("description")
        spec.pop("default")
        assert param.schema == spec, name


def test_the_form_offers_the_business_rules_with_their_bounds(dags) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dags["recsys_retrain"].params)
    rules = [n for n in params if params.get_param(n).schema["section"] == "Business rules"]
    assert {"max_per_category", "exclude_categories", "new_arrival_boost", "repeat_purchases", "diversity"} <= set(
        rules
    )
    for name, bad in [("max_per_category", 0), ("new_arrival_boost", -1.0), ("repeat_purchases", "sometimes")]:
        with pytest.raises(ParamValidationError, match=name):
            params[name] = bad
    params["max_per_category"] = 2
    params["exclude_categories"] = ["gift cards"]
    config = load_config(overrides=params.dump())
    assert config.recommend.max_per_category == 2 and config.recommend.exclude_categories == ("gift cards",)


def test_export_shards_has_one_default(dags) -> None:
    """It was 2 in the DAG and 1 in the config: the form now shows the config's."""
    assert dags["recsys_retrain"].params["export_shards"] == PipelineConfig().export.shards


@pytest.mark.parametrize("dag_id", ["recsys_retrain", "recsys_outcomes"])
def test_passing_the_forms_defaults_back_changes_nothing(dags, dag_id: str) -> None:
    dumped = {k: v for k, v in dags[dag_id].params.dump().items() if k != "export_dt"}
    assert load_config(overrides=dumped) == load_config()


def _parse(tmp_path, env: dict[str, str]) -> dict:
    """Parse the retrain DAG in a fresh interpreter under ``env``: its epochs default and Asset URI."""
    code = (
        "import json, sys, runpy; ns = runpy.run_path(sys.argv[1]);"
        "dag = ns['recsys_retrain'](); "
        "print(json.dumps({'epochs': dag.params['epochs'], 'k_max': dag.params.get_param('k').schema['maximum'],"
        " 'asset': ns['RECOMMENDATIONS'].uri}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "recsys_retrain.py")],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_deployments_config_and_environment_set_the_form_and_the_asset(tmp_path) -> None:
    config_file = tmp_path / "shop.yaml"
    config_file.write_text("train:\n  epochs: 5\n")
    parsed = _parse(
        tmp_path, {"RECSYS_CONFIG": str(config_file), "RECSYS_BUCKET": "shop-bucket", "RECSYS_PREFIX": "shop-a"}
    )
    assert parsed["epochs"] == 5  # the YAML's value, so a scheduled run does not override it with 20
    assert parsed["k_max"] == 1000
    assert parsed["asset"] == "s3://shop-bucket/shop-a/exports/user_topk"
    assert _parse(tmp_path, {})["asset"] == "s3://recsys/exports/user_topk"


def test_a_bad_parameter_name_is_refused_naming_the_allowed_ones() -> None:
    from recsys_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown parameter 'epoch'"):
        param_specs(["epoch"])
