"""The live tests use the model tests' feature sets."""

from tests.unit.models.conftest import _one_torch_thread, small  # noqa: F401  (pytest fixtures)
