"""Typed, frozen pipeline configuration, loaded once at the boundary.

Layers, later wins: field defaults < YAML file < environment (``RECSYS_BUCKET``, ``RECSYS_PREFIX``)
< overrides (DAG params, CLI flags). Overrides use dotted paths (``train.epochs``) or the short
parameter names in :data:`PARAM_ALIASES` (``epochs``), so a DAG's Params map one-to-one.

Credentials and endpoints never live here: boto3 reads ``AWS_*`` variables (including
``AWS_ENDPOINT_URL_S3``) and MLflow reads ``MLFLOW_TRACKING_URI`` from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recsys_lib import schema
from recsys_lib.errors import ConfigError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_NAME_RE = re.compile(NAME_PATTERN)

SourceName = Literal["canonical", "uci_retail", "sequences"]
ModelName = Literal["popularity", "item_knn", "mf_bpr", "als", "sasrec", "gru4rec", "two_tower"]
SplitName = Literal["temporal", "leave_one_out"]


class _Frozen(BaseModel):
    # attribute docstrings become field descriptions: the DAG's trigger form shows them (recsys_lib.params)
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class StorageConfig(_Frozen):
    """Where the pipeline's tables live in S3, and how patiently S3 calls are retried."""

    bucket: str = Field("recsys", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    """S3 bucket that holds every table (raw, snapshots, features, exports)."""
    prefix: str = Field("", pattern=r"^([A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*)?$")
    """Key prefix inside the bucket, e.g. ``shop-a``; nothing is read or written outside it."""
    retention_days: int | None = Field(None, ge=1)
    """After each successful publish, delete the intermediate partitions (``ingested/``,
    ``snapshots/``, ``quarantine/``, ``features/``, ``models/``) and export staging of logical
    dates more than this many days older than the run's; None keeps them all. Published exports,
    pointers and validation reports are kept."""
    max_attempts: int = Field(6, ge=1, le=20)
    """S3 calls are retried (throttling, 5xx, dropped connections, timeouts) up to this many
    attempts in all (botocore's standard retry mode); ``RECSYS_S3_MAX_ATTEMPTS``."""
    read_timeout: float = Field(60.0, gt=0.0, le=3600.0)
    """Seconds an S3 call may wait for the endpoint's answer before it is retried;
    ``RECSYS_S3_READ_TIMEOUT``."""
    connect_timeout: float = Field(5.0, gt=0.0, le=600.0)
    """Seconds to open a connection to the S3 endpoint before the attempt counts as failed;
    ``RECSYS_S3_CONNECT_TIMEOUT``."""


#: What ``SourceMapping.timestamp`` accepts besides a ``strftime`` pattern (one containing ``%``).
TIMESTAMP_FORMATS = ("iso", "epoch_s", "epoch_ms", "day_first")


class SourceMapping(_Frozen):
    """How one shop's raw files map onto the canonical schema (DESIGN.md section 3).

    Example (an event log of ``timestamp`` in ms, ``visitorid``, ``event``, ``itemid``)::

        columns: {timestamp: timestamp, user_id: visitorid, event_type: event, item_id: itemid}
        event_types: {view: view, addtocart: add_to_cart, transaction: purchase}
        timestamp: epoch_ms
    """

    columns: dict[str, str] = {}
    """Canonical events column -> the shop's column name, e.g. ``{"user_id": "visitorid"}``.
    Unnamed canonical columns are read under their own names."""
    item_columns: dict[str, str] = {}
    """Canonical catalogue column -> the shop's column name, e.g. ``{"title": "name"}``."""
    event_types: dict[str, str] = {}
    """The shop's event name -> canonical event type, e.g. ``{"transaction": "purchase"}``. When
    set, a value that is neither mapped nor already canonical stops the ingest."""
    timestamp: str = "iso"
    """How timestamps are written: ``iso`` (ISO 8601), ``epoch_s`` / ``epoch_ms`` (numbers since
    1970 UTC), ``day_first`` (``31/12/2026 18:05``), or a ``strftime`` pattern such as
    ``%d.%m.%Y %H:%M``."""
    timezone: str = "UTC"
    """Time zone of timestamps written without an offset (e.g. ``Europe/London``)."""
    delimiter: str = Field(",", min_length=1, max_length=1)
    """CSV field separator (``;`` and tab are common in European exports)."""
    encoding: str = "utf-8"
    """CSV text encoding (``utf-8`` also accepts a byte-order mark; ``latin-1``, ``cp1252``, ...)."""

    @field_validator("columns")
    @classmethod
    def _known_event_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        return _check_canonical(columns, schema.EVENTS_DTYPES, "columns")

    @field_validator("item_columns")
    @classmethod
    def _known_item_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        return _check_canonical(columns, schema.ITEMS_DTYPES, "item_columns")

    @field_validator("timestamp")
    @classmethod
    def _known_timestamp_format(cls, value: str) -> str:
        if value not in TIMESTAMP_FORMATS and "%" not in value:
            raise ValueError(f"timestamp must be one of {list(TIMESTAMP_FORMATS)} or a strftime pattern with '%'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/London'") from None
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}; e.g. 'utf-8', 'latin-1', 'cp1252'") from None
        return value


