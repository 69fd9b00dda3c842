"""The command line a new user meets: every command's help has an example, every option
says what it does, a short flag means one thing everywhere, and shell completion is on."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer

from conftest import run_cli
from vtbench.cli import app


def _commands() -> list[tuple[str, Any]]:
    found = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):  # a group (typer 0.29 ships its own click)
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found.append((" ".join(path), command))

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = _commands()


@pytest.mark.parametrize("name, command", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_command_has_an_example_and_every_option_its_help(name: str, command: Any) -> None:
    assert "Example" in (command.help or ""), f"`vtbench {name} --help` shows no example"
    undocumented = [p.name for p in command.params if not getattr(p, "help", None)]
    assert not undocumented, f"`vtbench {name}`: no help text for {undocumented}"


def test_a_short_flag_means_the_same_option_everywhere() -> None:
    meaning: dict[str, set[str]] = {}
    for _, command in COMMANDS:
        for param in command.params:
            if param.param_type_name == "option":
                longs = [o for o in param.opts if o.startswith("--")]
                for short in (o for o in param.opts if not o.startswith("--")):
                    meaning.setdefault(short, set()).update(longs)
    clashes = {short: sorted(longs) for short, longs in meaning.items() if len(longs) > 1}
    assert not clashes, f"short flags with several meanings: {clashes}"
    assert len(COMMANDS) >= 12 and "-t" in meaning and meaning["-t"] == {"--tokenizer"}


def test_shell_completion_is_offered() -> None:
    help_text = run_cli("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text


def test_weights_list_tells_a_bad_file_from_a_missing_one(tmp_path: Path) -> None:
    env = {**os.environ, "VTBENCH_HOME": str(tmp_path)}
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "vgg16-397923af.pth").write_bytes(b"not the published file")
    rows = {row["name"]: row for row in json.loads(run_cli("weights", "list", "--json", env=env).stdout)["weights"]}
    assert rows["vgg16"]["status"] == "BAD" and "expected 397923af" in rows["vgg16"]["problem"]
    assert rows["alexnet"]["status"] == "missing" and rows["alexnet"]["problem"] is None
    table = run_cli("weights", "list", env=env).stdout
    assert "BAD" in table
