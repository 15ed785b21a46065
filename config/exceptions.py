"""Every API error is JSON with a message a person can act on: ``{"detail": ..., "errors": ...}``."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
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


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key in ("detail", "non_field_errors") else f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def api_exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        body = {"detail": exc.message}
        if exc.errors is not None:
            body["errors"] = exc.errors
        return Response(body, status=exc.status)
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
