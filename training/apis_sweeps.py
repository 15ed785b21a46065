"""Hyperparameter sweeps over REST: start one, list them, read one with its trials, cancel one.

Whoever may start a run of the kind in the project may sweep it (its reviewers and admins; staff for
a platform-level sweep), with the run API's rules: only platform admins name paths on the workers, a
platform-level sweep reads no project's data. Sweeps of other projects are 404. The trials are runs
too (``GET /api/runs/<id>/``, their events and metrics).
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import JSONObjectField, Paginated, ordered, ordering_parameter, paginate, reject_unknown_params
from models_registry.models import ALIAS_RE
from training import selectors_sweeps as selectors
from training.apis import INPUT_SCHEMAS, _reject_unknown_keys, config_schema, list_filtered, project_for_start
from training.kinds import KINDS, filled_fields
from training.ml.configs import worker_path_fields
from training.models import RunKind, RunState, Sweep, SweepDirection, SweepPruner, SweepSampler, SweepState
from training.services import sweep_study
from training.services import sweeps as sweep_services

SWEEP_KINDS = tuple(sorted(k for k, spec in KINDS.items() if spec.startable and spec.config_class is not None))
TRIAL_STATES = ("running", "complete", "pruned", "failed", "waiting")
SWEEP_ORDERING = ("id", "created_at", "finished_at", "state", "kind")


# --- The search space, for the schema (training.services.sweeps.search_space_check checks it).
def _choice(items: dict) -> dict:
    return {
        "type": "object",
        "description": "Each trial takes one of these values (no two alike).",
        "properties": {
            "type": {"type": "string", "enum": ["choice"]},
            "values": {
                "type": "array",
                "minItems": 1,
                "maxItems": sweep_study.MAX_CHOICES,
                "uniqueItems": True,
                "items": items,
            },
        },
        "required": ["type", "values"],
        "additionalProperties": False,
    }


def _range(kind: str) -> dict:
    number = {"type": "integer" if kind == "int" else "number"}
    step = {"type": "integer", "minimum": 1} if kind == "int" else {"type": "number", "minimum": 0}
    if kind == "float":
        step["exclusiveMinimum"] = True
    scale = "low >= 1" if kind == "int" else "low > 0, no step"
    return {
        "type": "object",
        "description": f"{'An integer' if kind == 'int' else 'A number'} in [low, high] (low < high); "
        f"log: sampled on a log scale ({scale}).",
        "properties": {
            "type": {"type": "string", "enum": [kind]},
            "low": dict(number),
            "high": dict(number),
            "log": {"type": "boolean"},
            "step": {**step, "nullable": True},
        },
        "required": ["type", "low", "high"],
        "additionalProperties": False,
    }


# What a search space may give a config field. Which of them a field takes follows its type (ranges
# for int and float fields; the service refuses the rest, naming the field): spelled out per field
# of every kind, the request schema would grow past 100 KB.
SPACE_ENTRY = {"oneOf": [_choice({}), _range("int"), _range("float")]}


SEARCH_SPACE_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": sweep_study.MAX_FIELDS,
    "additionalProperties": SPACE_ENTRY,
}


@extend_schema_field(SEARCH_SPACE_SCHEMA)
class SearchSpaceField(JSONObjectField):
    """Config field -> its range: ``{"type": "choice", "values": [...]}`` or ``{"type": "int" | "float",
    "low", "high", "log"?, "step"?}``."""


def sweep_body_rules() -> dict:
    """One branch per kind: the metrics it reports, its config (closed, typed), its inputs (closed) and
    the config fields a search space may vary (not those the platform fills from inputs, nor paths on
    the workers)."""
    import dataclasses

    branches = []
    for kind in SWEEP_KINDS:
        spec = KINDS[kind]
        config = config_schema(spec.config_class)
        hidden = filled_fields(spec) | worker_path_fields(spec.config_class)
        # The names it may vary (each entry is the top level's SPACE_ENTRY).
        searchable = {f.name: {} for f in dataclasses.fields(spec.config_class) if f.name not in hidden}
        branches.append(
            {
                "properties": {
                    "kind": {"enum": [kind]},
                    "metric": {"enum": list(spec.metrics)},
                    "config": config,
                    "inputs": {
                        "type": "object",
                        "properties": {name: INPUT_SCHEMAS.get(name, {}) for name in spec.inputs},
                        "additionalProperties": False,
                    },
                    "search_space": {"type": "object", "properties": searchable, "additionalProperties": False},
                }
            }
        )
    return {"oneOf": branches}


class SweepCreateInput(serializers.Serializer):
    reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
    schema_rules = staticmethod(sweep_body_rules)  # per kind: its metrics, config and searchable fields
    kind = serializers.ChoiceField(choices=SWEEP_KINDS, help_text="The run kind each trial is a run of.")
    project = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        default=None,
        help_text="The project its runs belong to (its reviewers and admins sweep); empty: staff only.",
    )
    config = JSONObjectField(
        required=False,
        default=dict,
        help_text="Every trial's config, as a run of the kind takes it, less the searched fields.",
    )
    inputs = JSONObjectField(
        required=False,
        default=dict,
        help_text="Every trial's inputs, as a run of the kind takes them (base_version, dataset, snapshot, ...). "
        "Without output_model, the trials' versions go to a new model sweep-<id>-<kind>.",
    )
    search_space = SearchSpaceField(
        help_text='Config field -> {"type": "choice", "values": [...]} or {"type": "int"|"float", "low", "high", '
        '"log"?, "step"?}. Not a field the platform fills from inputs.'
    )
    metric = serializers.CharField(max_length=100, help_text="A metric the kind's result reports (see each kind).")
    direction = serializers.ChoiceField(
        choices=SweepDirection.choices, help_text="Whether larger or smaller is better."
    )
    budget = serializers.IntegerField(
        min_value=1,
        max_value=settings.RANKFORGE_SWEEP_MAX_TRIALS,
        help_text=f"How many trials in all (at most {settings.RANKFORGE_SWEEP_MAX_TRIALS}).",
    )
    parallelism = serializers.IntegerField(
        min_value=1,
        max_value=settings.RANKFORGE_SWEEP_MAX_PARALLELISM,
        required=False,
        default=1,
        help_text=f"How many trials run at once (at most the budget and {settings.RANKFORGE_SWEEP_MAX_PARALLELISM}).",
    )
    sampler = serializers.ChoiceField(
        choices=SweepSampler.choices,
        required=False,
        default=SweepSampler.TPE,
        help_text="Optuna's TPE (learns from the trials so far) or random sampling.",
    )
    seed = serializers.IntegerField(
        min_value=0,
        max_value=2**32 - 1,
        required=False,
        allow_null=True,
        default=None,
        help_text="Seeds the sampler: the same sweep asks the same parameters. Empty: random.",
    )
    pruner = serializers.ChoiceField(
        choices=SweepPruner.choices,
        required=False,
        default=SweepPruner.MEDIAN,
        help_text="median: stop a trial whose intermediate metric is worse than the median of earlier trials at "
        "that step (after 5 trials have completed); none: every trial runs to its end.",
    )
    alias = serializers.RegexField(
        ALIAS_RE,
        max_length=64,
        required=False,
        default="best",
        help_text="Set on the best trial's model version when the sweep ends.",
    )

    def validate(self, attrs):
        return _reject_unknown_keys(self, attrs)


class SweepOutput(serializers.ModelSerializer):
    trials_started = serializers.IntegerField(read_only=True, help_text="Trials whose run was started.")
    trials_live = serializers.IntegerField(read_only=True, help_text="Trials whose run has not ended.")

    class Meta:
        model = Sweep
        fields = (
            "id",
            "kind",
            "state",
            "project",
            "config",
            "inputs",
            "search_space",
            "metric",
            "direction",
            "budget",
            "parallelism",
            "sampler",
            "seed",
            "pruner",
            "alias",
            "study_name",
            "best_trial",
            "best_value",
            "best_run",
            "best_version",
            "trials_started",
            "trials_live",
            "error",
            "created_by",
            "created_at",
            "updated_at",
            "finished_at",
        )


class SweepPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SweepOutput(many=True)


class IntermediateValueOutput(serializers.Serializer):
    step = serializers.IntegerField()
    value = serializers.FloatField()


class SweepTrialOutput(serializers.Serializer):
    number = serializers.IntegerField(help_text="0, 1, ... in the order the study asked for them.")
    state = serializers.ChoiceField(choices=TRIAL_STATES, help_text="The study's view of the trial.")
    params = serializers.DictField(child=serializers.JSONField(), help_text="Searched field -> the trial's value.")
    value = serializers.FloatField(allow_null=True, help_text="The metric, once the trial completed.")
    intermediate_values = IntermediateValueOutput(
        many=True, help_text="The metric as the run reported it during training, by step (what the pruner reads)."
    )
    run = serializers.IntegerField(allow_null=True, help_text="The trial's run; null when it could not start.")
    run_state = serializers.ChoiceField(choices=RunState.choices, allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True, help_text="The run's time so far, or in all.")
    error = serializers.CharField(allow_blank=True, help_text="Why the trial failed, if it did.")


class SweepBestOutput(serializers.Serializer):
    trial = serializers.IntegerField()
    value = serializers.FloatField()
    params = serializers.DictField(child=serializers.JSONField())
    run = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField(allow_null=True, help_text="The version the alias names, once the sweep ended.")


class SweepDetailOutput(SweepOutput):
    trials = SweepTrialOutput(many=True, read_only=True, source="trial_rows")
    best = SweepBestOutput(read_only=True, allow_null=True, source="best_so_far", help_text="The best trial so far.")

    class Meta(SweepOutput.Meta):
        fields = (*SweepOutput.Meta.fields, "trials", "best")


class SweepFieldOutput(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="int and float fields take a range; any field takes a choice.")
    default = serializers.JSONField(allow_null=True)


class SweepKindOutput(serializers.Serializer):
    kind = serializers.CharField()
    metrics = serializers.ListField(child=serializers.CharField(), help_text="What `metric` may name.")
    fields = SweepFieldOutput(many=True, help_text="The config fields a search space may vary.")


class SweepKindsApi(APIView):
    """The kinds a sweep may search: the metrics each reports and the config fields it may vary."""

    @extend_schema(operation_id="sweeps_kinds", responses=SweepKindOutput(many=True))
    def get(self, request):
        reject_unknown_params(request, allowed=())
        return Response(SweepKindOutput(selectors.sweep_kinds(), many=True).data)


class SweepListCreateApi(Paginated, APIView):
    """Sweeps you can see (newest first); POST starts one (202: its first trials are being queued)."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="sweeps_list",
        parameters=[
            OpenApiParameter("kind", enum=RunKind.values),
            OpenApiParameter("state", enum=SweepState.values),
            OpenApiParameter("project", {"type": "integer", "minimum": 1}, description="Only sweeps of this project."),
            ordering_parameter(*SWEEP_ORDERING),
        ],
        responses=SweepPage,
    )
    def get(self, request):
        reject_unknown_params(request, allowed=("kind", "state", "project"))
        sweeps = list_filtered(selectors.sweeps_for_user(user=request.user), request, states=SweepState.values)
        sweeps = ordered(sweeps, request, allowed=SWEEP_ORDERING, default="-id")
        return paginate(self, request, sweeps, SweepOutput)

    @extend_schema(operation_id="sweeps_create", request=SweepCreateInput, responses={202: SweepOutput})
    def post(self, request):
        data = SweepCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        project = project_for_start(request.user, values)
        sweep = sweep_services.sweep_create(
            kind=values["kind"],
            config=values["config"],
            inputs=values["inputs"],
            search_space=values["search_space"],
            metric=values["metric"],
            direction=values["direction"],
            budget=values["budget"],
            parallelism=values["parallelism"],
            sampler=values["sampler"],
            seed=values["seed"],
            pruner=values["pruner"],
            alias=values["alias"],
            project=project,
            created_by=request.user,
        )
        sweep = selectors.sweep_for_user(user=request.user, sweep_id=sweep.pk)
        return Response(SweepOutput(sweep).data, status=status.HTTP_202_ACCEPTED)


