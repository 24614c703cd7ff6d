"""recsys_lib: the recommendation platform's library.

Every pipeline stage (ingest, validate, features, train, register, export, publish) is a plain
function in :mod:`recsys_lib.pipelines`; Airflow DAGs and the ``recsys`` CLI are thin shells over
them. Importing this package has no side effects.
"""

__version__ = "0.1.0"  # the one version string: pyproject.toml reads it from here (CHANGELOG.md)
