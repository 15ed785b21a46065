"""drf-spectacular postprocessing: what every view answers besides its success, and OpenAPI links.

Both are derived from the generated paths, so a new route gets them without a hand-written entry:

- **Path parameters** say what their URL converter matches (``int``: ``minimum: 0``; ``slug``: its
  pattern): a value outside it is not one of these routes at all.
- **Closed request bodies**: a serializer marked ``reject_unknown_fields`` is ``additionalProperties: false``.
- **Whole PATCH bodies**: drf-spectacular documents every PATCH body as partial (nothing required); a
  serializer marked ``validated_whole`` is validated whole by its view, so its required fields stay required.
- **Blank and empty**: a trimmed CharField that may not be blank has a pattern that needs a character
  other than whitespace (as ``str.strip()`` sees it); a ListField that may not be empty has ``minItems: 1``.
- **Rules across fields**: a serializer's ``schema_rules`` (JSON Schema keywords: ``oneOf``, ``not``, ...)
  are merged into its request schema, next to the ``validate()`` that checks them. A ``oneOf`` or
  ``anyOf`` rule goes inside ``allOf`` (the same constraint): code generators read a ``oneOf`` beside
  ``properties`` as "the body is one of these branches" and drop the properties
  (tests/test_generated_client.py builds a client from this schema).
- **Form bodies carry no null**: a form field is text, and DRF reads an empty one as null; the form
  media types of a body get a copy of its schema without ``nullable`` (a client that sends the JSON
  spelling ``null`` in a form sends the string "null"), and a required list has at least one item
  (an empty one is no field at all) and a boolean is never required (a form leaves out a false
  checkbox, and DRF reads a missing one as false). A body with a JSON object field is not offered as
  x-www-form-urlencoded (OpenAPI's form encoding flattens an object; DRF reads JSON text).
- **No NUL**: free-text strings of request bodies and query parameters carry a pattern that refuses
  NUL (PostgreSQL text cannot hold one; the API answers 400).
- **Error responses.** Every error is ``{"detail", "errors"?}`` (common/exceptions.py). Documented per
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
            elif new[0].endswith("_id") and nested.get("type") == "integer":  # a run's {"round": 3}
                parameters = {new[0]: f"$response.body#{item_pointer}/{new[0].removesuffix('_id')}"}
            else:
                continue
        links[target["operationId"]] = {"operationId": target["operationId"], "parameters": parameters}
    return links


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _request_components(cls, components: dict):
    name = cls.__name__.removesuffix("Serializer")
    for component in (f"{name}Request", f"Patched{name}Request"):
        if components.get(component, {}).get("type") == "object":
            yield component, components[component]


# Rules that say "one of these shapes": kept as allOf: [{oneOf: ...}] beside the properties.
ALTERNATIVES = ("oneOf", "anyOf")


def _describe_inputs(components: dict) -> None:
    """What request serializers say about themselves beyond their fields (see the module docstring):
    ``reject_unknown_fields`` (a key they do not declare is a 400), ``validated_whole`` (a PATCH
    still requires the required fields) and ``schema_rules`` (rules across fields)."""
    for cls in _subclasses(serializers.Serializer):
        for name, component in _request_components(cls, components):
            if getattr(cls, "reject_unknown_fields", False):
                component["additionalProperties"] = False
            fields = cls().fields
            if getattr(cls, "validated_whole", False) and name.startswith("Patched"):
                required = [n for n, f in fields.items() if f.required and not f.read_only]
                if required:
                    component["required"] = required
            _field_rules(fields, component.get("properties", {}))
            rules = getattr(cls, "schema_rules", {})
            for keyword, value in (rules() if callable(rules) else rules).items():
                if keyword in ALTERNATIVES:
                    component.setdefault("allOf", []).append({keyword: value})
                elif keyword == "allOf":
                    component.setdefault("allOf", []).extend(value)
                else:
                    component[keyword] = value


def rule(component: dict, keyword: str) -> list:
    """The branches of ``component``'s ``oneOf`` or ``anyOf`` rule (from its ``schema_rules``)."""
    return next((entry[keyword] for entry in component.get("allOf", []) if keyword in entry), [])


# Python's whitespace, as str.strip() (DRF's trim_whitespace) sees it: wider than a pattern's \s.
PY_SPACE = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK_PATTERN = rf"^[^\x00]*[^\x00{PY_SPACE}][^\x00]*$"


