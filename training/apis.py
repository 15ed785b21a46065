"""Training runs over REST: create, list, detail, events, logs, metrics, cancel; generation for a project.

Platform admins see and manage every run. A project's runs read its prompts and data, so they are
its admins' and reviewers' only: staff who are not members get a 404 like anyone else. Staff start
and see platform-level runs (no project), which may not read any project's data. Starting a
generation run for a project takes the project's admin role. Only platform admins name paths on
the workers in a config. Configs are validated here with the same config classes the ML uses: a bad
one is a 400 naming the field.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import JSONObjectField, comma_separated_parameter, ordering_parameter
from labeling.access import project_access
from labeling.apis.common import Paginated, ProjectAPIView, ordered, paginate, reject_unknown_params
from labeling.models import Project, Role, Split
from training import access as run_access
from training import selectors
from training.models import CritiqueRevision, RunEventType, RunKind, RunState, TrainingRun
from training.services import generation as generation_services
from training.services import rounds as round_services
from training.services import run_inputs
from training.services import runs as run_services


def _reject_unknown_keys(serializer: serializers.Serializer, attrs: dict) -> dict:
    unknown = sorted(set(getattr(serializer, "initial_data", {}) or {}) - set(serializer.fields))
    if unknown:
        raise serializers.ValidationError(
            {unknown[0]: [f"Unknown field; allowed: {', '.join(sorted(serializer.fields))}."]}
        )
    return attrs


def _int_param(request, name: str, *, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"Must be an integer, got {raw!r}."]}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ValidationError({name: [f"Must be {bounds}, got {value}."]})
    return value


class RunOutput(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = (
            "id",
            "kind",
            "state",
            "project",
            "config",
            "inputs",
            "outputs",
            "progress_step",
            "progress_total",
            "error",
            "worker_host",
            "pid",
            "heartbeat_at",
            "last_seq",
            "round",
            "sweep",
            "sweep_trial",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        )


class RunPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RunOutput(many=True)


RUN_ORDERING = ("id", "created_at", "finished_at", "state", "kind")

# --- What a config and inputs may hold, for the schema: read off the config classes (as GET
# /api/runs/kinds/ is), so it cannot drift. Keys and JSON types are checked by BaseConfig.from_dict
# (training.ml.configs._check_type), the common bounds by check_common_bounds; each class's
# validate() (other bounds, rules across fields) is beyond this description.
_CONFIG_TYPES = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "list[str]": {"type": "array", "items": {"type": "string"}},
    "dict": {"type": "object", "additionalProperties": True},
}


def _config_field_schema(name: str, spelled: str) -> dict:
    from training.ml.configs import COMMON_BOUNDS

    schema = dict(_CONFIG_TYPES.get(spelled.removesuffix(" | None"), {}))
    if name in COMMON_BOUNDS:
        schema["minimum"], schema["maximum"] = COMMON_BOUNDS[name]
    if spelled.endswith(" | None"):
        schema["nullable"] = True
    return schema


def config_schema(config_class, names: tuple[str, ...] | None = None) -> dict:
    """A config class's fields (or ``names`` of them) as a closed JSON object schema."""
    import dataclasses

    fields = [f for f in dataclasses.fields(config_class) if names is None or f.name in names]
    properties = {
        f.name: _config_field_schema(f.name, f.type.__name__ if isinstance(f.type, type) else str(f.type))
        for f in fields
    }
    return {"type": "object", "properties": properties, "additionalProperties": False}


_ID = {"type": "integer", "minimum": 1, "nullable": True}
# Each input by name, as training.services.run_inputs and .cai read it (null is leaving it out).
INPUT_SCHEMAS = {
    "base_version": _ID,
    "dataset": _ID,
    "template": _ID,
    "snapshot": _ID,
    "cai_run": _ID,
    "reward_version": _ID,
    "kl_base_version": _ID,
    "constitution": {**_ID, "description": "A version number of the project's constitution."},
    "limit": _ID,
    "templates": {"type": "array", "items": {"type": "integer", "minimum": 1}, "nullable": True},
    "split": {"type": "string", "enum": Split.values, "nullable": True},
    "target_field": {"type": "string", "nullable": True},
    "reference_field": {"type": "string", "nullable": True},
    "output_model": {"type": "string", "nullable": True},
    "then_sft": {
        "type": "object",
        "properties": {"config": {"type": "object"}, "output_model": {"type": "string"}},
        "additionalProperties": False,
        "nullable": True,
    },
}


