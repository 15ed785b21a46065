"""Browser sign-in: a session cookie plus Django's CSRF token (API clients use /api/auth/token/)."""

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.apis.projects import UserOutput


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


class SessionApi(APIView):
    """POST signs in (session cookie), DELETE signs out. SessionAuthentication enforces CSRF on both."""

    permission_classes = [AllowAny]

    class LoginInput(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(write_only=True)

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
