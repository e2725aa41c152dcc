"""Every figure function writes a readable PNG and an SVG of sensible size."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from dstbench.analysis.jaccard import JaccardMatrix, OverTime
from dstbench.report.diagrams import CDPanel, cd_figure, heatmap_figure, retained_figure
from dstbench.report.plots import Line, Panel, Point, Stat, line_figure, loss_gap_figure, scatter_figure
from dstbench.report.similarity import _over_time_panels


def check(paths):
    png, svg = paths
    assert png.suffix == ".png" and svg.suffix == ".svg"
    image = imread(png)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0  # something is drawn
    assert svg.read_text().lstrip().startswith("<?xml")


def line(label, colour="#0072B2", dashed=False):
    x = np.array([0.05, 0.1, 0.2])
    return Line(label, colour, x, np.array([60.0, 65.0, 70.0]), np.array([1.0, np.nan, 0.5]), np.array([3, 1, 3]),
                dashed)


def test_line_figure_with_baselines_log_axis_and_marker(tmp_path):
    panels = [Panel("a", "Density", "Test accuracy (%)", (line("Magnitude"), line("Static", "#56B4E9", True)),
                    (Stat("Dense", "#000000", 80.0, 0.3, 3),), log_x=True, vlines=(0.1,)),
              Panel("b", "Epoch", "Validation accuracy (%)", (line("SNIP", "#D55E00"),))]
    check(line_figure(panels, tmp_path / "lines"))


def test_loss_gap_figure(tmp_path):
    gap = Panel("gap", "Epoch", "Loss gap", (line("Magnitude"),))
    bars = [Stat("Magnitude", "#0072B2", 70.0, 0.5, 3), Stat("Dense", "#000000", 80.0, float("nan"), 1)]
    check(loss_gap_figure(gap, bars, "Test accuracy (%)", tmp_path / "gap"))


def test_scatter_with_diagonal(tmp_path):
    points = [Point("Magnitude, D=0.05", "#0072B2", "o", 70.0, 71.0, 0.2, float("nan")),
              Point("SNIP, D=0.1", "#D55E00", "s", 66.0, 65.0, float("nan"), 0.4)]
    check(scatter_figure(points, title="ResNet-56", xlabel="local", ylabel="global", stem=tmp_path / "scatter"))


def test_heatmaps_of_mean_and_std_with_missing_cells(tmp_path):
    mean = np.array([[1.0, 0.4], [0.4, np.nan]])
    matrix = JaccardMatrix(("magnitude", "snip"), mean, np.full((2, 2), 0.02), np.full((2, 2), 3), 0.05, "J_r")
    check(heatmap_figure([("a", matrix), ("b", matrix)], tmp_path / "heat"))
    check(heatmap_figure([("a", matrix)], tmp_path / "heat_std", std=True))


def test_retained_bars(tmp_path):
    check(retained_figure([("MLP", np.array([0.2, 0.25]), np.array([0.9, 0.92])),
                           ("CNN", np.array([0.37]), np.array([0.95]))], tmp_path / "retained"))


@pytest.mark.parametrize("k", [2, 5, 8])
def test_cd_diagram(tmp_path, k):
    ranks = pd.Series(np.linspace(1.2, k - 0.3, k), index=[f"c{i}" for i in range(k)])
    check(cd_figure([CDPanel("all", ranks, 1.1, (("c0", "c1"),), 12)], tmp_path / f"cd{k}"))


def test_over_time_panels_leave_out_the_own_criterion(tmp_path):
    shape = (2, 2, 3)
    result = OverTime(("magnitude", "snip"), ("magnitude", "snip"), (10, 20, 30), np.full(shape, 0.5),
                      np.full(shape, 0.1), np.full(shape, 2))
    panels = _over_time_panels(result)
    assert [p.title for p in panels] == ["trained with Magnitude", "trained with SNIP"]
    assert [ln.label for ln in panels[0].lines] == ["SNIP"]
    check(line_figure(panels, tmp_path / "over_time"))