def _model_source() -> dict:
    """run_inputs.resolve_inputs: the model comes from inputs.base_version (and then the config may not
    set the fields it fills) or, for platform admins, from config.model_path."""
    filled = run_inputs.FILLS["base_version"]
    return {
        "oneOf": [
            {
                "required": ["inputs"],
                "properties": {
                    "inputs": {"required": ["base_version"], "properties": {"base_version": {"type": "integer"}}},
                    "config": {"not": {"anyOf": [{"required": [name]} for name in filled]}},
                },
            },
            {
                "required": ["config"],
                "properties": {
                    # resolve_inputs reads an empty model_path as none given
                    "config": {"required": ["model_path"], "properties": {"model_path": {"minLength": 1}}},
                    "inputs": {"not": {"required": ["base_version"]}},
                },
            },
        ]
    }


def run_body_rules() -> dict:
    """One branch per kind: its config (closed, typed, its required fields), its inputs (closed) and
    where its model comes from; a constitutional-AI run names its project (the constitution's)."""
    import dataclasses

    from training.ml.configs import available_configs

    kinds = {entry["kind"]: entry for entry in selectors.run_kinds()}
    branches = []
    for kind, config_class in sorted(available_configs().items()):
        config = config_schema(config_class)
        branch = {"properties": {"kind": {"enum": [kind]}, "config": config}}
        if kind not in kinds:  # no inputs (generate): the config names everything
            required = [
                f.name
                for f in dataclasses.fields(config_class)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ]
            config["required"] = required
            branches.append(branch)
            continue
        known = kinds[kind]["inputs"]
        required = [f["name"] for f in kinds[kind]["config"] if f["required"]]
        if required:
            config["required"] = required
        if "constitution" in known:  # always from the project's constitution, which needs the project
            for name in run_inputs.FILLS["constitution"]:
                config["properties"].pop(name, None)
            branch["required"] = ["project"]
            branch["properties"]["project"] = {"type": "integer"}
        branch["properties"]["inputs"] = {
            "type": "object",
            "properties": {name: INPUT_SCHEMAS.get(name, {}) for name in known},
            "additionalProperties": False,
        }
        branch["allOf"] = [_model_source()]
        branches.append(branch)
    return {"oneOf": branches}


