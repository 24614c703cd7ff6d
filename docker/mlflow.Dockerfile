# MLflow tracking server on Postgres with artifacts proxied to S3 (clients need no S3 access).
FROM python:3.11-slim-bookworm
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir -c /tmp/constraints.txt "mlflow==3.17.2" boto3 psycopg2-binary
COPY mlflow/server.sh /usr/local/bin/mlflow-server
ENTRYPOINT ["/usr/local/bin/mlflow-server"]
