"""The live service's HTTP application (FastAPI; ``recsys serve`` runs it on uvicorn).

- ``POST /recommend`` ``{user_id?, recent_items?, k?, exclude?}``: ranked items for a user and
  their session; without a session, exactly the row the batch export wrote for that user;
- ``POST /rerank`` ``{user_id?, recent_items?, candidates}``: a search engine's result list in
  the user's order (items the model does not score keep their order after the others);
- ``GET /similar/{item_id}?k=``: the nearest available items;
- ``GET /buy-again/{user_id}?k=``: the shopper's likeliest re-orders, as the export's
  ``buy_again`` table (404 unless ``recommend.repeat_purchases`` separates some items);
- ``GET /healthz``: the model served, since when, the catalogue, the last load error;
- ``GET /metrics``: Prometheus counters and latency histograms per endpoint, the model version;
- ``GET /docs``: the OpenAPI page.

Request limits come from ``serve.*`` config; a request outside them gets a 4xx whose ``error``
names the field. Unknown item ids are ignored and listed in ``ignored_items``.
"""

# No ``from __future__ import annotations``: FastAPI reads the request models from the route
# functions' annotations, and those models are built inside create_app (their limits come from config).
import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from recsys_lib.config import SERVE_SPEC_VAR, PipelineConfig, ServeConfig, environment, load_config
from recsys_lib.extras import MissingExtraError, extra_message

try:
    from fastapi import FastAPI, Path, Query, Request, Response
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
except ModuleNotFoundError as exc:
    raise MissingExtraError(extra_message("serve", "recsys serve", [exc.name or str(exc)])) from None

from recsys_lib.live.holder import ModelHolder
from recsys_lib.live.source import BundleFolderSource, ChampionSource, Loaded
from recsys_lib.serving.live import Ranked
from recsys_lib.serving.live import Request as Ask

SPEC_VARIABLE = SERVE_SPEC_VAR
"""Environment variable through which ``recsys serve`` hands each uvicorn worker what to serve."""
_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class ScoredItem(BaseModel):
    """One listed item: its id, the model's score, and why it is listed (the history item behind it, the kind)."""

    item_id: str
    score: float | None = Field(description="the model's score; null for a re-ranked item it does not score")
    reason_item_id: str | None = Field(None, description="the history item this one is recommended because of")
    reason_kind: str | None = Field(
        None, description="why it is listed: co_purchase, similar_item, popular, new_arrival, buy_again or rule"
    )


class Ranking(BaseModel):
    """The answer to ``/recommend`` and ``/rerank``: items best first, where the user's history came
    from, the model version that ranked them, and the request's unknown item ids."""

    items: list[ScoredItem]
    source: str = Field(
        description="model (the user's stored history), session, popularity (the fallback), or purchases (buy-again)"
    )
    model_name: str
    model_version: str
    ignored_items: list[str] = Field(description="request item ids the model does not know (ignored)")


class Health(BaseModel):
    """The answer to ``/healthz``: what is served (version, kind, since when, from which export's
    features), the catalogue's size, and the last poll and its error."""

    status: str = Field(description="ok, degraded (serving, but the newest champion failed to load) or unavailable")
    model_name: str
    model_version: str | None
    model: str | None = Field(description="the model kind, e.g. mf_bpr")
    loaded_at: str | None
    features_dt: str | None = Field(description="the export date whose history and catalogue it serves from")
    user_vectors: str | None = Field(
        None,
        description="the published table whose user vectors answer known users without a session "
        "(exactly the export's rows); null: the model computes them per request",
    )
    catalogue_size: int | None
    available_items: int | None
    last_checked: str | None
    last_error: str | None


