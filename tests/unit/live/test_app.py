"""The live service over real HTTP (uvicorn on 127.0.0.1, an httpx client), answering from real
trained models; the registry is replaced by an in-memory source here (tests/integration/test_serve.py
serves a DAG-trained champion from a real MLflow server)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn

from recsys_lib import schema
from recsys_lib.config import ModelConfig, RecommendConfig, ServeConfig, TrainConfig
from recsys_lib.errors import ModelError
from recsys_lib.features import FeatureSet
from recsys_lib.live.app import Ranking, create_app
from recsys_lib.live.holder import ModelHolder
from recsys_lib.live.source import Loaded, Target
from recsys_lib.models import create_model
from recsys_lib.serving import ModelBundle
from recsys_lib.serving.live import LiveScorer
from recsys_lib.serving.repurchase import reorders
from recsys_lib.serving.rules import compile_rules

QUICK = TrainConfig(epochs=2, batch_size=64, seed=3)
LIMITS = ServeConfig(max_k=20, max_recent_items=5, max_candidates=50, poll_seconds=0.2)


class Versions:
    """The registry as the holder sees it: which version the alias names, and loading one."""

    name = "recsys-unit"

    def __init__(self, scorers: dict[str, LiveScorer]):
        self.scorers, self.alias, self.broken = scorers, "1", set[str]()

    def target(self) -> Target | None:
        return Target(self.alias)

    def load(self, target: Target) -> Loaded:
        if target.version in self.broken:
            raise ModelError(f"cannot load model bundle of version {target.version}: truncated weights")
        scorer = self.scorers[target.version]
        return Loaded(scorer, self.name, target, scorer.model.name, datetime.now(UTC))


SEPARATE = RecommendConfig(repeat_purchases="separate", buy_again_k=3)


def _scorer(small: FeatureSet, name: str, settings: RecommendConfig | None = None) -> LiveScorer:
    """``name`` trained on ``small``; with ``settings``, served under its rules and buy-again list."""
    model = create_model(ModelConfig(name=name, embedding_dim=8), small.n_users, small.n_items).fit(small, QUICK)
    rules = compile_rules(settings, small.items) if settings else None
    buy_again = reorders(small, rules) if rules else None
    return LiveScorer(ModelBundle.from_training(model, small).scorer(small, rules=rules), buy_again)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def versions(small: FeatureSet) -> Versions:
    return Versions(
        {"1": _scorer(small, "mf_bpr", SEPARATE), "2": _scorer(small, "sasrec"), "3": _scorer(small, "item_knn")}
    )


@pytest.fixture(scope="module")
def service(versions: Versions) -> Iterator[httpx.Client]:
    """The app on a real uvicorn server in a thread; yields a client for its base URL."""
    holder = ModelHolder(versions, LIMITS.poll_seconds)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(holder, LIMITS, default_k=5), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for _ in range(200):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield client
    server.should_exit = True
    thread.join(timeout=10)


def _wait_for_version(client: httpx.Client, version: str, status: str = "ok") -> dict:
    for _ in range(100):
        health = client.get("/healthz").json()
        if health["model_version"] == version and health["status"] == status:
            return health
        time.sleep(0.05)
    raise AssertionError(f"still serving {health}")


def test_recommend_answers_with_the_champion(service: httpx.Client, small: FeatureSet) -> None:
    user = str(small.user_ids[0])
    got = service.post("/recommend", json={"user_id": user, "k": 7})
    assert got.status_code == 200
    body = got.json()
    Ranking.model_validate(body)  # the documented response shape (the app writes its JSON directly)
    assert body["model_name"] == "recsys-unit" and body["model_version"] == "1" and body["source"] == "model"
    assert len(body["items"]) == 7 and body["ignored_items"] == []
    default = service.post("/recommend", json={"user_id": user}).json()
    assert [i["item_id"] for i in default["items"]] == [i["item_id"] for i in body["items"]][:5]  # default_k


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"user_id": "u0001", "k": 0}, "body.k"),
        ({"user_id": "u0001", "k": 21}, "body.k"),
        ({"user_id": "u0001", "recent_items": [f"i{i:04d}" for i in range(6)]}, "body.recent_items"),
        ({"user_id": "u0001", "colour": "red"}, "body.colour"),
        ({"user_id": "u0001", "k": "ten"}, "body.k"),
        ({"user_id": "u0001", "recent_items": "i0001"}, "body.recent_items"),
    ],
)
def test_a_bad_recommend_request_gets_a_4xx_naming_the_field(
    service: httpx.Client, request_body: dict, field: str
) -> None:
    got = service.post("/recommend", json=request_body)
    assert got.status_code == 422
    assert got.json()["error"].startswith(field), got.json()
    assert service.post("/recommend", json={"user_id": "u0001"}).status_code == 200  # the worker is fine


def test_malformed_json_empty_candidates_and_bad_similar_requests_get_4xx(service: httpx.Client) -> None:
    broken = service.post(
        "/recommend", content=b'{"user_id": "u0001", "k": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and "json" in broken.json()["error"].lower()
    empty = service.post("/rerank", json={"user_id": "u0001", "candidates": []})
    assert empty.status_code == 422 and empty.json()["error"].startswith("body.candidates")
    too_many = service.post("/rerank", json={"candidates": [f"i{i}" for i in range(51)]})
    assert too_many.status_code == 422 and too_many.json()["error"].startswith("body.candidates")
    assert service.get("/similar/i0003", params={"k": 0}).status_code == 422
    unknown = service.get("/similar/no-such-item")
    assert unknown.status_code == 404 and "no-such-item" in unknown.json()["error"]
    assert service.post("/recommend", json={"user_id": "u0001"}).status_code == 200


def test_unknown_items_are_ignored_and_listed(service: httpx.Client) -> None:
    got = service.post("/recommend", json={"recent_items": ["i0003", "nope", 7], "exclude": ["gone"]}).json()
    assert got["ignored_items"] == ["nope", "7", "gone"]
    assert got["source"] == "session"  # MF folds the one known session item in
    assert "i0003" not in [i["item_id"] for i in got["items"]]


def test_rerank_and_similar(service: httpx.Client, small: FeatureSet) -> None:
    user = str(small.user_ids[1])
    top = service.post("/recommend", json={"user_id": user, "k": 4}).json()["items"]
    candidates = ["new-item", *[i["item_id"] for i in reversed(top)]]
    got = service.post("/rerank", json={"user_id": user, "candidates": candidates}).json()
    assert [i["item_id"] for i in got["items"]] == [*[i["item_id"] for i in top], "new-item"]
    assert got["items"][-1]["score"] is None and got["ignored_items"] == ["new-item"]
    similar = service.get("/similar/i0003", params={"k": 3}).json()
    assert len(similar["items"]) == 3 and "i0003" not in [i["item_id"] for i in similar["items"]]


def test_a_new_champion_is_picked_up_and_a_failed_load_keeps_the_old_one(
    service: httpx.Client, versions: Versions
) -> None:
    try:
        versions.alias = "2"
        health = _wait_for_version(service, "2")
        assert health["model"] == "sasrec" and health["catalogue_size"] == 30
        session = service.post("/recommend", json={"recent_items": ["i0003", "i0004"], "k": 3}).json()
        assert session["source"] == "session" and session["model_version"] == "2"

        versions.broken.add("3")
        versions.alias = "3"
        health = _wait_for_version(service, "2", status="degraded")
        assert "truncated weights" in health["last_error"]
        assert service.post("/recommend", json={"user_id": "u0001"}).json()["model_version"] == "2"

        versions.broken.clear()  # the next poll succeeds
        assert _wait_for_version(service, "3")["last_error"] is None
    finally:
        versions.alias, versions.broken = "1", set()
        _wait_for_version(service, "1")


def test_buy_again_answers_each_shoppers_reorders_and_404s_without_a_separate_policy(
    service: httpx.Client, versions: Versions, small: FeatureSet
) -> None:
    listed = reorders(small, compile_rules(SEPARATE, small.items))
    assert listed is not None and listed[schema.USER_IDX].nunique() > 5  # the fixture's shoppers buy
    for user in listed[schema.USER_IDX].unique()[:5]:
        mine = listed[listed[schema.USER_IDX] == user]
        got = service.get(f"/buy-again/{small.user_ids[user]}", params={"k": 2})
        assert got.status_code == 200
        body = got.json()
        Ranking.model_validate(body)
        assert [i["item_id"] for i in body["items"]] == [str(small.item_ids[i]) for i in mine[schema.ITEM_IDX][:2]]
        assert [i["score"] for i in body["items"]] == pytest.approx(mine[schema.SCORE][:2].tolist())
        assert {i["reason_kind"] for i in body["items"]} == {"buy_again"} and body["source"] == "purchases"
    assert service.get("/buy-again/someone-new").json()["items"] == []
    assert service.get("/buy-again/u0001", params={"k": 21}).status_code == 422  # serve.max_k
    try:
        versions.alias = "3"  # served without a separate policy
        _wait_for_version(service, "3")
        missing = service.get("/buy-again/u0001")
        assert missing.status_code == 404 and "repeat_purchases" in missing.json()["error"]
    finally:
        versions.alias = "1"
        _wait_for_version(service, "1")


def test_metrics_count_requests_and_time_them_per_endpoint(service: httpx.Client) -> None:
    service.post("/recommend", json={"user_id": "u0001"})
    service.post("/recommend", json={"k": -1})
    text = service.get("/metrics").text
    assert 'recsys_requests_total{endpoint="/recommend",status="200"}' in text
    assert 'recsys_requests_total{endpoint="/recommend",status="422"}' in text
    assert 'recsys_request_seconds_bucket{endpoint="/recommend",le="0.02"}' in text
    assert 'recsys_model_version{model_name="recsys-unit"} 1.0' in text


def test_openapi_documents_the_endpoints_and_their_limits(service: httpx.Client) -> None:
    spec = service.get("/openapi.json").json()
    assert {"/recommend", "/rerank", "/similar/{item_id}", "/buy-again/{user_id}", "/healthz"} <= set(spec["paths"])
    k = spec["components"]["schemas"]["RecommendRequest"]["properties"]["k"]
    assert "at most 20" in k["description"]


def test_concurrent_requests_scored_together_get_what_each_gets_alone(service: httpx.Client, small: FeatureSet) -> None:
    """Requests that reach a busy worker are scored in one batch; each answer is its own."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [{"user_id": str(u), "k": 3 + i % 4} for i, u in enumerate(small.user_ids[:16])]
    bodies += [{"recent_items": ["i0003", f"i{i:04d}"], "k": 5} for i in range(10, 18)]
    before = _batch_totals(service)
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        together = list(pool.map(lambda b: service.post("/recommend", json=b).json(), bodies))
    after = _batch_totals(service)
    alone = [service.post("/recommend", json=b).json() for b in bodies]
    assert together == alone
    assert after["sum"] - before["sum"] == len(bodies)  # every request went through a batch
    assert after["count"] - before["count"] <= len(bodies)


def _batch_totals(client: httpx.Client) -> dict[str, float]:
    text = client.get("/metrics").text
    return {
        key: float(next(line.split()[-1] for line in text.splitlines() if line.startswith(f"recsys_batch_size_{key}")))
        for key in ("sum", "count")
    }
