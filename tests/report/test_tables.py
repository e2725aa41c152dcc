import numpy as np
import pandas as pd

from dstbench.report import tables


def table(mean, std=None, n=None, **kw):
    mean = np.array(mean, dtype=float)
    std = np.full(mean.shape, 0.01) if std is None else np.array(std, dtype=float)
    n = np.full(mean.shape, 3) if n is None else np.array(n)
    rows = tuple(f"r{i}" for i in range(mean.shape[0]))
    columns = tuple(f"c{j}" for j in range(mean.shape[1]))
    return tables.Table("T", "criterion", "density", rows, columns, mean, std, n, **kw)


def test_best_bold_second_underlined_per_column_with_ties():
    t = table([[0.9, 0.5], [0.8, 0.7], [0.9, np.nan], [0.7, 0.6]])
    assert tables.marks(t).tolist() == [["best", ""], ["second", "best"], ["best", ""], ["", "second"]]


def test_lower_is_better_and_unmarked_tables():
    t = table([[1.5], [2.5], [2.0]], higher_is_better=False)
    assert tables.marks(t)[:, 0].tolist() == ["best", "", "second"]
    assert set(tables.marks(table([[1.0], [2.0]], marked=False)).ravel()) == {""}


def test_values_that_print_alike_tie_and_a_column_of_ties_has_no_winner():
    # the ITOP table of the study: five criteria at 0.8912...0.8948, all printed 0.89
    itop = table([[0.8912], [0.8948], [0.8931], [0.8920], [0.8940]])
    assert set(tables.marks(itop).ravel()) == {""}
    # 0.894 and 0.8949 both print 0.89: they share "best"; 0.88 is second
    assert tables.marks(table([[0.894], [0.88], [0.8949]])).ravel().tolist() == ["best", "second", "best"]
    # in percent with two digits, 0.73801 and 0.73804 both print 73.80
    assert tables.marks(table([[0.73801], [0.73804], [0.7]], scale=100.0)).ravel().tolist() == [
        "best", "best", "second"]


def test_a_single_value_gets_no_mark():
    assert tables.marks(table([[0.5], [np.nan]])).tolist() == [[""], [""]]


def test_cell_text_scales_and_handles_one_run_and_none():
    t = table([[0.7380, np.nan]], std=[[0.0052, np.nan]], n=[[3, 0]], scale=100.0)
    assert tables.cell_text(t, 0, 0) == "73.80 ± 0.52"
    assert tables.cell_text(t, 0, 1) == "–"
    one = table([[0.5]], std=[[np.nan]], n=[[1]], scale=100.0)
    assert tables.cell_text(one, 0, 0) == "50.00"


def test_html_marks_and_counts():
    html = tables.to_html(table([[0.9], [0.8], [0.1]], n=[[5], [4], [3]]))
    assert "<b>0.90 ± 0.01</b>" in html and "<u>0.80 ± 0.01</u>" in html
    assert '<span class="n">(5)</span>' in html and '<span class="n">(3)</span>' in html


def test_latex_in_the_papers_style():
    t = table([[0.9], [0.8]], n=[[5], [5]])
    t = tables.Table("MEST λ_1 & co", "criterion", "density", ("MEST (λ=0.5)", "SNIP"), ("0.1",), t.mean, t.std,
                     t.n)
    tex = tables.to_latex(t)
    assert r"\textbf{0.90 (0.01)}$^{5}$" in tex and r"\underline{0.80 (0.01)}$^{5}$" in tex
    assert r"MEST ($\lambda$=0.5)" in tex and r"MEST $\lambda$\_1 \& co" in tex
    assert tex.count(r"\\") >= 3


def test_from_summary_and_files(tmp_path):
    summary = pd.DataFrame({"prune": ["a", "a", "b"], "density": [0.1, 0.2, 0.1], "mean": [0.5, 0.6, 0.7],
                            "std": [0.01, 0.02, np.nan], "n": [3, 3, 1]})
    t = tables.from_summary(summary, "prune", "density", title="x", row_order=["b", "a"], scale=100.0)
    assert t.rows == ("b", "a") and t.columns == ("0.1", "0.2")
    assert t.n.tolist() == [[1, 0], [3, 3]]
    csv, tex = tables.write(t, tmp_path / "sub" / "acc")
    frame = pd.read_csv(csv)
    assert list(frame.columns) == ["prune", "density", "mean", "std", "n", "mark"]
    assert frame.loc[(frame["prune"] == "a") & (frame["density"] == 0.2), "mean"].item() == 60.0
    assert tex.read_text().startswith(r"\begin{table}")


def test_the_papers_table_6_columns_in_its_form():
    # Table 6's densities 0.9 and 0.8 (gradient growth), as mean and std fractions of three runs each: SET and
    # magnitude are best and second at 0.9, RSensitivity and SET at 0.8.
    mean = [[0.7600, 0.5580], [0.7630, 0.6843], [0.7473, 0.5390], [0.7583, 0.6960], [0.6550, 0.4820]]
    std = [[0.0046, 0.2951], [0.0075, 0.0615], [0.0015, 0.2927], [0.0055, 0.0670], [0.0227, 0.0779]]
    t = tables.Table("Table 6", "criterion", "density", ("Magnitude", "SET", "MEST", "RSensitivity", "SNIP"),
                     ("0.9", "0.8"), np.array(mean), np.array(std), np.full((5, 2), 3), scale=100.0, paper_form=True)
    assert tables.marks(t).tolist() == [["second", ""], ["best", "second"], ["", ""], ["", "best"], ["", ""]]
    html = tables.to_html(t)
    assert "<b>76.30 (0.75)</b>" in html and "<u>76.00 (0.46)</u>" in html
    assert "<b>69.60 (6.70)</b>" in html and "<u>68.43 (6.15)</u>" in html
    assert "<td>74.73 (0.15) <span" in html and "±" not in html
    tex = tables.to_latex(t)
    assert r"\textbf{76.30 (0.75)}$^{3}$" in tex and r"\underline{68.43 (6.15)}$^{3}$" in tex


def test_from_summary_keeps_a_given_column_order():
    summary = pd.DataFrame({"prune": ["a", "a", "a"], "density": [0.5, 0.9, 0.7], "mean": [0.2, 0.7, 0.4],
                            "std": [0.01, 0.02, 0.03], "n": [3, 3, 3]})
    t = tables.from_summary(summary, "prune", "density", title="x", column_order=[0.9, 0.7], paper_form=True,
                            column_label=lambda v: f"{v:g}")
    assert t.columns == ("0.9", "0.7") and t.mean.tolist() == [[0.7, 0.4]]
    assert tables.cell_text(t, 0, 0) == "0.70 (0.02)"
