"""One module per DAG task, each with ``run(params, ds, ...) -> dict`` of URIs, ids and counts.

``ingest`` -> ``validate`` -> ``features`` -> ``train`` -> ``register`` -> ``export`` -> ``publish``.
Airflow tasks and CLI commands call these and nothing else; they import their heavy dependencies
only when called, so importing this package (and parsing a DAG) stays fast.
"""
