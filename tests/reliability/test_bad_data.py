"""Bad data, damaged files and download mistakes (issue 17), each through its real entry point.

- Downloads: an unpinned archive that turns out to be an HTML page or a truncated archive,
  served by a real HTTP server on 127.0.0.1, through ``scripts/download.py fetch`` and through
  the workflow's download -> extract rules (Snakemake); after the mirror is fixed the next run
  must succeed (nothing bad is kept as the download).
- ``scripts/download.py`` mistakes: unknown dataset, a path as dataset, missing registry file,
  ``verify`` / ``manifest --write`` without a raw folder, ``SEGBENCH_OFFLINE=1`` without a
  mirror: one ``error:`` line naming the value, exit status 1, no traceback.
- Preparation: masks stored 0/1 with a label_map for 0/255 (a declared class never occurs);
  a mask value missing from the label_map (named with its file).
- Damaged files: a garbage prepared ``.npz``, a garbage splits JSON.
- Figures: the critical-difference diagram is byte-identical across processes (PNG, SVG, PDF)
  and its ``CD = ...`` label clears the axis tick labels.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.data.datahelpers import (
    LocalServer,
    build_tiny_archive,
    http_server,  # noqa: F401  (fixture)
    make_chase_like,
    snakemake_cmd,
    tiny_entry,
)

REPO = Path(__file__).resolve().parents[2]
DOWNLOAD = REPO / "scripts" / "download.py"
HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
    b"<body><form>Please sign in to download this file.</form></body></html>\n"
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEGBENCH_OFFLINE", "SEGBENCH_MIRROR")}
    env["PYTHONPATH"] = str(REPO / "src")
    env.update(extra)
    return env


def _download(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DOWNLOAD), *args],
        cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=120,
    )


def _one_error_line(
    res: subprocess.CompletedProcess, *fragments: str, only_line: bool = True
) -> str:
    """The run failed with one stderr line ``error: ...`` (the last; with ``only_line`` the
    only line: no log lines either) holding every fragment, and no traceback."""
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), res.stderr
    assert [ln for ln in lines if ln.startswith("error:")] == lines[-1:], res.stderr
    if only_line:
        assert len(lines) == 1, res.stderr
    lines = lines[-1:]
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    return lines[0]


def _registry(tmp: Path, entries: dict) -> Path:
    path = tmp / "registry.yaml"
    path.write_text(yaml.safe_dump({"datasets": entries}))
    return path


# ----------------------------------------------------------------------------- (a) downloads


@pytest.mark.parametrize("bad", ["html", "truncated"])
def test_bad_unpinned_download_is_moved_aside_and_refetched(
    bad: str, http_server: LocalServer, tmp_path: Path  # noqa: F811
) -> None:
    good = build_tiny_archive(tmp_path)
    payload = HTML if bad == "html" else good[: len(good) // 2]
    url = http_server.add("tiny/tiny.zip", payload)
    reg = _registry(tmp_path, {"tiny": tiny_entry(url, None)})  # unpinned: no sha256
    wd = tmp_path / "wd"
    wd.mkdir()
    dest = wd / "data/downloads/tiny/tiny.zip"
    rejected = dest.with_name("tiny.zip.rejected")

    first = _download(wd, "--registry", str(reg), "--retries", "0", "fetch", "tiny")
    line = _one_error_line(
        first, "tiny.zip", str(rejected.relative_to(wd)), "next run", only_line=False
    )
    if bad == "html":
        assert "HTML page" in line
    assert not dest.exists(), "a file that is not an archive was kept as the download"
    assert rejected.read_bytes() == payload
    assert not (wd / "data/raw/tiny").exists()

    # The mirror is fixed: the next run downloads again and succeeds.
    http_server.add("tiny/tiny.zip", good)
    second = _download(wd, "--registry", str(reg), "fetch", "tiny")
    assert second.returncode == 0, second.stderr[-3000:]
    assert dest.read_bytes() == good
    assert len(list((wd / "data/raw/tiny").glob("Image_*.jpg"))) == 6


def test_bad_download_already_in_place_is_moved_aside_at_extraction(
    http_server: LocalServer, tmp_path: Path  # noqa: F811
) -> None:
    """A bad file already at the download's place (kept by an older version, or put there by
    hand) fails extraction once, is moved aside, and the next run fetches the real one."""
    good = build_tiny_archive(tmp_path)
    url = http_server.add("tiny/tiny.zip", good)
    reg = _registry(tmp_path, {"tiny": tiny_entry(url, None)})
    wd = tmp_path / "wd"
    dest = wd / "data/downloads/tiny/tiny.zip"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(HTML)

    first = _download(wd, "--registry", str(reg), "fetch", "tiny")
    _one_error_line(first, "tiny.zip.rejected", "HTML page", only_line=False)
    assert not dest.exists() and dest.with_name("tiny.zip.rejected").read_bytes() == HTML
    assert http_server.state.requests == []  # the file was there: nothing fetched yet
    second = _download(wd, "--registry", str(reg), "fetch", "tiny")
    assert second.returncode == 0, second.stderr[-3000:]
    assert dest.read_bytes() == good and (wd / "data/raw/tiny").is_dir()


@pytest.mark.slow
def test_workflow_refetches_after_a_bad_unpinned_download(
    http_server: LocalServer, tmp_path: Path  # noqa: F811
) -> None:
    """Snakemake (rules download_file -> extract_dataset -> prepare_dataset): an HTML page
    served first fails the run naming the moved-aside file; the rerun after the fix succeeds."""
    good = build_tiny_archive(tmp_path)
    url = http_server.add("tiny/tiny.zip", HTML)
    reg = _registry(tmp_path, {"tiny": tiny_entry(url, None)})
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"download": {"registry": str(reg), "backoff_s": 0, "retries": 0}}))
    wd = tmp_path / "wd"
    target = "data/prepared/tiny.npz"
    env = _env()
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    first = subprocess.run(snakemake_cmd(wd, cfg, target), cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode != 0
    log = (wd / "logs/download_file/tiny/tiny.zip.log").read_text()
    assert "tiny.zip.rejected" in log and "HTML page" in log
    assert not (wd / "data/downloads/tiny/tiny.zip").exists()

    http_server.add("tiny/tiny.zip", good)
    second = subprocess.run(snakemake_cmd(wd, cfg, target), cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert (wd / target).is_file()


# ----------------------------------------------------------------------------- (b) download.py


@pytest.fixture
def repo_like(tmp_path: Path) -> Path:
    """A working directory with a copy of the committed registry (so nothing in the repository
    can be written) and no data/."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["info", "nope"], ["unknown dataset 'nope'", "config/datasets.yaml"]),
        (["fetch", "../../etc"], ["unknown dataset '../../etc'"]),
        (["--registry", "no/such.yaml", "list"], ["no/such.yaml", "does not exist"]),
        (["verify", "busi"], ["data/raw/busi does not exist", "manual download"]),
        (["verify", "drosophila_vnc_p000"],
         ["data/raw/drosophila_vnc does not exist", "fetch drosophila_vnc"]),
        (["manifest", "busi", "--write"], ["data/raw/busi does not exist"]),
    ],
    ids=["info-unknown", "fetch-path", "missing-registry", "verify-manual", "verify-raw-from",
         "manifest-no-raw"],
)
def test_download_cli_errors_are_one_line(
    args: list[str], fragments: list[str], repo_like: Path
) -> None:
    res = _download(repo_like, *args)
    _one_error_line(res, *fragments)
    assert not (repo_like / "config/manifests/busi.sha256").exists()
    assert not (repo_like / "data").exists()


