"""Passwords and API tokens: every password set through the API passes Django's validators
(AUTH_PASSWORD_VALIDATORS); a password change revokes the account's tokens."""

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from common.exceptions import ServiceError


def password_check(password: str, *, user, field: str = "password") -> None:
    """A 400 naming ``field`` with every validator's message (too short, too common, like the username...)."""
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise ServiceError(f"{field}: {' '.join(exc.messages)}", errors={field: list(exc.messages)}) from None


def tokens_revoke(*, user) -> int:
    """Delete the user's API tokens; a client using one gets 401 from its next request."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted


@transaction.atomic
def password_change(*, user, old_password: str, new_password: str) -> int:
    """Set a new password after checking the old one; returns how many tokens were revoked. Django
    then refuses the account's other sessions (their auth hash no longer matches)."""
    if not user.check_password(old_password):
        raise ServiceError("old_password: wrong password.", errors={"old_password": ["Wrong password."]})
    password_check(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    return tokens_revoke(user=user)
