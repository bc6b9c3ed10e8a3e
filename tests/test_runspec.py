"""One run type, one source of defaults (issue #16, item 1).

* the run identity (dataset, model, loss, fraction, seed, fold) is spelled once, as the fields of
  :class:`segbench.runspec.Run`; every ``RUN_KEYS`` is that one tuple;
* a ``models`` / ``losses`` entry is split into name + parameters by
  :func:`segbench.runspec.split_name` only;
* the schema is the only home of the training defaults: a :class:`RunSpec` resolves a partial
  ``training`` to exactly the schema's defaults (the values the workflow's validation fills in),
  and the training code reads no training key with ``.get``;
* ``run.json`` is written and read by :mod:`segbench.rundir` (clear error naming the file);
* no import circle in the package; losses, models and metrics never import the run type.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import segbench
from segbench import runspec, schema, smk
from segbench.config import ConfigError, load_study, run_spec, validate_schema
from segbench.rundir import read_run_json, record_identity, record_spec, write_run_json
from segbench.runspec import RUN_KEYS, Run, RunSpec, resolve_training, split_name
from tests.helpers import tiny_spec

SRC = Path(segbench.__file__).parent
REPO = SRC.parents[1]
PY_FILES = sorted([*SRC.rglob("*.py"), *(REPO / "scripts").glob("*.py")])


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _literal_strings(node: ast.AST) -> set[str] | None:
    """The string elements of a list / tuple / set literal or the string keys of a dict
    literal (None for other nodes)."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = node.elts
    elif isinstance(node, ast.Dict):
        items = [k for k in node.keys if k is not None]
    else:
        return None
    return {e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)}


# Mappings that name every identity key with a different value each, not the list of keys:
# (file, function) -> why.
PER_KEY_MAPPINGS = {
    ("src/segbench/smk.py", "build_wildcard_constraints"): "one regex per wildcard",
    ("src/segbench/reporting/search.py", "read_search_runs"): "selection row, base loss as loss",
}


def _nodes(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """Every node with the name of the top-level function (or class) holding it."""
    out: list[tuple[str, ast.AST]] = []
    for top in ast.iter_child_nodes(tree):
        owner = getattr(top, "name", "")
        out += [(owner, n) for n in ast.walk(top)]
    return out


def test_identity_fields_are_spelled_once():
    """No literal (list, tuple, set, dict keys) and no class body (annotated fields) names all
    six identity keys, except the fields of ``segbench.runspec.Run`` (and the per-key
    mappings of :data:`PER_KEY_MAPPINGS`)."""
    keys = set(RUN_KEYS)
    found = []
    for path in PY_FILES:
        for owner, node in _nodes(ast.parse(path.read_text())):
            if (_rel(path), owner) in PER_KEY_MAPPINGS:
                continue
            strings = _literal_strings(node)
            if strings is not None and keys <= strings:
                found.append(f"{_rel(path)}:{node.lineno} literal")
            if isinstance(node, ast.ClassDef):
                fields = {
                    s.target.id
                    for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                }
                if keys <= fields:
                    found.append(f"{_rel(path)}:{node.lineno} class {node.name}")
    assert len(found) == 1, found
    assert found[0].startswith("src/segbench/runspec.py:") and found[0].endswith("class Run")
    assert RUN_KEYS == ("dataset", "model", "loss", "fraction", "seed", "fold")


def test_every_run_keys_is_the_one_tuple():
    import segbench.reporting.aggregate
    import segbench.reporting.common
    import segbench.reporting.runs
    import segbench.reporting.search
    import segbench.stats
    import segbench.stats.summary

    for mod in (
        segbench.reporting.aggregate,
        segbench.reporting.common,
        segbench.reporting.runs,
        segbench.reporting.search,
        segbench.stats,
        segbench.stats.summary,
    ):
        assert mod.RUN_KEYS is runspec.RUN_KEYS, mod.__name__
    import segbench.config
    import segbench.train

    assert segbench.config.Run is Run
    assert segbench.train.RunSpec is RunSpec and issubclass(RunSpec, Run)


def test_name_is_split_off_in_one_place():
    """``{k: v for k, v in entry.items() if k != "name"}`` lives in ``split_name`` only."""
    found = []
    for path in PY_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Compare)
                and isinstance(node.ops[0], ast.NotEq)
                and any(isinstance(c, ast.Constant) and c.value == "name" for c in node.comparators)
            ):
                found.append(_rel(path))
    assert sorted(set(found)) == ["src/segbench/runspec.py"], found
    assert found.count("src/segbench/runspec.py") == 1
    assert split_name({"name": "dice_ce", "w_dice": 0.5}) == ("dice_ce", {"w_dice": 0.5})


TRAINING_PROPS = schema.load_schema()["properties"]["training"]["properties"]
EVALUATION_PROPS = schema.load_schema()["properties"]["evaluation"]["properties"]


def _spec(training: dict, evaluation: dict | None = None) -> RunSpec:
    """The tiny spec with this partial ``training`` and ``evaluation`` (default: none given)."""
    return tiny_spec(
        dataset="d",
        loss="l",
        training=training,
        evaluation={} if evaluation is None else evaluation,
    )


def test_training_defaults_come_from_the_schema():
    defaults = {k: v["default"] for k, v in TRAINING_PROPS.items() if "default" in v}
    assert len(defaults) == len(TRAINING_PROPS)  # every training key has a default
    assert resolve_training({}) == defaults
    spec = _spec({"epochs": 3})
    assert spec.training == {**defaults, "epochs": 3}
    assert spec.evaluation == {
        "include_background": EVALUATION_PROPS["include_background"]["default"]
    }
    partial = {"epochs": 3}
    resolve_training(partial)
    assert partial == {"epochs": 3}  # not modified
    # the values the workflow's validation fills in (Snakefile: snakemake.utils.validate, then
    # segbench.smk.prepare_config; `python -m segbench.config`: load_study) are the same
    from snakemake.utils import validate

    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    snake = copy.deepcopy(raw)
    validate(snake, str(schema.SCHEMA_PATH))
    smk.prepare_config(snake)
    study = load_study(REPO / "config" / "config.yaml")
    assert snake["training"] == study["training"] == resolve_training(raw.get("training"))
    assert _spec(raw.get("training", {})).training == study["training"]