def test_offline_without_mirror_fails_before_any_request(
    http_server: LocalServer, tmp_path: Path  # noqa: F811
) -> None:
    url = http_server.add("tiny/tiny.zip", build_tiny_archive(tmp_path))
    reg = _registry(tmp_path, {"tiny": tiny_entry(url, None)})
    res = _download(tmp_path, "--registry", str(reg), "fetch", "tiny", SEGBENCH_OFFLINE="1")
    _one_error_line(res, "SEGBENCH_OFFLINE=1", "SEGBENCH_MIRROR", "tiny.zip")
    assert http_server.state.requests == []
    assert not (tmp_path / "data/downloads/tiny/tiny.zip").exists()


# ----------------------------------------------------------------------------- (c) label maps

PREPARE = REPO / "scripts" / "prepare.py"


def _raw_chase(root: Path, fg: int, blank: tuple[str, ...] = ()) -> None:
    """A CHASE-like raw folder whose masks store the vessel as ``fg`` (0/255 or 0/1); the masks
    of the images named in ``blank`` are all background."""
    make_chase_like(root, children=3)
    for mask in sorted(root.glob("*_1stHO.png")):
        arr = np.asarray(Image.open(mask))
        out = np.zeros_like(arr) if mask.name.split("_1stHO")[0] in blank else (arr > 0) * fg
        Image.fromarray(out.astype(np.uint8)).save(mask)


