"""Wall time of the README quickstart command (``vtbench run recipes/quickstart.yaml``).

Target: under 90 s on a 2-core CPU machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import save

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "vtbench", "run", str(REPO / "recipes" / "quickstart.yaml"), "--out", tmp],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - start
    save("quickstart_time", {"command": "vtbench run recipes/quickstart.yaml", "wall_s": round(seconds, 1), "target": "< 90 s"})


if __name__ == "__main__":
    main()
