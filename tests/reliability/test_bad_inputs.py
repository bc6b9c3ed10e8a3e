"""Bad inputs fail before any training, with a message naming the file, key or value.

- Config: each case is a real ``snakemake`` invocation (not a dry run) in a copy of the workflow;
  it must exit non-zero with the message, and nothing may have run (no ``data/``, ``results/``
  or ``logs/`` folder). The library-level checks of the same cases are in tests/test_config.py;
  an unknown loss name and more folds than images go through Snakemake in
  tests/workflow/test_dag.py (test_bad_config_stops_before_any_job).
- Data: corrupt and truncated images and masks, labels outside the declared classes, an image/mask
  size mismatch, through the preparation recipe (fast), and four bad registry datasets through
  the real workflow (prepare_dataset / splits rules) in one ``--keep-going`` run.
- Checksum mismatches and truncated or malicious archives are covered by tests/data
  (test_download.py, test_archive.py, test_download_workflow.py); docs/reliability.md lists them.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from segbench.data.recipes import RecipeError, prepare_dataset
from segbench.data.registry import DatasetEntry
from tests.conftest import snakemake_bin
from tests.reliability.conftest import STUDY, new_workdir, smk, smk_env
from tests.reliability.conftest import set_path as _set

# ----------------------------------------------------------------------------- config cases


# (case id, mutator or raw YAML text, fragments the snakemake output must contain)
CONFIG_CASES: list[tuple[str, Callable[[dict], None] | str, list[str]]] = [
    (
        "malformed YAML",
        "study: x\nlosses: {ce: {name: ce}\n",
        ["Config file is not valid JSON or YAML"],
    ),
    (
        "unknown key",
        _set("training.epoch", 3),
        ["Additional properties are not allowed ('epoch' was unexpected)", "['training']"],
    ),
    (
        "wrong type",
        _set("training.epochs", "three"),
        ["'three' is not of type 'integer'", "['epochs']"],
    ),
    (
        "unknown model name",
        _set("models.unet4", {"name": "unet3"}),
        ["models.unet4.name: unknown model 'unet3'", "known model names:"],
    ),
    (
        "unknown dataset generator",
        _set("datasets.synth_organs", {"source": "synthetic", "generator": "synth_organz"}),
        ["datasets.synth_organs.generator: unknown synthetic generator 'synth_organz'"],
    ),
    (
        "unknown registry dataset",
        _set("datasets.synth_vessels", {"source": "registry", "registry_id": "no_such_set"}),
        ["unknown dataset 'no_such_set' in config/datasets.yaml", "known datasets:"],
    ),
    (
        "loss parameter out of range",
        _set("losses.dicece", {"name": "dice_ce", "w_dice": -0.5, "w_ce": 0.5}),
        ["losses.dicece (dice_ce)", "parameter w_dice=-0.5 is not allowed", "[0, inf)"],
    ),
    (
        "fraction 0",
        _set("fractions", [0.0]),
        ["0.0 is less than or equal to the minimum of 0", "['fractions']"],
    ),
    (
        "fraction > 1",
        _set("grid.1.fractions", [1.5]),
        ["1.5 is greater than the maximum of 1", "['grid']"],
    ),
]


@pytest.mark.slow
def test_bad_configs_stop_snakemake_before_any_job(tmp_path):
    wd = new_workdir(tmp_path / "wd", STUDY)
    procs = []
    for i, (case, change, _) in enumerate(CONFIG_CASES):
        path = tmp_path / f"case{i}.yaml"
        if isinstance(change, str):
            path.write_text(change)
        else:
            cfg = copy.deepcopy(STUDY)
            change(cfg)
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        procs.append((case, path))
    outputs = {}
    running: list[tuple[str, subprocess.Popen]] = []
    for case, path in [*procs, (None, None)]:  # two at a time
        while running and (len(running) >= 2 or case is None):
            name, proc = running.pop(0)
            out, _ = proc.communicate(timeout=300)
            outputs[name] = (proc.returncode, out)
        if case is not None:
            running.append(
                (
                    case,
                    subprocess.Popen(
                        [snakemake_bin(), "--cores", "1", "--configfile", str(path)],
                        cwd=wd,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        env=smk_env(),
                    ),
                )
            )
    for case, _, fragments in CONFIG_CASES:
        rc, out = outputs[case]
        assert rc != 0, f"{case}: snakemake succeeded"
        for fragment in fragments:
            assert fragment in out, f"{case}: {fragment!r} not in:\n{out[-3000:]}"
    for folder in ("data", "results", "logs"):
        assert not (wd / folder).exists(), f"a job ran: {wd / folder} exists"


def test_malformed_yaml_names_file_and_line(tmp_path, capsys):
    """Snakemake's message for a --configfile it cannot parse names neither file nor line; the
    library's loader (and ``python -m segbench.config FILE``, the check to run first) does."""
    from segbench.config import ConfigError, load_study, main

    bad = tmp_path / "study.yaml"
    bad.write_text("study: x\nlosses: {ce: {name: ce}\nmodels: {}\n")
    with pytest.raises(ConfigError, match=r"(?s)study\.yaml: malformed YAML.*line 2, column 9"):
        load_study(bad)
    assert main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: malformed YAML" in err and "line 2, column 9" in err


# ----------------------------------------------------------------------------- data cases


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _raw_folder(root: Path, n: int = 3, size: tuple[int, int] = (32, 32)) -> Path:
    """``img/NN.png`` (grey) + ``mask/NN.png`` (0 / 255) pairs."""
    rng = np.random.default_rng(0)
    for k in range(n):
        _png(root / "img" / f"{k:02d}.png", rng.integers(0, 255, size, dtype=np.uint8))
        mask = np.zeros(size, np.uint8)
        mask[4 + k : 12 + k, 8:20] = 255
        _png(root / "mask" / f"{k:02d}.png", mask)
    return root