def _check_canonical(columns: dict[str, str], dtypes: dict[str, str], key: str) -> dict[str, str]:
    unknown = sorted(set(columns) - set(dtypes))
    if unknown:
        raise ValueError(f"{key} maps unknown canonical columns {unknown}; allowed: {list(dtypes)}")
    return columns


class DataConfig(_Frozen):
    """Which raw data a run reads: dataset, source format, accepted event types and the training window."""

    dataset: str = Field("shop", pattern=NAME_PATTERN)
    """Dataset name: selects ``raw/<dataset>/`` and partitions every table by ``dataset=``."""
    source: SourceName = Field("canonical", title="Source format")
    """Adapter for the raw files: ``canonical`` (events/items Parquet or CSV), ``uci_retail``, or
    ``sequences`` (``user item item ...`` text files; order only, so use leave-one-out splits)."""
    event_types: tuple[str, ...] = schema.EVENT_TYPES
    """Event types accepted by validation."""
    history_days: int | None = Field(None, ge=1)
    """If set, events older than this many days before the interval end fail validation."""
    window_days: int | None = Field(None, ge=1, le=36_500, title="Training window (days)")
    """Training window: the run for logical date D reads the daily landings ``dt=`` in
    (D - window_days, D] (flat files: events with timestamps in that window). None reads every
    landing up to D. Landings after D are never read, so a backfill sees what existed for its date."""
    mappings: dict[str, SourceMapping] = {}
    """Per dataset name, how its raw files map onto the canonical schema (column names, event
    names, timestamp format, CSV dialect); datasets not listed are read as canonical."""

    @model_validator(mode="after")
    def _mapped_to_known_event_types(self) -> DataConfig:
        for dataset, mapping in self.mappings.items():
            unknown = sorted(set(mapping.event_types.values()) - set(self.event_types))
            if unknown:
                raise ValueError(
                    f"data.mappings.{dataset}.event_types maps to {unknown}, which are not in data.event_types "
                    f"{list(self.event_types)}"
                )
        return self

    @property
    def mapping(self) -> SourceMapping:
        """The source mapping of :attr:`dataset` (the identity when none is configured)."""
        return self.mappings.get(self.dataset, SourceMapping())


class FeaturesConfig(_Frozen):
    """How events become weighted (user, item) interactions, and how they are split into train, validation and test."""

    event_weights: dict[str, float] = {
        schema.VIEW: 1.0,
        schema.ADD_TO_CART: 3.0,
        schema.PURCHASE: 5.0,
        schema.IMPRESSION: 0.0,
        schema.CLICK: 0.0,
    }
    """Interaction weight per event type; a (user, item) pair's weight is the sum over its events.
    Events of a type weighted 0 are not interactions at all (no user, item or sequence step comes
    from them): by default ``impression`` and ``click``, which record what our lists did (the
    product-page view a click leads to is logged as a ``view``)."""
    validation_fraction: float = Field(0.1, ge=0.0, lt=0.5)
    """Share of the newest events (by time) held out for per-epoch validation."""
    test_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    """Share of the newest events (by time) held out for the final test metrics."""
    split: SplitName = Field("temporal", title="Evaluation split")
    """``temporal``: global time cut-offs (production). ``leave_one_out``: each user's newest item is
    test and the one before validation (the protocol of the published sequential-model tables)."""

    @field_validator("event_weights")
    @classmethod
    def _weights_not_negative(cls, weights: dict[str, float]) -> dict[str, float]:
        negative = {k: v for k, v in weights.items() if v < 0}
        if negative:
            raise ValueError(f"features.event_weights must be >= 0 (0: not an interaction), got {negative}")
        if not any(v > 0 for v in weights.values()):
            raise ValueError("features.event_weights must give at least one event type a weight above 0")
        return weights

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> FeaturesConfig:
        if self.validation_fraction + self.test_fraction >= 0.8:
            raise ValueError("features.validation_fraction + features.test_fraction must be < 0.8")
        return self


class ItemKNNConfig(_Frozen):
    """Settings of the item-item cosine model (:mod:`recsys_lib.models.item_knn`)."""

    neighbours: int = Field(100, ge=1)
    """Most similar items kept per item; the rest of its similarity row is zero."""
    shrinkage: float = Field(10.0, ge=0.0)
    """Added to the cosine denominator, so similarities resting on few co-occurrences shrink to 0."""
    recency_decay: float = Field(0.0, ge=0.0, lt=1.0)
    """Weight of the j-th most recent history item is ``(1 - recency_decay) ** j``; 0 weighs all alike."""


