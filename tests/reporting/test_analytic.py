"""Analytic figures (paper 000 Fig. 1, 2, 5; paper 002 Fig. 1, 6) built from the loss
implementations; the curves are checked against closed forms where one exists."""

from __future__ import annotations

import numpy as np
import pytest

from segbench.reporting.analytic import (
    ANALYTIC_FIGURES,
    build_analytic_figure,
    crossings,
    p002_context,
    probe_curves,
    uniform_curves,
)


def test_builds_every_analytic_figure(tmp_path):
    """What CI builds: all five figures, directly (no workflow)."""
    data = {}
    for fid in ANALYTIC_FIGURES:
        path = tmp_path / f"{fid}.png"
        data[fid] = build_analytic_figure(fid, path)
        assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 10_000
        assert np.isfinite(data[fid]["grad"]).all()
    # paper 000 Fig. 1: CE = -log p and dCE/dp = -1/p when every pixel is at p (closed form)
    ce = data["paper000_fig1"].query("loss == 'CE'")
    assert ce["value"].to_numpy() == pytest.approx(-np.log(ce["p"]), rel=1e-9)
    assert ce["grad"].to_numpy() == pytest.approx(-1 / ce["p"], rel=1e-9)
    # ML = Dice x CE (Eq. 5) pointwise
    f1 = data["paper000_fig1"].pivot(index="p", columns="loss", values="value")
    assert f1["ML (Dice x CE)"].to_numpy() == pytest.approx((f1["Dice"] * f1["CE"]).to_numpy())
    # paper 002 Fig. 1: CE's per-pixel logit gradient is p - y; dp/dz = p (1 - p)
    f = data["paper002_fig1"]
    for y in (0, 1):
        g = f.query("loss == 'CE' and wrt == 'z' and y == @y")
        assert g["grad"].to_numpy() == pytest.approx((g["p"] - y).to_numpy(), abs=1e-9)
    d = f.query("wrt == 'dpdz' and y == 1")
    assert d["grad"].to_numpy() == pytest.approx((d["p"] * (1 - d["p"])).to_numpy())
    with pytest.raises(ValueError, match="unknown analytic figure"):
        build_analytic_figure("paper999_fig1", tmp_path / "x.png")


def test_equilibria_of_paper002_fig1():
    """CE's fg and bg |dL/dz| meet at p = 0.5; Dice's only at the ends (paper 002 Sec. 3.1)."""
    ctx_p, ctx_y = p002_context()
    p = np.linspace(0.005, 0.995, 100)
    out = {}
    for name, spec in (("ce", ("ce", {})), ("dice", ("dice", {"include_background": False}))):
        fg = probe_curves({name: spec}, ctx_p, ctx_y, 1, "z", p)["grad"].abs().to_numpy()
        bg = probe_curves({name: spec}, ctx_p, ctx_y, 0, "z", p)["grad"].abs().to_numpy()
        out[name] = crossings(p, fg, bg)
    assert out["ce"] == pytest.approx([0.5], abs=1e-6)
    assert out["dice"] == [p[0], p[-1]]
    # a meeting exactly on a grid point counts too (0.5 is on the figures' grid)
    grid = np.array([0.25, 0.5, 0.75])
    assert crossings(grid, 1 - grid, grid) == [0.5]


def test_surgery_gradient_is_eq9_of_paper002():
    """Dice surgery with n = None: the foreground probe's logit gradient is Eq. 9,
    -scale (1 - p) G_fg, G_fg = (2(P + Y + eps) - (2I + eps)) / (P + Y + eps)^2 (the loss
    derivative is minus Eq. 2, docs/losses.md), with the probe inside P and I."""
    ctx_p, ctx_y = p002_context()
    p = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    g = probe_curves({"s": ("dice_surgery", {"n": None})}, ctx_p, ctx_y, 1, "z", p)["grad"]
    eps, scale, n = 1e-5, 0.25, len(ctx_p) + 1
    big_p = np.sum(ctx_p) + p
    big_i = np.dot(ctx_p, ctx_y) + p
    y = sum(ctx_y) + 1
    gfg = (2 * (big_p + y + eps) - (2 * big_i + eps)) / (big_p + y + eps) ** 2
    assert g.to_numpy() == pytest.approx(-scale * (1 - p) * gfg * n, rel=1e-5)
    assert uniform_curves({"ce": ("ce", {})}, [0.5])["value"].iloc[0] == pytest.approx(np.log(2))