class RunCreateInput(serializers.Serializer):
    reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
    schema_rules = staticmethod(run_body_rules)  # per kind: its config and inputs (common/openapi.py)
    kind = serializers.ChoiceField(choices=RunKind.choices)
    config = JSONObjectField(help_text="The kind's config; unknown or bad options are refused, by name.")
    inputs = JSONObjectField(
        required=False,
        default=dict,
        help_text="What the run reads, by id: base_version, snapshot, dataset, template, ... (see the kind).",
    )
    project = serializers.IntegerField(required=False, allow_null=True, default=None)
    round = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="A round of the project it joins."
    )

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate_inputs(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate(self, attrs):
        return _reject_unknown_keys(self, attrs)


def project_for_start(user, values: dict) -> Project | None:
    """The project a new run (or sweep: runs of one kind) of ``values`` belongs to, once the user may
    start it: in a project, its reviewers and admins (platform admins count as admins; staff need the
    membership); without one, staff and platform admins, and no project's data. Paths on the workers
    are for platform admins only."""
    if values["project"] is None:
        if not selectors.is_run_staff(user):
            raise PermissionDenied("Only staff and platform admins start runs outside a project; name a project.")
        run_access.no_project_data_without_a_project(user, values["inputs"])
        project = None
    else:
        project = project_access(user=user, project_id=values["project"], at_least=Role.REVIEWER).project
    run_access.only_platform_admins_name_paths(user, values["config"], run_access.path_fields(values["kind"]))
    return project


def list_filtered(queryset, request, *, states):
    """A runs or sweeps list under ``?kind=&state=&project=``. An empty or unknown value is a 400 like
    any other value it does not name (not "no filter")."""
    for name, values in (("kind", RunKind.values), ("state", states)):
        if (value := request.query_params.get(name)) is not None:
            if value not in values:
                raise ValidationError({name: [f"Unknown {name} {value!r:.40}; use one of {', '.join(values)}."]})
            queryset = queryset.filter(**{name: value})
    if "project" in request.query_params:
        if not request.query_params["project"]:
            raise ValidationError({"project": ["Must be a project id, got ''."]})
        queryset = queryset.filter(project_id=_int_param(request, "project", default=0, minimum=1))
    return queryset


class RunListCreateApi(Paginated, APIView):
    """Training runs you can see (newest first); POST starts one (202: it is queued)."""

    # config and inputs are JSON objects, which a form cannot carry: JSON only (anything else is a 415).
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="runs_list",
        parameters=[
            OpenApiParameter("kind", enum=RunKind.values),
            OpenApiParameter("state", enum=RunState.values),
            OpenApiParameter("project", {"type": "integer", "minimum": 1}, description="Only runs of this project."),
            ordering_parameter(*RUN_ORDERING),
        ],
        responses=RunPage,
    )
    def get(self, request):
        reject_unknown_params(request, allowed=("kind", "state", "project"))
        runs = list_filtered(selectors.runs_for_user(user=request.user), request, states=RunState.values)
        runs = ordered(runs, request, allowed=RUN_ORDERING, default="-id")
        return paginate(self, request, runs, RunOutput)

    @extend_schema(operation_id="runs_create", request=RunCreateInput, responses={202: RunOutput})
    def post(self, request):
        data = RunCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = project_for_start(request.user, values)
        round_ = round_services.round_for_project(project=project, round_id=values["round"])
        run = run_services.run_start(
            kind=values["kind"],
            config=values["config"],
            inputs=values["inputs"],
            project=project,
            created_by=request.user,
        )
        round_services.run_join(round_=round_, run=run)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class RunKindField(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    default = serializers.JSONField(allow_null=True)
    required = serializers.BooleanField()
    filled_by_inputs = serializers.BooleanField(help_text="Set by the platform from an input; leave it out.")
    worker_path = serializers.BooleanField(help_text="Names a file or folder on the workers: platform admins only.")


class RunKindOutput(serializers.Serializer):
    kind = serializers.CharField()
    description = serializers.CharField()
    inputs = serializers.ListField(child=serializers.CharField(), help_text="What `inputs` may name.")
    hints = serializers.DictField(
        child=serializers.CharField(),
        help_text="Input name -> what it means for this kind, or its default here (the form shows it).",
    )
    inputs_note = serializers.CharField(allow_blank=True, help_text="How the inputs combine (one or the other).")
    version_tasks = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Version input -> the registry tasks it accepts (others are refused).",
    )
    adapter_base = serializers.BooleanField(help_text="Whether base_version may be an adapter version.")
    common_config = serializers.ListField(
        child=serializers.CharField(), help_text="The config fields a form shows up front; the rest are advanced."
    )
    config = RunKindField(many=True)


class RunKindsApi(APIView):
    """The run kinds, each with the inputs it takes (and what each means for the kind) and its config
    fields (type, default, required)."""

    @extend_schema(operation_id="runs_kinds", responses=RunKindOutput(many=True))
    def get(self, request):
        reject_unknown_params(request, allowed=())
        return Response(RunKindOutput(selectors.run_kinds(), many=True).data)


class RunDetailApi(APIView):
    @extend_schema(operation_id="runs_retrieve", responses=RunOutput)
    def get(self, request, run_id: int):
        return Response(RunOutput(selectors.run_for_user(user=request.user, run_id=run_id)).data)


class RunCancelApi(APIView):
    """Cancel a run: a queued one at once (200, cancelled), a running one by stopping its process
    (202, cancelling until the worker confirms). 409 once it has finished."""

    @extend_schema(operation_id="runs_cancel", request=None, responses={200: RunOutput, 202: RunOutput})
    def post(self, request, run_id: int):
        run = selectors.run_for_user(user=request.user, run_id=run_id)
        run = run_services.run_cancel(run_id=run.pk, by=request.user)
        code = status.HTTP_202_ACCEPTED if run.state == RunState.CANCELLING else status.HTTP_200_OK
        return Response(RunOutput(run).data, status=code)


class RunEventOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.ChoiceField(choices=RunEventType.choices)
    payload = serializers.JSONField()
    created_at = serializers.DateTimeField()


