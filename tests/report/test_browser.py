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