class SequentialConfig(_Frozen):
    """Shared by the sequence models (``sasrec``, ``gru4rec``) and the two-tower model (its training
    examples, loss and dropout). The defaults are the setting measured
    best on Amazon Beauty in benchmarks/quality.py (see benchmarks/RESULTS.md)."""

    max_length: int = Field(50, ge=1, le=1024)
    """Most recent history items the model reads per user."""
    n_layers: int = Field(1, ge=1, le=12)
    """Transformer blocks (sasrec) or GRU layers (gru4rec)."""
    n_heads: int = Field(1, ge=1, le=16)
    """Attention heads per block (sasrec); must divide ``model.embedding_dim``."""
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    """Dropout on embeddings and inside each block; sparse catalogues want it high."""
    block: Literal["pre_norm", "ligr"] = "pre_norm"
    """Transformer block of ``sasrec``: ``pre_norm`` (pre-LayerNorm, plain residuals, GELU
    feed-forward) or ``ligr`` (LiGR, as in eSASRec: each residual added through a learned sigmoid
    gate of the block's input, SwiGLU feed-forward)."""
    loss: Literal["full_softmax", "sampled_softmax"] = "sampled_softmax"
    """``full_softmax``: cross-entropy over the whole catalogue at every position (cost grows with the
    catalogue). ``sampled_softmax``: cross-entropy over the target and ``n_negatives`` uniform
    negatives drawn per sequence (cost independent of the catalogue)."""
    n_negatives: int = Field(256, ge=1)
    """Negatives per training sequence for ``sampled_softmax``."""
    row_sparse: bool = True
    """With ``sampled_softmax``: a step touches only the item rows it reads (row-sparse gradients;
    RowAdam first applies the AdamW steps those rows missed, in closed form), so it trains as AdamW
    over the whole table at a cost that does not grow with the catalogue. ``false``: AdamW steps
    every row every step, the same training at a cost that does (20x slower at 2M items:
    benchmarks/RESULTS.md)."""
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """Share of the target probability spread over the other items in the cross-entropy."""


class TwoTowerConfig(_Frozen):
    """Item content tower of the two-tower model: hash buckets of titles, categories and prices, and id dropout."""

    title_buckets: int = Field(2**14, ge=16)
    """Hash buckets for lower-cased title tokens in the item content tower."""
    category_buckets: int = Field(1024, ge=2)
    """Hash buckets for categories and for brands in the item content tower."""
    price_buckets: int = Field(10, ge=1, le=100)
    """Price quantile buckets (fitted on the catalogue) in the item content tower."""
    id_dropout: float = Field(0.3, ge=0.0, le=1.0)
    """Chance of hiding an item's id embedding in a training step, so content alone must place it
    (what lets items without interactions be recommended)."""


class ALSConfig(_Frozen):
    """Alternating least squares (``model.name = als``), fitted by the implicit library (the ``als``
    extra). Its factors have ``model.embedding_dim`` columns, its random start follows
    ``train.seed``, and ``train.accelerator`` decides whether it fits on a GPU."""

    regularization: float = Field(0.01, ge=0.0)
    """L2 penalty on every user and item factor (implicit's ``regularization``)."""
    iterations: int = Field(15, ge=1, le=1000)
    """Alternations of solving every user's factors given the items', then every item's given the
    users'. ALS converges within its iterations, so there is no early stopping: validation
    NDCG@10 is measured once, after the last."""
    alpha: float = Field(1.0, gt=0.0)
    """Confidence scaling: a train pair counts as a preference of 1 with confidence ``alpha`` x its
    interaction weight (``features.event_weights`` summed over its events); every other pair as a
    preference of 0 with confidence 1. Higher values trust the observed pairs more."""


class ModelConfig(_Frozen):
    """Which model is trained and its size; each model family's own settings in a sub-section. A
    SASRec ``embedding_dim`` not divisible by ``sequential.n_heads`` is refused."""

    name: ModelName = "als"
    """Model to train: ``popularity`` (baseline), ``item_knn`` (item-item cosine), ``mf_bpr``
    (matrix factorisation, BPR loss), ``als`` (matrix factorisation, alternating least squares, the
    default: better than MF-BPR on validation on Amazon Beauty and UCI Online Retail at a twentieth
    of the fit time, see benchmarks/RESULTS.md), ``sasrec`` (self-attention over the sequence),
    ``gru4rec`` (GRU over the sequence) or ``two_tower`` (history tower x item content tower, cold
    items too)."""
    embedding_dim: int = Field(64, ge=2, le=1024, title="Embedding size")
    """Size of the user, item and hidden vectors of the learned models."""
    item_knn: ItemKNNConfig = ItemKNNConfig()
    als: ALSConfig = ALSConfig()
    sequential: SequentialConfig = SequentialConfig()
    two_tower: TwoTowerConfig = TwoTowerConfig()

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> ModelConfig:
        if self.name == "sasrec" and self.embedding_dim % self.sequential.n_heads:
            raise ValueError("model.sequential.n_heads must divide model.embedding_dim")
        return self


