import subprocess
import sys

from tests.support.paths import FRAMES


def test_help_lists_the_commands() -> None:
    run = subprocess.run([sys.executable, "-m", "marketpipe", "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    for command in ("kafka", "topics"):
        assert command in run.stdout


def test_no_command_prints_help_and_fails() -> None:
    run = subprocess.run([sys.executable, "-m", "marketpipe"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "usage: marketpipe" in run.stdout


def _env(tmp_path, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "SCHEMA_REGISTRY"))}
    env.update(MARKETPIPE_HOME=str(tmp_path / "home"), **extra)
    return env


def _one_line(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode not in (0, None), run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("marketpipe: "), run.stderr[-2000:]
    return lines[0]


def test_topics_list_against_a_dead_broker_is_one_line(tmp_path) -> None:
    from marketpipe.runtime.localhost import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    run = subprocess.run([sys.executable, "-m", "marketpipe", "topics", "list"], capture_output=True, text=True,
                         timeout=120, env=_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=address))
    line = _one_line(run)
    assert address in line and "marketpipe kafka up" in line


def test_a_bad_value_of_a_setting_the_command_does_not_use_is_ignored(tmp_path) -> None:
    """Issue 12: `MARKETPIPE_TRADER_POLL_SECONDS=abc marketpipe decode ...` decodes."""

    frame = FRAMES / "infoway_trade.json"
    run = subprocess.run([sys.executable, "-m", "marketpipe", "decode", "infoway", str(frame)], capture_output=True,
                         text=True, timeout=60, env=_env(tmp_path, MARKETPIPE_TRADER_POLL_SECONDS="abc"))
    assert run.returncode == 0, run.stderr
    assert '"symbol"' in run.stdout and "MARKETPIPE_TRADER_POLL_SECONDS" not in run.stderr


def test_a_bad_value_of_a_setting_the_command_uses_is_one_line(tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "marketpipe", "trade"], capture_output=True,
                         text=True, timeout=60, env=_env(tmp_path, MARKETPIPE_TRADER_POLL_SECONDS="abc"))
    line = _one_line(run)
    assert run.returncode == 2
    assert line == "marketpipe: configuration error: MARKETPIPE_TRADER_POLL_SECONDS='abc' is not a number"


def test_a_missing_file_is_one_line(tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "marketpipe", "decode", "infoway", str(tmp_path / "absent.bin")],
                         capture_output=True, text=True, timeout=60, env=_env(tmp_path))
    assert "absent.bin" in _one_line(run)



def test_a_missing_command_module_is_an_error_not_a_missing_command(monkeypatch, capsys) -> None:
    import pytest

    from marketpipe.cli import main as cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "marketpipe.no_such_command"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert str(exc.value) == "marketpipe: command module marketpipe.no_such_command is missing (reinstall marketpipe)"


def test_every_command_module_is_present() -> None:
    import importlib.util

    from marketpipe.cli import main as cli

    assert [m for m in cli.COMMAND_MODULES if importlib.util.find_spec(m) is None] == []


def test_help_is_written_for_users() -> None:
    """Help texts are not module docstrings: no reST markup, and no source paths."""
    import re

    from marketpipe.cli.main import build_parser, parsers

    markup = re.compile(r"``|:(?:func|class|meth|mod|data|attr):`")
    source = re.compile(r"marketpipe/|\w\.py\b")
    shown = {p.prog: p.format_help() for p in parsers(build_parser())}
    assert len(shown) > 15
    assert [prog for prog, text in shown.items() if markup.search(text)] == []
    assert [prog for prog, text in shown.items() if source.search(text)] == []


def test_every_command_module_is_named_as_the_user_types_it() -> None:
    from marketpipe.cli.main import COMMAND_MODULES, build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert sorted(m.rsplit(".", 1)[1] for m in COMMAND_MODULES) == sorted(commands)
