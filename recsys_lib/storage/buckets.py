"""Buckets on an S3 endpoint named explicitly (the dev stack's local server), for setting one up
before anything reads the AWS environment; :class:`~recsys_lib.storage.ObjectStore` does the rest."""

from __future__ import annotations

from collections.abc import Iterable


def ensure_buckets(
    endpoint_url: str, buckets: Iterable[str], *, region: str, access_key_id: str, secret_access_key: str
) -> list[str]:
    """Create each of ``buckets`` that does not exist yet on the S3 endpoint ``endpoint_url`` with
    these credentials; returns the names created (none on a second call)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    created = [name for name in buckets if name not in existing]
    for name in created:
        client.create_bucket(Bucket=name)
    return created