class TrainConfig(_Frozen):
    """The training loop: epochs, batch, optimiser, seeding, validation cadence, early stopping and refit."""

    epochs: int = Field(20, ge=1, le=1000, title="Training epochs")
    """Passes over the training interactions."""
    batch_size: int = Field(1024, ge=1)
    """Positive (user, item) pairs per optimiser step."""
    learning_rate: float = Field(0.01, gt=0.0)
    """Adam learning rate."""
    weight_decay: float = Field(1e-5, ge=0.0)
    """L2 penalty on the embeddings touched by a batch."""
    seed: int = Field(42, title="Random seed")
    """Seed for python, numpy and torch; the same seed and data give the same model."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """``cosine``: the learning rate decays from ``learning_rate`` to 0 over ``epochs`` (sequence models)."""
    patience: int | None = Field(None, ge=1)
    """Stop after this many validations without a better validation NDCG@10 (None: run every epoch).
    Whenever validation runs, the weights of the best validated epoch are the ones kept."""
    validate_every: int = Field(1, ge=1)
    """Validate every this many epochs (and after the last one)."""
    validation_users: int | None = Field(10_000, ge=1)
    """Per-epoch validation ranks the whole catalogue for a fixed, seeded sample of at most this
    many validation users (None: every one), so its cost stays flat as the shop grows. The final
    test metrics always use every user."""
    refit: bool = False
    """After early stopping picked the best epoch on the validation split, train fresh weights on
    train + validation for that many epochs and keep those: the model then knows each user's newest
    interactions before test (model selection on validation, final fit on everything but test)."""
    accelerator: Literal["auto", "cpu", "gpu", "cuda"] = "auto"
    """Lightning accelerator; ``auto`` uses a GPU when one is present (for ``als``: when implicit's
    GPU build is installed too)."""
    callbacks: tuple[str, ...] = ()
    """Extra Lightning callbacks for every fit of a learned model, each ``package.module:ClassName``
    (imported, and built with no arguments, when training starts). They see ``val_ndcg_at_10`` and
    ``train_loss`` in ``trainer.callback_metrics``, e.g. a stricter ``EarlyStopping`` subclass."""

    @field_validator("callbacks")
    @classmethod
    def _callbacks_are_import_paths(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        for path in paths:
            if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", path):
                raise ValueError(f"train.callbacks entries are 'package.module:ClassName', got {path!r}")
        return paths


class EvaluationConfig(_Frozen):
    """Offline metrics and promotion: the cut-offs reported, the metric that decides promotion (one
    of ``{ndcg,recall,hr,mrr}_at_{k}`` for a k in ``ks``), its margin, and offline or online
    promotion."""

    ks: tuple[int, ...] = (10, 20, 50)
    """Cut-offs at which every ranking metric is reported."""
    promotion_metric: str = "ndcg_at_10"
    """Test metric that decides whether a new model replaces the champion."""
    min_improvement: float = Field(0.0, ge=0.0, title="Promotion margin")
    """The new model must beat the champion's metric by more than this to be promoted."""
    force_promote: bool = Field(False, title="Force promotion to champion")
    """Make the new model champion whatever its metric (rollbacks, first deploys)."""
    promote_on: Literal["offline", "online"] = "offline"
    """``offline``: a new version that beats the champion's test metric becomes champion at once.
    ``online``: it becomes ``challenger`` and is promoted only by the outcome reports, after
    ``outcomes.min_days`` complete reports in a row in which its arm beats the champion's on
    ``outcomes.primary_metric`` with significance (export it to users with
    ``experiment.challenger_share`` > 0). The first model, and forced ones, become champion anyway."""

    @model_validator(mode="after")
    def _metric_is_reported(self) -> EvaluationConfig:
        allowed = [f"{m}_at_{k}" for m in ("ndcg", "recall", "hr", "mrr") for k in self.ks]
        if self.promotion_metric not in allowed:
            raise ValueError(f"evaluation.promotion_metric must be one of {allowed}")
        return self


class RegistryConfig(_Frozen):
    """MLflow names and request limits: registered model, experiment, UI address, retries and timeouts."""

    ui_url: str | None = Field(None, pattern=r"^https?://")
    """Address of the MLflow UI that the Recommendations page links runs to, when it differs from
    ``MLFLOW_TRACKING_URI`` (e.g. a proxy); ``RECSYS_MLFLOW_UI_URL``."""
    model_name: str | None = None
    """Registered model name; defaults to ``recsys-<dataset>``."""
    experiment: str | None = None
    """MLflow experiment; defaults to ``recsys-<dataset>``."""
    max_retries: int | None = Field(None, ge=0, le=10)
    """Retries of a failed MLflow request (refused connection, timeout, HTTP 429/5xx), with
    exponential backoff (0, 4, 8, 16 ... s). None: ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` if set in the
    environment, else 3 (MLflow's own default, 7, waits about four minutes for a server that is down)."""
    request_timeout: int | None = Field(None, ge=1, le=3600)
    """Seconds an MLflow request may take to connect, and then to answer. None:
    ``MLFLOW_HTTP_REQUEST_TIMEOUT`` if set in the environment, else 30 (MLflow's own default is 120)."""


