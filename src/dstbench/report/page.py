"""The report as one self-contained HTML page: figures embedded as base64 PNG, styles inline, no script and no
external resource, so it opens offline and can be mailed as one file. SVG, CSV and LaTeX files lie next to it."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from dstbench.report import tables
from dstbench.report.context import FigureItem, Note, TableItem
from dstbench.report.sections import Section
from dstbench.vocab import ARM

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1150px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { font-size: 1.05rem; margin-bottom: .3rem; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; box-sizing: border-box; }
figcaption { font-size: .9rem; color: #444; }
table.results { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
table.results th, table.results td { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: right; }
table.results th:first-child { text-align: left; }
table.results caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
span.n { color: #888; font-size: .75rem; }
.note { background: #fff6e0; border-left: 4px solid #e6a700; padding: .4rem .7rem; margin: .5rem 0; }
.status { background: #f2f5fa; padding: .5rem .8rem; }
.files a { font-size: .8rem; margin-right: .8rem; }
pre.summary { background: #f7f7f7; padding: .8rem; white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; }
p.about { margin: .4rem 0 .6rem; }
nav a { margin-right: 1rem; }
"""


def render(root: Path, out: Path, sections: Sequence[Section], summary: str) -> str:
    """The whole page. `out` is the report folder: file links are relative to it."""
    now = generated_at().strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{_anchor(s.experiment)}">{html.escape(s.experiment)}</a>' for s in sections)
    body = "\n".join(_section(s, out) for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dstbench report: {html.escape(root.name)}</title>
<style>{CSS}</style></head>
<body>
<h1>dstbench report</h1>
<p>Results in <code>{html.escape(str(root))}</code>, generated {now}. Accuracies in percent; every number is a mean
± std over seeds, with the number of runs behind it in parentheses.</p>
<nav>{nav}</nav>
<h2>Summary</h2>
<pre class="summary">{html.escape(summary)}</pre>
{body}
</body></html>
"""


def generated_at() -> datetime:
    """Now, or the reproducible-builds convention's fixed time when SOURCE_DATE_EPOCH is set (byte-identical
    pages from two builds, e.g. in tests)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch and epoch.isdigit() else datetime.now(UTC)


def _section(section: Section, out: Path) -> str:
    kinds = ", ".join(section.kinds) or "none"
    origin = "inferred from what varies" if section.inferred else "from the spec"
    parts = [f'<section id="{_anchor(section.experiment)}"><h2>{html.escape(section.experiment)}</h2>',
             f'<p class="about">{"<br>".join(html.escape(line) for line in section.about)}</p>' if section.about
             else "",
             f'<div class="status">{_status(section)}<br>Analyses ({origin}): {html.escape(kinds)}</div>']
    for item in section.items:
        if isinstance(item, FigureItem):
            parts.append(_figure(item, out))
        elif isinstance(item, TableItem):
            parts.append(_table(item, out))
        elif isinstance(item, Note):
            parts.append(f'<p class="note">{html.escape(item.text)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _status(section: Section) -> str:
    text = f"{section.done} finished run{'s' if section.done != 1 else ''}"
    missing = section.missing
    if missing.empty:
        return text + "; nothing missing."
    details = []
    for status, group in missing.groupby("status", sort=True):
        shown = []
        for _, row in group.head(10).iterrows():
            reason = f": {row['reason'][:160]}" if row.get("reason") else ""
            shown.append(f"<code>{html.escape(row['run_id'])}</code> ({html.escape(str(row[ARM]))}"
                         f"{html.escape(reason)})")
        more = f" and {len(group) - 10} more" if len(group) > 10 else ""
        details.append(f"{len(group)} {html.escape(status)}: {', '.join(shown)}{more}")
    return f"{text}; missing {len(missing)}: " + "; ".join(details) + \
        ". Numbers below use finished runs only; rerun the sweep to finish the rest."


def _figure(item: FigureItem, out: Path) -> str:
    png, *others = item.paths
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    links = " ".join(f'<a href="{html.escape(_relative(p, out))}">{p.suffix[1:].upper()}</a>' for p in others)
    return (f'<figure><h3>{html.escape(item.title)}</h3><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(item.title)}"><figcaption>{html.escape(item.caption)} '
            f'<span class="files">{links}</span></figcaption></figure>')


def _table(item: TableItem, out: Path) -> str:
    links = " ".join(f'<a href="{html.escape(_relative(p, out))}">{p.suffix[1:].upper()}</a>' for p in item.paths)
    note = f"<p>{html.escape(item.note)}</p>" if item.note else ""
    table = tables.to_html(item.table)
    if item.collapsed:
        summary = html.escape(item.table.title.split(":")[0])
        return f'<details><summary>{summary}</summary>{table}{note}<p class="files">{links}</p></details>'
    return f'{table}{note}<p class="files">{links}</p>'


def _relative(path: Path, out: Path) -> str:
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return path.as_posix()


def _anchor(name: str) -> str:
    return "exp-" + "".join(ch if ch.isalnum() else "-" for ch in name)
