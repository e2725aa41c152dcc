"""Mean +- std tables as in the paper's tables 5-6: best of each column bold, second underlined, and the number
of runs behind every number. One table renders to HTML (for the report), CSV and LaTeX (next to it)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Table:
    """rows x columns of mean, std and run count; `scale` turns stored fractions into shown percent."""

    title: str
    row_name: str
    column_name: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray
    scale: float = 1.0
    higher_is_better: bool = True
    marked: bool = True  # False for tables whose best value means nothing (p-values)
    digits: int = 2
    paper_form: bool = False  # cells as the paper's tables 5-6 print them: "mean (std)" instead of "mean ± std"


def from_summary(summary: pd.DataFrame, row: str, column: str, *, title: str, scale: float = 1.0,
                 row_label: Callable[[object], str] = str, column_label: Callable[[object], str] = str,
                 row_order: Sequence[object] | None = None, higher_is_better: bool = True, marked: bool = True,
                 digits: int = 2, column_order: Sequence[object] | None = None, paper_form: bool = False) -> Table:
    """Pivot a `summarize` result (one line per row x column with mean, std, n) into a `Table`."""
    rows = list(row_order) if row_order is not None else sorted(summary[row].unique(), key=str)
    columns = list(column_order) if column_order is not None else sorted(summary[column].unique())
    shape = (len(rows), len(columns))
    mean, std, n = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=int)
    for _, line in summary.iterrows():
        if line[row] in rows and line[column] in columns:
            i, j = rows.index(line[row]), columns.index(line[column])
            mean[i, j], std[i, j], n[i, j] = line["mean"], line["std"], line["n"]
    return Table(title, row, column, tuple(row_label(r) for r in rows), tuple(column_label(c) for c in columns),
                 mean, std, n, scale, higher_is_better, marked, digits, paper_form)


def marks(table: Table) -> np.ndarray:
    """Per cell "best", "second" or "": per column, compared as shown (rounded to the table's digits), so values
    that print alike tie; ties share a mark, and a column whose values all tie, or that has one value, gets none."""
    out = np.full(table.mean.shape, "", dtype=object)
    if not table.marked:
        return out
    sign = 1.0 if table.higher_is_better else -1.0
    for j in range(table.mean.shape[1]):
        column = sign * _shown(table, table.mean[:, j])
        distinct = sorted({float(v) for v in column if np.isfinite(v)}, reverse=True)
        if len(distinct) < 2:
            continue
        for rank, value in zip(("best", "second"), distinct, strict=False):
            out[column == value, j] = rank
    return out


def _shown(table: Table, values: np.ndarray) -> np.ndarray:
    """Values as `cell_text` prints them (in the table's scale and digits)."""
    scaled = values * table.scale
    digits = np.where(np.abs(scaled) < 1000, table.digits, 0)
    return np.array([round(float(v), int(d)) if np.isfinite(v) else np.nan for v, d in zip(scaled, digits,
                                                                                            strict=True)])


def cell_text(table: Table, i: int, j: int) -> str:
    """'73.80 ± 0.52', or '73.80 (0.52)' in the paper's form ('73.80' for one run, '–' for none), in the table's
    scale."""
    mean, std = table.mean[i, j] * table.scale, table.std[i, j] * table.scale
    if not np.isfinite(mean):
        return "–"
    digits = table.digits if abs(mean) < 1000 else 0
    if not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({std:.{digits}f})" if table.paper_form else f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_html(table: Table) -> str:
    """An HTML table; each cell shows its run count as (n), best bold, second underlined."""
    kinds = marks(table)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for j in range(len(table.columns)):
            text = html.escape(cell_text(table, i, j))
            if kinds[i, j] == "best":
                text = f"<b>{text}</b>"
            elif kinds[i, j] == "second":
                text = f"<u>{text}</u>"
            count = f' <span class="n">({table.n[i, j]})</span>' if table.n[i, j] else ""
            cells.append(f"<td>{text}{count}</td>")
        body.append(f"<tr><th>{html.escape(row)}</th>{''.join(cells)}</tr>")
    corner = html.escape(f"{table.row_name} \\ {table.column_name}")
    return (f'<table class="results"><caption>{html.escape(table.title)}</caption>'
            f"<thead><tr><th>{corner}</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def to_latex(table: Table) -> str:
    """A booktabs table in the paper's style: 'mean (std)', best \\textbf, second \\underline, n as superscript."""
    kinds = marks(table)
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "c" * len(table.columns) + "}",
             r"\toprule", " & ".join([_tex(table.row_name), *map(_tex, table.columns)]) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        cells = []
        for j in range(len(table.columns)):
            text = cell_text(replace(table, paper_form=True), i, j)
            text = text.replace("–", "--")
            if kinds[i, j] == "best":
                text = rf"\textbf{{{text}}}"
            elif kinds[i, j] == "second":
                text = rf"\underline{{{text}}}"
            cells.append(text + (rf"$^{{{table.n[i, j]}}}$" if table.n[i, j] else ""))
        lines.append(" & ".join([_tex(row), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{_tex(table.title)}. Mean (std) over runs; superscript: number of runs.}}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_frame(table: Table) -> pd.DataFrame:
    """Long form: one line per cell with mean, std (in the table's scale) and run count."""
    records = [{table.row_name: row, table.column_name: column, "mean": table.mean[i, j] * table.scale,
                "std": table.std[i, j] * table.scale, "n": int(table.n[i, j]), "mark": marks(table)[i, j]}
               for i, row in enumerate(table.rows) for j, column in enumerate(table.columns)]
    return pd.DataFrame(records)


def write(table: Table, stem: Path) -> list[Path]:
    """`stem`.csv and `stem`.tex next to the report."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, tex = stem.with_suffix(".csv"), stem.with_suffix(".tex")
    to_frame(table).to_csv(csv, index=False)
    tex.write_text(to_latex(table), encoding="utf-8")
    return [csv, tex]


def _tex(text: str) -> str:
    replacements = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "λ": r"$\lambda$",
                    "Δ": r"$\Delta$", "ρ": r"$\rho$", "±": r"$\pm$", "−": "-"}
    return "".join(replacements.get(ch, ch) for ch in str(text))
