"""Who may do what in the registry. Any signed-in user reads it; staff and platform admins manage it."""

from rest_framework.exceptions import PermissionDenied

from config.api import is_platform_admin, is_staff_or_admin


def can_manage_models(user) -> bool:
    return is_staff_or_admin(user)


def require_manager(user, action: str) -> None:
    if not can_manage_models(user):
        raise PermissionDenied(f"Only platform admins and staff accounts {action}.")


def require_platform_admin(user, action: str) -> None:
    if not is_platform_admin(user):
        raise PermissionDenied(f"Only platform admins {action}.")
