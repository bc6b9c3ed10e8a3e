"""The HTML report as a browser shows it: the tiny report study (``report_study`` of
tests/reporting/conftest.py) rendered by headless Chromium (Debian's ``chromium-headless-shell``).

Issue 18: the front page showed "System Message: WARNING/2 ... Duplicate explicit target name:
statistics" (a report category named like Snakemake's own ``Statistics`` link target) and a blank
band above the workflow description (Snakemake centres its main panel vertically;
workflow/report/report.css top-aligns it). The dumped DOM holds the rendered front page and,
in the report's data, every caption, so one check covers them all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium-headless-shell"
DOCUTILS_MARKERS = ("System Message", "system-message", "Docutils System Messages", "problematic")
"""What docutils writes into HTML for a reStructuredText warning or error."""


def _chromium() -> str:
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium-headless-shell")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium-headless-shell)")
        pytest.skip(f"{CHROMIUM} not installed (Debian package chromium-headless-shell)")
    return exe


def _dump_dom(html: Path, *, height: int = 1400) -> str:
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--window-size=1280,{height}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def dom(report_study: Path) -> str:
    return _dump_dom(report_study / "report.html")


def test_report_renders_without_rst_messages(dom: str):
    # the page was rendered by the report's scripts (React), not only read
    assert "Snakemake" in dom and '<div class="document">' in dom
    for text in ("report_tiny", "Statistical tests", "Paper comparison", "Figures", "Tables"):
        assert text in dom, text
    # the front page: the workflow description (workflow/report/workflow.rst) with the config
    assert "segbench study <strong>report_tiny</strong>" in dom
    for marker in DOCUTILS_MARKERS:
        hits = [m.start() for m in re.finditer(re.escape(marker), dom)]
        assert not hits, f"{marker!r} in the report: {dom[hits[0] - 300 : hits[0] + 300]}"


def test_front_page_text_starts_at_the_top(report_study: Path, tmp_path: Path):
    """No blank band above the workflow description, in a tall window (where it was largest)."""
    page = tmp_path / "measured.html"
    probe = (
        "<script>(() => { let n = 0; const poll = setInterval(() => {"
        "const d = document.querySelector('div.document'); n += 1;"
        "if (!d && n < 50) return; clearInterval(poll);"
        "const m = document.createElement('pre');"
        "m.textContent = 'TOP=' + (d ? Math.round(d.getBoundingClientRect().top) : 'none');"
        "document.body.appendChild(m);}, 200); })();</script>"
    )
    html = (report_study / "report.html").read_text()
    head, tail = html.rsplit("</body>", 1)  # the page's own closing tag (the data hold others)
    page.write_text(head + probe + "</body>" + tail)
    m = re.search(r"TOP=(-?\d+|none)", _dump_dom(page, height=2000))
    assert m is not None, "the probe did not run"
    assert m.group(1) != "none", "no workflow description on the front page"
    assert 0 <= int(m.group(1)) < 100, f"description starts {m.group(1)} px below the top"
