"""The convlife CLI's commands run in-process, for the service tests (settings: the `settings`
fixture of tests/service/conftest.py)."""

from __future__ import annotations

import pytest

from cli import main as cli
from service.settings import Settings


def run(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The command's exit code and what it printed to stdout."""
    args = cli._parser().parse_args(argv)
    code: int = args.command(settings, args)
    return code, capsys.readouterr().out
