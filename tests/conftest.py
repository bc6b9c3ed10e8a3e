"""Shared fixtures: repository root, venv binaries, a tiny prepared dataset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def snakemake_bin() -> str:
    exe = BIN / "snakemake"
    return str(exe) if exe.exists() else "snakemake"


def copy_workflow(dest: Path, config: Path | None = None) -> Path:
    """Copy the workflow (not the results) into ``dest`` so a test runs it in isolation."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "scripts", "envs", "config"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item)
        else:
            shutil.copy2(src, dest / item)
    if config is not None:
        shutil.copy2(config, dest / "config" / "config.yaml")
    return dest


def run_snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [snakemake_bin(), "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture()
def tiny_prepared(tmp_path: Path) -> Path:
    from segbench.data.io import save_prepared
    from segbench.data.synthetic import generate

    images, masks, ids, meta = generate("synth_organs", n=12, size=32, seed=3)
    path = tmp_path / "prepared" / "tiny.npz"
    meta["name"] = "tiny"
    save_prepared(path, images, masks, ids, meta)
    return path
