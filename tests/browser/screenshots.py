"""Take the review page's screenshots in docs/screenshots from a running demo.

Start the demo first and pass the token it prints::

    stemedb-gate demo --keep-running
    python -m tests.browser.screenshots --token-file .cache/demo/tokens

The script signs in, lists the agent with the most pending items, opens one item,
and opens a breaker for one agent through the page. That last step is a real
command: it bans the agent for 10 minutes on the demo's gate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.chromium import chromium

DEFAULT_URL = "http://127.0.0.1:18188/quarantine"
DEFAULT_OUT = Path("docs/screenshots")
WAIT_SECONDS = 30
# Time for the page to draw after the data arrived, so that no half-drawn state is taken.
SETTLE_SECONDS = 0.5


def _read_token(path: Path) -> str:
    """Return the token of a demo tokens file (``operator token``) or of a token-only file."""
    fields = path.read_text(encoding="utf-8").split()
    if not fields:
        raise SystemExit(f"{path} is empty; pass the token file that the demo wrote")
    return fields[-1]


def _wait_text(driver: WebDriver, element_id: str, expected: str) -> None:
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: expected in d.find_element(By.ID, element_id).text
    )


def _save(driver: WebDriver, out_dir: Path, name: str) -> None:
    time.sleep(SETTLE_SECONDS)
    path = out_dir / name
    driver.save_screenshot(str(path))
    print(f"wrote {path}")


def take_screenshots(page_url: str, token: str, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="review-shots-") as scratch,
        chromium(Path(scratch) / "profile", Path(scratch) / "chromedriver.log") as driver,
    ):
        # 1. Sign-in form.
        driver.get(page_url)
        WebDriverWait(driver, WAIT_SECONDS).until(
            lambda d: d.find_element(By.ID, "token-input").is_displayed()
        )
        _save(driver, out_dir, "sign-in.png")

        # 2. Pending items grouped by agent, after sign-in.
        driver.find_element(By.ID, "token-input").send_keys(token, Keys.ENTER)
        _wait_text(driver, "refresh-status", "Refreshed")
        _save(driver, out_dir, "grouped-list.png")

        # 3. One agent's items and the detail of its oldest item.
        first_agent = driver.find_element(By.CSS_SELECTOR, "#agents-body button.agent-button")
        agent_id = first_agent.get_attribute("title")
        first_agent.click()
        _wait_text(driver, "items-count", "items match")
        driver.find_element(By.CSS_SELECTOR, "#items-body button").click()
        WebDriverWait(driver, WAIT_SECONDS).until(
            lambda d: d.find_element(By.ID, "detail").is_displayed()
        )
        _save(driver, out_dir, "item-detail.png")
        driver.find_element(By.ID, "detail-close").click()

        # 4. The breaker panel after opening this agent's breaker for 10 minutes.
        driver.find_element(By.ID, f"breaker-agent-{agent_id}").click()
        driver.find_element(By.ID, "breaker-reason").send_keys("flooding_quarantine")
        duration = driver.find_element(By.ID, "breaker-duration")
        duration.clear()
        duration.send_keys("10")
        Select(driver.find_element(By.ID, "breaker-unit")).select_by_visible_text("minutes")
        driver.find_element(By.ID, "breaker-open").click()
        _wait_text(driver, "messages", "is OPEN until")
        driver.execute_script("document.getElementById('breakers-title').scrollIntoView()")
        _save(driver, out_dir, "breaker-panel.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"page URL (default: {DEFAULT_URL})")
    parser.add_argument(
        "--token-file",
        type=Path,
        required=True,
        help="file with the operator token, such as the demo's .cache/demo/tokens",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"folder for the PNG files (default: {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    take_screenshots(args.url, _read_token(args.token_file), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
