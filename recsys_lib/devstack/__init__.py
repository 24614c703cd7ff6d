"""Local services for demos and tests (moto S3, MLflow server, Airflow helpers); not used in production."""
