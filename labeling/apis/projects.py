from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import JSONObjectField
from labeling.access import can_create_projects, is_platform_admin
from labeling.apis.common import Paginated, ProjectAPIView, ordered, paginate, reject_unknown_params
from labeling.models import AlignmentCriterion, Membership, Project, Role
from labeling.selectors.projects import projects_for_user
from labeling.services import projects as services
from models_registry.models import ModelVersion
from models_registry.selectors import version_usable

User = get_user_model()


class UserOutput(serializers.ModelSerializer):
    # Not the model field's validator pattern: Python's \w (Django's check) takes Unicode letters,
    # an OpenAPI (ECMA) pattern's \w only ASCII, so a valid name like "Zoë" would break the schema.
    username = serializers.CharField(read_only=True)

    class Meta:
        model = User
        fields = ("id", "username", "email", "is_staff", "is_superuser")


class UserListCreateApi(Paginated, APIView):
    class UserInput(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        # Checked by AUTH_PASSWORD_VALIDATORS (labeling.services.accounts), not here; spaces are kept.
        password = serializers.CharField(write_only=True, trim_whitespace=False)
        # Blank is its default, so a client that sends the documented default gets an account, not a 400.
        email = serializers.EmailField(required=False, allow_blank=True, default="")
        is_staff = serializers.BooleanField(required=False, default=False)

    def check_platform_admin(self, request):
        if not is_platform_admin(request.user):
            raise PermissionDenied("Only platform admins manage accounts.")

    @extend_schema(responses=UserOutput(many=True))
    def get(self, request):
        self.check_platform_admin(request)
        reject_unknown_params(request, allowed=())
        users = ordered(User.objects.all(), request, allowed=("id", "username"), default="id")
        return paginate(self, request, users, UserOutput)

    @extend_schema(request=UserInput, responses={201: UserOutput})
    def post(self, request):
        self.check_platform_admin(request)
        data = self.UserInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(**data.validated_data)
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


class MeApi(APIView):
    @extend_schema(responses=UserOutput)
    def get(self, request):
        return Response(UserOutput(request.user).data)


class ProjectOutput(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = (
            "id",
            "name",
            "kind",
            "instructions",
            "completions_per_prompt",
            "overlap",
            "lease_seconds",
            "gold_rate",
            "ai_spot_check_rate",
            "rank_per_criterion",
            "prompt_template",
            "generation_config",
            "generation_model",
            "created_at",
            "updated_at",
            "role",
        )

    def get_role(self, project) -> str | None:
        role = getattr(project, "member_role", None)
        return Role.ADMIN if is_platform_admin(self.context.get("user")) else role


class ProjectInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    instructions = serializers.CharField(required=False, allow_blank=True)
    completions_per_prompt = serializers.IntegerField(min_value=2, max_value=9, required=False)
    overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    lease_seconds = serializers.IntegerField(min_value=10, max_value=7 * 24 * 3600, required=False)
    gold_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    ai_spot_check_rate = serializers.FloatField(
        min_value=0.0, max_value=1.0, required=False, help_text="Share of AI-labeled comparisons kept for humans."
    )
    rank_per_criterion = serializers.BooleanField(required=False)
    generation_config = JSONObjectField(required=False)
    generation_model = serializers.PrimaryKeyRelatedField(
        queryset=ModelVersion.objects.select_related("model"),
        required=False,
        allow_null=True,
        help_text="The registered causal-lm version that generates completions.",
    )

    def validate_generation_model(self, value):
        if value is None:
            return value
        # Only a shared version or one of this project's (a new project has none yet): the project's
        # runs will load it, so it must not carry another project's weights in.
        project_id = self.context.get("project_id")
        if version_usable(user=self.context.get("user"), version_id=value.pk, project_id=project_id) is None:
            where = f"project {project_id}" if project_id is not None else "a new project"
            raise serializers.ValidationError(f"There is no model version {value.pk} you can use in {where}.")
        if value.model.task != "causal-lm":
            raise serializers.ValidationError(f"{value.model.name} v{value.version} is not a causal-lm model.")
        return value


class ProjectListCreateApi(Paginated, APIView):
    @extend_schema(responses=ProjectOutput(many=True))
    def get(self, request):
        reject_unknown_params(request, allowed=())
        projects = ordered(
            projects_for_user(user=request.user), request, allowed=("id", "name", "created_at"), default="id"
        )
        return paginate(self, request, projects, ProjectOutput, context={"user": request.user})

    @extend_schema(request=ProjectInput, responses={201: ProjectOutput})
    def post(self, request):
        if not can_create_projects(request.user):
            raise PermissionDenied("Only platform admins and staff accounts create projects.")
        data = ProjectInput(data=request.data, context={"user": request.user})
        data.is_valid(raise_exception=True)
        project = services.project_create(created_by=request.user, **data.validated_data)
        project.member_role = Role.ADMIN
        return Response(ProjectOutput(project, context={"user": request.user}).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ProjectAPIView):
    @extend_schema(responses=ProjectOutput)
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        access.project.member_role = access.role
        return Response(ProjectOutput(access.project, context={"user": request.user}).data)

    @extend_schema(request=ProjectInput(partial=True), responses=ProjectOutput)
    def patch(self, request, project_id: int):
        access = self.access(request, project_id)
        data = ProjectInput(data=request.data, partial=True, context={"user": request.user, "project_id": project_id})
        data.is_valid(raise_exception=True)
        project = services.project_update(project=access.project, **data.validated_data)
        project.member_role = access.role
        return Response(ProjectOutput(project, context={"user": request.user}).data)


class MembershipOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ("id", "user", "username", "role", "created_at")


class MemberListCreateApi(Paginated, ProjectAPIView):
    read_role = Role.REVIEWER

    class MemberInput(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(responses=MembershipOutput(many=True))
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=("role",))
        members = access.project.memberships.select_related("user")
        if role := request.query_params.get("role"):
            members = members.filter(role=role)
        members = ordered(members, request, allowed=("id", "role", "created_at"), default="id")
        return paginate(self, request, members, MembershipOutput)

    @extend_schema(request=MemberInput, responses={201: MembershipOutput})
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = self.MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_set(project=access.project, **data.validated_data)
        return Response(MembershipOutput(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(ProjectAPIView):
    read_role = Role.REVIEWER

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, membership_id: int):
        access = self.access(request, project_id)
        membership = get_object_or_404(Membership, project=access.project, pk=membership_id)
        services.membership_remove(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CriterionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlignmentCriterion
        fields = ("id", "name", "instructions", "position")


class CriterionListCreateApi(ProjectAPIView):
    @extend_schema(responses=CriterionSerializer(many=True))
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        return Response(CriterionSerializer(access.project.criteria.all(), many=True).data)

    @extend_schema(request=CriterionSerializer, responses={201: CriterionSerializer})
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = CriterionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        criterion = services.criterion_create(project=access.project, **data.validated_data)
        return Response(CriterionSerializer(criterion).data, status=status.HTTP_201_CREATED)


class CriterionDetailApi(ProjectAPIView):
    @extend_schema(request=CriterionSerializer(partial=True), responses=CriterionSerializer)
    def patch(self, request, project_id: int, criterion_id: int):
        access = self.access(request, project_id)
        criterion = get_object_or_404(AlignmentCriterion, project=access.project, pk=criterion_id)
        data = CriterionSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(CriterionSerializer(services.criterion_update(criterion=criterion, **data.validated_data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, criterion_id: int):
        access = self.access(request, project_id)
        criterion = get_object_or_404(AlignmentCriterion, project=access.project, pk=criterion_id)
        services.criterion_delete(criterion=criterion)
        return Response(status=status.HTTP_204_NO_CONTENT)
