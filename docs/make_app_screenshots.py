"""Take the screenshots in docs/images/app_*.png: `python docs/make_app_screenshots.py`.

Starts `synthface app` on a free port with a small demo dataset and an UNTRAINED 64 px model
(so the Predict page's numbers are meaningless: the page, not the model, is what is shown),
and drives the system Chromium with Playwright, as tests/test_app_browser.py does.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import yaml
from playwright.sync_api import expect, sync_playwright

from synthface.app.launch import free_port, wait_until_ready
from synthface.testing import CHROMIUM_ARGS, chromium_executable

IMAGES = Path(__file__).resolve().parent / "images"
TIMEOUT_MS = 120_000


def idle(page) -> None:
    """Wait until the page's rerun is over (Streamlit shows its status widget while a script runs)."""
    page.wait_for_timeout(300)
    expect(page.locator("[data-testid='stStatusWidget']")).to_have_count(0, timeout=TIMEOUT_MS)


def choose(page, label: str, option: str) -> None:
    field = page.locator("[data-testid='stSelectbox'], [data-testid='stMultiSelect']").filter(
        has=page.get_by_text(label, exact=True)).locator("input")
    expect(field).to_have_count(1)  # a widget of the previous run may linger until the rerun finishes
    field.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    idle(page)


def make_inputs(folder: Path) -> tuple[Path, Path, list[Path]]:
    import torch

    from synthface.evaluation.efficiency import write_inference_checkpoint
    from synthface.generation.sources.demo import demo_photo
    from synthface.training.model import OAMNet

    scenario = folder / "app_demo.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "app_demo", "seed": 3, "n_samples": 24, "image_size": 160, "sources": [{"kind": "demo"}],
        "mask": {"probability": 0.6, "types": {"surgical": 0.3, "cloth": 0.4, "n95": 0.3},
                 "wear_styles": {"proper": 0.7, "nose_exposed": 0.15, "chin": 0.15}, "confusers": {"scarf": 0.3}},
        "lighting": {"preset": {"studio": 0.4, "daylight": 0.3, "dim": 0.3}}, "pair_unmasked": True, "preview_samples": 0,
    }))
    data = folder / "app_demo"
    subprocess.run([sys.executable, "-m", "synthface.cli", "generate", str(scenario), "--out", str(data), "--workers", "1",
                    "--quiet"], check=True)
    torch.manual_seed(0)
    checkpoint = write_inference_checkpoint(folder / "untrained.pt", OAMNet(num_races=5), image_size=64)
    photos = []
    for name in ("astronaut", "grace_hopper"):
        path = folder / f"{name}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(demo_photo(name), cv2.COLOR_RGB2BGR))
        photos.append(path)
    return data, checkpoint, photos


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        data, checkpoint, photos = make_inputs(folder)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "synthface.cli", "app", "--port", str(port), "--data", str(data),
                                   "--checkpoint", str(checkpoint)])
        try:
            assert wait_until_ready(url, server, timeout=120)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_executable(), args=list(CHROMIUM_ARGS))
                page = browser.new_page(viewport={"width": 1400, "height": 1050})
                page.set_default_timeout(TIMEOUT_MS)
                shoot_studio(page, url, photos[0], folder)
                shoot_predict(page, url, photos)
                shoot_browser(page, url)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


def shoot_studio(page, url: str, photo: Path, folder: Path) -> None:
    page.goto(url)
    page.locator(".st-key-studio-face-0 img").first.wait_for()
    choose(page, "Mask type", "cloth")
    choose(page, "Pattern", "stripes")
    choose(page, "Colour palette", "bright")
    choose(page, "Lighting preset", "daylight")
    expect(page.locator("[data-testid='stCode']")).to_contain_text("preset: daylight")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(IMAGES / "app_studio.png"))
    notes = folder / "notes.txt"
    notes.write_text("not a photo")
    page.get_by_text("Upload", exact=True).click()
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(notes))
    page.locator("[data-testid='stAlert']").filter(has_text="unreadable image").wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(IMAGES / "app_studio_error.png"), clip={"x": 0, "y": 0, "width": 1400, "height": 620})


def shoot_predict(page, url: str, photos: list[Path]) -> None:
    page.goto(f"{url}/predict")
    page.get_by_text("Model: untrained.pt").wait_for()
    page.locator("[data-testid='stFileUploader'] input[type='file']").nth(1).set_input_files([str(p) for p in photos])
    expect(page.get_by_text("attention map (red = weighted most)")).to_have_count(2)
    page.set_viewport_size({"width": 1400, "height": 1500})  # Streamlit scrolls inside the page: show the first face whole
    page.get_by_role("heading", name="astronaut.jpg").evaluate("(element) => element.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(IMAGES / "app_predict.png"))
    page.set_viewport_size({"width": 1400, "height": 1050})


def shoot_browser(page, url: str) -> None:
    page.goto(f"{url}/browser")
    page.get_by_text("of 24 samples").wait_for()
    choose(page, "mask type", "cloth")
    choose(page, "mask type", "n95")
    expect(page.locator(".st-key-browser-grid [data-testid='stImage'] img").first).to_be_visible()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(IMAGES / "app_browser.png"))
    page.get_by_role("tab", name="Balance report").click()
    expect(page.locator("[data-testid='stTabPanel'] [data-testid='stImage'] img").last).to_be_visible()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(IMAGES / "app_browser_report.png"), full_page=True)


if __name__ == "__main__":
    main()
