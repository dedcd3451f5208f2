"""Start Debian's Chromium, headless, through Debian's chromedriver and Selenium.

Both binaries come from the Debian packages ``chromium`` and ``chromium-driver``.
Selenium is given the driver's path, so it never runs Selenium Manager, which would
try to download a driver or a browser.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMEDRIVER_PATH = Path("/usr/bin/chromedriver")
# Headless, without a sandbox (the tests run as root), and without the background
# connections to Google's services that a machine without internet access refuses.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
PAGE_LOAD_TIMEOUT_SECONDS = 30


def missing_binaries() -> list[str]:
    """Return the paths of Chromium and chromedriver that are not installed."""
    return [str(path) for path in (CHROMIUM_PATH, CHROMEDRIVER_PATH) if not path.is_file()]


@contextmanager
def chromium(
    profile_dir: Path, log_path: Path, width: int = 1440, height: int = 1000
) -> Iterator[webdriver.Chrome]:
    """Run a headless Chromium with a new profile in ``profile_dir``, and quit it afterwards.

    Raises FileNotFoundError naming the Debian packages when a binary is missing.
    """
    missing = missing_binaries()
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)} not found; install Debian's packages with "
            "'apt-get install chromium chromium-driver'"
        )
    profile_dir.mkdir(parents=True, exist_ok=True)
    options = Options()
    options.binary_location = str(CHROMIUM_PATH)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={width},{height}")
    # Keeps the page's console messages, CSP violations among them, for get_log("browser").
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER_PATH), log_output=str(log_path))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_SECONDS)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile_dir, ignore_errors=True)
