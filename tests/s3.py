"""A real S3 endpoint for tests (moto's server on 127.0.0.1, not a patched client) and a fresh bucket
with the settings ``ARTIFACT_STORAGE=s3`` gives. A test module uses the fixtures by naming them:
``s3_endpoint = s3_fixtures.s3_endpoint`` and ``s3 = s3_fixtures.s3`` (``from tests import s3 as s3_fixtures``)."""

import logging
import uuid

import boto3
import pytest

REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: a free port
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Bucket:
    def __init__(self, endpoint: str, name: str):
        self.name = name
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        self.client.create_bucket(Bucket=name)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)


@pytest.fixture
def s3(s3_endpoint, settings, monkeypatch, tmp_path) -> Bucket:
    """A fresh bucket, and the settings ARTIFACT_STORAGE=s3 gives (credentials from the environment)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bucket = Bucket(s3_endpoint, f"rankforge-{uuid.uuid4().hex[:12]}")
    settings.ARTIFACT_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.name,
                "endpoint_url": s3_endpoint,
                "region_name": REGION,
                "file_overwrite": True,
                "default_acl": None,
            },
        },
    }
    return bucket