RECIPE = {
    "name": "paired_2d",
    "params": {
        "sets": [{"images": "img/*.png", "regex": r"img/(?P<n>\d+)\.png$", "mask": "mask/{n}.png"}],
        "image_mode": "L",
    },
}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_image(raw: Path) -> None:
    _truncate(raw / "img" / "01.png")


def _garbage_image(raw: Path) -> None:
    (raw / "img" / "01.png").write_bytes(b"this is not a PNG file")


def _truncated_mask(raw: Path) -> None:
    _truncate(raw / "mask" / "02.png")


def _labels_outside(raw: Path) -> None:
    """Masks hold class indices (no label map); one of them has a 7 (classes are 0 and 1)."""
    for path in (raw / "mask").glob("*.png"):
        _png(path, (np.asarray(Image.open(path)) > 0).astype(np.uint8))
    mask = np.zeros((32, 32), np.uint8)
    mask[:4] = 1
    mask[10:12] = 7
    _png(raw / "mask" / "01.png", mask)


def _size_mismatch(raw: Path) -> None:
    _png(raw / "mask" / "01.png", np.zeros((32, 30), np.uint8))


# (case, damage, label_map, expected message)
DATA_CASES = [
    (
        "truncated image",
        _corrupt_image,
        {"threshold": 128},
        r"cannot read image file .*img/01\.png",
    ),
    ("corrupt image", _garbage_image, {"threshold": 128}, r"cannot read image file .*img/01\.png"),
    (
        "truncated mask",
        _truncated_mask,
        {"threshold": 128},
        r"cannot read mask file .*mask/02\.png",
    ),
    (
        "mask labels outside classes",
        _labels_outside,
        None,
        r"mask/01\.png: label values \[7\] are not class indices 0\.\.1",
    ),
    (
        "image/mask size mismatch",
        _size_mismatch,
        {"threshold": 128},
        r"image img/01\.png is \[32, 32\] but its mask mask/01\.png is \[32, 30\]",
    ),
]


@pytest.mark.parametrize(
    "case, damage, label_map, message", DATA_CASES, ids=[c[0] for c in DATA_CASES]
)
def test_bad_raw_data_is_refused_naming_the_file(tmp_path, case, damage, label_map, message):
    raw = _raw_folder(tmp_path / "raw")
    damage(raw)
    entry = DatasetEntry(
        id="tiny",
        title="t",
        access="manual",
        licence="l",
        citation="c",
        classes=("background", "vessel"),
        label_map=label_map or {},
        recipe=RECIPE,
    )
    out = tmp_path / "prepared" / "tiny.npz"
    with pytest.raises(RecipeError, match=message):
        prepare_dataset(entry, raw, out)
    assert not out.parent.exists() or not list(out.parent.iterdir())  # nothing written


def _registry_entry(label_map: dict | None) -> dict:
    entry = {
        "title": "reliability fixture",
        "access": "manual",
        "instructions": "made by tests/reliability/test_bad_inputs.py",
        "licence": "test fixture",
        "citation": "none",
        "classes": ["background", "vessel"],
        "recipe": RECIPE,
    }
    if label_map is not None:
        entry["label_map"] = label_map
    return entry


@pytest.mark.slow
def test_bad_registry_datasets_fail_in_the_workflow_before_training(tmp_path):
    """Four registry datasets with raw folders in place: a truncated image, labels outside the
    classes, an image/mask size mismatch (all refused by prepare_dataset) and a dataset with
    fewer images than folds (prepared, refused by splits). No training job may start."""
    damages = {
        "bad_truncated": (_corrupt_image, {"threshold": 128}),
        "bad_labels": (_labels_outside, None),
        "bad_size": (_size_mismatch, {"threshold": 128}),
        "few_images": (lambda raw: None, {"threshold": 128}),
    }
    registry = tmp_path / "registry.yaml"
    registry.write_text(
        yaml.safe_dump(
            {"version": 1, "datasets": {k: _registry_entry(lm) for k, (_, lm) in damages.items()}}
        )
    )
    cfg = copy.deepcopy(STUDY)
    cfg.pop("grid")
    cfg["folds"] = 4
    cfg["losses"] = {"ce": {"name": "ce"}}
    cfg["datasets"] = {k: {"source": "registry"} for k in damages}
    cfg["download"] = {"registry": str(registry)}
    wd = new_workdir(tmp_path / "wd", cfg)
    for name, (damage, _) in damages.items():
        damage(_raw_folder(wd / "data" / "raw" / name))
    proc = smk(wd, "--keep-going", "--show-failed-logs", check=False, env=smk_env())
    out = proc.stdout
    assert proc.returncode != 0, out[-3000:]

    def log(rule: str, name: str) -> str:
        return (wd / "logs" / rule / f"{name}.log").read_text()

    assert "cannot read image file" in log("prepare_dataset", "bad_truncated")
    assert "data/raw/bad_truncated/img/01.png" in log("prepare_dataset", "bad_truncated")
    assert "label values [7] are not class indices 0..1" in log("prepare_dataset", "bad_labels")
    assert "mask mask/01.png is [32, 30]" in log("prepare_dataset", "bad_size")
    assert "folds = 4 is more than its 3 groups" in log("splits", "few_images")
    for message in ("cannot read image file", "label values [7]", "is [32, 30]", "folds = 4"):
        assert message in out, message  # shown by snakemake too (--show-failed-logs)
    assert (wd / "data" / "prepared" / "few_images.npz").exists()
    for name in ("bad_truncated", "bad_labels", "bad_size"):
        assert not (wd / "data" / "prepared" / f"{name}.npz").exists()
    assert not (wd / "results" / "runs").exists()  # no training job started
