"""Shape of ``segbench.train`` (issue #16, item 2): no import circle between its modules, and
the per-epoch log line names the fold exactly when several runs share one log (a property of
the step strategy, not of a module global)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

import segbench.train
from segbench.train import train_pack
from tests.train.packs import UNET, pack_specs

PKG = "segbench.train"
TRAIN_DIR = Path(segbench.train.__file__).parent


def _module(path: Path) -> str:
    return PKG if path.name == "__init__.py" else f"{PKG}.{path.stem}"


def _imports(path: Path) -> set[str]:
    """The ``segbench.train`` modules ``path`` imports anywhere (function-level imports too):
    ``from segbench.train import X`` counts as the package itself, or submodule ``X``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(PKG)}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PKG):
            if node.module == PKG:
                subs = {f"{PKG}.{a.name}" for a in node.names}
                found |= {s for s in subs if (TRAIN_DIR / f"{s.rsplit('.', 1)[1]}.py").exists()}
                if subs - found:
                    found.add(PKG)
            else:
                found.add(node.module)
    return found


def test_no_import_circle_in_train():
    graph = {_module(p): _imports(p) for p in sorted(TRAIN_DIR.glob("*.py"))}

    def reaches(start: str, target: str) -> bool:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            m = todo.pop()
            if m == target:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return False

    circles = sorted(m for m in graph if reaches(m, m))
    assert not circles, {m: sorted(graph[m]) for m in circles}


@pytest.mark.parametrize(
    "mode,names_fold", [("sequential", False), ("stacked", True), ("interleaved", True)]
)
def test_epoch_log_names_the_fold_when_runs_share_a_log(
    tiny_prepared, split_file, tmp_path, caplog, mode, names_fold
):
    specs = pack_specs(UNET, k=2, pack_mode=mode, epochs=1, steps_per_epoch=1)
    with caplog.at_level(logging.INFO, logger="segbench.train"):
        train_pack(specs, tiny_prepared, split_file, [tmp_path / f"r{k}" for k in range(2)])
    lines = [r.getMessage() for r in caplog.records if "epoch 1/1" in r.getMessage()]
    assert len(lines) == 2
    if names_fold:
        assert [ln.split(":")[0] for ln in lines] == ["fold 0", "fold 1"]
    else:
        assert not any(ln.startswith("fold") for ln in lines)
