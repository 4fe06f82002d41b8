"""The benchmark's settings: the production settings module, unchanged, plus the bench app and a
URLconf with one extra endpoint (the floor). Configuration still comes from the environment,
which bench/run.py sets like production (DEBUG off, generated SECRET_KEY and Fernet key)."""
from hitl_project.settings import *  # noqa: F401,F403
from hitl_project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
ROOT_URLCONF = "bench.urls"