def create_app(holder: ModelHolder, config: ServeConfig, *, default_k: int, poll: bool = True) -> FastAPI:
    """The service answering from ``holder``'s model; with ``poll``, the holder loads the champion
    at startup and polls for a new one while the app runs."""

    def recent() -> Any:
        return Field(
            default_factory=list,
            max_length=config.max_recent_items,
            description="item ids the shopper met in this session, oldest first",
        )

    class RecommendRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
        user_id: str | None = None
        recent_items: list[str] = recent()
        k: int | None = Field(None, ge=1, le=config.max_k, description=f"default {default_k}, at most {config.max_k}")
        exclude: list[str] = Field(default_factory=list, max_length=config.max_k + config.max_recent_items)

    class RerankRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
        user_id: str | None = None
        recent_items: list[str] = recent()
        candidates: list[str] = Field(min_length=1, max_length=config.max_candidates)

    registry = CollectorRegistry()
    requests = Counter("recsys_requests", "Requests answered", ["endpoint", "status"], registry=registry)
    latency = Histogram(
        "recsys_request_seconds", "Time to answer", ["endpoint"], buckets=_LATENCY_BUCKETS, registry=registry
    )
    batch_sizes = Histogram(
        "recsys_batch_size",
        "Recommend requests scored together",
        buckets=(1, 2, 4, 8, 16, 32, 64),
        registry=registry,
    )
    batcher = _Batcher(config.max_batch, batch_sizes)
    served = Gauge("recsys_model_version", "Version of the model served (0: none)", ["model_name"], registry=registry)
    served.labels(holder.source.name).set_function(
        lambda: float(holder.current.version) if holder.current and holder.current.version.isdigit() else 0.0
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if poll:
            holder.start()
        yield
        if poll:
            holder.stop()

    app = FastAPI(
        title="recsys live recommendations",
        description="The champion model of one dataset, answering one shopper at a time.",
        lifespan=lifespan,
    )

    app.add_middleware(_Measured, latency=latency, requests=requests)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(status_code=422, content={"error": _one_line(errors), "detail": _jsonable(errors)})

    def model() -> Loaded:
        loaded = holder.current
        if loaded is None:
            raise _Unavailable(holder.last_error or "no champion loaded yet")
        return loaded

    @app.exception_handler(_Unavailable)
    async def unavailable(_: Request, exc: _Unavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"error": str(exc)})

    # Scoring runs on the event loop: it takes a few milliseconds and one worker scores one batch
    # at a time anyway (the index's buffers), so a thread pool hop would only add latency; add
    # workers (serve.workers) to use more cores. Requests that arrive while a batch is scored are
    # scored together next (one encoder pass, one search).
    @app.post("/recommend", response_model=Ranking)
    async def recommend(body: RecommendRequest) -> Response:
        loaded = model()
        request = Ask(body.user_id, body.recent_items, body.k or default_k, body.exclude)
        return _ranking(await batcher.submit(loaded, request), loaded)

    @app.post("/rerank", response_model=Ranking)
    async def rerank(body: RerankRequest) -> Response:
        loaded = model()
        return _ranking(loaded.scorer.rerank(body.user_id, body.recent_items, body.candidates), loaded)

    @app.get("/similar/{item_id}", response_model=Ranking, responses={404: {"description": "unknown item"}})
    async def similar(
        item_id: Annotated[str, Path(max_length=256)],
        k: Annotated[int | None, Query(ge=1, le=config.max_k)] = None,
    ) -> Response:
        loaded = model()
        try:
            ranked = loaded.scorer.similar(item_id, k or default_k)
        except KeyError:
            return JSONResponse(status_code=404, content={"error": f"item_id {item_id!r} is not in the catalogue"})
        if ranked is None:
            return JSONResponse(status_code=404, content={"error": f"model {loaded.model} has no item similarity"})
        return _ranking(ranked, loaded)

    @app.get("/buy-again/{user_id}", response_model=Ranking, responses={404: {"description": "no buy-again list"}})
    async def buy_again(
        user_id: Annotated[str, Path(max_length=256)],
        k: Annotated[int | None, Query(ge=1, le=config.max_k)] = None,
    ) -> Response:
        loaded = model()
        ranked = loaded.scorer.buy_again(user_id, k or default_k)
        if ranked is None:
            return JSONResponse(
                status_code=404,
                content={
                    "error": "no buy-again list: recommend.repeat_purchases (or repeat_purchases_by_category) "
                    "puts no item under 'separate' (e.g. repeat_purchases: separate), or the service answers "
                    "from a model's own history (no published export names its features)"
                },
            )
        return _ranking(ranked, loaded)

    @app.get("/healthz", response_model=Health, responses={503: {"description": "no model loaded"}})
    def healthz() -> JSONResponse:
        loaded = holder.current
        status = "unavailable" if loaded is None else ("degraded" if holder.last_error else "ok")
        health = Health(
            status=status,
            model_name=holder.source.name,
            model_version=loaded.version if loaded else None,
            model=loaded.model if loaded else None,
            loaded_at=loaded.loaded_at.isoformat() if loaded else None,
            features_dt=loaded.target.features_dt if loaded else None,
            user_vectors=loaded.user_vectors if loaded else None,
            catalogue_size=loaded.scorer.n_items if loaded else None,
            available_items=loaded.scorer.n_available if loaded else None,
            last_checked=holder.last_checked.isoformat() if holder.last_checked else None,
            last_error=holder.last_error,
        )
        return JSONResponse(status_code=503 if loaded is None else 200, content=health.model_dump())

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class _Batcher:
    """Scores together the ``/recommend`` requests that reach a worker while it is busy.

    The first request starts a drain; before each batch the drain yields to the event loop a few
    times, so requests already read from their sockets reach the queue, then scores up to
    ``max_batch`` of them in one :meth:`~recsys_lib.serving.live.LiveScorer.recommend_many`. A lone
    request waits for nothing but those few yields (microseconds)."""

    YIELDS = 4

    def __init__(self, max_batch: int, sizes: Histogram):
        self.max_batch, self.sizes = max_batch, sizes
        self.pending: list[tuple[Ask, asyncio.Future[Ranked], Loaded]] = []
        self.drain: asyncio.Task[None] | None = None

    async def submit(self, loaded: Loaded, request: Ask) -> Ranked:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Ranked] = loop.create_future()
        self.pending.append((request, future, loaded))
        if self.drain is None or self.drain.done():
            self.drain = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self.pending:
            for _ in range(self.YIELDS):
                await asyncio.sleep(0)
            batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
            groups: dict[int, tuple[Loaded, list[tuple[Ask, asyncio.Future[Ranked]]]]] = {}
            for request, future, loaded in batch:  # a model swap may fall between two requests
                groups.setdefault(id(loaded), (loaded, []))[1].append((request, future))
            for loaded, items in groups.values():
                self.sizes.observe(len(items))
                try:
                    answers = loaded.scorer.recommend_many([request for request, _ in items])
                except Exception as exc:  # each request of the batch fails alone (HTTP 500)
                    for _, future in items:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), answer in zip(items, answers, strict=True):
                    if not future.done():  # the client may have gone away
                        future.set_result(answer)


