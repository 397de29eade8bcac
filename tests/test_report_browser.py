"""Browser tier (``make test-browser``): report.html in Debian's headless Chromium.

Every image must have loaded (natural width > 0) and the console must hold no error.
"""

import shutil

import pytest

pytestmark = pytest.mark.browser


def _chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_report_opens_in_chromium_with_every_image_loaded(digits_run):
    page = digits_run / "report.html"
    browser = _chrome()
    try:
        browser.get(page.resolve().as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map("
            "i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);"
        )
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        title = browser.title
    finally:
        browser.quit()
    assert title.startswith("resnetkit report")
    assert len(images) >= 6
    broken = [alt for alt, complete, width, height in images if not (complete and width > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert not errors, f"console errors: {errors}"