def _field_rules(fields: dict, properties: dict) -> None:
    """What DRF checks on a field that drf-spectacular leaves out: a trimmed CharField that may not be
    blank needs a character other than whitespace (and no NUL); a list that may not be empty, an item."""
    for name, field in fields.items():
        schema = properties.get(name)
        if field.read_only or not isinstance(schema, dict):
            continue
        if (
            isinstance(field, serializers.CharField)
            and field.trim_whitespace
            and not field.allow_blank
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & set(schema)
        ):
            schema["pattern"] = NOT_BLANK_PATTERN
        if isinstance(field, serializers.ListField) and not field.allow_empty and schema.get("type") == "array":
            schema["minItems"] = max(1, schema.get("minItems", 0))


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _without_null(schema):
    """``schema`` for a form field: no ``nullable``, no ``NullEnum`` alternative."""
    if isinstance(schema, list):
        return [_without_null(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _without_null(value) for key, value in schema.items() if key != "nullable"}
    for keyword in ("oneOf", "anyOf"):
        if keyword in out:
            options = [o for o in out[keyword] if o != {"$ref": f"#/components/schemas/{NULL_ENUM}"}]
            if len(options) == 1 and set(out) == {keyword}:
                return options[0]
            out[keyword] = options
    return out


NULL_ENUM = "NullEnum"


def _has_object_field(schema: dict, components: dict) -> bool:
    for prop in _resolve(schema, components).get("properties", {}).values():
        prop = _resolve(prop, components)
        if prop.get("type") == "object" or _resolve(prop.get("items", {}), components).get("type") == "object":
            return True
    return False


def _form_bodies(operations: list, components: dict) -> None:
    """Form media types of a body whose schema has a nullable field reference a copy without null.
    A body with a JSON object field is not offered as x-www-form-urlencoded: DRF reads such a field as
    JSON text, OpenAPI's form encoding flattens an object into its keys (multipart sends it as JSON)."""
    for _path, _method, operation in operations:
        content_types = operation.get("requestBody", {}).get("content", {})
        urlencoded = content_types.get("application/x-www-form-urlencoded")
        if urlencoded and len(content_types) > 1 and _has_object_field(urlencoded.get("schema", {}), components):
            del content_types["application/x-www-form-urlencoded"]
        for media_type, content in content_types.items():
            ref = content.get("schema", {}).get("$ref", "")
            if media_type not in FORM_MEDIA_TYPES or not ref:
                continue
            name = ref.rsplit("/", 1)[-1]
            form = _without_null(components[name])
            for field in form.get("required", []):  # a form says an empty list by leaving the field out
                prop = form.get("properties", {}).get(field, {})
                if prop.get("type") == "array":
                    prop["minItems"] = max(1, prop.get("minItems", 0))
            # ... and false by leaving a checkbox out: DRF reads a missing boolean as false.
            booleans = {n for n, p in form.get("properties", {}).items() if p.get("type") == "boolean"}
            if booleans & set(form.get("required", [])):
                form["required"] = [n for n in form["required"] if n not in booleans]
                if not form["required"]:
                    del form["required"]
            if form == components[name]:
                continue
            form_name = f"{name.removesuffix('Request')}FormRequest"
            components.setdefault(form_name, form)
            content["schema"] = {"$ref": f"#/components/schemas/{form_name}"}


# PostgreSQL text refuses NUL: DRF's CharField answers 400 to one, and so does every query parameter
# (common.api.NulCharacterMiddleware). Said once for every free-text string a client sends.
NO_NUL_PATTERN = "^[^\\x00]*$"


def _refuse_nul(schema: dict) -> None:
    """Free-text strings (no enum, format or pattern of their own) of a request schema refuse NUL."""
    if schema.get("type") == "string" and not ({"enum", "format", "pattern"} & set(schema)):
        schema["pattern"] = NO_NUL_PATTERN
    for value in schema.get("properties", {}).values():
        _refuse_nul(value)
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            _refuse_nul(schema[keyword])
    for keyword in ("oneOf", "anyOf", "allOf"):
        for option in schema.get(keyword, []):
            _refuse_nul(option)


def _requires_fields(schema: dict, components: dict) -> bool:
    schema = _resolve(schema, components)
    return bool(schema.get("required")) or any(option.get("required") for option in rule(schema, "oneOf"))


def postprocess(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    _describe_inputs(components)
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
    _form_bodies(operations, components)
    for path, method, operation in operations:
        body = operation.get("requestBody")
        if body and any(_requires_fields(c.get("schema", {}), components) for c in body["content"].values()):
            body["required"] = True  # a body with required fields (a PATCH drf-spectacular made partial too)
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
