"""The report in a real browser: headless Chromium loads it offline, every image decodes, nothing errors.

A copy of the page gets a small probe script at the top of <head> that records error events (failed resources
included) and console errors, and after `load` writes every image's state into the DOM, which --dump-dom then
prints. A screenshot of the report is kept under the test's tmp folder and in test-artifacts/ at the repo root.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || (e.target && (e.target.src || e.target.href)))), true);
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); __consoleError(...args); };
window.addEventListener("load", () => {
  const images = Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth}));
  const out = document.createElement("pre");
  out.id = "__probe";
  out.textContent = JSON.stringify({images: images, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""
REPO = Path(__file__).resolve().parents[2]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); CI installs it")
def test_report_loads_in_chromium_with_every_image_and_no_errors(built_report, tmp_path):
    page = built_report.read_text(encoding="utf-8")
    probe = built_report.with_name("probe.html")
    probe.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    try:
        result = chromium(tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    found = re.search(r'<pre id="__probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"no probe output; chromium exit {result.returncode}: {result.stderr[-2000:]}"
    state = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(state["images"]) == page.count("<img ") > 0
    assert all(image["ok"] for image in state["images"]), state["images"]
    assert state["errors"] == []

    shot = tmp_path / "report.png"
    result = chromium(tmp_path / "profile", "--window-size=1280,3000", f"--screenshot={shot}", built_report.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, result.stderr[-2000:]
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(shot, artifacts / "report-screenshot.png")


# After `load`: what a reader would see cut or overlapping at this window width, written into the DOM.
LAYOUT_PROBE = """<script>
window.addEventListener("load", () => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });  // folded tables must fit too
  const problems = [];
  const name = el => `${el.tagName.toLowerCase()} "${(el.alt || el.textContent).trim().slice(0, 50)}"`;
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) problems.push(`page ${root.scrollWidth}px wide`);
  for (const el of document.querySelectorAll("h1, h2, h3, p, pre, figcaption, caption, th, td, summary, nav")) {
    if (el.scrollWidth > el.clientWidth + 1) problems.push(`clipped: ${name(el)}`);
  }
  for (const img of document.images) {
    const box = img.getBoundingClientRect(), parent = img.parentElement.getBoundingClientRect();
    if (box.right > parent.right + 1) problems.push(`wider than its box: ${name(img)}`);
    // 8 pt figure text at 150 dpi is 16.7 px: shown at under half size it is too small to read
    if (box.width < 0.5 * img.naturalWidth) problems.push(`shown at ${(box.width / img.naturalWidth).toFixed(2)}: ${name(img)}`);
  }
  const blocks = Array.from(document.querySelectorAll(
    "h1, h2, h3, p, pre, img, figcaption, table, summary, nav, div.status")).filter(el => el.getClientRects().length);
  for (let i = 0; i < blocks.length; i++) {
    for (let j = i + 1; j < blocks.length; j++) {
      const a = blocks[i], b = blocks[j];
      if (a.contains(b) || b.contains(a)) continue;
      const r = a.getBoundingClientRect(), s = b.getBoundingClientRect();
      if (r.left < s.right - 1 && s.left < r.right - 1 && r.top < s.bottom - 1 && s.top < r.bottom - 1) {
        problems.push(`${name(a)} overlaps ${name(b)}`);
      }
    }
  }
  const out = document.createElement("pre");
  out.id = "__layout";
  out.textContent = JSON.stringify({width: window.innerWidth, blocks: blocks.length, problems: problems});
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); CI installs it")
@pytest.mark.parametrize("width", [1400, 1000])  # a desktop window and a laptop screen
def test_study_shaped_report_has_nothing_cut_or_overlapping_at_desktop_and_laptop_width(study_like_report, tmp_path,
                                                                                      width):
    report = study_like_report[0]
    probe = report.with_name(f"layout-{width}.html")
    probe.write_text(report.read_text(encoding="utf-8").replace("<head>", "<head>" + LAYOUT_PROBE, 1),
                     encoding="utf-8")
    try:
        result = chromium(tmp_path / "profile", f"--window-size={width},1200", "--virtual-time-budget=10000",
                          "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    found = re.search(r'<pre id="__layout">(.*?)</pre>', result.stdout, re.S)
    assert found, f"no probe output; chromium exit {result.returncode}: {result.stderr[-2000:]}"
    state = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert state["width"] == width and state["blocks"] > 50
    assert state["problems"] == []
