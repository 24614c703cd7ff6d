"""Model registry (MLflow): logging, registration, aliases, loading. The only place MLflow's
registry is touched; the pure promotion rule lives in :mod:`recsys_lib.registry.promotion`."""
