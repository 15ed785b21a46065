"""Every API error is JSON with a message a person can act on: ``{"detail": ..., "errors": ...}``."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ServiceError(Exception):
    """A domain rule refused the request. ``status`` is the HTTP code the API answers with."""

    status = 400

    def __init__(self, message: str, *, errors: dict | list | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        if status is not None:
            self.status = status


class Conflict(ServiceError):
    status = 409


class TooLarge(ServiceError):
    status = 413


class Unavailable(ServiceError):
    """Something the request needs is down (the task broker): a 503 with Retry-After."""

    status = 503
    retry_after_s = 30


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key in ("detail", "non_field_errors") else f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


logger = logging.getLogger(__name__)
DATABASE_RETRY_AFTER_S = 5


def api_exception_handler(exc, context):
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down or restarting (a dropped connection is replaced on the next request,
        # CONN_HEALTH_CHECKS): a client may retry, so say so instead of a 500.
        logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        body = {"detail": "The database is unavailable (restarting?); try again in a few seconds."}
        return Response(body, status=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})
    if isinstance(exc, ServiceError):
        body = {"detail": exc.message}
        if exc.errors is not None:
            body["errors"] = exc.errors
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Unavailable) else None
        return Response(body, status=exc.status, headers=headers)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": _first_message(data), "errors": data}
    elif isinstance(data, list):
        response.data = {"detail": _first_message(data)}
    return response
