"""Config-level bad inputs (issue 17): each case goes through the real entry points, exits
non-zero with one line naming the file, key (and lines) or value, and runs nothing.

- ``snakemake --cores 1 --configfile case.yaml`` (not a dry run) in a copy of the workflow: no
  ``data/``, ``results/`` or ``logs/`` folder may appear.
- ``python -m segbench.config case.yaml`` (``make check-config``), as a subprocess.

The snakemake subprocesses get ``PYTHONPATH=<repo>/src`` so they import this checkout's package
(the copied workflow has no ``src/``).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, snakemake_bin
from tests.reliability.conftest import STUDY, new_workdir, smk_env
from tests.reliability.conftest import set_path as _set

SRC = str(REPO / "src")
HINT = "snakemake --configfile F -- TARGET"

# The dumped STUDY with one line appended to one of its blocks, as a user would edit the file.
BASE_TEXT = yaml.safe_dump(STUDY, sort_keys=False)


def _lines(text: str, needle: str) -> int:
    """1-based line of the first line of ``text`` that starts with ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


def _dup_losses() -> tuple[str, list[str]]:
    text = BASE_TEXT + "losses:\n  dice: {name: dice}\n"
    first, second = _lines(text, "losses:"), len(text.splitlines()) - 1
    return text, [f"duplicate key 'losses' at lines {first} and {second}"]


def _dup_epochs() -> tuple[str, list[str]]:
    text = BASE_TEXT.replace("  epochs: 3\n", "  epochs: 3\n  epochs: 30\n")
    first = _lines(text, "  epochs: 3")
    return text, [f"duplicate key 'training.epochs' at lines {first} and {first + 1}"]


def _yte() -> tuple[str, list[str]]:
    # A YTE template: Snakemake's loader evaluates the ?-expressions (embedded Python).
    text = "__use_yte__: true\n" + BASE_TEXT.replace("  epochs: 3\n", '  epochs: ?"3"\n')
    return text, ["__use_yte__: True: YTE templates are refused"]


def _mutated(change: Callable[[dict], None]) -> str:
    cfg = copy.deepcopy(STUDY)
    change(cfg)
    return yaml.safe_dump(cfg, sort_keys=False)


def _case(path: str, value: object, fragments: list[str]) -> tuple[str, list[str]]:
    return _mutated(_set(path, value)), fragments


FRACTION = "0.5 and 0.5000001 are the same training fraction after formatting"
FOLDER = "(one run folder results/runs/{dataset}/{model}/{loss}/f0.5/s{seed}/k{fold})"
REGISTRY = {"source": "registry", "registry_id": "no_such_set"}

# case id -> (file text, fragments that both entry points print)
CASES: dict[str, tuple[str, list[str]]] = {
    "duplicate losses block": _dup_losses(),
    "duplicate epochs": _dup_epochs(),
    "yte template": _yte(),
    "fractions collide (top level)": _case(
        "fractions", [1, 0.5, 0.5000001], [f"fractions: {FRACTION}", FOLDER]
    ),
    "fractions collide (grid block)": _case(
        "grid.1.fractions", [0.5, 0.5000001], [f"grid[1].fractions: {FRACTION}", FOLDER]
    ),
    "fractions collide (dataset)": _case(
        "datasets.synth_vessels.fractions",
        [0.5, 0.5000001],
        [f"datasets.synth_vessels.fractions: {FRACTION}"],
    ),
    "lr nan": _case("training.lr", float("nan"), ["training.lr: nan is not a finite number"]),
    "lr inf": _case("training.lr", float("inf"), ["training.lr: inf is not a finite number"]),
    "weight_decay inf": _case(
        "training.weight_decay", float("inf"), ["training.weight_decay: inf is not a finite"]
    ),
    "momentum nan": _case(
        "training.momentum", float("nan"), ["training.momentum: nan is not a finite number"]
    ),
    "poly_power nan": _case(
        "training.poly_power", float("nan"), ["training.poly_power: nan is not a finite number"]
    ),
    "crop larger than synthetic images": _case(
        "training.crop",
        48,
        [
            "training.crop = 48 is larger than the 32x32 images of dataset 'synth_organs' "
            "(datasets.synth_organs.size)"
        ],
    ),
    "unknown registry_id": _case(
        "datasets.synth_vessels",
        REGISTRY,
        [
            "datasets.synth_vessels.registry_id: unknown dataset 'no_such_set' in "
            "config/datasets.yaml; known datasets:"
        ],
    ),
    "unknown download.registry": (
        _mutated(
            lambda c: (
                c["datasets"].update(synth_vessels={"source": "registry", "registry_id": "drive"}),
                c.update(download={"registry": "config/no_such_registry.yaml"}),
            )
        ),
        ["download.registry: config/no_such_registry.yaml: dataset registry file does not exist"],
    ),
}
# Cases whose message names the study file under Snakemake too (the file is re-read strictly
# before anything else); the others name the key of the merged config ("config: training.lr").
FILE_LEVEL = {"duplicate losses block", "duplicate epochs", "yte template"}
CUDA = _case(
    "training.device",
    "cuda",
    ["training.device: 'cuda', but torch", "finds no CUDA device on this machine"],
)
NO_CUDA = not __import__("torch").cuda.is_available()
if NO_CUDA:  # on a GPU machine the study is fine
    CASES["device cuda without CUDA"] = CUDA