def test_search_identity_passes_through_resolution():
    search = {"key": "dice~hp00", "loss": "dice", "config": 0, "seed": 0, "sampled": {}}
    assert _spec({"search": search}).training["search"] == search


def test_allowed_values_are_the_schemas():
    with pytest.raises(ConfigError, match=r"training\.optimizer'.*'lion' is not one of"):
        _spec({"optimizer": "lion"})
    with pytest.raises(ConfigError, match=r"training\.epochs'.*0 is less than the minimum"):
        _spec({"epochs": 0})
    with pytest.raises(ConfigError, match="Additional properties.*'epoch'"):
        _spec({"epoch": 3})


def _default_reads(path: Path, keys: set[str]) -> list[str]:
    """``x.get("<key>", ...)`` calls on a key of ``keys`` in ``path`` (``state``, a loaded
    checkpoint, has a ``scheduler`` entry of its own)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "state")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in keys
        ):
            out.append(f"{_rel(path)}:{node.lineno} .get({node.args[0].value!r})")
    return out


def test_training_code_repeats_no_default():
    """The train package reads resolved training keys (``tcfg["epochs"]``), never
    ``tcfg.get("epochs", 50)``; the evaluation likewise for its keys."""
    found = []
    for path in sorted((SRC / "train").glob("*.py")):
        found += _default_reads(path, set(TRAINING_PROPS))
    found += _default_reads(SRC / "evaluate.py", set(EVALUATION_PROPS))
    assert not found, found


def test_spec_round_trips_and_digest_is_stable():
    spec = _spec({"epochs": 3}, {"include_background": False})
    again = RunSpec.from_dict(json.loads(json.dumps(spec.as_dict())))
    assert again == spec and again.digest() == spec.digest()
    assert spec.identity() == Run("d", "m", "l", "1", 0, 0)
    with pytest.raises(ConfigError, match=r"missing keys \['training'\].*unknown keys \['x'\]"):
        RunSpec.from_dict({**{k: v for k, v in spec.as_dict().items() if k != "training"}, "x": 1})


def test_workflow_params_are_the_spec(tmp_path):
    """smk.run_spec (the train job's params) is RunSpec.as_dict of config.run_spec, and a pack
    job's spec of fold k equals the single job's."""
    cfg = load_study(REPO / "config" / "config.yaml")
    runs = smk.expand_runs(cfg)
    r = runs[0]
    params = smk.run_spec(cfg, SimpleNamespace(**r.wildcards()))
    assert RunSpec.from_dict(params) == run_spec(cfg, r)
    pack_wc = SimpleNamespace(**{k: v for k, v in r.wildcards().items() if k != "fold"})
    assert smk.run_spec(cfg, pack_wc, fold=r.fold) == params
    assert list(params) == sorted(params)  # canonical: the params trigger sees sorted keys


def test_run_json_is_written_and_read_by_rundir(tmp_path):
    spec = _spec({"epochs": 3})
    record = {"run": spec.identity().wildcards(), "config": spec.as_dict(), "result": {}}
    path = write_run_json(tmp_path, record)
    assert path == tmp_path / "run.json" and not list(tmp_path.glob(".*.tmp"))
    got = read_run_json(tmp_path)
    assert got == json.loads(json.dumps(record))
    assert record_identity(got) == spec.identity() and record_spec(got) == spec
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text('{"run": ')
    with pytest.raises(ValueError, match=r"bad/run\.json: not a valid run\.json"):
        read_run_json(tmp_path / "bad" / "run.json")
    (tmp_path / "bad" / "run.json").write_text('{"run": {"dataset": "d"}, "result": {}}')
    with pytest.raises(ValueError, match=r"bad/run\.json: run\.json 'run' lacks .*'model'"):
        read_run_json(tmp_path / "bad")
    with pytest.raises(
        ValueError, match=r"run\.json: not a valid run\.json: needs keys .*'x'\], has"
    ):
        read_run_json(tmp_path, require=("run", "config", "result", "x"))


def _module_imports(path: Path, mods: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in mods}
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segbench")
        ):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in mods else node.module)
    return found


def test_no_import_circle_and_numerics_never_import_the_run_type():
    def name(p: Path) -> str:
        parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    files = {name(p): p for p in SRC.rglob("*.py")}
    graph = {m: _module_imports(p, set(files)) for m, p in files.items()}

    def closure(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return seen

    assert not [m for m in graph if m in closure(m)]
    forbidden = {"segbench.runspec", "segbench.rundir", "segbench.config", "segbench.smk"}
    for m in graph:
        if m.split(".")[1:2] and m.split(".")[1] in ("losses", "models", "metrics"):
            assert not closure(m) & forbidden, (m, closure(m) & forbidden)
    assert closure("segbench.runspec") == {"segbench.schema"}
    assert closure("segbench.schema") == set()


def test_validate_schema_fills_the_same_defaults_as_resolve_training():
    cfg = {"study": "s", "datasets": {"d": {"source": "synthetic"}}, "models": {"m": {"name": "unet"}},
           "losses": {"l": {"name": "ce"}}, "training": {"lr": 0.01}}  # fmt: skip
    validate_schema(cfg)
    assert cfg["training"] == resolve_training({"lr": 0.01})