class ExportConfig(_Frozen):
    """The batch export: list length, scoring chunks, part sizes, shards, and which extra tables are published."""

    k: int = Field(10, ge=1, le=1000, title="Recommendations per user")
    """Recommendations written per user."""
    chunk_size: int = Field(1024, ge=1)
    """Users scored together, one item tile at a time; scoring memory is about ``chunk_size x (3 KB +
    80 B x k)`` on CPUs with the compiled kernel (a tile's scores plus each user's candidates: 4 MB
    at k = 10, 11 MB at k = 100), ``chunk_size x items x 4.5`` bytes on the tensor path (GPUs:
    400 MB for 100k items), whatever the number of users."""
    rows_per_file: int = Field(1_000_000, ge=1)
    """Rows per Parquet part file."""
    embeddings: bool = True
    """Also publish the champion's user and item vectors (``user_embeddings``, ``item_embeddings``)
    for an online re-ranker, when the model has vectors (not popularity or item-kNN)."""
    shards: int = Field(1, ge=1, le=1024, title="Export shards")
    """Users are split into this many shards, each exported by its own (retryable) Airflow task."""
    similar_items: bool = True
    """Also publish each item's nearest items (``similar_items``), by co-occurrence (item-kNN) or
    by vector cosine; popularity has none."""
    similar_k: int = Field(10, ge=1, le=1000)
    """Neighbours written per item in ``similar_items``."""
    pseudonymize: bool = Field(False, title="Pseudonymise user ids")
    """Replace user ids in the user tables by a keyed hash (HMAC-SHA256); the key comes from
    ``RECSYS_PSEUDONYM_KEY`` or the Airflow connection ``recsys_pseudonym``, never from config."""
    profiles: bool = True
    """Also publish ``user_profiles``: each shopper's top categories and brands, price band, recency,
    frequency, monetary value, RFM segment and churn-risk flag, from the run's snapshot
    (:mod:`recsys_lib.features.profiles`); its user ids are pseudonymised with the user tables."""


RepeatPolicy = Literal["exclude", "allow", "separate"]


class RecommendConfig(_Frozen):
    """Business rules applied to every list, in the batch export and the live service alike (see
    :mod:`recsys_lib.serving.rules`): after scoring and before the top k, so a list is full
    whenever enough items qualify. The defaults change nothing."""

    exclude_categories: tuple[str, ...] = ()
    """Categories never recommended, e.g. ``["gift cards"]``."""
    only_categories: tuple[str, ...] = ()
    """If set, only items of these categories are recommended."""
    exclude_brands: tuple[str, ...] = ()
    """Brands never recommended."""
    only_brands: tuple[str, ...] = ()
    """If set, only items of these brands are recommended."""
    min_price: float | None = Field(None, ge=0.0)
    """Items cheaper than this are not recommended (items without a price are kept)."""
    max_price: float | None = Field(None, ge=0.0)
    """Items dearer than this are not recommended (items without a price are kept)."""
    new_arrival_days: int | None = Field(None, ge=1)
    """Items first seen (first event, or in the catalogue without any event) within this many days
    of the run's date are new arrivals, whose scores get ``new_arrival_boost``."""
    new_arrival_boost: float = Field(1.0, gt=0.0)
    """Factor applied to a new arrival's score: a positive score is multiplied by it, a negative one
    divided, so > 1 always moves new arrivals up and < 1 down (their order among themselves stays)."""
    max_per_category: int | None = Field(None, ge=1)
    """At most this many items of one category in a list (items without a category are not capped)."""
    pinned_items: tuple[str, ...] = ()
    """Items put first in every list, in this order (unless the shopper has them in their history,
    or a rule excludes them)."""
    blocked_items: tuple[str, ...] = ()
    """Items never recommended."""
    repeat_purchases: RepeatPolicy = "exclude"
    """What happens to items a shopper has bought before: ``exclude`` (never listed again, as any
    history item), ``allow`` (the model may list them again: re-orders blend into the list), or
    ``separate`` (kept out of the list and published in a ``buy_again`` table: each shopper's
    likely re-orders by :mod:`recsys_lib.serving.repurchase`)."""
    repeat_purchases_by_category: dict[str, RepeatPolicy] = {}
    """Per-category overrides of ``repeat_purchases``, e.g. ``{"coffee": "separate"}`` for
    consumables in a shop that otherwise excludes repeats."""
    buy_again_k: int = Field(10, ge=1, le=1000)
    """Re-orders per shopper in the ``buy_again`` table."""
    buy_again_timing: float = Field(0.0, ge=0.0, le=10.0)
    """Weight of "is it due?" in the repurchase score (:mod:`recsys_lib.serving.repurchase`): 0
    ranks a shopper's past purchases by how often they bought them (then how recently); 1 also
    favours items whose typical repurchase interval has about passed. 0 was best on UCI Online
    Retail's validation window (benchmarks/RESULTS.md, "Re-orders"); shops of consumables with
    regular cycles may prefer more."""
    buy_again_share: float = Field(0.0, ge=0.0, le=1.0)
    """With re-orders allowed back into the list (``allow``), the share of its places that go to the
    shopper's likeliest re-orders by the repurchase model (:mod:`recsys_lib.serving.repurchase`),
    spread evenly from the top (0.3: places 2, 5 and 9 of 10; 1: the re-orders first), the model's
    items in the others; 0 (the default) leaves re-orders to compete on the model's own scores.
    Pinned items stay first and category caps hold; a placed re-order's ``score`` is its repurchase
    score and its ``reason_kind`` ``buy_again``; at most ``buy_again_k`` re-orders per list. Needs
    an item under ``allow``. On UCI Online Retail's validation window the best share was 1
    (benchmarks/RESULTS.md, "Re-orders")."""
    diversity: float | None = Field(None, gt=0.0, le=1.0)
    """Maximal marginal relevance (lambda): each next item maximises ``lambda x relevance - (1 -
    lambda) x its largest similarity to the items already listed``, over the best 4k candidates.
    1 ranks by relevance alone; 0.7 trades a little relevance for variety. None: off."""
    diversity_by: Literal["auto", "vectors", "categories"] = "auto"
    """Similarity for ``diversity``: cosine of the model's item vectors, or 1 for items of the same
    category (0 otherwise); ``auto``: vectors where the model has them, else categories."""

    @model_validator(mode="after")
    def _consistent(self) -> RecommendConfig:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"recommend.min_price ({self.min_price}) is above recommend.max_price ({self.max_price})")
        for include, exclude in (("only_categories", "exclude_categories"), ("only_brands", "exclude_brands")):
            both = sorted(set(getattr(self, include)) & set(getattr(self, exclude)))
            if both:
                raise ValueError(f"recommend.{include} and recommend.{exclude} both name {both}")
        if self.new_arrival_boost != 1.0 and self.new_arrival_days is None:
            raise ValueError("recommend.new_arrival_boost needs recommend.new_arrival_days (e.g. 14)")
        policies = {self.repeat_purchases, *self.repeat_purchases_by_category.values()}
        if self.buy_again_share > 0 and "allow" not in policies:
            raise ValueError(
                f"recommend.buy_again_share ({self.buy_again_share}) places re-orders that the repeat policy "
                "allows back, but no item's is allow (e.g. recommend.repeat_purchases: allow)"
            )
        pinned_and_blocked = sorted(set(self.pinned_items) & set(self.blocked_items))
        if pinned_and_blocked:
            raise ValueError(f"recommend.pinned_items and recommend.blocked_items both name {pinned_and_blocked}")
        return self

    @property
    def active(self) -> bool:
        """Whether any rule changes a list."""
        return self != RecommendConfig()


