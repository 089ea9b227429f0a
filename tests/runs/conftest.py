"""Fixtures of the runner's tests with the fake ``mbmeta`` (``fake_mbmeta.py``)."""

import json

import pytest


@pytest.fixture
def calls(tmp_path, monkeypatch):
    """The file the fake ``mbmeta`` logs its calls to, and each method's base return."""
    path = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_CALLS", str(path))
    bases = {"none": 100.0, "context": 200.0, "context-dp": 300.0, "random": 50.0, "scripted": 70.0}
    monkeypatch.setenv("FAKE_BASE", json.dumps(bases))
    return path
