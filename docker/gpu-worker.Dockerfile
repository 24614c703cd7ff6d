# The GPU Celery worker: the Airflow image with the CUDA build of the same pinned torch, listening
# only on the `gpu` queue (the DAG's train task). Needs an NVIDIA driver >= 580 on the host for
# CUDA 13 wheels (ECOSYSTEM.md B4) and the NVIDIA container toolkit.
#
#   docker build -f docker/gpu-worker.Dockerfile -t recsys-gpu-worker:latest .
FROM recsys-airflow:latest

# PyPI's torch wheel is the CUDA build; replace the CPU one, keep everything else pinned.
RUN pip install --no-cache-dir --force-reinstall --no-deps "torch==2.13.0" \
 && pip install --no-cache-dir "torch==2.13.0"

ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
CMD ["celery", "worker", "--queues", "gpu", "--concurrency", "1"]
