"""Human side-by-side evaluations over REST.

A source project's admins start one (its versions must be usable in that project); the evaluation
project's reviewers and admins read it and its results; its admins publish the results onto the
versions. Labelers of the evaluation see only their leases: never which model wrote an answer.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.apis.common import Paginated, ProjectAPIView, reject_unknown_params
from labeling.models import Role, SideBySideEval, Split
from labeling.selectors import side_by_side as sxs_selectors
from labeling.services.side_by_side import evaluation_publish
from training.apis import GenerationParamsField, _int_param, _reject_unknown_keys
from training.models import TERMINAL_STATES, RunState, TrainingRun
from training.services import generation
from training.services import rounds as round_services
from training.services import side_by_side as sxs_services


class EvaluationCreateInput(serializers.Serializer):
    reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
    schema_rules = {"allOf": [{"properties": {"versions": {"uniqueItems": True}}}]}  # "each version once"
    name = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)
    versions = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=sxs_services.MIN_VERSIONS,
        max_length=sxs_services.MAX_VERSIONS,
        help_text="The registered causal-lm versions to compare (each usable in this project).",
    )
    dataset = serializers.IntegerField(min_value=1, help_text="A dataset of this project: its rows are the prompts.")
    split = serializers.ChoiceField(
        choices=Split.choices, required=False, allow_null=True, default=Split.TEST, help_text="null: every split."
    )
    limit = serializers.IntegerField(min_value=1, max_value=sxs_services.MAX_LIMIT, default=sxs_services.DEFAULT_LIMIT)
    template = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="Default: the project's template."
    )
    seed = serializers.IntegerField(
        min_value=0, max_value=sxs_services.MAX_SEED, required=False, allow_null=True, default=None
    )
    generation = GenerationParamsField(
        required=False,
        default=dict,
        help_text="Overrides of the project's generation_config: " + ", ".join(generation.GENERATION_PARAMS),
    )
    round = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="A round of this project it belongs to."
    )

    def validate(self, attrs):
        return _reject_unknown_keys(self, attrs)


class EntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    label = serializers.CharField()
    model = serializers.CharField()
    number = serializers.IntegerField()
    run = serializers.IntegerField(allow_null=True)
    run_state = serializers.ChoiceField(choices=RunState.choices, allow_null=True)
    samples = serializers.IntegerField(allow_null=True, help_text="Answers stored so far.")


class ProgressOutput(serializers.Serializer):
    prompts = serializers.IntegerField()
    pairs_expected = serializers.IntegerField()
    comparisons = serializers.IntegerField()
    labels = serializers.IntegerField()
    labels_needed = serializers.IntegerField()
    complete = serializers.IntegerField(help_text="Comparisons with all the labels the overlap asks for.")
    overlap = serializers.IntegerField()


STATUSES = ("generating", "labeling", "complete", "failed")


class EvaluationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    project = serializers.IntegerField(help_text="The evaluation project labelers work in.")
    source_project = serializers.IntegerField(allow_null=True)
    dataset = serializers.IntegerField(allow_null=True)
    split = serializers.CharField(allow_blank=True)
    seed = serializers.IntegerField()
    status = serializers.ChoiceField(choices=STATUSES)
    created_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)
    entries = EntryOutput(many=True)
    progress = ProgressOutput()


class EvaluationPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = EvaluationOutput(many=True)


class ScoreOutput(serializers.Serializer):
    entry = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True, help_text="Bradley-Terry on the Elo scale (mean 1000).")
    low = serializers.FloatField(allow_null=True, help_text="95% bootstrap interval.")
    high = serializers.FloatField(allow_null=True)
    rank = serializers.IntegerField(allow_null=True)
    votes = serializers.IntegerField()


class PairOutput(serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()
    both_bad = serializers.IntegerField()
    n = serializers.IntegerField()
    win_rate = serializers.FloatField(help_text="Of a against b: (wins + (ties + both_bad) / 2) / n.")
    low = serializers.FloatField(help_text="Wilson 95% interval.")
    high = serializers.FloatField()


class LengthBinOutput(serializers.Serializer):
    min_words = serializers.IntegerField()
    max_words = serializers.IntegerField(allow_null=True, help_text="Exclusive; null: no upper end.")
    longer_wins = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    n = serializers.IntegerField()


class LengthBiasOutput(serializers.Serializer):
    longer_wins = serializers.FloatField(allow_null=True, help_text="Share of votes the longer answer won.")
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()
    bins = LengthBinOutput(many=True)


class VerdictOutput(serializers.Serializer):
    criterion = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    votes = serializers.IntegerField()
    comparisons = serializers.IntegerField()
    scores = ScoreOutput(many=True)
    pairs = PairOutput(many=True)
    length_bias = LengthBiasOutput()


class AgreementOutput(serializers.Serializer):
    criterion = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    n = serializers.IntegerField(help_text="Comparisons with a human majority and a judge vote.")
    agree = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class CriterionRef(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()


class ResultsOutput(serializers.Serializer):
    evaluation = serializers.IntegerField()
    entries = EntryOutput(many=True)
    criteria = CriterionRef(many=True)
    human = VerdictOutput(many=True)
    ai = VerdictOutput(many=True, help_text="An AI judge's verdict (ai_feedback runs on the evaluation project).")
    agreement = AgreementOutput(many=True)


def _status(entries: list[dict], progress: dict) -> str:
    if any(entry["run_state"] not in TERMINAL_STATES for entry in entries):
        return "generating"
    if progress["comparisons"] == 0:
        return "failed" if any(entry["run_state"] != RunState.SUCCEEDED for entry in entries) else "generating"
    if progress["complete"] >= progress["comparisons"]:
        return "complete"
    return "labeling"


def evaluation_data(evaluation: SideBySideEval) -> dict:
    entries = sxs_selectors.entries_with_counts(evaluation)
    states = dict(TrainingRun.objects.filter(pk__in=[e.run_id for e in entries]).values_list("pk", "state"))
    rows = [sxs_selectors.entry_row(entry, states.get(entry.run_id)) for entry in entries]
    progress = sxs_selectors.evaluation_progress(evaluation, entries)
    return {
        "id": evaluation.pk,
        "name": evaluation.name,
        "project": evaluation.project_id,
        "source_project": evaluation.source_project_id,
        "dataset": evaluation.dataset_id,
        "split": evaluation.split,
        "seed": evaluation.seed,
        "status": _status(rows, progress),
        "created_at": serializers.DateTimeField().to_representation(evaluation.created_at),
        "published_at": evaluation.published_at
        and serializers.DateTimeField().to_representation(evaluation.published_at),
        "entries": rows,
        "progress": progress,
    }


class EvaluationCreateApi(ProjectAPIView):
    """Start a side-by-side evaluation of registered versions on a dataset split (project admins).

    201 with the evaluation: its project is created, and one generate run per version is queued.
    """

    write_role = Role.ADMIN
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="projects_evaluations_create", request=EvaluationCreateInput, responses={201: EvaluationOutput}
    )
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = EvaluationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        round_ = round_services.round_for_project(project=access.project, round_id=values["round"])
        evaluation = sxs_services.evaluation_create(
            project=access.project,
            created_by=request.user,
            versions=values["versions"],
            dataset_id=values["dataset"],
            split=values["split"],
            limit=values["limit"],
            name=values["name"],
            params=values["generation"],
            seed=values["seed"],
            template_id=values["template"],
        )
        round_services.evaluation_join(round_=round_, evaluation=evaluation)
        return Response(evaluation_data(evaluation), status=status.HTTP_201_CREATED)


class EvaluationListApi(Paginated, APIView):
    """Evaluations you review or administer, newest first; ``?project=`` the evaluation project or
    the project it was made from."""

    @extend_schema(
        operation_id="evaluations_list",
        parameters=[OpenApiParameter("project", {"type": "integer", "minimum": 1})],
        responses=EvaluationPage,
    )
    def get(self, request):
        reject_unknown_params(request, allowed=("project",))
        project = _int_param(request, "project", default=0, minimum=1) if request.query_params.get("project") else None
        evaluations = sxs_selectors.evaluations_for_user(user=request.user, project_id=project)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(evaluations, request, view=self)
        return paginator.get_paginated_response([evaluation_data(e) for e in page])


class EvaluationDetailApi(APIView):
    @extend_schema(operation_id="evaluations_retrieve", responses=EvaluationOutput)
    def get(self, request, evaluation_id: int):
        reject_unknown_params(request, allowed=())
        evaluation = sxs_selectors.evaluation_for_user(user=request.user, evaluation_id=evaluation_id)
        return Response(evaluation_data(evaluation))


class EvaluationResultsApi(APIView):
    """Win rates with Wilson intervals, Bradley-Terry scores with bootstrap intervals, the length
    bias, per criterion; an AI judge's verdict and its agreement with the humans."""

    @extend_schema(operation_id="evaluations_results", responses=ResultsOutput)
    def get(self, request, evaluation_id: int):
        reject_unknown_params(request, allowed=())
        evaluation = sxs_selectors.evaluation_for_user(user=request.user, evaluation_id=evaluation_id)
        return Response(sxs_selectors.evaluation_results(evaluation))


class EvaluationPublishApi(APIView):
    """Store the current results on the evaluation and on every version it compares (their
    ``metrics["human_evals"]``; publishing again replaces that entry). Evaluation project admins."""

    @extend_schema(operation_id="evaluations_publish", request=None, responses=EvaluationOutput)
    def post(self, request, evaluation_id: int):
        evaluation = sxs_selectors.evaluation_for_user(
            user=request.user, evaluation_id=evaluation_id, at_least=Role.ADMIN
        )
        evaluation = evaluation_publish(evaluation=evaluation, results=sxs_selectors.evaluation_results(evaluation))
        return Response(evaluation_data(evaluation))
