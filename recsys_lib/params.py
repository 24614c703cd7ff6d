"""Run parameters generated from the typed config: one source of truth for every DAG knob.

A DAG lists the short names it exposes (:data:`recsys_lib.config.PARAM_ALIASES` maps each to a
config path); everything else about a Param (type, bounds, allowed values, title, description, the
trigger form's section and the default) comes from the config field it sets, so the form, the
validation and the pipeline cannot disagree. The default is the value a run would use without the
parameter (field default < ``$RECSYS_CONFIG`` < ``RECSYS_*`` environment), so passing the form's
defaults back changes nothing.

Plain JSON-schema dicts come out (``Param(**spec)`` in the DAG); nothing here imports Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from recsys_lib.config import PARAM_ALIASES, PipelineConfig, load_config
from recsys_lib.errors import ConfigError

#: Trigger-form section per config section, in the order the form shows them.
SECTIONS: dict[str, str] = {
    "data": "Data",
    "features": "Features and split",
    "model": "Model",
    "train": "Training",
    "evaluation": "Evaluation and promotion",
    "export": "Export",
    "experiment": "Experiment (champion vs challenger)",
    "recommend": "Business rules",
    "outcomes": "Outcome reports",
}


def param_specs(names: Iterable[str], config: PipelineConfig | None = None) -> dict[str, dict[str, Any]]:
    """``{short name: Param keyword arguments}`` for each of ``names``, from its config field.

    ``config`` supplies the defaults (``load_config()`` when None). Raises ConfigError for a name
    that is not a parameter, or one whose field is a nested section.
    """
    config = config if config is not None else load_config()
    return {name: _spec(name, config) for name in names}


def _spec(name: str, config: PipelineConfig) -> dict[str, Any]:
    path = PARAM_ALIASES.get(name)
    if path is None:
        raise ConfigError(f"unknown parameter {name!r}; allowed: {sorted(PARAM_ALIASES)}")
    *parents, leaf = path.split(".")
    model: type[BaseModel] = PipelineConfig
    value: Any = config
    for part in parents:
        model = _submodel(model, part, path)
        value = getattr(value, part)
    schema = model.model_json_schema()["properties"].get(leaf)
    field = model.model_fields.get(leaf)
    if schema is None or field is None or "$ref" in schema or "allOf" in schema:
        raise ConfigError(f"parameter {name!r} -> {path!r} is not a single config value")
    spec = _nullable(schema)
    spec.pop("default", None)
    spec["title"] = field.title or name.replace("_", " ").capitalize()
    if field.description:
        spec["description"] = _plain(field.description)
    spec["section"] = SECTIONS.get(parents[0], parents[0].capitalize())
    default = getattr(value, leaf)
    spec["default"] = list(default) if isinstance(default, tuple) else default
    return spec


def _submodel(model: type[BaseModel], part: str, path: str) -> type[BaseModel]:
    annotation = model.model_fields[part].annotation if part in model.model_fields else None
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        raise ConfigError(f"config path {path!r}: {part!r} is not a section")
    return annotation


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` (pydantic's ``X | None``) as ``X`` with ``type: ["null", X's type]``, the
    form Airflow's trigger form renders as an optional field."""
    variants = schema.get("anyOf")
    if variants is None:
        return {k: v for k, v in schema.items() if k != "title"}
    present = [v for v in variants if v.get("type") != "null"]
    if len(present) != 1 or len(present) == len(variants):
        return {k: v for k, v in schema.items() if k != "title"}
    spec = dict(present[0])
    spec["type"] = ["null", spec["type"]]
    if "enum" in spec:
        spec["enum"] = [None, *spec["enum"]]
    return spec


def _plain(docstring: str) -> str:
    """A field docstring as one paragraph of plain text (the form shows it under the field)."""
    text = re.sub(r"``([^`]+)``", r"\1", docstring)
    text = re.sub(r":(?:mod|data|attr|func|class):`~?([^`]+)`", r"\1", text)
    return " ".join(text.split())
