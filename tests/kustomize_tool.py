"""The kustomize binary the manifest render test runs: the one on PATH, else the one built into
the virtual env, else built there now with `go install` from the Go module proxy (about 30 s once;
the version is pinned so every machine renders the same way).

`python -m tests.kustomize_tool` builds it ahead of the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# v5.7.1 builds with the machine's Go (1.26) without a newer toolchain
MODULE = "sigs.k8s.io/kustomize/kustomize/v5@v5.7.1"
VENV_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"
BUILD_TIMEOUT_S = 600


def kustomize() -> Path:
    """The kustomize executable, built into .venv/bin when none is found."""
    found = shutil.which("kustomize") or shutil.which("kustomize", path=str(VENV_BIN))
    if found:
        return Path(found)
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise RuntimeError(f"kustomize is not on PATH and no Go toolchain can build {MODULE}")
    VENV_BIN.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, "GOBIN": str(VENV_BIN), "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    result = subprocess.run(
        [go, "install", MODULE],
        env=environ,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"go install {MODULE} failed:\n{result.stderr[-2000:]}")
    return VENV_BIN / "kustomize"


if __name__ == "__main__":
    print(kustomize())
    sys.exit(0)
