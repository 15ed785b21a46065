import pytest
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_token_auth_rules(api, make_user):
    user = make_user("tina")
    client = api(user)
    assert client.get("/api/me/").json()["username"] == "tina"
    bad = api()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = bad.get("/api/me/")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."
    user.is_active = False
    user.save()
    response = client.get("/api/me/")
    assert response.status_code == 401 and "inactive" in response.json()["detail"]
    assert Token.objects.filter(user=user).exists()