def _write_cases(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (case, (text, _)) in enumerate(CASES.items()):
        path = folder / f"case{i:02d}.yaml"
        path.write_text(text)
        out[case] = path
    return out


def _run_two_at_a_time(cmds: dict[str, list[str]], cwd: Path) -> dict[str, tuple[int, str]]:
    env = smk_env(PYTHONPATH=SRC)
    outputs: dict[str, tuple[int, str]] = {}
    running: list[tuple[str, subprocess.Popen]] = []
    for name, cmd in [*cmds.items(), (None, None)]:
        while running and (len(running) >= 2 or name is None):
            done, proc = running.pop(0)
            out, _ = proc.communicate(timeout=300)
            outputs[done] = (proc.returncode, out)
        if name is not None:
            proc = subprocess.Popen(
                cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
            )
            running.append((name, proc))
    return outputs


def _assert_refused(
    outputs: dict[str, tuple[int, str]], files: dict[str, Path], named: set[str]
) -> None:
    for case, (_, fragments) in CASES.items():
        rc, out = outputs[case]
        assert rc != 0, f"{case}: exited 0:\n{out[-3000:]}"
        assert "segbench config error: " in out, f"{case}: no segbench message:\n{out[-3000:]}"
        if case in named:
            assert f"{files[case]}: " in out, f"{case}: the file is not named:\n{out[-3000:]}"
        for fragment in fragments:
            assert fragment in out, f"{case}: {fragment!r} not in:\n{out[-3000:]}"
        assert "Traceback" not in out, f"{case}: a traceback:\n{out[-3000:]}"


@pytest.mark.slow
def test_bad_configs_stop_snakemake_before_any_job(tmp_path):
    wd = new_workdir(tmp_path / "wd", STUDY)
    files = _write_cases(tmp_path / "cases")
    cmds = {
        case: [snakemake_bin(), "--cores", "1", "--configfile", str(path)]
        for case, path in files.items()
    }
    outputs = _run_two_at_a_time(cmds, wd)
    _assert_refused(outputs, files, FILE_LEVEL)
    for folder in ("data", "results", "logs"):
        assert not (wd / folder).exists(), f"a job ran: {wd / folder} exists"


@pytest.mark.slow
def test_bad_configs_fail_check_config(tmp_path):
    """``python -m segbench.config FILE`` (``make check-config``) refuses every case; run in the
    repository (its config/datasets.yaml), creating nothing."""
    files = _write_cases(tmp_path / "cases")
    cmds = {
        case: [sys.executable, "-m", "segbench.config", str(path)] for case, path in files.items()
    }
    before = {p.name for p in REPO.iterdir()}
    outputs = _run_two_at_a_time(cmds, REPO)
    _assert_refused(outputs, files, set(CASES))
    assert {p.name for p in REPO.iterdir()} == before


def test_check_config_accepts_the_unchanged_study(tmp_path):
    """The base of every case is a good study (each case fails for its own edit only)."""
    path = tmp_path / "study.yaml"
    path.write_text(BASE_TEXT)
    proc = subprocess.run(
        [sys.executable, "-m", "segbench.config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=smk_env(PYTHONPATH=SRC),
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{path}: ok, 8 runs" in proc.stdout


def test_target_after_configfile_is_refused_with_the_double_dash_hint(tmp_path):
    """``snakemake --configfile F TARGET``: TARGET is read as a second config file. Snakemake
    itself fails on a TARGET that does not exist (before the workflow runs; docs name ``--``);
    one that exists and parses as a mapping (``x.txt`` here) was merged into the study."""
    wd = new_workdir(tmp_path / "wd", STUDY)
    study = tmp_path / "study.yaml"
    study.write_text(BASE_TEXT)
    (wd / "x.txt").write_text("study: other\n")
    proc = subprocess.run(
        [snakemake_bin(), "--cores", "1", "--configfile", str(study), "x.txt"],
        cwd=wd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=smk_env(PYTHONPATH=SRC),
        timeout=300,
    )
    assert proc.returncode != 0, proc.stdout[-3000:]
    message = f"segbench config error: {wd / 'x.txt'}: not a config file"
    assert message in proc.stdout, proc.stdout[-3000:]
    assert HINT in proc.stdout
    for folder in ("data", "results", "logs"):
        assert not (wd / folder).exists(), f"a job ran: {wd / folder} exists"


def test_check_configfiles_names_missing_file_and_suffix(tmp_path):
    from segbench.config import ConfigError, check_configfiles

    with pytest.raises(ConfigError, match=r"nope\.yaml: config file does not exist; .*-- TARGET"):
        check_configfiles([str(tmp_path / "nope.yaml")])
    with pytest.raises(ConfigError, match=r"results/tables/tidy\.csv: not a config file"):
        check_configfiles(["results/tables/tidy.csv"])


def test_make_check_config_quotes_a_path_with_spaces(tmp_path):
    """``make check-config CONFIG="my studies/a study.yaml"`` passes the path as one word."""
    folder = tmp_path / "my studies"
    folder.mkdir()
    path = folder / "a study.yaml"
    path.write_text(BASE_TEXT)
    proc = subprocess.run(
        # -o: take the venv as built (never reinstall it from a test)
        ["make", "-s", "-o", ".venv/.installed", "check-config", f"CONFIG={path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=smk_env(PYTHONPATH=SRC, VENV=str(Path(sys.executable).parents[1])),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{path}: ok, 8 runs" in proc.stdout


# ----------------------------------------------------------------------------- crop at training


def test_crop_larger_than_registry_images_fails_the_training_job(tiny_prepared, tmp_path):
    """A registry dataset's image size is known only once prepared: the training run refuses a
    crop larger than its images (was: trained on whole images without a word)."""
    from segbench.data.io import load_prepared
    from segbench.runspec import RunSpec
    from segbench.splits import dumps, make_splits
    from segbench.train.run import TrainingRun

    data = load_prepared(tiny_prepared)
    splits = tmp_path / "splits.json"
    splits.write_text(dumps(make_splits(list(data.ids), 2, [1], seed=0, dataset="tiny")))
    spec = RunSpec(
        dataset="tiny",
        model="unet4",
        loss="ce",
        fraction="1",
        seed=0,
        fold=0,
        model_cfg={"name": "unet", "base_channels": 4, "depth": 2},
        loss_cfg={"name": "ce"},
        training={"crop": 48, "device": "cpu", "epochs": 1},
    )
    with pytest.raises(
        ValueError,
        match=r"training\.crop = 48 is larger than the 32x32 images of dataset 'tiny'",
    ):
        TrainingRun(spec, tiny_prepared, splits, tmp_path / "run")


def test_check_crop_and_flips():
    import torch

    from segbench.train.augment import check_crop, crop_flip

    check_crop(None, (4, 1, 32, 32), "d")
    check_crop(32, (4, 1, 32, 32), "d")
    with pytest.raises(ValueError, match=r"crop = 33 is larger than the 32x40 images of dataset"):
        check_crop(33, (4, 1, 32, 40), "d")
    # the folded hflip / vflip loop: same coins, same order, same result as flipping by hand
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    y = torch.arange(2 * 4 * 4).reshape(2, 4, 4)
    xo, yo = crop_flip(x, y, None, True, torch.Generator().manual_seed(0), vflip=True)
    gen = torch.Generator().manual_seed(0)
    hf, vf = torch.rand(2, generator=gen) < 0.5, torch.rand(2, generator=gen) < 0.5
    for i in range(2):
        xe, ye = x[i], y[i]
        if hf[i]:
            xe, ye = xe.flip(-1), ye.flip(-1)
        if vf[i]:
            xe, ye = xe.flip(-2), ye.flip(-2)
        assert torch.equal(xo[i], xe) and torch.equal(yo[i], ye)
    assert np.asarray(hf).any() or np.asarray(vf).any()
