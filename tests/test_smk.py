"""segbench.smk script helpers: the one entry point shared by scripts/download.py and
scripts/prepare.py (Snakemake ``script:`` and command line). The real entry points run in
tests/reliability/test_bad_data.py (CLI errors, rule logs); these pin the contract itself."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from segbench.smk import script_main, setup_logging


class UserMistake(ValueError):
    pass


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers (``force=True``): put pytest's back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in root.handlers:
        if h not in handlers:
            h.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _never(smk: object) -> None:
    raise AssertionError("run_snakemake must not run without a snakemake object")


def test_command_line_exits_with_main_status_and_user_errors_as_one_line() -> None:
    with pytest.raises(SystemExit) as ok:
        script_main({}, _never, lambda: 0, (UserMistake,))
    assert ok.value.code == 0

    def bad() -> int:
        raise UserMistake("dataset 'x'\n   is not in the registry")

    with pytest.raises(SystemExit) as err:
        script_main({}, _never, bad, (UserMistake,))
    assert err.value.code == "error: dataset 'x' is not in the registry"  # printed, status 1

    def crash() -> int:
        raise KeyError("a bug, not a user mistake")

    with pytest.raises(KeyError):  # anything else keeps its traceback
        script_main({}, _never, crash, (UserMistake,))


def test_under_snakemake_the_rule_log_gets_the_lines_and_the_traceback(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "rule" / "x.log"  # folder made by setup_logging
    log.parent.mkdir(parents=True)
    log.write_text("earlier attempt\n")
    seen = []

    def run(smk: SimpleNamespace) -> None:
        seen.append(smk)
        logging.getLogger("segbench.test").info("working on %s", smk.wildcards["raw"])
        raise UserMistake("bad archive")

    smk = SimpleNamespace(log=[str(log)], wildcards={"raw": "tiny"})
    with pytest.raises(UserMistake):
        script_main({"snakemake": smk}, run, lambda: 1 / 0, (UserMistake,))
    text = log.read_text()
    assert seen == [smk]
    assert text.startswith("earlier attempt\n")  # appended, not truncated (retries keep lines)
    assert "segbench.test INFO working on tiny" in text
    assert "job failed" in text and "Traceback" in text and "UserMistake: bad archive" in text


def test_setup_logging_makes_the_log_folder(tmp_path: Path) -> None:
    log = tmp_path / "new" / "dir" / "a.log"
    setup_logging(str(log)).info("hello")
    assert "segbench INFO hello" in log.read_text()
