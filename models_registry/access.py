"""Who may do what in the registry.

Reads follow project membership (``selectors.visible_models_q``): platform admins read everything,
everyone else the shared models and those of the projects they review or administer; what a user
may not read is a 404. Changing a project's model (tags, aliases) takes the project's admin role;
creating a model or importing a version takes a staff account too, and names a project the account
administers. Shared and unscoped models, marking a model shared, and importing a directory from the
server are for platform admins only (a shared model is read by every signed-in user).
"""

from rest_framework.exceptions import PermissionDenied, ValidationError

from common.api import is_platform_admin, is_staff_or_admin
from models_registry import selectors
from models_registry.models import RegisteredModel


def can_manage_models(user) -> bool:
    return is_staff_or_admin(user)


def require_manager(user, action: str) -> None:
    if not can_manage_models(user):
        raise PermissionDenied(f"Only platform admins and staff accounts {action}.")


def require_platform_admin(user, action: str) -> None:
    if not is_platform_admin(user):
        raise PermissionDenied(f"Only platform admins {action}.")


def has_project_role(user, project_id: int | None, roles: tuple[str, ...] = selectors.WRITER_ROLES) -> bool:
    if project_id is None or user is None or not user.is_authenticated:
        return False
    return selectors.member_project_ids(user, roles).filter(pk=project_id).exists()


def require_model_writer(user, model, action: str) -> None:
    """A project's admins change its models; platform admins any model. (Call it after the model was
    read through the selectors, so that outsiders got their 404 already.)"""
    if is_platform_admin(user):
        return
    if model.shared or model.project_id is None:
        scope = "a shared model" if model.shared else "a model of no project"
        raise PermissionDenied(f"Only platform admins {action} on {scope} ({model.name}).")
    if not has_project_role(user, model.project_id):
        raise PermissionDenied(f"Only admins of project {model.project_id} {action} on {model.name}.")


def scope_for_new_model(
    user, *, project_id: int | None, shared: bool, existing: RegisteredModel | None = None
) -> int | None:
    """The project a new model (or a version joining ``existing``) belongs to, checked for ``user``.

    Staff name a project they administer; an unscoped model (no project) and ``shared`` are for
    platform admins. A version joins ``existing`` in that model's project. Errors name the field.
    """
    if shared and not is_platform_admin(user):
        raise PermissionDenied("shared: only platform admins share a model with every signed-in user.")
    if existing is not None:
        if project_id is not None and project_id != existing.project_id:
            raise ValidationError({"project": [f"{existing.name} is not a model of project {project_id}."]})
        require_model_writer(user, existing, "add versions")
        return existing.project_id
    if project_id is None:
        if not is_platform_admin(user):
            raise ValidationError({"project": ["Required: the project (one you administer) the model is for."]})
        return None
    if not is_platform_admin(user) and not has_project_role(user, project_id):
        raise ValidationError({"project": [f"Project {project_id} does not exist or you are not an admin of it."]})
    if is_platform_admin(user) and not selectors.project_exists(project_id=project_id):
        raise ValidationError({"project": [f"Project {project_id} does not exist."]})
    return project_id
