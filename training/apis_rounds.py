"""Rounds of the loop over REST, and the reward-hacking guard of an RLHF run.

A project's admins start a round; its reviewers and admins read rounds (labelers are not told they
exist, as with runs). The guard report of an RLHF run follows the run's own access.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.access import project_access
from labeling.apis.common import ProjectAPIView, reject_unknown_params
from labeling.models import Role, Split
from training import selectors
from training import selectors_rounds as round_selectors
from training.apis import GenerationParamsField, _reject_unknown_keys
from training.ml import guard
from training.models import Round, RunKind
from training.services import generation
from training.services import rounds as round_services


def _string(name: str) -> dict:
    return {"required": [name], "properties": {name: {"type": "string"}}}


def _integer(name: str) -> dict:
    return {"required": [name], "properties": {name: {"type": "integer"}}}


class RoundStartInput(serializers.Serializer):
    reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
    # The version that generates: by id, or a model and one of its aliases (round_services._version).
    schema_rules = {
        "oneOf": [
            {**_integer("version"), "not": _string("alias")},
            {
                "required": ["model", "alias"],
                "properties": {"model": {"type": "integer"}, "alias": {"type": "string"}},
                "not": _integer("version"),
            },
        ]
    }
    version = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="The version that generates; or:"
    )
    model = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    alias = serializers.SlugField(
        max_length=64, required=False, allow_null=True, default=None, help_text="With model: e.g. candidate."
    )
    dataset = serializers.IntegerField(min_value=1, help_text="Its rows with no comparison yet are the prompts.")
    split = serializers.ChoiceField(choices=Split.choices, required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(
        min_value=1, max_value=generation.MAX_PROMPTS, required=False, allow_null=True, default=None
    )
    generation = GenerationParamsField(
        required=False, default=dict, help_text="Overrides of the project's generation_config."
    )
    guard_samples = serializers.IntegerField(
        min_value=0,
        max_value=round_services.MAX_GUARD_SAMPLES,
        default=guard.EXTREMES,
        help_text="The previous round's RLHF samples put back to labelers: this many best and this many worst.",
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        return _reject_unknown_keys(self, attrs)


class VersionRef(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    number = serializers.IntegerField()
    label = serializers.CharField()


class RoundRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=RunKind.choices)
    state = serializers.CharField()
    metrics = serializers.DictField(child=serializers.FloatField())


class RoundLabelingOutput(serializers.Serializer):
    comparisons = serializers.IntegerField()
    rankings = serializers.IntegerField()
    pairs = serializers.IntegerField(help_text="Strict pairs in the human rankings: the preference data collected.")
    agreement = serializers.FloatField(allow_null=True, help_text="Pairwise agreement between labelers.")
    agreement_pairs = serializers.IntegerField()


class WinRateOutput(serializers.Serializer):
    evaluation = serializers.IntegerField()
    version = serializers.IntegerField()
    against = serializers.IntegerField()
    criterion = serializers.CharField()
    win_rate = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    n = serializers.IntegerField()


class GuardSideOutput(serializers.Serializer):
    n = serializers.IntegerField()
    user_turn_rate = serializers.FloatField(allow_null=True, help_text="Answers that go on with the user's turn.")
    refusal_rate = serializers.FloatField(allow_null=True)
    mean_words = serializers.FloatField(allow_null=True)


class GuardPeopleOutput(serializers.Serializer):
    comparisons = serializers.IntegerField()
    votes = serializers.IntegerField()
    policy_win_rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class GuardFlagOutput(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=("writes_user_turn", "refuses", "over_refusal", "heldout_reward_flat", "humans_disagree")
    )
    message = serializers.CharField()


class GuardOutput(serializers.Serializer):
    run = serializers.IntegerField()
    samples = serializers.IntegerField()
    before = GuardSideOutput(help_text="The reference model's answers.")
    after = GuardSideOutput(help_text="The policy's answers.")
    reward = serializers.DictField(child=serializers.FloatField(allow_null=True))
    heldout_reward = serializers.DictField(child=serializers.FloatField(allow_null=True))
    groups = serializers.DictField(child=serializers.DictField(), help_text="Refusal rates per prompt group.")
    people = serializers.DictField(child=GuardPeopleOutput(), help_text="best / worst: votes on the extremes.")
    flags = GuardFlagOutput(many=True)


class RoundOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    project = serializers.IntegerField()
    previous = serializers.IntegerField(allow_null=True)
    base_version = VersionRef()
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    generation_run = serializers.IntegerField(allow_null=True)
    runs = RoundRunOutput(many=True)
    labeling = RoundLabelingOutput()
    reward_model = serializers.DictField(allow_null=True, help_text="The newest succeeded reward_model run's figures.")
    policy = serializers.DictField(allow_null=True, help_text="The newest succeeded rlhf or dpo run's figures.")
    versions = VersionRef(many=True)
    snapshots = serializers.ListField(
        child=serializers.IntegerField(), help_text="The preference snapshots this round's runs trained on."
    )
    evaluations = serializers.ListField(child=serializers.IntegerField())
    human_win_rate = WinRateOutput(allow_null=True)
    guard_samples = serializers.DictField(help_text="The previous round's samples put back to labelers here.")
    guard = GuardOutput(allow_null=True)


def _round_data(round_: Round) -> dict:
    data = round_selectors.round_summary(round_)
    data["created_at"] = serializers.DateTimeField().to_representation(data["created_at"])
    return data


class ProjectRoundsApi(ProjectAPIView):
    """The project's rounds side by side (reviewers and admins); POST starts the next one (admins)."""

    read_role = Role.REVIEWER
    write_role = Role.ADMIN
    parser_classes = [JSONParser]

    @extend_schema(operation_id="projects_rounds_list", responses=RoundOutput(many=True))
    def get(self, request, project_id: int):
        reject_unknown_params(request, allowed=())
        access = self.access(request, project_id)
        return Response([_round_data(r) for r in round_selectors.rounds_for_project(project_id=access.project.pk)])

    @extend_schema(operation_id="projects_rounds_create", request=RoundStartInput, responses={201: RoundOutput})
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = RoundStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        round_ = round_services.round_start(
            project=access.project,
            created_by=request.user,
            dataset_id=values["dataset"],
            version_id=values["version"],
            model_id=values["model"],
            alias=values["alias"],
            split=values["split"],
            limit=values["limit"],
            params=values["generation"],
            guard_samples=values["guard_samples"],
            note=values["note"],
        )
        return Response(_round_data(round_), status=status.HTTP_201_CREATED)


