"""Provenance of a run: git commit, package versions, device, host, time."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = (
    "segbench",
    "torch",
    "numpy",
    "segmentation-models-pytorch",
    "timm",
    "monai",
    "scikit-learn",
    "scipy",
    "pandas",
    "snakemake",
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(root: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``git ARGS`` run in ``root`` (an argument list, no shell), output captured, 10 s limit."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)


def git_commit(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or "unknown", "dirty": bool or None, "path": the git top level or
    ``root`` itself}`` of the git tree holding ``root`` (tracked files only for ``dirty``)."""
    unknown = {"commit": "unknown", "dirty": None, "path": str(Path(root).resolve())}
    try:
        top = _git(root, "rev-parse", "--show-toplevel", "HEAD")
        if top.returncode != 0:
            return unknown
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return unknown
    path, sha = top.stdout.split()[:2]
    return {"commit": sha, "dirty": bool(status.stdout.strip()), "path": path}


def git_provenance(workflow_dir: str | Path | None = None) -> dict[str, Any]:
    """The ``git`` block of ``run.json``: the tree of the workflow that ran the job, and the
    tree the ``segbench`` package was imported from when that is another one.

    Args:
        workflow_dir: the workflow's directory (default: the current directory, which is
            Snakemake's working directory in a job; the Snakefile's directory unless
            ``--directory`` moved it).

    Returns:
        ``{"commit", "dirty", "path"}`` of the workflow's tree (``commit: "unknown"``,
        ``dirty: None`` outside git), plus ``"package": {"commit", "dirty", "path"}`` when the
        package comes from a different tree (another checkout, an installed copy).
    """
    workflow = git_commit(Path.cwd() if workflow_dir is None else Path(workflow_dir))
    package = git_commit(REPO_ROOT)
    if package["path"] != workflow["path"]:
        workflow["package"] = package
    return workflow


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info(device: Any) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "device": str(device),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
    }
    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
        idx = (
            device.index
            if getattr(device, "index", None) is not None
            else torch.cuda.current_device()
        )
        info["gpu_name"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
    return info
