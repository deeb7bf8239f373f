"""`check --deploy` with production settings reports only what the README documents."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_check_deploy_reports_only_documented_warnings(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "TUTOR_ENV": "production",
        "TUTOR_SECRET_KEY": secrets.token_urlsafe(50),
        "TUTOR_ALLOWED_HOSTS": "tutor.example.org",
        "TUTOR_VAR_DIR": str(tmp_path),
    }
    run = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    reported = set(re.findall(r"\((\w+\.[EW]\d+)\)", run.stdout + run.stderr))
    documented = set(re.findall(r"\b(security\.W\d+)\b", (ROOT / "README.md").read_text()))
    assert run.returncode == 0, run.stderr
    assert reported <= documented, f"undocumented: {reported - documented}"


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**os.environ, "TUTOR_ENV": "production", "TUTOR_SECRET_KEY": "", "TUTOR_VAR_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "TUTOR_SECRET_KEY" in run.stderr


def test_migrations_match_the_models(db):
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # exits non-zero when out of date