class ExperimentConfig(_Frozen):
    """Champion and challenger as a randomised experiment in the batch export (see
    :mod:`recsys_lib.outcomes`)."""

    challenger_share: float = Field(0.0, ge=0.0, lt=1.0)
    """Share of users whose exported list comes from the version behind the ``challenger`` alias
    (0: everyone gets the champion's, as without an experiment; 0.5: an even split). Without a
    challenger registered everyone gets the champion's."""
    name: str = Field("champion-vs-challenger", pattern=NAME_PATTERN)
    """Names the experiment and keys the assignment: a user's arm is a hash of this name and the
    user id, so it is the same every day while the name stays; a new name reshuffles users."""


OutcomeMetric = Literal[
    "hit_rate",
    "conversion_rate",
    "add_to_cart_rate",
    "purchase_share",
    "revenue_share",
    "click_through_rate",
    "repeat_purchase_rate",
]


class OutcomesConfig(_Frozen):
    """The outcome report: what shoppers did with an export in the days after it."""

    window_days: int = Field(7, ge=1, le=90, title="Report window (days)")
    """Days of events after the export date that count towards its report (D, D + window_days];
    a report made before they have all landed is marked partial."""
    primary_metric: OutcomeMetric = "hit_rate"
    """The metric whose difference between the arms gives the verdict (and, with
    ``evaluation.promote_on: online``, the promotion). ``click_through_rate`` detects small gaps
    soonest (it counts impressions, not users; see benchmarks/RESULTS.md) but needs impressions
    logged; ``hit_rate`` measures sales."""
    alpha: float = Field(0.05, gt=0.0, lt=0.5, title="Significance level")
    """Significance level, applied to p-values adjusted for the number of metrics compared (Holm)."""
    min_days: int = Field(3, ge=1, le=90)
    """Complete daily reports in a row in which the challenger beats the champion on the primary
    metric with significance before online promotion moves the alias."""


