"""The README's two commands are the platform's promise; CI must run the second."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_opens_with_the_start_and_test_commands():
    start, test = _commands()[:2]
    assert "python -m config.up" in start and "requirements/base.txt" in start
    assert "python -m pytest" in test and "requirements/dev.txt" in test


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_kernels_example_runs_on_plain_numpy():
    example = re.search(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S).group(1)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    assert namespace["exact"].converged and namespace["exact"].distance > 0
    assert namespace["smooth"].plan.shape == (12, 10)
    assert abs(namespace["many"][0].distance - namespace["exact"].distance) < 1e-9
    assert len(namespace["points"]) == 7 and namespace["coarse"].mapping.shape == (12,)
