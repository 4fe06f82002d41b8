import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("lead", password="right-password-123", is_staff=True)


def login(client, password):
    return client.post("/admin/login/?next=/admin/", {"username": "lead", "password": password})


def test_login_is_throttled_after_repeated_failures(client, settings, staff):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(4):
        assert login(client, "wrong").status_code == 200  # the form again, with an error
    assert login(client, "wrong").status_code == 429  # the fifth failure locks
    locked = login(client, "right-password-123")
    assert locked.status_code == 429
    assert b"right-password-123" not in locked.content


def test_a_good_login_works_when_not_throttled(client, settings, staff):
    settings.AXES_ENABLED = True
    assert login(client, "wrong").status_code == 200
    response = login(client, "right-password-123")
    assert response.status_code == 302


def test_metrics_are_exposed(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content
