"""drf-spectacular postprocessing: what every view answers besides its success, and OpenAPI links.

Both are derived from the generated paths, so a new route gets them without a hand-written entry:

- **Path parameters** say what their URL converter matches (``int``: ``minimum: 0``; ``slug``: its
  pattern): a value outside it is not one of these routes at all.
- **Closed request bodies**: a serializer marked ``reject_unknown_fields`` is ``additionalProperties: false``.
- **No NUL**: free-text strings of request bodies and query parameters carry a pattern that refuses
  NUL (PostgreSQL text cannot hold one; the API answers 400).
- **Error responses.** Every error is ``{"detail", "errors"?}`` (config/exceptions.py). Documented per
  operation from what it takes: 400 when it reads a body or query parameters, 401/403 when it needs a
  signed-in user, 404 when its path or body names an object, 409 on writes (state conflicts), 413/415 on
  bodies, 429 on the throttled sign-in views, and 503 everywhere (a database outage is a 503 with
  Retry-After, never a 500).
- **Links** (for clients and for Schemathesis' stateful run, tests/test_api_fuzz.py): from each
  operation's success body to the operations under its path that take one more path parameter, read
  from the body (``id``, ``version``, ``name`` or the parameter's own name; ``results/0/...`` in a
  page), and to the other operations on the same object (path parameters passed through).
"""

import re

from django.urls.converters import get_converters
from rest_framework import serializers

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error: a message a person can act on, and per-field messages where there are any.",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"description": "Per-field messages (a validation error), or structured details."},
    },
    "required": ["detail"],
}
ERROR_TEXT = {
    "400": "The request is invalid; `detail` names the field.",
    "401": "Not signed in.",
    "403": "Signed in, but this role may not do this.",
    "404": "No such object, or not visible to this user.",
    "409": "The object's state does not allow this now.",
    "413": "The upload is over the size limit.",
    "415": "The body's content type is not accepted.",
    "429": "Too many sign-in attempts; see Retry-After.",
    "503": "A service the request needs (database, task broker) is down; see Retry-After.",
}
WRITES = {"post", "put", "patch", "delete"}
METHODS = ("get", "post", "put", "patch", "delete")
PARAM = re.compile(r"{([^}]+)}")


ROUTE_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _path_patterns(generator) -> dict[str, dict[str, str]]:
    """path -> {parameter: the regex its URL converter matches} (``slug`` -> ``[-a-zA-Z0-9_]+``)."""
    converters = get_converters()
    found = {}
    for path, route, _method, _callback in getattr(generator, "endpoints", None) or []:
        found[path] = {
            name: f"^{converters[converter or 'str'].regex}$"
            for converter, name in ROUTE_PARAM.findall(route)
            if (converter or "str") in converters
        }
    return found


def _throttled_paths(generator) -> set[tuple[str, str]]:
    found = set()
    for path, _regex, method, callback in getattr(generator, "endpoints", None) or []:
        view = getattr(callback, "cls", None)
        if view is not None and getattr(view, "throttle_classes", None):
            found.add((path, method.lower()))
    return found


def _error_statuses(path: str, method: str, operation: dict, throttled: bool) -> list[str]:
    params = operation.get("parameters", [])
    statuses = []
    if "requestBody" in operation or any(p["in"] == "query" for p in params):
        statuses.append("400")
    secured = {} not in operation.get("security", [{}])
    if secured or throttled:  # the sign-in views answer 401 to wrong credentials
        statuses.append("401")
    if secured or method in WRITES:  # a write on a session is refused without its CSRF token
        statuses.append("403")
    if PARAM.search(path) or "requestBody" in operation:  # a body may name an object by id too
        statuses.append("404")
    if method in WRITES:
        statuses.append("409")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    if throttled:
        statuses.append("429")
    statuses.append("503")
    return statuses


