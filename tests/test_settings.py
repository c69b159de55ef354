"""Settings from the environment are strict: a malformed boolean, number or rate stops the start
with a message naming the variable and its value, never a silent default or a bare ValueError."""
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from idclass.settings import env_bool, env_number, env_rates
from tests.conftest import ROOT


def test_a_misspelt_debug_stops_manage_py_with_its_name():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | {"DEBUG": "ture"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG='ture': write true or false" in result.stderr


@pytest.mark.parametrize("value, expected", [("true", True), (" On ", True), ("1", True), ("no", False),
                                             ("FALSE", False), ("", True)])
def test_booleans(monkeypatch, value, expected):
    monkeypatch.setenv("IDCLASS_X", value)
    assert env_bool("IDCLASS_X", True) is expected


@pytest.mark.parametrize("read, value, message", [
    (lambda: env_bool("IDCLASS_X", False), "ture", "IDCLASS_X='ture': write true or false"),
    (lambda: env_number("IDCLASS_X", 30), "thirty", "IDCLASS_X='thirty': write an integer of at least 0"),
    (lambda: env_number("IDCLASS_X", 30), "2.5", "IDCLASS_X='2.5': write an integer"),
    (lambda: env_number("IDCLASS_X", 5, minimum=1), "0", "IDCLASS_X='0': write an integer of at least 1"),
    (lambda: env_number("IDCLASS_X", 2.0, float), "-1", "IDCLASS_X='-1': write a number of at least 0"),
    (lambda: env_rates("IDCLASS_X", "off"), "10/x", "IDCLASS_X='10/x': write rates as COUNT/PERIOD"),
    (lambda: env_rates("IDCLASS_X", "off"), "0/m", "IDCLASS_X='0/m': write rates"),
])
def test_malformed_values_name_the_variable_and_the_value(monkeypatch, read, value, message):
    monkeypatch.setenv("IDCLASS_X", value)
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(")):
        read()


def test_numbers_and_rates(monkeypatch):
    monkeypatch.setenv("IDCLASS_X", " 12 ")
    assert env_number("IDCLASS_X", 30) == 12 and env_number("IDCLASS_X", 2.0, float) == 12.0
    monkeypatch.delenv("IDCLASS_X")
    assert env_number("IDCLASS_X", 30) == 30
    assert env_rates("IDCLASS_X", "10/m,200/d") == [(10, 60), (200, 86400)]