class RoundDetailApi(APIView):
    @extend_schema(operation_id="rounds_retrieve", responses=RoundOutput)
    def get(self, request, round_id: int):
        reject_unknown_params(request, allowed=())
        round_ = Round.objects.select_related("base_version__model").filter(pk=round_id).first()
        missing = NotFound(f"Round {round_id} does not exist or you do not review its project.")
        if round_ is None:
            raise missing
        try:
            project_access(user=request.user, project_id=round_.project_id, at_least=Role.REVIEWER)
        except (NotFound, PermissionDenied) as exc:  # a labeler is not told the round exists, as with runs
            raise missing from exc
        return Response(_round_data(round_))


class RunGuardApi(APIView):
    """The reward-hacking guard of an RLHF run: how often its held-out answers go on with the user's
    turn or refuse (against the reference's), refusals per prompt group (a dataset field ``group``:
    helpful / harmless), the people's votes on its best- and worst-scored samples, and the flags."""

    @extend_schema(operation_id="runs_guard", responses=GuardOutput)
    def get(self, request, run_id: int):
        reject_unknown_params(request, allowed=())
        run = selectors.run_for_user(user=request.user, run_id=run_id)
        if run.kind != RunKind.RLHF:
            raise NotFound(f"Run {run_id} is a {run.kind} run; the guard reads RLHF runs.")
        return Response(round_selectors.run_guard(run))
