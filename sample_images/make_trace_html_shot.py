"""Make the README's picture of ``convcli trace --html``: the cs231n page in a real browser.

    .venv/bin/python sample_images/make_trace_html_shot.py [--phone PHONE.png]

Builds the page exactly as ``convcli trace --demo cs231n --html`` does, opens
it from ``file://`` in headless Chromium (the system's ``chromium``, driven by
Playwright, a test extra) at 1280x800, at step 12 with the pointer on an
input value, and writes the screenshot to docs/images/trace-html.png. With
``--phone`` it also writes the whole page as a 375-pixel-wide phone shows it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from convcli.demos import load_demo
from convcli.trace_html import save_trace_page
from convcli.tracing import trace

SHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "trace-html.png"
STEP = 12  # of 18, counted from 1 as the page's address does: the second map starts
HOVER = '#inputs-body td[data-c="0"][data-r="3"][data-col="3"]'  # x[2,2,0]


def main() -> None:
    """Write the screenshot (and, if asked, the phone's) from a fresh page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phone", type=Path, help="also write a 375 px wide shot")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        parser.error("no chromium on PATH (Debian: apt-get install chromium)")
    demo = load_demo("cs231n")
    t = trace(demo.x, demo.w, demo.bias or None, **demo.options)
    title, lesson = demo.explain(t)
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        page_file = save_trace_page(
            Path(folder) / "cs231n.html", t, title=title, lesson=lesson
        )
        browser = playwright.chromium.launch(executable_path=chromium)
        # Reduced motion: no transitions, so the shot never catches one halfway.
        page = browser.new_page(
            viewport={"width": 1280, "height": 800}, reduced_motion="reduce"
        )
        page.goto(f"{page_file.as_uri()}#step={STEP}")
        page.hover(HOVER)
        page.screenshot(path=SHOT)
        print(f"wrote {SHOT} ({SHOT.stat().st_size:,} bytes)")
        if args.phone is not None:
            phone = browser.new_page(viewport={"width": 375, "height": 800})
            phone.goto(f"{page_file.as_uri()}#step={STEP}")
            phone.screenshot(path=args.phone, full_page=True)
            print(f"wrote {args.phone}")
        browser.close()


if __name__ == "__main__":
    main()