def _prepare(tmp: Path, label_map: dict, fg: int, blank: tuple[str, ...] = ()):
    entry = tiny_entry("http://127.0.0.1:9/tiny.zip", None)
    entry["label_map"] = label_map
    reg = _registry(tmp, {"tiny": entry})
    _raw_chase(tmp / "data/raw/tiny", fg, blank)
    res = subprocess.run(
        [sys.executable, str(PREPARE), "tiny", "--registry", str(reg), "--out", "data/prepared"],
        cwd=tmp, env=_env(), capture_output=True, text=True, timeout=120,
    )
    return res, tmp / "data/prepared/tiny.npz"


def test_masks_01_with_a_0_255_threshold_fail_naming_class_and_file(tmp_path: Path) -> None:
    res, npz = _prepare(tmp_path, {"threshold": 128}, fg=1)
    line = _one_error_line(
        res, "class 1 ('vessel') never occurs", "threshold 128", "data/raw/tiny/", "_1stHO.png",
        only_line=False,
    )
    assert "raw mask values met: 0 (first in" in line and "; 1 (first in" in line
    assert not npz.exists() and not npz.with_suffix(".json").exists()


def test_mask_value_missing_from_label_map_names_file_and_value(tmp_path: Path) -> None:
    res, npz = _prepare(tmp_path, {0: 0, 255: 1}, fg=1)
    _one_error_line(res, "label values [1]", "Image_01L_1stHO.png", "label_map", only_line=False)
    assert not npz.exists()


def test_a_class_missing_from_some_images_only_is_fine(tmp_path: Path) -> None:
    """The check is over the whole prepared dataset: images without a vessel are legitimate."""
    from segbench.data.io import load_prepared

    res, npz = _prepare(tmp_path, {"threshold": 1}, fg=1, blank=("Image_01L", "Image_02R"))
    assert res.returncode == 0, res.stderr[-3000:]
    ds = load_prepared(npz)
    assert [bool(m.any()) for m in ds.masks] == [False, True, True, False, True, True]


# ----------------------------------------------------------------------------- (e) figures

# Tied and overlapping ranks: scikit-posthocs draws each crossbar through a Python set of loss
# names, whose order follows the process's hash seed.
CD_RANKS = {"ce": 1.5, "dice": 2.0, "jacc": 2.0, "focal": 2.75, "tversky": 3.25,
            "lovasz": 4.0, "boundary": 5.5}
CD_SCRIPT = f"""
import sys
import pandas as pd
from segbench.reporting.figures import cd_figure
from segbench.reporting.statistics import FriedmanReport
ranks = pd.Series({CD_RANKS!r})
rep = FriedmanReport(metric="miou", ok=True, blocks=["dataset", "model", "fraction"],
                     n_blocks=6, cd=1.2, avg_ranks=ranks, losses=sorted(ranks.index))
for path in sys.argv[1:]:
    cd_figure(rep, path)
"""


def test_cd_diagram_is_byte_identical_across_runs(tmp_path: Path) -> None:
    """The stats_tables figure writer (``cd_figure``) run twice in fresh processes with different
    hash seeds writes the same bytes, for PNG, SVG and PDF."""
    digests = []
    for seed in ("1", "4"):
        out = tmp_path / f"run{seed}"
        out.mkdir()
        files = [str(out / f"cd.{ext}") for ext in ("png", "svg", "pdf")]
        res = subprocess.run([sys.executable, "-c", CD_SCRIPT, *files], cwd=tmp_path,
                             env=_env(PYTHONHASHSEED=seed, MPLBACKEND="Agg"),
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-3000:]
        digests.append({Path(f).suffix: hashlib.sha256(Path(f).read_bytes()).hexdigest()
                        for f in files})
    assert digests[0] == digests[1]


