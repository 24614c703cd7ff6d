# Airflow 3.3.2 with recsys_lib, for the API server, scheduler, dag-processor, triggerer and the
# CPU Celery workers (export shards, validation, features). CPU build of the pinned torch.
#
#   docker build -f docker/airflow.Dockerfile -t recsys-airflow:latest .
FROM apache/airflow:3.3.2-python3.11

# g++ builds the export's one compiled kernel (recsys_lib/search/_fused_scan.cpp) at pip install;
# without it the install still succeeds and the export takes its slower tensor path.
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 g++ \
 && rm -rf /var/lib/apt/lists/*
USER airflow

# The repository's pins (constraints.txt) decide every version; torch comes as its CPU build.
# [airflow] brings Airflow and registers the Recommendations page (the airflow.plugins entry point,
# no plugins folder); [serve] is for the compose stack's recsys-serving, which runs this image.
COPY --chown=airflow:root constraints.txt pyproject.toml setup.py README.md LICENSE /opt/recsys/
COPY --chown=airflow:root recsys_lib /opt/recsys/recsys_lib
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
      -c /opt/recsys/constraints.txt "torch==2.13.0+cpu" \
 && pip install --no-cache-dir -c /opt/recsys/constraints.txt \
      "/opt/recsys[airflow,serve]" "apache-airflow-providers-celery" "apache-airflow-providers-fab" "psycopg2-binary"

COPY --chown=airflow:root dags /opt/airflow/dags
ENV RECSYS_GIT_COMMIT=unknown
