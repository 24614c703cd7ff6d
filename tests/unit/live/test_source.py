"""A saved bundle folder served without the registry (recsys serve --bundle)."""

from __future__ import annotations

import pytest

from recsys_lib.config import ModelConfig, TrainConfig
from recsys_lib.errors import ModelError
from recsys_lib.features import FeatureSet
from recsys_lib.live.source import BundleFolderSource
from recsys_lib.models import create_model
from recsys_lib.registry.mlflow_registry import save_pyfunc
from recsys_lib.serving import ModelBundle


def test_a_bundle_folder_and_an_mlflow_model_folder_serve_the_same_model(small: FeatureSet, tmp_path) -> None:
    model = create_model(ModelConfig(name="mf_bpr", embedding_dim=8), small.n_users, small.n_items)
    bundle = ModelBundle.from_training(model.fit(small, TrainConfig(epochs=1, seed=3)), small)
    folder = bundle.save(tmp_path / "bundle")
    save_pyfunc(bundle, folder, tmp_path / "pyfunc", [str(u) for u in small.user_ids[:3]])
    answers = []
    for path in (folder, tmp_path / "pyfunc"):
        source = BundleFolderSource(path)
        loaded = source.load(source.target())
        assert loaded.model == "mf_bpr" and loaded.version == "local"
        answers.append(loaded.scorer.recommend(str(small.user_ids[0]), [], 5))
    assert answers[0] == answers[1]
    expected = bundle.recommend_ids([str(small.user_ids[0])], 5)
    assert answers[0].item_ids == expected["item_id"].tolist()


def test_a_folder_that_is_not_a_bundle_says_so(tmp_path) -> None:
    source = BundleFolderSource(tmp_path)
    with pytest.raises(ModelError, match=str(tmp_path)):
        source.load(source.target())
