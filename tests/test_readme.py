"""The README's commands, run as written and in order (the ``readme_run`` fixture), offline
like every test: commands that need a download must stop with exit 2 and a message naming
what is missing; the set-up commands (`make ...`) are what CI itself runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

NEEDS_A_DOWNLOAD = {  # command prefix -> what its error must name when the file is not here
    "vtbench weights path alexnet": "alexnet-owt-7be5be79.pth",
    "vtbench weights fetch alexnet": "VTBENCH_OFFLINE",
    "vtbench run --generator": "vtbench weights fetch inception-v3-compat",
    "vtbench reference-stats": "vtbench weights fetch inception-v3-compat",
    **{
        f"vtbench run -g {name}": "VIRTUAL_imagenet256_labeled.npz: no such .npz file"
        for name in ("llamagen-c2i-b-256", "var-d16", "titok-maskgit-l32", "dit-xl-2-256")
    },
}
DOCUMENTED_EXIT = re.compile(r"#\s*exits (\d)\b")


@pytest.mark.slow
def test_readme_commands_run_as_written_in_order(readme_run: tuple[Path, list[tuple[str, int, str]], str]) -> None:
    folder, outcomes, stderr = readme_run
    assert len(outcomes) >= 20
    for command, rc, output in outcomes:
        documented = DOCUMENTED_EXIT.search(command)
        needs = next((message for prefix, message in NEEDS_A_DOWNLOAD.items() if command.startswith(prefix)), None)
        if documented:
            assert rc == int(documented.group(1)), f"{command}: exit {rc}\n{output[-2000:]}"
        elif needs is not None and rc != 0:
            assert rc == 2 and needs in output + stderr, f"{command}: exit {rc} without naming {needs!r}\n{output[-2000:]}"
        else:
            assert rc == 0, f"{command}: exit {rc}\n{output[-2000:]}\nstderr:\n{stderr[-4000:]}"
    # what the commands promise is there
    assert len(list((folder / "results" / "quickstart").glob("*__samples.json"))) == 8
    assert (folder / "results" / "merged" / "webp-q50__samples.json").is_file()
    assert (folder / "results" / "ddp" / "jpeg-q50__samples.json").is_file()
    assert len(list((folder / "data" / "text").glob("**/*.png"))) == 60
    assert {p.name for p in (folder / "runs" / "text").glob("*.json")} == {"jpeg-q25__text.json", "resample-x2__text.json"}
    assert len(list((folder / "runs" / "detail").glob("*.json"))) == 6


def test_readme_python_example_runs_as_written(readme_run: tuple[Path, list[tuple[str, int, str]], str]) -> None:
    """The README's Python blocks, executed in order in the README test's working folder."""
    import contextlib
    import io
    import os

    from conftest import REPO

    folder = readme_run[0]
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
    assert blocks
    previous, output = Path.cwd(), io.StringIO()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(output):
            for block in blocks:
                exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(previous)
    records = {p.name for p in (folder / "results" / "api").glob("*.json")}
    assert records == {"jpeg-q50__samples.json", "jpeg-q75__samples.json", "webp-q50__samples.json"}
    assert "| jpeg-q75" in output.getvalue() or "jpeg-q75" in output.getvalue()
