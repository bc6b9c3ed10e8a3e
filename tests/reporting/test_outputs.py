"""segbench.reporting.outputs against the real workflow: its paths are exactly the outputs of a
dry run's reporting jobs, its captions exist and parse without a docutils message next to
Snakemake's own report link targets, every rule logs under logs/<rule>/, no reporting path is
spelled in a rule file, and building the DAG imports no plotting module (issue 16 item 4)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from segbench.config import load_study
from segbench.reporting import outputs
from tests.conftest import REPO, copy_workflow, run_snakemake
from tests.reliability.conftest import parse_dag

TINY = REPO / ".test" / "config.yaml"


def _config() -> dict:
    """The tiny CI study plus an RCE lambda sweep and a Balance alpha sweep, so every reporting
    rule runs but the search's (its own dry-run tests are in tests/workflow/test_search.py) and
    the training curves' (two optimisers; tests/studies/test_ablation_blocks.py)."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["losses"].update({"rce_05": {"name": "rce", "lam": 0.5}, "rce_1": {"name": "rce"}})
    cfg["losses"].update({"bal_03": {"name": "balance", "alpha": 0.3}, "bal": {"name": "balance"}})
    return cfg


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("outputs_wf"))
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(_config()))
    return wd


@pytest.fixture(scope="module")
def dry_run(workdir: Path) -> str:
    return run_snakemake(workdir, "--dry-run").stdout


def _logs(listing: str) -> dict[str, list[list[str]]]:
    """Rule -> the log files of each of its jobs."""
    out: dict[str, list[list[str]]] = {}
    for block in re.split(r"\n(?=[ \t]*(?:local)?rule \w+:)", listing):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if m:
            hit = re.search(r"\n\s+log: (.*)", block)
            out.setdefault(m.group(1), []).append(hit.group(1).split(", ") if hit else [])
    return out


@pytest.mark.slow
def test_table_is_the_dry_run(workdir: Path, dry_run: str):
    cfg = load_study(workdir / "config" / "config.yaml")  # schema defaults filled in
    jobs = [j for j in parse_dag(dry_run) if j["rule"] in outputs.RULES]
    ran = {j["rule"] for j in jobs}
    # every reporting rule of this study runs (the search rule exists only with a search)
    assert ran == set(outputs.RULES) - {"search_selection", "training_curves"}, ran
    for job in jobs:
        expected = outputs.targets(
            job["rule"],
            **{k: [v] for k, v in job["wildcards"].items()},
            figure=cfg["report"]["analytic_figures"],
        )
        assert sorted(job["output"]) == sorted(expected), job["rule"]
    (all_job,) = [j for j in parse_dag(dry_run) if j["rule"] == "all"]
    produced = {p for j in jobs for p in j["output"]}
    assert produced <= set(all_job["input"]), produced - set(all_job["input"])


@pytest.mark.slow
def test_every_rule_logs_under_its_name(dry_run: str):
    logs = _logs(dry_run)
    assert {"train_pack", "evaluate", "aggregate", "qualitative"} <= set(logs)
    for rule, per_job in logs.items():
        if rule == "all":
            continue
        for files in per_job:
            assert files, f"rule {rule} has no log"
            for f in files:
                assert f.startswith(f"logs/{rule}/"), (rule, f)


def test_log_directives_name_their_rule():
    """Static: every log: of every rule file (also rules this study does not run: downloads,
    search, per-fold training) lies under logs/<rule>/."""
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        rule = None
        lines = smk.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"\s*rule (\w+):", line)
            if m:
                rule = m.group(1)
            if line.strip() == "log:":
                j = i + 1
                while j < len(lines) and re.match(r'\s+(\w+=)?"logs/', lines[j]):
                    path = re.search(r'"([^"]+)"', lines[j]).group(1)
                    assert path.startswith(f"logs/{rule}/"), (smk.name, rule, path)
                    j += 1
                assert j > i + 1, (smk.name, rule, "log: without a logs/ path")


def test_no_report_path_spelled_in_the_rules():
    """Paths, captions and categories come from the table; Snakemake's report() is called in
    one place (common.smk's report_output)."""
    calls = {}
    for smk in [*(REPO / "workflow" / "rules").glob("*.smk"), REPO / "Snakefile"]:
        text = smk.read_text()
        for o in outputs.OUTPUTS:
            assert f'"{o.path}"' not in text, (smk.name, o.path)
        assert "../report/" not in text, smk.name
        calls[smk.name] = len(re.findall(r"(?<![\w.])report\(", text))
    assert calls.pop("common.smk") == 1 and not any(calls.values()), calls


def test_captions_exist():
    files = outputs.caption_files(REPO)
    assert files and all(f.is_file() for f in files), [f for f in files if not f.is_file()]
    assert {o.caption for o in outputs.OUTPUTS if o.in_report} - {None} == {f.name for f in files}


def _snakemake_links() -> str:
    """The link targets Snakemake's report appends to every caption and to the front page
    (snakemake/report/__init__.py, ``rst_links``), for this table's categories."""
    cats = sorted({o.category for o in outputs.OUTPUTS if o.in_report})
    lines = [".. _Workflow: javascript:show_panel('workflow')",
             ".. _Statistics: javascript:show_panel('statistics')"]  # fmt: skip
    lines += [f".. _{c}: javascript:app.showCategory('{c}')" for c in cats]
    return "\n\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "caption",
    sorted({o.caption for o in outputs.OUTPUTS if o.caption} | {"workflow.rst"}),
)
def test_caption_parses_cleanly(caption: str):
    import jinja2
    from docutils.core import publish_parts

    class Snakemake:
        config = load_study(REPO / "config" / "config.yaml")  # with the schema's defaults

    text = (REPO / outputs.CAPTION_DIR / caption).read_text() + _snakemake_links()
    text = jinja2.Environment().from_string(text).render(snakemake=Snakemake)
    # as Snakemake renders captions (snakemake/report/__init__.py: publish_parts(caption,
    # writer_name="html"), docutils' default report_level 2): warnings and errors show
    html = publish_parts(text, writer_name="html", settings_overrides={"warning_stream": False})[
        "body"
    ]
    assert "system-message" not in html and "problematic" not in html, html


def test_reserved_category_is_refused():
    assert all(o.category != "Statistics" for o in outputs.OUTPUTS)
    with pytest.raises(ValueError, match="no report outputs"):
        outputs.outputs("nope")
    with pytest.raises(ValueError, match="has no output"):
        outputs.entry("paper_table", "pdf")


PLOTTING = ("matplotlib", "seaborn", "segbench.reporting.figures", "segbench.reporting.qualitative")

DAG_ONLY = """
import sys
from snakemake.cli import main
try:
    main(["--dry-run", "--cores", "1", "--quiet"])
except SystemExit as exc:
    code = exc.code
print("EXIT", code)
print("MODULES", " ".join(sorted(sys.modules)))
"""


@pytest.mark.slow
def test_dag_build_imports_no_plotting(workdir: Path):
    """The real DAG build (snakemake's own entry point, in one fresh interpreter) leaves every
    plotting module unimported."""
    proc = subprocess.run(
        [sys.executable, "-c", DAG_ONLY], cwd=workdir, capture_output=True, text=True, timeout=600
    )
    out = proc.stdout
    assert "EXIT 0" in out, proc.stdout[-3000:] + proc.stderr[-3000:]
    modules = set(out.split("MODULES", 1)[1].split())
    assert "segbench.reporting.outputs" in modules and "segbench.reporting.sweeps" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in PLOTTING or m in PLOTTING)
    assert not loaded, loaded
