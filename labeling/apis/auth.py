"""Sign-in and credentials: the browser's session cookie plus Django's CSRF token, API tokens
(obtain, revoke; a platform admin revokes anyone's), and password change.

Every endpoint that checks a password is throttled (common.throttling): 429 with Retry-After.
"""

from django.contrib.auth import authenticate, get_user_model, login, logout, update_session_auth_hash
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import is_platform_admin
from common.throttling import SIGN_IN_THROTTLES, PasswordChangeThrottle
from labeling.apis.projects import UserOutput
from labeling.services import accounts

User = get_user_model()


class SignInThrottled:
    """The 429 names what was throttled; DRF adds "Expected available in N seconds" and Retry-After."""

    def throttled(self, request, wait):
        raise Throttled(wait, detail="Too many sign-in attempts.")


class CsrfOutput(serializers.Serializer):
    csrf_token = serializers.CharField()


class CsrfApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses=CsrfOutput, summary="Set the CSRF cookie and return its token (before signing in)")
    def get(self, request):
        return Response({"csrf_token": get_token(request)})

    @classmethod
    def as_view(cls, **kwargs):
        return ensure_csrf_cookie(super().as_view(**kwargs))


class SessionApi(SignInThrottled, APIView):
    """POST signs in (session cookie), DELETE signs out. SessionAuthentication enforces CSRF on both."""

    permission_classes = [AllowAny]
    throttle_classes = SIGN_IN_THROTTLES

    class LoginInput(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(write_only=True, trim_whitespace=False)

    @extend_schema(request=LoginInput, responses=UserOutput, summary="Sign in with a session cookie")
    def post(self, request):
        # DRF checks CSRF only for sessions that exist; signing in needs it too (login CSRF).
        SessionAuthentication().enforce_csrf(request)
        data = self.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None:
            raise AuthenticationFailed("Wrong username or password.")
        login(request._request, user)
        return Response(UserOutput(user).data)

    @extend_schema(request=None, responses={204: None}, summary="Sign out")
    def delete(self, request):
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenApi(SignInThrottled, ObtainAuthToken):
    """POST exchanges a username and password for the account's API token (DRF's ObtainAuthToken,
    throttled); DELETE revokes the caller's token."""

    throttle_classes = SIGN_IN_THROTTLES

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(request=None, responses={204: None}, summary="Revoke the caller's API token")
    def delete(self, request):
        accounts.tokens_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserTokenApi(APIView):
    @extend_schema(request=None, responses={204: None}, summary="Revoke a user's API tokens (platform admins)")
    def delete(self, request, user_id: int):
        if not is_platform_admin(request.user):
            raise PermissionDenied("Only platform admins revoke other accounts' tokens.")
        accounts.tokens_revoke(user=get_object_or_404(User, pk=user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeOutput(serializers.Serializer):
    detail = serializers.CharField()
    tokens_revoked = serializers.IntegerField()


class PasswordChangeApi(SignInThrottled, APIView):
    throttle_classes = [PasswordChangeThrottle]

    class PasswordChangeInput(serializers.Serializer):
        old_password = serializers.CharField(write_only=True, trim_whitespace=False)
        new_password = serializers.CharField(write_only=True, trim_whitespace=False)

    @extend_schema(
        request=PasswordChangeInput,
        responses=PasswordChangeOutput,
        summary="Change your password",
        description=(
            "Checks `old_password`, runs `new_password` through the password validators, and revokes the "
            "account's API tokens (a client signed in with one must obtain a new token). The session that made "
            "the change stays signed in; the account's other sessions are signed out."
        ),
    )
    def post(self, request):
        data = self.PasswordChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        revoked = accounts.password_change(user=request.user, **data.validated_data)
        if isinstance(request.successful_authenticator, SessionAuthentication):
            update_session_auth_hash(request._request, request.user)
        return Response({"detail": "Password changed.", "tokens_revoked": revoked})
