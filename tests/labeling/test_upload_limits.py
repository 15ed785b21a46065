"""RANKFORGE_MAX_UPLOAD_BYTES holds before anything is spooled, on every endpoint that takes a body.

The bodies here are real multipart bodies fed to the WSGI handler through ``wsgi.input``. Every
file is spooled to disk (FILE_UPLOAD_MAX_MEMORY_SIZE = 0) by Django's temporary-file handler, here
subclassed to count the bytes it writes: a spooled file is deleted when the request ends, so what
reached the disk can only be seen while it happens.
"""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from rest_framework.test import APIClient

from labeling.models import Comparison, Dataset, Project

pytestmark = pytest.mark.django_db

LIMIT = 500
ENDPOINTS = ("datasets", "comparisons", "preferences", "imports")


class CountingTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    written: list[int] = []

    def receive_data_chunk(self, raw_data, start):
        self.written.append(len(raw_data))
        return super().receive_data_chunk(raw_data, start)


@pytest.fixture
def spool(settings, tmp_path):
    settings.RANKFORGE_MAX_UPLOAD_BYTES = LIMIT
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every uploaded byte would go to disk
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_HANDLERS = [
        f"{__name__}.CountingTemporaryFileUploadHandler" if h.endswith(".TemporaryFileUploadHandler") else h
        for h in settings.FILE_UPLOAD_HANDLERS
    ]
    CountingTemporaryFileUploadHandler.written = []
    return CountingTemporaryFileUploadHandler.written


def spooled_bytes(spool) -> int:
    return sum(spool)


def rows(n: int) -> bytes:
    row = {"prompt": "p" * 40, "completions": ["a", "b", "c"], "chosen": "a", "rejected": "b"}
    return b"".join(json.dumps(row).encode() + b"\n" for _ in range(n))


def multipart(content: bytes) -> bytes:
    return encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("rows.jsonl", content)})


def assert_nothing_created():
    assert not Dataset.objects.exists()
    assert not Comparison.objects.exists()


def assert_names_limit(response, status=413):
    assert response.status_code == status, response.content
    assert f"upload limit is {LIMIT} bytes" in response.json()["detail"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_declared_length_over_the_limit_is_refused_before_the_body_is_read(api, project, admin_user, spool, endpoint):
    body = io.BytesIO(multipart(rows(2000)))  # ~190 KB: past the limit and the envelope allowance
    size = len(body.getvalue())
    response = api(admin_user).generic(
        "POST",
        f"/api/projects/{project.id}/{endpoint}/",
        content_type=MULTIPART_CONTENT,
        CONTENT_LENGTH=str(size),
        **{"wsgi.input": body},
    )
    assert_names_limit(response)
    assert f"{size:,} bytes" in response.json()["detail"]
    assert body.tell() == 0  # not one byte read
    assert spooled_bytes(spool) == 0
    assert_nothing_created()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_file_over_the_limit_is_stopped_while_it_streams(api, project, admin_user, spool, endpoint):
    # The body is inside the envelope allowance, so only counting the file's bytes catches it.
    response = api(admin_user).post(
        f"/api/projects/{project.id}/{endpoint}/", {"file": SimpleUploadedFile("rows.jsonl", rows(10))}
    )
    assert_names_limit(response)
    assert spooled_bytes(spool) == 0  # stopped before the temporary-file handler wrote the chunk
    assert_nothing_created()


def test_session_upload_is_stopped_during_the_csrf_check(project, admin_user, spool):
    """With a session, DRF's CSRF check parses the body before the view runs: the limit holds there."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    client.get("/api/auth/csrf/")
    response = client.post(
        f"/api/projects/{project.id}/datasets/",
        {"file": SimpleUploadedFile("rows.jsonl", rows(10))},
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert_names_limit(response)
    assert spooled_bytes(spool) == 0
    assert_nothing_created()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_chunked_body_without_content_length_is_refused(api, project, admin_user, spool, endpoint):
    body = io.BytesIO(multipart(rows(10)))
    response = api(admin_user).generic(
        "POST",
        f"/api/projects/{project.id}/{endpoint}/",
        content_type=MULTIPART_CONTENT,
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": body},
    )
    assert_names_limit(response, status=411)
    assert "Content-Length" in response.json()["detail"]
    assert body.tell() == 0
    assert_nothing_created()


def test_a_file_sent_to_an_endpoint_that_takes_none_is_stopped_too(api, admin_user, spool):
    """DRF parses multipart on every view: the handler guards them all, not only the import endpoints."""
    response = api(admin_user).post(
        "/api/projects/", {"name": "x", "file": SimpleUploadedFile("big.bin", b"x" * (LIMIT + 1))}
    )
    assert_names_limit(response)
    assert spooled_bytes(spool) == 0
    assert not Project.objects.filter(name="x").exists()


def test_json_body_over_the_body_limit_is_refused_up_front(api, admin_user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api(admin_user).post("/api/projects/", {"name": "x", "instructions": "i" * 2000}, format="json")
    assert response.status_code == 413
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"]
    assert not Project.objects.filter(name="x").exists()


def test_uploads_under_the_limit_still_import(api, project, admin_user, spool):
    response = api(admin_user).post(
        f"/api/projects/{project.id}/comparisons/", {"file": SimpleUploadedFile("rows.jsonl", rows(1))}
    )
    assert response.status_code == 201, response.content
    assert Comparison.objects.count() == 1
    assert spooled_bytes(spool) == len(rows(1))  # the counting handler sees what is spooled