class SweepDetailApi(APIView):
    """A sweep with its trials (number, state, parameters, value, intermediate values, run, duration)
    and the best trial so far: what a trials table and a metric-against-parameter plot read."""

    @extend_schema(operation_id="sweeps_retrieve", responses=SweepDetailOutput)
    def get(self, request, sweep_id: int):
        reject_unknown_params(request, allowed=())
        sweep = selectors.sweep_for_user(user=request.user, sweep_id=sweep_id)
        sweep.trial_rows = selectors.sweep_trials(sweep=sweep)
        sweep.best_so_far = selectors.sweep_best(sweep=sweep, trials=sweep.trial_rows)
        return Response(SweepDetailOutput(sweep).data)


class SweepCancelApi(APIView):
    """Cancel a running sweep: no trial starts any more, its queued runs are cancelled and its running
    ones stopped. 409 once it has ended."""

    @extend_schema(operation_id="sweeps_cancel", request=None, responses={200: SweepOutput})
    def post(self, request, sweep_id: int):
        sweep = selectors.sweep_for_user(user=request.user, sweep_id=sweep_id)
        sweep_services.sweep_cancel(sweep_id=sweep.pk, by=request.user)
        return Response(SweepOutput(selectors.sweep_for_user(user=request.user, sweep_id=sweep.pk)).data)