class RunEventsOutput(serializers.Serializer):
    run = serializers.IntegerField()
    state = serializers.ChoiceField(choices=RunState.choices)
    last_seq = serializers.IntegerField(help_text="The newest event's seq when this answer was made.")
    next_after = serializers.IntegerField(help_text="Pass as ?after= to get the events after these.")
    has_more = serializers.BooleanField()
    events = RunEventOutput(many=True)


def _events_answer(run: TrainingRun, request, types: tuple[str, ...]) -> dict:
    after = _int_param(request, "after", default=0)
    limit = _int_param(request, "limit", default=500, minimum=1, maximum=selectors.MAX_PAGE)
    run.refresh_from_db(fields=["state", "last_seq"])  # state first: no event after it is missed
    events = selectors.run_events(run=run, after=after, types=types, limit=limit + 1)
    has_more = len(events) > limit
    events = events[:limit]
    return {
        "run": run.pk,
        "state": run.state,
        "last_seq": run.last_seq,
        "next_after": events[-1].seq if events else after,
        "has_more": has_more,
        "events": events,
    }


class RunEventsApi(APIView):
    """The run's events in order (state changes, progress, metrics, logs, artifacts, errors).

    Poll with ``?after=<next_after>``: events are append-only with gapless per-run seqs, so none is
    missed or repeated. Once ``state`` is finished and ``has_more`` is false, there is nothing more.
    """

    @extend_schema(
        operation_id="runs_events",
        parameters=[
            OpenApiParameter(
                "after", {"type": "integer", "minimum": 0}, description="Only events with a larger seq (default 0)."
            ),
            comma_separated_parameter("type", RunEventType.values, description="Comma-separated event types."),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": selectors.MAX_PAGE},
                description=f"At most this many (default 500, max {selectors.MAX_PAGE}).",
            ),
        ],
        responses=RunEventsOutput,
    )
    def get(self, request, run_id: int):
        reject_unknown_params(request, allowed=("after", "type"))
        run = selectors.run_for_user(user=request.user, run_id=run_id)
        types = tuple(t for t in request.query_params.get("type", "").split(",") if t)
        unknown = sorted(set(types) - set(RunEventType.values))
        if unknown:
            raise ValidationError(
                {"type": [f"Unknown event type {unknown[0]!r}; use {', '.join(RunEventType.values)}."]}
            )
        return Response(RunEventsOutput(_events_answer(run, request, types)).data)


class RunLogLineOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    level = serializers.CharField()
    stream = serializers.CharField(help_text="event (the run's log), stdout, stderr or worker")
    message = serializers.CharField()


class RunLogsOutput(serializers.Serializer):
    run = serializers.IntegerField()
    state = serializers.ChoiceField(choices=RunState.choices)
    next_after = serializers.IntegerField()
    has_more = serializers.BooleanField()
    lines = RunLogLineOutput(many=True)


class RunLogsApi(APIView):
    """The run's log: its log and error events, non-JSON output and stderr, oldest first. Poll with ``?after=``."""

    @extend_schema(
        operation_id="runs_logs",
        parameters=[
            OpenApiParameter("after", {"type": "integer", "minimum": 0}),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": selectors.MAX_PAGE}),
        ],
        responses=RunLogsOutput,
    )
    def get(self, request, run_id: int):
        reject_unknown_params(request, allowed=("after",))
        run = selectors.run_for_user(user=request.user, run_id=run_id)
        answer = _events_answer(run, request, selectors.LOG_TYPES)
        lines = [
            {
                "seq": event.seq,
                "created_at": event.created_at,
                "level": "error" if event.type == RunEventType.ERROR else str(event.payload.get("level", "info")),
                "stream": str(event.payload.get("stream", "event")),
                "message": str(event.payload.get("message", "")),
            }
            for event in answer["events"]
        ]
        return Response(
            RunLogsOutput(
                {
                    "run": run.pk,
                    "state": answer["state"],
                    "next_after": answer["next_after"],
                    "has_more": answer["has_more"],
                    "lines": lines,
                }
            ).data
        )


class RunMetricPointOutput(serializers.Serializer):
    step = serializers.IntegerField(allow_null=True)
    value = serializers.FloatField(allow_null=True, help_text="null where the run reported NaN or infinity")
    t = serializers.FloatField(allow_null=True, help_text="Unix time the run reported it")