def test_cd_label_clears_the_tick_labels() -> None:
    from segbench.stats.cd_diagram import cd_diagram_figure

    fig = cd_diagram_figure(CD_RANKS, 1.2, title="mIoU: average ranks over 6 blocks")
    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    ax = fig.axes[0]
    cd_text = [t for t in ax.texts if t.get_text().startswith("CD = ")]
    assert len(cd_text) == 1 and cd_text[0].get_text() == "CD = 1.2"
    box = cd_text[0].get_window_extent(renderer)
    ticks = [t.get_window_extent(renderer) for t in ax.xaxis.get_ticklabels() if t.get_text()]
    assert ticks and all(not box.overlaps(t) for t in ticks)
    assert box.y0 > max(t.y1 for t in ticks)  # above the tick labels
    assert ax.title.get_window_extent(renderer).y0 > box.y1  # and below the title


# ----------------------------------------------------------------------------- (d) damaged files


def _prepared(tmp: Path) -> Path:
    from segbench.data.io import save_prepared
    from segbench.data.synthetic import generate

    images, masks, ids, meta = generate("synth_organs", n=4, size=32, seed=0)
    save_prepared(tmp / "d.npz", images, masks, ids, meta)
    return tmp / "d.npz"


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        ("garbage", "is not an .npz (zip) archive"),
        ("truncated", "is not an .npz (zip) archive"),
        ("no-arrays", "has no array(s) ['images', 'masks', 'ids']"),
        ("sidecar", "sidecar is not valid JSON"),
    ],
)
def test_damaged_prepared_file_says_what_and_how_to_recover(
    damage: str, what: str, tmp_path: Path
) -> None:
    from segbench.data.io import DatasetFormatError, load_prepared

    npz = _prepared(tmp_path)
    if damage == "garbage":
        npz.write_bytes(b"this is not a dataset\n" * 10)
    elif damage == "truncated":
        npz.write_bytes(npz.read_bytes()[:100])
    elif damage == "no-arrays":
        np.savez(npz.with_name("other.npz"), x=np.zeros(3))
        npz.with_name("other.npz").replace(npz)
    else:
        npz.with_suffix(".json").write_text('{"name": "d", "num_classes": ')
    with pytest.raises(DatasetFormatError) as err:
        load_prepared(npz)
    msg = str(err.value)
    assert what in msg and str(npz) in msg and "pickled" not in msg
    assert f"Delete {npz} and {npz.with_suffix('.json')}" in msg and "prepare_dataset" in msg


@pytest.mark.parametrize(
    ("text", "what"),
    [('{"dataset": "d", "folds": [', "not valid JSON"),
     ("[1, 2, 3]\n", "not a split file"),
     ('{"dataset": "d", "folds": [{"fold": 0}]}', "not a split file")],
    ids=["truncated", "list", "no-parts"],
)
def test_damaged_splits_file_names_path_and_recovery(text: str, what: str, tmp_path: Path) -> None:
    from segbench.splits import SplitError, dumps, load_splits, make_splits

    good = tmp_path / "good.json"
    good.write_text(dumps(make_splits([f"i{k}" for k in range(6)], 2, [1.0], dataset="d")))
    assert load_splits(good) == json.loads(good.read_text())
    bad = tmp_path / "d.json"
    bad.write_text(text)
    with pytest.raises(SplitError) as err:
        load_splits(bad)
    msg = str(err.value)
    assert what in msg and str(bad) in msg and f"Delete {bad}" in msg and "rule splits" in msg


@pytest.mark.slow
def test_workflow_splits_rule_on_a_garbage_prepared_file(tmp_path: Path) -> None:
    """The real workflow: a prepared ``.npz`` damaged after preparation fails rule splits with
    the path, what is wrong and how to recover, in the rule's log and Snakemake's output."""
    from tests.reliability.conftest import new_workdir, smk, study

    wd = new_workdir(tmp_path / "wf", study())
    smk(wd, "--cores", "1", "data/prepared/synth_organs.npz", cores=1)
    npz = wd / "data/prepared/synth_organs.npz"
    npz.write_bytes(b"<html>not a dataset</html>\n")
    res = smk(wd, "results/splits/synth_organs.json", "--show-failed-logs", check=False, cores=1)
    assert res.returncode != 0
    log = (wd / "logs/splits/synth_organs.log").read_text()
    for text in (log, res.stdout):
        assert "data/prepared/synth_organs.npz: not a prepared dataset" in text
        assert "is not an .npz (zip) archive" in text and "pickled" not in text
        assert "Delete data/prepared/synth_organs.npz" in text
    assert not (wd / "results/splits/synth_organs.json").exists()
