"""Training variants (grid blocks with ``tag`` + ``training``, loss keys ``{loss}~{tag}``) stay
out of the tables and statistics: ``load_tidy`` drops them, so the Holm family of a block's
comparisons is the one without them (segbench.reporting.common docstring)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from segbench.reporting import statistics as st
from segbench.reporting.common import is_variant_key, load_tidy
from tests.reporting.conftest import make_tidy

PLAIN = {"good": 0.05, "mid": 0.02, "bad": 0.0}


@pytest.mark.parametrize(
    ("key", "variant"),
    [("dice", False), ("dice_ce_0.7", False), ("dice~hp07", False), ("dice~hp123", False),
     ("dice~adam", True), ("dice_surgery~sgd", True), ("dice~hpx", True)],
)  # fmt: skip
def test_variant_keys(key: str, variant: bool) -> None:
    assert is_variant_key(key) is variant


def test_load_tidy_drops_variant_rows_only(tmp_path: Path) -> None:
    plain = make_tidy(losses=PLAIN)
    extra = make_tidy(losses={"good~adam": 0.1, "good~hp03": 0.03}, seed=1)
    with_variants = pd.concat([plain, extra], ignore_index=True)
    path = tmp_path / "tidy.csv"
    with_variants.to_csv(path, index=False)
    got = load_tidy(path)
    assert set(got["loss"]) == {"good", "mid", "bad", "good~hp03"}
    assert set(load_tidy(path, variants=True)["loss"]) == set(with_variants["loss"])
    # the paired tests (Holm per block) equal those of the study without the variant
    no_search = got[got["loss"] != "good~hp03"].reset_index(drop=True)
    plain_path = tmp_path / "plain.csv"
    plain.to_csv(plain_path, index=False)
    pd.testing.assert_frame_equal(
        st.paired_table(no_search, ["miou"], 100, 0.05),
        st.paired_table(load_tidy(plain_path), ["miou"], 100, 0.05),
    )


def test_load_tidy_without_variants_is_the_file_as_read(tmp_path: Path) -> None:
    path = tmp_path / "tidy.csv"
    make_tidy(losses=PLAIN).to_csv(path, index=False)
    pd.testing.assert_frame_equal(
        load_tidy(path), pd.read_csv(path, dtype={"fraction": str, "class_name": str})
    )
