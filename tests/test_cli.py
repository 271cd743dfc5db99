import subprocess
import sys


def test_help_lists_the_commands() -> None:
    run = subprocess.run([sys.executable, "-m", "marketpipe", "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    for command in ("kafka", "topics"):
        assert command in run.stdout


def test_no_command_prints_help_and_fails() -> None:
    run = subprocess.run([sys.executable, "-m", "marketpipe"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "usage: marketpipe" in run.stdout
