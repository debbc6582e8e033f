"""`synthface app` in a real browser: the command starts the server on a free local port and
Playwright drives the system Chromium (Debian's `chromium` package, installed by .ci/run;
Playwright's own browser download is never used).

Without Chromium these tests fail, saying how to install it: a browser test that skips
silently would let a broken app pass CI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import cv2
import pytest
from playwright.sync_api import expect

from synthface.app.launch import free_port, wait_until_ready
from synthface.dataset import read_metadata
from synthface.testing import CHROMIUM_ARGS, CHROMIUM_ENV_VAR, chromium_executable

pytestmark = pytest.mark.slow
TIMEOUT_MS = 90_000  # the first page of a fresh server loads MediaPipe and warms the mask fitter


@pytest.fixture(scope="module")
def server(tmp_path_factory, generated_dataset, tiny_checkpoint):
    """`synthface app` as a user starts it, on a free port, with --data and --checkpoint."""
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "server.log"
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "synthface.cli", "app", "--port", str(port), "--data", str(generated_dataset),
             "--checkpoint", str(tiny_checkpoint)],
            stdout=output, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_ready(url, process, timeout=120), log.read_text()
        # The launcher prints the address once its own readiness poll succeeds, which can be a
        # moment after ours: wait for it here, so a short test run cannot stop the server first.
        deadline = time.monotonic() + 30
        while f"synthface app: {url}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"synthface app: {url}" in log.read_text(), log.read_text()  # the address is printed for the user
        yield url
        # Stopping `synthface app` (SIGTERM, as a service manager or Ctrl-C would) stops the server too.
        process.terminate()
        process.wait(timeout=30)
        assert not wait_until_ready(url, timeout=2), "the Streamlit server outlived `synthface app`"
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever happened above, leave nothing running
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def browser():
    executable = chromium_executable()
    if executable is None:
        pytest.fail(f"Chromium is not installed: `apt-get install chromium` (Debian/Ubuntu), or set {CHROMIUM_ENV_VAR} "
                    "to a Chromium or Chrome binary. The app's browser tests need it.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    context.close()


def idle(page) -> None:
    """Wait until the page's rerun is over (Streamlit shows its status widget while a script runs)."""
    page.wait_for_timeout(300)
    expect(page.locator("[data-testid='stStatusWidget']")).to_have_count(0, timeout=TIMEOUT_MS)


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the Streamlit selectbox or multiselect labelled `label`."""
    field = page.locator("[data-testid='stSelectbox'], [data-testid='stMultiSelect']").filter(
        has=page.get_by_text(label, exact=True)).locator("input")
    expect(field).to_have_count(1, timeout=TIMEOUT_MS)  # a widget of the previous run may linger until the rerun finishes
    field.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    idle(page)  # a multiselect stays open (and hides the rest of the page from the accessibility tree)


def test_studio_masks_an_uploaded_photo_and_redraws_when_the_mask_type_changes(server, page, astronaut, tmp_path):
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    page.goto(server)
    page.get_by_text("Upload", exact=True).click()
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(photo))
    masked = page.locator(".st-key-studio-face-0 img").first
    masked.wait_for()
    page.get_by_text("astronaut.jpg: 1 face(s) found").wait_for()
    first = masked.get_attribute("src")
    assert page.evaluate("(image) => image.naturalWidth", masked.element_handle()) == 224
    page.get_by_text("surgical / proper").wait_for()

    choose(page, "Mask type", "cloth")
    page.get_by_text("cloth / proper").wait_for()
    page.wait_for_function("(old) => document.querySelector('.st-key-studio-face-0 img').src !== old", arg=first)
    expect(page.locator("[data-testid='stCode']")).to_contain_text("cloth: 1.0", timeout=TIMEOUT_MS)  # the YAML follows


def test_studio_says_why_a_text_file_is_not_a_photo(server, page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a photo")
    page.goto(server)
    page.get_by_text("Upload", exact=True).click()
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(notes))
    alert = page.locator("[data-testid='stAlert']").filter(has_text="notes.txt: unreadable image")
    alert.wait_for()
    assert page.locator(".st-key-studio-face-0").count() == 0
    # The app is still running: the demo face works right after.
    page.get_by_text("Demo face", exact=True).first.click()
    page.locator(".st-key-studio-face-0 img").first.wait_for()


def test_browser_opens_a_generated_dataset_and_filters_it(server, page, generated_dataset):
    samples = read_metadata(generated_dataset)
    samples = samples[~samples["sample_id"].str.endswith("-unmasked")]
    page.goto(f"{server}/browser")
    page.get_by_text(f"{len(samples)} of {len(samples)} samples").wait_for()
    tiles = page.locator(".st-key-browser-grid [data-testid='stImage'] img")
    expect(tiles).to_have_count(len(samples), timeout=TIMEOUT_MS)  # one page holds them all

    choose(page, "mask type", "none")
    expected = int((samples["mask_type"] == "none").sum())
    page.get_by_text(f"{expected} of {len(samples)} samples").wait_for()
    expect(tiles).to_have_count(expected, timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Balance report").click()
    expect(page.locator("[data-testid='stTabPanel'] [data-testid='stImage'] img").last).to_be_visible(timeout=TIMEOUT_MS)


def test_browser_reports_a_folder_that_is_not_a_dataset(server, page, tmp_path):
    page.goto(f"{server}/browser")
    field = page.locator("[data-testid='stTextInput']").filter(has_text="Dataset folder").locator("input")
    field.fill(str(tmp_path))
    field.press("Enter")
    page.locator("[data-testid='stAlert']").filter(has_text="is this a synthface dataset?").wait_for()


def test_predict_shows_each_face_with_probabilities_and_attention(server, page, astronaut, tmp_path):
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    page.goto(f"{server}/predict")
    page.get_by_text("Model: best.pt").wait_for()
    page.locator("[data-testid='stFileUploader'] input[type='file']").nth(1).set_input_files(str(photo))
    page.get_by_text("attention map (red = weighted most)").wait_for()
    assert page.get_by_text("Face 1", exact=False).count() >= 1
    assert "age" in page.locator("[data-testid='stMarkdown']").filter(has_text="Face 1").inner_text()