class _Unavailable(Exception):
    """No model to answer with (503)."""


def _ranking(ranked: Ranked, loaded: Loaded) -> Response:
    """The answer as JSON, written directly (FastAPI's response validation and encoder cost more
    than the scoring of a small list); its shape is :class:`Ranking`, tested against it."""
    body = {
        "items": [
            {"item_id": i, "score": s, "reason_item_id": r, "reason_kind": w}
            for i, s, r, w in zip(
                ranked.item_ids,
                ranked.scores,
                ranked.reasons,
                ranked.reason_kinds or [None] * len(ranked.item_ids),
                strict=True,
            )
        ],
        "source": ranked.source,
        "model_name": loaded.name,
        "model_version": loaded.version,
        "ignored_items": ranked.ignored,
    }
    return Response(json.dumps(body), media_type="application/json")


class _Measured:
    """ASGI middleware counting and timing requests per route (a plain ASGI wrapper: Starlette's
    ``BaseHTTPMiddleware`` costs a fraction of a millisecond per request)."""

    def __init__(self, app: Any, *, latency: Histogram, requests: Counter):
        self.app, self.latency, self.requests = app, latency, requests

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")
            if endpoint != "/metrics":
                self.latency.labels(endpoint).observe(time.perf_counter() - started)
                self.requests.labels(endpoint, str(status)).inc()


def _one_line(errors: Any) -> str:
    """``body.k: Input should be less than or equal to 100 (got 500); ...``"""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()))
        got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict | list) else ""
        parts.append(f"{where}: {err.get('msg', 'invalid')}{got}")
    return "; ".join(parts)[:1000]


def _jsonable(errors: Any) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors
    ]


def service_config(spec: dict[str, Any]) -> PipelineConfig:
    """The configuration ``recsys serve`` was started with: ``RECSYS_CONFIG``, then its overrides."""
    return load_config(None, overrides=spec.get("overrides") or {})


def app_from_environment() -> FastAPI:
    """The app of one ``recsys serve`` worker process, from :data:`SPEC_VARIABLE`."""
    from recsys_lib.storage import ObjectStore

    spec = json.loads(environment(SPEC_VARIABLE) or "{}")
    config = service_config(spec)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("recsys_lib").setLevel(logging.INFO)
    if spec.get("bundle"):
        source: BundleFolderSource | ChampionSource = BundleFolderSource(spec["bundle"])
    else:
        from recsys_lib.registry.connection import apply_http_settings

        apply_http_settings(config.registry)  # a registry that is down makes a poll fail in bounded time
        source = ChampionSource(config, ObjectStore.from_config(config.storage))
    holder = ModelHolder(source, config.serve.poll_seconds)
    return create_app(holder, config.serve, default_k=config.serve.default_k or config.export.k)
