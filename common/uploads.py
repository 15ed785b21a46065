"""Request-size limits enforced before a body is read, for every endpoint.

``UploadLimitMiddleware`` (first in MIDDLEWARE) answers from the headers alone: a body declared
larger than the limit is a 413, and a body without a Content-Length (chunked transfer encoding) is a
411 -- Django's WSGI handler reads no body without a Content-Length, so such an upload would
otherwise arrive empty and fail with a confusing "no file". Multipart bodies may be as large as
``RANKFORGE_MAX_UPLOAD_BYTES`` plus room for the envelope; other bodies (JSON) as large as
``DATA_UPLOAD_MAX_MEMORY_SIZE``, since DRF's parsers read them into memory and bypass Django's check.

``UploadLimitHandler`` (first in FILE_UPLOAD_HANDLERS) counts the file bytes as the multipart parser
streams them and stops the request as soon as they pass the limit, before the next handler spools
the chunk to disk. It is the check that holds when the declared length cannot be trusted (a body
that is smaller than its envelope allowance but whose file is over the limit; servers that do not
cut the body at Content-Length). Views still see the 413 when the body is first parsed -- also when
that is the CSRF check of a session request, before the view runs.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.http import JsonResponse
from rest_framework.exceptions import APIException

# Room for the multipart envelope (boundaries, part headers, the small form fields) around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_limit() -> int:
    return settings.RANKFORGE_MAX_UPLOAD_BYTES


def too_large_message(size: int | None = None) -> str:
    limit = upload_limit()
    what = f"The upload is {size:,} bytes" if size is not None else "The upload is too large"
    return f"{what}; the upload limit is {limit:,} bytes (RANKFORGE_MAX_UPLOAD_BYTES)."


class UploadTooLarge(APIException, RequestDataTooBig):
    """A 413 in DRF views; outside them Django answers a SuspiciousOperation (400) -- never a 500."""

    status_code = 413
    default_code = "upload_too_large"


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refusal = self.refusal(request.META)
        return refusal if refusal is not None else self.get_response(request)

    @staticmethod
    def refusal(meta) -> JsonResponse | None:
        declared = meta.get("CONTENT_LENGTH")
        if not declared:
            if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
                message = (
                    "A request body needs a Content-Length header (chunked transfer encoding is not accepted); "
                    f"the upload limit is {upload_limit():,} bytes (RANKFORGE_MAX_UPLOAD_BYTES)."
                )
                return JsonResponse({"detail": message}, status=411)
            return None
        try:
            size = int(declared)
        except ValueError:
            return JsonResponse({"detail": f"Content-Length {declared!r} is not a number of bytes."}, status=400)
        if meta.get("CONTENT_TYPE", "").lower().startswith("multipart/"):
            if size > upload_limit() + MULTIPART_OVERHEAD_BYTES:
                return JsonResponse({"detail": too_large_message(size)}, status=413)
            return None
        body_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if body_limit is not None and size > body_limit:
            message = (
                f"The request body is {size:,} bytes; the limit for a body that is not a multipart upload is "
                f"{body_limit:,} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
            )
            return JsonResponse({"detail": message}, status=413)
        return None


class UploadLimitHandler(FileUploadHandler):
    """Counts the bytes of every file in the request; past the limit the request stops with a 413."""

    received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        if content_length > upload_limit() + MULTIPART_OVERHEAD_BYTES:
            raise UploadTooLarge(too_large_message(content_length))

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > upload_limit():
            raise UploadTooLarge(too_large_message())
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler (memory or temporary file) builds the file