class ServeConfig(_Frozen):
    """The live service (``recsys serve``): the champion answering HTTP requests."""

    host: str = "127.0.0.1"
    """Interface to listen on (``0.0.0.0`` in a container)."""
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    """uvicorn worker processes, each with its own copy of the model: one request scores on one core
    at a time per worker, so about one per core that serving may use."""
    default_k: int | None = Field(None, ge=1)
    """Recommendations per request when the request names none; defaults to ``export.k``, so a
    request without ``k`` gets what the batch export wrote."""
    max_k: int = Field(100, ge=1, le=1000)
    """The most recommendations (and ``/similar`` neighbours) one request may ask for."""
    max_recent_items: int = Field(50, ge=1, le=1000)
    """The most ``recent_items`` one request may send (a sequence model reads its
    ``sequential.max_length`` newest)."""
    max_batch: int = Field(32, ge=1, le=1024)
    """The most ``/recommend`` requests a worker scores together (those that arrived while it was
    busy): one encoder pass and one search for all of them."""
    max_candidates: int = Field(1000, ge=1, le=100_000)
    """The most ``candidates`` one ``/rerank`` request may send."""
    poll_seconds: float = Field(30.0, gt=0.0)
    """How often the service asks the registry whether the ``champion`` alias moved."""


#: Dataset-level validation checks whose severity can be configured (row-level rules always quarantine).
CheckName = Literal[
    "quarantine_share",
    "referential_integrity",
    "volume",
    "event_type_drift",
    "category_drift",
    "freshness",
    "catalogue_categories",
]
Severity = Literal["fail", "warn"]
DEFAULT_SEVERITY: dict[str, Severity] = {"catalogue_categories": "warn"}


class ValidationConfig(_Frozen):
    """Thresholds of the dataset-level checks (see recsys_lib.validation)."""

    max_quarantine_share: float = Field(0.05, ge=0.0, le=1.0)
    """Rows breaking a row-level rule (null id, unknown event type, negative price, ...) go to
    ``quarantine/`` and the run goes on while they are at most this share of the events."""
    min_catalogue_share: float = Field(0.95, ge=0.0, le=1.0)
    """Referential integrity: at least this share of events must name an item in the catalogue."""
    volume_band: tuple[float, float] = (0.5, 2.0)
    """The event count must lie within this band of the previous validated snapshot's (ratios)."""
    max_drift_kl: float = Field(0.2, gt=0.0)
    """KL divergence (nats) of the event-type mix and the category mix from the previous validated
    snapshot's above which the drift checks fail."""
    freshness_hours: float | None = Field(48.0, gt=0.0)
    """The newest event must be at most this old at the end of the data interval (two days of a
    daily schedule, so a feed one day late passes). None skips the check. Sources without real
    time (``sequences``) skip it anyway."""
    min_categorised_share: float = Field(0.5, ge=0.0, le=1.0)
    """Catalogue completeness: share of items with a category (content models need it)."""
    severity: dict[CheckName, Severity] = {}
    """Per-check severity overrides, e.g. ``{"category_drift": "warn"}``: a failed ``warn`` check is
    logged and reported but does not stop the run. Defaults: ``fail`` for every check except
    ``catalogue_categories`` (``warn``)."""

    @model_validator(mode="after")
    def _band_is_ordered(self) -> ValidationConfig:
        low, high = self.volume_band
        if not 0 < low <= 1 <= high:
            raise ValueError(f"validation.volume_band must satisfy 0 < low <= 1 <= high, got {self.volume_band}")
        return self

    def severity_of(self, check: CheckName) -> Severity:
        """``fail`` or ``warn`` for dataset-level check ``check``: the configured override, else the
        default (``warn`` for ``catalogue_categories``, ``fail`` for every other check)."""
        return self.severity.get(check, DEFAULT_SEVERITY.get(check, "fail"))


class PipelineConfig(_Frozen):
    """Every setting of a pipeline run, one section per concern; built by :func:`load_config`,
    frozen, and unknown keys are refused."""

    storage: StorageConfig = StorageConfig()
    data: DataConfig = DataConfig()
    validation: ValidationConfig = ValidationConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    registry: RegistryConfig = RegistryConfig()
    export: ExportConfig = ExportConfig()
    serve: ServeConfig = ServeConfig()
    recommend: RecommendConfig = RecommendConfig()
    experiment: ExperimentConfig = ExperimentConfig()
    outcomes: OutcomesConfig = OutcomesConfig()

    @property
    def registered_model_name(self) -> str:
        """MLflow registered model name: ``registry.model_name``, or ``recsys-<dataset>`` when unset."""
        return self.registry.model_name or f"recsys-{self.data.dataset}"

    @property
    def experiment_name(self) -> str:
        """MLflow experiment name: ``registry.experiment``, or ``recsys-<dataset>`` when unset."""
        return self.registry.experiment or f"recsys-{self.data.dataset}"

    @field_validator("data")
    @classmethod
    def _known_event_types(cls, data: DataConfig) -> DataConfig:
        bad = [t for t in data.event_types if not _NAME_RE.match(t)]
        if bad:
            raise ValueError(f"data.event_types has invalid names {bad}")
        return data


