import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.fixture
def migrate(tmp_path):
    """Run migrate_credits; return (exit code, output). JSON output is parsed."""

    def run(*args, expect=0):
        out, err = io.StringIO(), io.StringIO()
        code = 0
        try:
            call_command(
                "migrate_credits", *args, f"--backup-dir={tmp_path}", stdout=out, stderr=err
            )
        except CommandError as error:
            code = error.returncode
            err.write(str(error))
        assert code == expect, out.getvalue() + err.getvalue()
        text = out.getvalue()
        if "--format=json" in args or ("--format" in args and "json" in args):
            return code, json.loads(text)
        return code, text + err.getvalue()

    return run
