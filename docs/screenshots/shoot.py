"""The PNGs in this folder: headless chromium (Debian's, via Playwright) on an HTML report.

Usage: python docs/screenshots/shoot.py REPORT.html docs/screenshots "test_paper_models[alexnet]"
after ``pytest --rethink examples --rethink-html=REPORT.html``: the page's top (verdicts) as
report.png and that model's Figure 1a as report-figures.png, 3/4 size, 128 colours.
"""
import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright
from PIL import Image

page_path, out_dir, model = sys.argv[1], sys.argv[2], sys.argv[3]
with sync_playwright() as pw:
    b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    p = b.new_page(viewport={"width": 1100, "height": 1300})
    p.goto(Path(page_path).resolve().as_uri())
    p.screenshot(path=f"{out_dir}/.top.png", clip={"x": 0, "y": 0, "width": 1100, "height": 860})
    box = p.locator("h3", has_text=model).first.bounding_box()
    p.screenshot(path=f"{out_dir}/.fig.png", full_page=True,
                 clip={"x": 0, "y": box["y"] - 6, "width": 1100, "height": 640})
    b.close()
for src, name in ((f"{out_dir}/.top.png", "report.png"), (f"{out_dir}/.fig.png", "report-figures.png")):
    im = Image.open(src).convert("RGB")
    im = im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.LANCZOS).quantize(colors=128)
    im.save(f"{out_dir}/{name}", optimize=True)
    os.remove(src)