#: Short parameter names and the config paths they set: the one table of run parameters. A DAG
#: picks the names it shows; type, bounds, title, description and default of each Param come from
#: the field (recsys_lib.params), and a run's params are applied through this table.
PARAM_ALIASES: dict[str, str] = {
    "dataset": "data.dataset",
    "source": "data.source",
    "model": "model.name",
    "embedding_dim": "model.embedding_dim",
    "split": "features.split",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "learning_rate": "train.learning_rate",
    "seed": "train.seed",
    "k": "export.k",
    "min_improvement": "evaluation.min_improvement",
    "force_promote": "evaluation.force_promote",
    "export_shards": "export.shards",
    "pseudonymize": "export.pseudonymize",
    "window_days": "data.window_days",
    "challenger_share": "experiment.challenger_share",
    "promote_on": "evaluation.promote_on",
    # business rules (recommend.*)
    "exclude_categories": "recommend.exclude_categories",
    "only_categories": "recommend.only_categories",
    "exclude_brands": "recommend.exclude_brands",
    "only_brands": "recommend.only_brands",
    "min_price": "recommend.min_price",
    "max_price": "recommend.max_price",
    "new_arrival_days": "recommend.new_arrival_days",
    "new_arrival_boost": "recommend.new_arrival_boost",
    "max_per_category": "recommend.max_per_category",
    "pinned_items": "recommend.pinned_items",
    "blocked_items": "recommend.blocked_items",
    "repeat_purchases": "recommend.repeat_purchases",
    "repeat_purchases_by_category": "recommend.repeat_purchases_by_category",
    "buy_again_k": "recommend.buy_again_k",
    "buy_again_share": "recommend.buy_again_share",
    "diversity": "recommend.diversity",
    "diversity_by": "recommend.diversity_by",
    # outcome reports (outcomes.*)
    "outcome_window_days": "outcomes.window_days",
    "primary_metric": "outcomes.primary_metric",
    "alpha": "outcomes.alpha",
    "min_days": "outcomes.min_days",
}

#: Environment variables that set config values (below overrides, above the YAML file).
ENV_VARS: dict[str, str] = {
    "RECSYS_BUCKET": "storage.bucket",
    "RECSYS_PREFIX": "storage.prefix",
    "RECSYS_S3_MAX_ATTEMPTS": "storage.max_attempts",
    "RECSYS_S3_READ_TIMEOUT": "storage.read_timeout",
    "RECSYS_S3_CONNECT_TIMEOUT": "storage.connect_timeout",
    "RECSYS_DATASET": "data.dataset",
    "RECSYS_MLFLOW_UI_URL": "registry.ui_url",
}
#: The YAML config file every entry point reads when no path is given.
CONFIG_FILE_VAR = "RECSYS_CONFIG"
#: The pseudonymisation key (a secret: never in a config file, a parameter or a log).
PSEUDONYM_KEY_VAR = "RECSYS_PSEUDONYM_KEY"
#: The commit of the running code, set by images that have no git checkout.
GIT_COMMIT_VAR = "RECSYS_GIT_COMMIT"
#: How ``recsys serve`` hands its settings to uvicorn's worker processes (internal).
SERVE_SPEC_VAR = "RECSYS_SERVE_SPEC"
_OTHER_VARS = (CONFIG_FILE_VAR, PSEUDONYM_KEY_VAR, GIT_COMMIT_VAR, SERVE_SPEC_VAR)


def environment(var: str) -> str | None:
    """The value of one of the project's variables that are not config values (:data:`_OTHER_VARS`:
    secrets, build facts, process plumbing); None when unset or empty. Every ``RECSYS_*`` variable is
    read here or in :func:`load_config`, nowhere else."""
    if var not in _OTHER_VARS:
        raise ConfigError(f"{var} is not one of the project's environment variables {[*ENV_VARS, *_OTHER_VARS]}")
    return os.environ.get(var) or None


def _set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for ``path = "a.b.c"`` (unknown keys are rejected at validation)."""
    section, _, key = path.partition(".")
    if not key:
        raise ConfigError(f"config override {path!r} needs a section, e.g. 'train.epochs'")
    if section not in PipelineConfig.model_fields:
        raise ConfigError(
            f"unknown config section {section!r} in {path!r}; allowed: {sorted(PipelineConfig.model_fields)}"
        )
    node = tree.setdefault(section, {})
    *parents, leaf = key.split(".")
    for name in parents:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config override {path!r}: {name!r} is a value, not a section")
    node[leaf] = value


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> PipelineConfig:
    """Build the pipeline config from a YAML file (``path``, else ``$RECSYS_CONFIG`` if set), the
    environment (:data:`ENV_VARS`) and overrides.

    Raises ConfigError naming the offending key and the allowed values when anything is invalid.
    """
    tree: dict[str, Any] = {}
    if path is None:
        path = environment(CONFIG_FILE_VAR)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
        tree = {k: dict(v or {}) for k, v in loaded.items()}
    for var, dotted in ENV_VARS.items():
        if os.environ.get(var):
            _set_path(tree, dotted, os.environ[var])
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        dotted = PARAM_ALIASES.get(key, key)
        if "." not in dotted:
            raise ConfigError(
                f"unknown parameter {key!r}; use one of {sorted(PARAM_ALIASES)} or a dotted path like 'train.epochs'"
            )
        _set_path(tree, dotted, value)
    try:
        return PipelineConfig.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
