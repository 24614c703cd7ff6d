-- A second database on the same Postgres for MLflow's tracking store (Airflow's is created by
-- POSTGRES_DB). Runs once, on an empty data volume.
CREATE DATABASE mlflow;
