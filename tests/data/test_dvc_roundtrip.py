"""DVC round trip: raw and prepared data tracked with DVC, pushed to a local remote, then a fresh
``git clone`` + ``dvc pull`` must let Snakemake skip download and preparation and go straight to
the step that reads the prepared arrays (the training stand-in of the test Snakefile).

Uses the repository's committed .dvc/config and .dvcignore (with the remote redirected to a
temporary folder) and the .gitignore layout docs/datasets.md recommends.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from datahelpers import (
    REPO,
    VENV_BIN,
    LocalServer,
    build_tiny_archive,
    run_cmd,
    snakemake_cmd,
    tiny_entry,
)

pytestmark = pytest.mark.slow

# Data ignored by patterns that never match the folders data/raw/ and data/prepared/ themselves:
# DVC's ignore matcher treats "data/raw/" as ignored by "/data/raw/*" (git does not) and then
# never finds data/raw/*.dvc.
GITIGNORE = """\
/data/downloads/
/data/raw/?*/
/data/prepared/*.npz
/data/prepared/*.json
/logs/
/results/
/.snakemake/
"""


def _ok(res) -> str:  # noqa: ANN001
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    return out


def test_dvc_push_delete_pull_no_rerun(http_server: LocalServer, tmp_path: Path) -> None:
    if shutil.which("git") is None or not (VENV_BIN / "dvc").exists():
        pytest.skip("needs git and .venv/bin/dvc")
    dvc = str(VENV_BIN / "dvc")
    env = {"DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"), "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    repo = tmp_path / "repo"
    repo.mkdir()
    _ok(run_cmd(["git", "init", "-q"], repo, env))
    (repo / ".gitignore").write_text(GITIGNORE)
    (repo / ".dvc").mkdir()
    for rel in (".dvc/config", ".dvc/.gitignore", ".dvcignore"):
        shutil.copyfile(REPO / rel, repo / rel)
    remote = tmp_path / "remote"
    _ok(run_cmd([dvc, "remote", "add", "-d", "-f", "local", str(remote)], repo, env))

    url = http_server.add("tiny_ok/tiny.zip", data := build_tiny_archive(tmp_path))
    (repo / "registry.yaml").write_text(yaml.safe_dump(
        {"datasets": {"tiny_ok": tiny_entry(url, hashlib.sha256(data).hexdigest())}}))
    (repo / "config.yaml").write_text(yaml.safe_dump({"download": {"registry": "registry.yaml"}}))
    cfg = repo / "config.yaml"
    _ok(run_cmd(snakemake_cmd(repo, cfg, "data/prepared/tiny_ok.npz"), repo, env))
    tracked = ["data/raw/tiny_ok", "data/prepared/tiny_ok.npz", "data/prepared/tiny_ok.json"]
    _ok(run_cmd([dvc, "add", *tracked], repo, env))
    _ok(run_cmd([dvc, "push"], repo, env))
    _ok(run_cmd(["git", "add", "-A"], repo, env))
    _ok(run_cmd(["git", "commit", "-q", "-m", "data"], repo, env))
    committed = _ok(run_cmd(["git", "ls-files"], repo, env)).split()
    assert {"data/raw/tiny_ok.dvc", "data/prepared/tiny_ok.npz.dvc", "data/prepared/tiny_ok.json.dvc"} <= set(committed)
    assert not any(p.startswith(("data/raw/tiny_ok/", "logs/")) for p in committed)
    requests_before = len(http_server.state.requests)

    # Delete the data and the DVC cache in place, pull, and nothing is to be done.
    shutil.rmtree(repo / "data" / "raw" / "tiny_ok")
    shutil.rmtree(repo / "data" / "downloads")
    shutil.rmtree(repo / ".dvc" / "cache")
    for name in ("tiny_ok.npz", "tiny_ok.json"):
        (repo / "data" / "prepared" / name).unlink()
    _ok(run_cmd([dvc, "pull"], repo, env))
    dry = _ok(run_cmd(snakemake_cmd(repo, cfg, "data/prepared/tiny_ok.npz", extra=("-n",)), repo, env))
    assert "Nothing to be done" in dry

    # Fresh clone: no data, no DVC cache, no Snakemake metadata.
    clone = tmp_path / "clone"
    _ok(run_cmd(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env))
    assert not (clone / "data" / "raw" / "tiny_ok").exists()
    _ok(run_cmd([dvc, "pull"], clone, env))
    npz = clone / "data/prepared/tiny_ok.npz"
    assert npz.read_bytes() == (repo / "data/prepared/tiny_ok.npz").read_bytes()
    # Worst case for mtime-based reruns: the pulled raw data is newer than the prepared data
    # (DVC checks files out in no particular order). Both stay newer than the code, as after any
    # clone + pull; a later change of scripts/prepare.py does re-run preparation (code trigger).
    old, new = time.time(), time.time() + 60
    for p in (clone / "data/prepared").iterdir():
        os.utime(p, (old, old))
    for p in (clone / "data/raw/tiny_ok").rglob("*"):
        os.utime(p, (new, new))
    os.utime(clone / "data/raw/tiny_ok", (new, new))

    dry = _ok(run_cmd(snakemake_cmd(clone, clone / "config.yaml", "data/prepared/tiny_ok.npz", extra=("-n",)), clone, env))
    assert "Nothing to be done" in dry
    run = _ok(run_cmd(snakemake_cmd(clone, clone / "config.yaml", "results/train_stub/tiny_ok.txt"), clone, env))
    assert "train_stub" in run
    for rule in ("download_file", "extract_dataset", "prepare_dataset"):
        assert f"rule {rule}:" not in run, run[-3000:]
    assert (clone / "results/train_stub/tiny_ok.txt").read_text() == "6 [6, 3, 32, 32]\n"
    assert not (clone / "data" / "downloads").exists()
    assert len(http_server.state.requests) == requests_before
    assert abs(npz.stat().st_mtime - old) < 1
    status = _ok(run_cmd([dvc, "status"], clone, env))
    assert "up to date" in status.lower(), status
