"""Start Python subprocesses the way this test process runs: the same interpreter and the
same site flag. Run with `python -S` and PYTHONPATH (this checkout first), the suite's
subprocesses import this checkout's code too, never an editable install of another
checkout that the environment's site-packages may point at."""

import sys


def python() -> list[str]:
    return [sys.executable, "-S"] if sys.flags.no_site else [sys.executable]