class RunMetricsOutput(serializers.Serializer):
    run = serializers.IntegerField()
    state = serializers.ChoiceField(choices=RunState.choices)
    series = serializers.DictField(child=RunMetricPointOutput(many=True), help_text="metric name -> points")


class RunMetricsApi(APIView):
    """The run's metrics as time series, one per name, in the order reported."""

    @extend_schema(
        operation_id="runs_metrics",
        parameters=[OpenApiParameter("name", str, description="Only this metric.")],
        responses=RunMetricsOutput,
    )
    def get(self, request, run_id: int):
        reject_unknown_params(request, allowed=("name",))
        run = selectors.run_for_user(user=request.user, run_id=run_id)
        series = selectors.run_metrics(run=run, name=request.query_params.get("name") or None)
        return Response(RunMetricsOutput({"run": run.pk, "state": run.state, "series": series}).data)


def _generation_params_schema() -> dict:
    from training.ml.configs import GenerateConfig

    return config_schema(GenerateConfig, generation_services.GENERATION_PARAMS)


@extend_schema_field(_generation_params_schema())
class GenerationParamsField(JSONObjectField):
    """Overrides of the project's generation_config: GenerateConfig fields, by name."""


class RunGenerateInput(serializers.Serializer):
    reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
    dataset = serializers.IntegerField(help_text="A dataset of this project.")
    split = serializers.ChoiceField(choices=Split.choices, required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(
        min_value=1, max_value=generation_services.MAX_PROMPTS, required=False, allow_null=True, default=None
    )
    model_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="A registered causal-lm version; default: the project's.",
    )
    model_path = serializers.CharField(
        max_length=1000,
        required=False,
        allow_null=True,
        default=None,
        help_text="Platform admins only: a folder on the workers.",
    )
    gguf_file = serializers.CharField(
        max_length=255,
        required=False,
        allow_null=True,
        default=None,
        help_text="Platform admins only, with model_path: the GGUF file in that folder.",
    )
    k = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Defaults to the project's K."
    )
    generation = GenerationParamsField(
        required=False,
        default=dict,
        help_text="Overrides of the project's generation_config: " + ", ".join(generation_services.GENERATION_PARAMS),
    )

    def validate_generation(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate(self, attrs):
        return _reject_unknown_keys(self, attrs)


class ProjectGenerateApi(ProjectAPIView):
    """Generate K completions for the dataset rows that have no comparison yet (project admins).

    202 with the queued generate run. As its batches finish, comparisons appear in the project.
    """

    write_role = Role.ADMIN

    @extend_schema(operation_id="projects_generate", request=RunGenerateInput, responses={202: RunOutput})
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = RunGenerateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        # The request's fields that become generate config fields naming paths (model_path, gguf_file).
        run_access.only_platform_admins_name_paths(
            request.user,
            values,
            run_access.path_fields(RunKind.GENERATE) & set(RunGenerateInput().fields),
            prefix="",
            instead="a registered model_version",
        )
        run = generation_services.generation_run_create(
            project=access.project,
            created_by=request.user,
            dataset_id=values["dataset"],
            split=values["split"],
            limit=values["limit"],
            model_version=values["model_version"],
            model_path=values["model_path"],
            gguf_file=values["gguf_file"],
            k=values["k"],
            params=values["generation"],
        )
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class CritiqueRevisionOutput(serializers.ModelSerializer):
    class Meta:
        model = CritiqueRevision
        fields = ("id", "prompt_id", "prompt", "initial", "rounds", "final")


class RunRevisionsApi(Paginated, APIView):
    """A ``cai_revise`` run's stored steps: prompt, first answer, each round's principle, critique and
    revision, and the final revision. ``?principle=KEY`` keeps prompts that a round used it on."""

    @extend_schema(
        operation_id="runs_revisions",
        parameters=[OpenApiParameter("principle", str, description="A principle key.")],
        responses=CritiqueRevisionOutput(many=True),
    )
    def get(self, request, run_id: int):
        reject_unknown_params(request, allowed=("principle",))
        run = selectors.run_for_user(user=request.user, run_id=run_id)
        rows = selectors.run_revisions(run=run, principle=request.query_params.get("principle") or None)
        return self.paginate(request, rows, CritiqueRevisionOutput)
