#!/usr/bin/env bash
# Start an MLflow tracking server for the platform.
#
#   MLFLOW_BACKEND_STORE_URI   sqlite:////abs/path/mlflow.db (local) or postgresql://... (production)
#   MLFLOW_ARTIFACTS_DESTINATION  s3://<bucket>/<prefix>  (artifacts are proxied: clients need no S3 access)
#   MLFLOW_S3_ENDPOINT_URL     only for S3-compatible stores (moto, MinIO); unset for AWS
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   from the environment or an instance role, never from files here
#   MLFLOW_HOST (127.0.0.1)  MLFLOW_PORT (5000)  MLFLOW_WORKERS (2)
#
# `make demo` and the tests start the same server through recsys_lib.devstack.services.
set -euo pipefail
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (sqlite:////abs/mlflow.db or postgresql://...)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (s3://bucket/prefix)}"
exec mlflow server \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
  --host "${MLFLOW_HOST:-127.0.0.1}" \
  --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-2}"