def _resolve(schema: dict, components: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema or {}


def _item(schema: dict, components: dict) -> tuple[str, dict]:
    """(JSON pointer prefix, object schema) of the object a success body describes."""
    schema = _resolve(schema, components)
    if schema.get("type") == "array":
        return "/0", _resolve(schema.get("items", {}), components)
    results = schema.get("properties", {}).get("results")
    if results and _resolve(results, components).get("type") == "array":
        return "/results/0", _resolve(_resolve(results, components).get("items", {}), components)
    return "", schema


def _source_field(param: str, properties: dict) -> str | None:
    candidates = [param]
    if param.endswith("_id"):
        candidates.append("id")
    candidates += ["version", "name"] if param in ("version", "alias") else []
    return next((c for c in candidates if c in properties), None)


def _links(path, operation, item_pointer: str, properties: dict, operations: list, components: dict) -> dict:
    own = PARAM.findall(path)
    links = {}
    for target_path, _method, target in operations:
        if target is operation:
            continue
        wanted = PARAM.findall(target_path)
        new = [p for p in wanted if p not in own]
        under = target_path.startswith(path)
        parameters = {p: f"$request.path.{p}" for p in wanted if p in own}
        # A collection's body names its items: the new parameter is the next path segment.
        if under and len(new) == 1 and target_path[len(path) :].startswith("{" + new[0] + "}"):
            field = _source_field(new[0], properties)
            if field is None:
                continue
            parameters[new[0]] = f"$response.body#{item_pointer}/{field}"
        elif not (under and own and not new):
            # Elsewhere in the tree: only when the body carries the one missing parameter by name
            # (a lease's ``assignment.id`` -> the assignment's operations).
            if len(new) != 1 or len(wanted) != 1:
                continue
            nested = _resolve(properties.get(new[0].removesuffix("_id"), {}), components)
            if new[0] in properties:
                parameters = {new[0]: f"$response.body#{item_pointer}/{new[0]}"}
            elif new[0].endswith("_id") and "id" in nested.get("properties", {}):  # {"assignment": {"id"}}
                parameters = {new[0]: f"$response.body#{item_pointer}/{new[0].removesuffix('_id')}/id"}
            else:
                continue
        links[target["operationId"]] = {"operationId": target["operationId"], "parameters": parameters}
    return links


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _close_strict_inputs(components: dict) -> None:
    """Serializers with ``reject_unknown_fields = True`` answer 400 to a key they do not declare: say so."""
    for cls in _subclasses(serializers.Serializer):
        if not getattr(cls, "reject_unknown_fields", False):
            continue
        name = cls.__name__.removesuffix("Serializer")
        for component in (f"{name}Request", f"Patched{name}Request"):
            if components.get(component, {}).get("type") == "object":
                components[component]["additionalProperties"] = False


# PostgreSQL text refuses NUL: DRF's CharField answers 400 to one, and so does every query parameter
# (config.api.NulCharacterMiddleware). Said once for every free-text string a client sends.
NO_NUL_PATTERN = "^[^\\x00]*$"


def _refuse_nul(schema: dict) -> None:
    """Free-text strings (no enum, format or pattern of their own) of a request schema refuse NUL."""
    if schema.get("type") == "string" and not ({"enum", "format", "pattern"} & set(schema)):
        schema["pattern"] = NO_NUL_PATTERN
    for value in schema.get("properties", {}).values():
        _refuse_nul(value)
    if isinstance(schema.get("items"), dict):
        _refuse_nul(schema["items"])


def postprocess(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    _close_strict_inputs(components)
    for name, component in components.items():
        if name.endswith("Request"):
            _refuse_nul(component)
    throttled = _throttled_paths(generator)
    patterns = _path_patterns(generator)
    operations = [
        (path, method, operation)
        for path, item in result.get("paths", {}).items()
        for method, operation in item.items()
        if method in METHODS
    ]
    for path, method, operation in operations:
        for parameter in operation.get("parameters", []):
            # Django's <int:...> matches digits only: a negative id is not one of these routes at all.
            schema = parameter.get("schema", {})
            if parameter["in"] == "query":
                _refuse_nul(schema)
            if parameter["in"] != "path":
                continue
            if schema.get("type") == "integer":
                schema.setdefault("minimum", 0)
            elif schema.get("type") == "string" and parameter["name"] in patterns.get(path, {}):
                schema.setdefault("pattern", patterns[path][parameter["name"]])
        responses = operation.setdefault("responses", {})
        for status in _error_statuses(path, method, operation, (path, method) in throttled):
            responses.setdefault(
                status,
                {
                    "description": ERROR_TEXT[status],
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
                },
            )
        for status, response in responses.items():
            if not status.startswith("2"):
                continue
            body = response.get("content", {}).get("application/json", {}).get("schema")
            if body is None:
                continue
            pointer, item = _item(body, components)
            links = _links(path, operation, pointer, item.get("properties", {}), operations, components)
            if links:
                response["links"] = links
    return result
