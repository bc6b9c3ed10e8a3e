"""Statistics of the tables stage: summaries, paired tests, rankings, claims.

Pure functions on pandas DataFrames (one row per run, or per run and class)::

    runs = run_means(tidy, "iou", name="miou")                  # per-run mIoU
    summarize(runs, by=[...], value="miou", unit=None)          # mean, std (ddof=1), n, CI
    paired_wilcoxon_holm(runs, "loss", "miou", PAIR_KEYS)       # pairwise, Holm-corrected
    min_attainable_p(5)                                         # 0.0625: the test's floor
    stat, p, posthoc, ranks = friedman_nemenyi(runs, blocks=["dataset"])
    cd = critical_difference(ranks, n_datasets); plot_cd_diagram(ranks, cd, "cd.png")
    evaluate_claims(runs, claims)                               # the claims table

Statistical tests come from scipy.stats and scikit-posthocs; Holm's adjustment and the
rank-biserial effect size are hand-written (see :mod:`.paired`).
"""

from segbench.stats.cd_diagram import cd_sig_matrix, plot_cd_diagram
from segbench.stats.claims import LOWER_IS_BETTER, evaluate_claims, metric_higher_is_better
from segbench.stats.paired import (
    holm,
    min_attainable_p,
    paired_wilcoxon_holm,
    rank_biserial,
    wilcoxon_paired,
)
from segbench.stats.ranking import (
    FriedmanResult,
    average_ranks,
    block_matrix,
    critical_difference,
    friedman_nemenyi,
    nemenyi_q,
)
from segbench.stats.summary import (
    PAIR_KEYS,
    RUN_KEYS,
    bootstrap_ci,
    format_mean_std,
    run_means,
    summarize,
)

__all__ = [
    "LOWER_IS_BETTER",
    "PAIR_KEYS",
    "RUN_KEYS",
    "FriedmanResult",
    "average_ranks",
    "block_matrix",
    "bootstrap_ci",
    "cd_sig_matrix",
    "critical_difference",
    "evaluate_claims",
    "format_mean_std",
    "friedman_nemenyi",
    "holm",
    "metric_higher_is_better",
    "min_attainable_p",
    "nemenyi_q",
    "paired_wilcoxon_holm",
    "plot_cd_diagram",
    "rank_biserial",
    "run_means",
    "summarize",
    "wilcoxon_paired",
]
