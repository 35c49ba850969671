"""The admin's login door: repeated failed logins are locked out (django-axes), sessions expire
after the idle time, and every staff login, failed login and refusal is on `credits.audit`."""

import logging

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(db):
    user = UserFactory(username="door-staff", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def attempt(client, password):
    return client.post(LOGIN, {"username": "door-staff", "password": password})


def test_repeated_failed_logins_lock_the_account_out_even_with_the_right_password(client, staff):
    # given: as many wrong passwords as the limit; the last one locks the door
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "wrong").status_code == 200  # the form again, with its error
    assert attempt(client, "wrong").status_code == 429
    # when: the right password
    response = attempt(client, PASSWORD)
    # then: locked out, not logged in
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.get(username="door-staff").failures_since_start >= (
        settings.AXES_FAILURE_LIMIT
    )


def test_a_failure_below_the_limit_does_not_lock_out(client, staff):
    # given
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "wrong")
    # when
    response = attempt(client, PASSWORD)
    # then
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_logins_and_failed_logins_are_logged(client, staff, caplog):
    # when
    with caplog.at_level(logging.INFO, logger="credits.audit"):
        attempt(client, "wrong")
        attempt(client, PASSWORD)
    # then
    lines = [record.getMessage() for record in caplog.records if record.name == "credits.audit"]
    assert lines[0].startswith("failed login: username='door-staff'")
    assert lines[1].startswith(f"staff login: user=door-staff id={staff.pk}")


def test_a_permission_refusal_is_logged(staff, caplog):
    # given: staff without permissions
    client = APIClient()
    client.force_authenticate(user=UserFactory(username="plain"))
    # when
    with caplog.at_level(logging.INFO, logger="credits.audit"):
        response = client.get("/api/migrate/user-credits/")
    # then
    assert response.status_code == 403
    lines = [record.getMessage() for record in caplog.records if record.name == "credits.audit"]
    assert lines == [
        f"permission refused: user=plain id={response.wsgi_request.user.pk} GET "
        "/api/migrate/user-credits/ code=permission_denied "
    ]


def test_force_login_and_login_without_a_request_still_work(client, staff):
    # when: the test client's login() calls authenticate() without a request
    assert client.login(username="door-staff", password=PASSWORD)
    # then
    assert client.get("/admin/").status_code == 200


def test_a_session_expires_after_the_idle_time_and_each_request_moves_it(client, staff):
    # given
    client.force_login(staff)
    # when
    response = client.get("/admin/")
    # then: the cookie lives for the idle time, set again on every request
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == settings.SESSION_COOKIE_AGE == 30 * 60
    assert client.session.get_expiry_age() == 30 * 60
