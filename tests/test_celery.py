"""The Celery app: eager without a broker, and a real broker connection with Redis."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.subprocesses import python

ROOT = Path(__file__).resolve().parent.parent


def celery_settings(**env):
    environment = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    environment.update(env, DJANGO_SETTINGS_MODULE="project.settings")
    code = (
        "import django; django.setup();"
        "from project.celery import app;"
        "print(app.conf.task_always_eager, app.conf.broker_url or '')"
    )
    result = subprocess.run(
        [*python(), "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_tasks_run_eagerly_without_a_broker():
    # The in-process transport: an eager task still takes a producer, and it reaches nothing.
    assert celery_settings() == ["True", "memory://localhost/"]


def test_an_eager_task_does_not_warn_of_a_missing_broker():
    """The first task of a command (say migrate_credits --execute's notifications) printed
    kombu's "No hostname was supplied" when there was no broker URL at all."""
    environment = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    environment.update(DJANGO_SETTINGS_MODULE="project.settings")
    code = (
        "import django\n"
        "django.setup()\n"
        "from project.celery import app\n"
        "@app.task(name='ping')\n"
        "def ping():\n"
        "    return 'pong'\n"
        "print(ping.delay().get())\n"
    )
    result = subprocess.run(
        [*python(), "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pong"]
    assert "No hostname" not in result.stderr + result.stdout


@pytest.mark.redis
def test_with_a_broker_tasks_are_queued_and_the_broker_answers(redis_url):
    assert celery_settings(CELERY_BROKER_URL=redis_url) == ["False", redis_url]
    from project.celery import app

    with app.connection_for_write(redis_url) as broker:
        broker.ensure_connection(max_retries=1)
        assert broker.connected
