"""``python -m vtbench`` is the ``vtbench`` command."""

from vtbench.cli import main

main()
