"""Throttles for the endpoints that check a password: token, session sign-in and password change.

Rates come from ``settings.RANKFORGE_THROTTLE_RATES`` at request time (env-overridable, and tests can
override them). The counts live in Django's default cache, which settings point at Redis or a file
cache under ``VAR_DIR`` so that every gunicorn worker shares them (the per-process LocMemCache would
give each worker its own budget). A throttled request is a 429 with ``Retry-After``.
"""

import hashlib

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class SettingsRateThrottle(SimpleRateThrottle):
    """Only POST (the request that checks a password) counts; GET/DELETE on the same view do not."""

    def get_rate(self):
        return settings.RANKFORGE_THROTTLE_RATES[self.scope]

    def allow_request(self, request, view):
        # DRF reads the rate in __init__; read it again so an overridden setting applies at once.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if request.method != "POST":
            return True
        return super().allow_request(request, view)

    def cache_key_for(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


def _tried_username(request) -> str:
    try:
        username = request.data.get("username")
    except AttributeError:  # a JSON list or scalar body: no username, nothing is checked
        return ""
    return username.strip().lower() if isinstance(username, str) else ""


class LoginAccountThrottle(SettingsRateThrottle):
    """Guesses at one account from one address: keyed by client IP and the username tried. A request
    without a username checks no password, so it does not count."""

    scope = "login"

    def get_cache_key(self, request, view):
        username = _tried_username(request)
        if not username:
            return None
        digest = hashlib.sha256(username.encode()).hexdigest()[:24]  # any characters, fixed length
        return self.cache_key_for(f"{self.get_ident(request)}:{digest}")


class LoginAddressThrottle(SettingsRateThrottle):
    """Guesses across many accounts from one address (password spraying): keyed by client IP."""

    scope = "login_ip"

    def get_cache_key(self, request, view):
        return self.cache_key_for(self.get_ident(request))


class PasswordChangeThrottle(SettingsRateThrottle):
    """A stolen session or token guessing its owner's old password: keyed by the signed-in user."""

    scope = "login"

    def get_cache_key(self, request, view):
        if not request.user:
            return None
        return self.cache_key_for(f"user:{request.user.pk}")


SIGN_IN_THROTTLES = [LoginAddressThrottle, LoginAccountThrottle]
