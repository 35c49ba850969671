"""The benchmark's server settings (bench_balance.py starts gunicorn with them): the project's
own settings as deployed, with a URL conf (benchmarks.balance_urls) that adds a bare view
beside the project's URLs, so both are served by the same processes, middleware and database
connection settings. Nothing in the product points here.
"""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.balance_urls"
