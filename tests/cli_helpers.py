"""Running ``analog-ep`` in process and checking its one-line errors, for the CLI tests."""

from analog_ep.cli import main


def run_cli(capsys, *argv):
    """(status, stdout, stderr) of ``analog-ep ARGV`` run in process."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *fragments, allow_warnings=False):
    """Exit status 2 and exactly one ``analog-ep ...`` line on stderr containing every
    fragment; with ``allow_warnings``, indented warning-source lines are not counted."""
    assert status == 2
    lines = err.strip().splitlines()
    if allow_warnings:
        lines = [line for line in lines if not line.startswith("  ")]
    assert len(lines) == 1 and lines[0].startswith("analog-ep "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def run_module(*argv, cwd=None, env=None):
    """``python -m analog_ep ARGV`` in a subprocess, as a user runs it, with this source tree
    on PYTHONPATH; returns the CompletedProcess (text stdout and stderr)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "analog_ep", *map(str, argv)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)
