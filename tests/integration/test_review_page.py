"""The review page in headless Chromium against a real broker, worker and admin API.

An operator signs in, rejects every item of a flooding agent, approves one item of
another agent, and opens and resets the flooding agent's breaker, all through the
page. The test then checks on Kafka that each action was an ordinary API command,
issued by the operator, and that the approved assertion reached ``accepted``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from schemas.quarantine import quarantine_item_id
from streams.settings import GateSettings
from streams.topics import ACCEPTED, ADMIN_COMMANDS, ASSERTIONS
from tests.browser.chromium import chromium, missing_binaries
from tests.integration.conftest import GateFactory, WorkerFactory
from tests.integration.harness import AdminApiProcess, Agent, consume, free_port, produce

pytestmark = [pytest.mark.integration, pytest.mark.browser]

OPERATOR = "carol"
TOKEN = "review-token-" + uuid.uuid4().hex
Q = "/v1/admin/quarantine"
WAIT_SECONDS = 30.0
# The page refreshes every 10 s; this leaves room for one missed tick.
REFRESH_WAIT_SECONDS = 25.0
FLOOD_NOTE = "flood of placeholder claims"
APPROVE_NOTE = "checked against the source"
BAN_REASON = "flooding_quarantine"


@dataclass
class Traffic:
    """The sample records: a flooding agent and an agent with one item worth approving."""

    flooder: Agent
    flood_ids: list[str]
    keeper: Agent
    keeper_record: dict[str, Any]
    keeper_item_id: str


async def _pending_ids(session: aiohttp.ClientSession, api_url: str, agent: Agent) -> set[str]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"{api_url}{Q}?agent_id={agent.agent_id}&status=all"
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            return set()
        body = await response.json()
    return {item["id"] for item in body["items"]}


async def _play_traffic(settings: GateSettings, api_url: str) -> Traffic:
    """Produce the records and wait until the API's read model lists every item."""
    flooder = Agent("flood")
    keeper = Agent("keep")
    flood_records = [flooder.assertion(object="n/a") for _ in range(4)]
    # Markup and a non-HTTP source, as real agents send: shown as text, not as HTML.
    keeper_record = keeper.assertion(
        subject="Porto <b>centre</b>",
        object="n/a",
        sources=["https://www.geonames.org/2735943", "urn:isbn:0451450523"],
    )
    await produce(
        settings.kafka.bootstrap_servers,
        settings.kafka.topic(ASSERTIONS),
        [(flooder.record_key, orjson.dumps(r)) for r in flood_records]
        + [(keeper.record_key, orjson.dumps(keeper_record))],
    )
    flood_ids = [quarantine_item_id(flooder.agent_id, r["id"]) for r in flood_records]
    keeper_item_id = quarantine_item_id(keeper.agent_id, keeper_record["id"])

    deadline = time.monotonic() + WAIT_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            listed = await _pending_ids(session, api_url, flooder)
            listed |= await _pending_ids(session, api_url, keeper)
            if set(flood_ids) | {keeper_item_id} <= listed:
                return Traffic(flooder, flood_ids, keeper, keeper_record, keeper_item_id)
            await asyncio.sleep(0.3)
    raise AssertionError("the admin API did not list the sample items in time")


# -- the browser session --------------------------------------------------------------


def _wait(driver: WebDriver, description: str, condition: Callable[[WebDriver], Any]) -> Any:
    try:
        return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.2).until(condition)
    except TimeoutException as exc:
        raise AssertionError(f"timed out waiting for {description}") from exc


def _text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _wait_text(driver: WebDriver, element_id: str, expected: str) -> None:
    _wait(
        driver,
        f"{expected!r} in #{element_id} (now {_text_of(driver, element_id)!r})",
        lambda d: expected in _text_of(d, element_id),
    )


def _shown(driver: WebDriver, element_id: str) -> bool:
    return bool(driver.find_element(By.ID, element_id).is_displayed())


def _element(driver: WebDriver, element_id: str) -> WebElement:
    return _wait(driver, f"#{element_id}", lambda d: d.find_element(By.ID, element_id))


def _sign_in(driver: WebDriver, page_url: str) -> None:
    driver.get(page_url)
    token_input = _element(driver, "token-input")
    assert token_input.is_displayed()
    assert not driver.find_element(By.ID, "main").is_displayed()

    token_input.send_keys(TOKEN, Keys.ENTER)
    _wait(driver, "the review after sign-in", lambda d: _shown(d, "main"))
    _wait_text(driver, "refresh-status", "Refreshed")

    assert TOKEN not in driver.current_url
    assert driver.execute_script("return document.cookie") == ""
    stored = driver.execute_script("return Object.values(sessionStorage)")
    assert stored == [TOKEN]


def _reject_flood(driver: WebDriver, traffic: Traffic) -> None:
    """List the flooder's items from its agent row, then reject them all with a note."""
    agent_id = traffic.flooder.agent_id
    show = _element(driver, f"show-agent-{agent_id}")
    row_text = show.find_element(By.XPATH, "./ancestor::tr").text
    assert " 4 " in f" {row_text} ", row_text

    show.send_keys(Keys.ENTER)
    _wait_text(driver, "items-count", "4 items match")
    _wait_text(driver, "reject-agent", "Reject all 4 pending items")
    driver.find_element(By.ID, "decide-note").send_keys(FLOOD_NOTE)
    driver.find_element(By.ID, "reject-agent").click()
    _wait_text(driver, "confirm-text", f"Reject all 4 pending items of agent {agent_id}?")
    driver.find_element(By.ID, "confirm-yes").click()

    _wait_text(driver, "messages", "4 of 4 items rejected")
    _wait_text(driver, "items-count", "0 items match")


def _approve_one(driver: WebDriver, traffic: Traffic) -> None:
    """Open the keeper's item, check how it is shown, and approve it with a note."""
    item_id = traffic.keeper_item_id
    _element(driver, f"show-agent-{traffic.keeper.agent_id}").click()
    _element(driver, f"details-{item_id}").click()
    _wait(driver, "the item dialog", lambda d: _shown(d, "detail"))

    claim = driver.find_element(By.ID, "detail-claim")
    assert "Porto <b>centre</b>" in claim.text
    assert not claim.find_elements(By.TAG_NAME, "b")
    links = driver.find_elements(By.CSS_SELECTOR, "#detail-sources a")
    assert [link.get_attribute("href") for link in links] == ["https://www.geonames.org/2735943"]
    assert links[0].get_attribute("rel") == "noopener noreferrer"
    assert "urn:isbn:0451450523" in _text_of(driver, "detail-sources")
    rules = driver.find_elements(By.CSS_SELECTOR, "#detail-breakdown tr")
    assert rules, "the score breakdown has no row"

    driver.find_element(By.ID, "detail-note").send_keys(APPROVE_NOTE)
    driver.find_element(By.ID, "detail-approve").click()
    _wait_text(driver, "messages", f"Item {item_id} approved")
    _wait_text(driver, "detail-title", "approved")
    assert OPERATOR in _text_of(driver, "detail-review")

    driver.find_element(By.ID, "detail-close").send_keys(Keys.ENTER)
    _wait(driver, "the dialog to close", lambda d: not _shown(d, "detail"))


def _open_and_reset_breaker(driver: WebDriver, traffic: Traffic) -> None:
    agent_id = traffic.flooder.agent_id
    driver.find_element(By.ID, "breaker-agent").send_keys(agent_id)
    driver.find_element(By.ID, "breaker-reason").send_keys(BAN_REASON)
    duration = driver.find_element(By.ID, "breaker-duration")
    duration.clear()
    duration.send_keys("10")
    Select(driver.find_element(By.ID, "breaker-unit")).select_by_visible_text("minutes")
    driver.find_element(By.ID, "breaker-open").click()

    _wait_text(driver, "messages", "is OPEN until")
    reset = _element(driver, f"breaker-reset-{agent_id}")
    row_text = reset.find_element(By.XPATH, "./ancestor::tr").text
    assert "OPEN (manual)" in row_text
    assert BAN_REASON in row_text

    reset.click()
    _wait_text(driver, "messages", "is CLOSED")
    _wait(driver, "the breaker row to show CLOSED", lambda d: "CLOSED" in _breaker_row(d, agent_id))


def _breaker_row(driver: WebDriver, agent_id: str) -> str:
    select = driver.find_element(By.ID, f"breaker-select-{agent_id}")
    return str(select.find_element(By.XPATH, "./ancestor::tr").text)


def _run_page(
    page_url: str, traffic: Traffic, late: Agent, produce_late: Callable[[], None], tmp_path: Path
) -> list[str]:
    """Do the operator's work in the page; return the console's error messages.

    On a failure the page's screenshot is saved as ``failure.png`` in ``tmp_path``.
    """
    with chromium(tmp_path / "chromium-profile", tmp_path / "chromedriver.log") as driver:
        try:
            _sign_in(driver, page_url)
            _reject_flood(driver, traffic)
            _approve_one(driver, traffic)
            _open_and_reset_breaker(driver, traffic)

            # A new agent's item appears with no click: the page refreshes itself.
            produce_late()
            _wait_refreshed(driver, late)
        except (AssertionError, WebDriverException):
            driver.save_screenshot(str(tmp_path / "failure.png"))
            raise
        return [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] in ("SEVERE", "ERROR")
        ]


def _wait_refreshed(driver: WebDriver, late: Agent) -> None:
    try:
        WebDriverWait(driver, REFRESH_WAIT_SECONDS, poll_frequency=0.5).until(
            lambda d: d.find_elements(By.ID, f"show-agent-{late.agent_id}")
        )
    except TimeoutException as exc:
        raise AssertionError(
            f"the page did not show the new agent within {REFRESH_WAIT_SECONDS:g} s"
        ) from exc


# -- the test -------------------------------------------------------------------------


async def test_review_page_operator_flow(
    gate_settings_factory: GateFactory, worker_factory: WorkerFactory, tmp_path: Path
) -> None:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{OPERATOR} {TOKEN}\n")
    tokens.chmod(0o600)
    settings = await gate_settings_factory(
        admin_api={
            "port": free_port(),
            "review_port": free_port(),
            "tokens_file": tokens,
            "command_timeout_seconds": 20,
        }
    )
    api = AdminApiProcess(settings, tmp_path / "api.log")
    api.spawn()
    try:
        await asyncio.gather(worker_factory(settings), api.wait_ready())
        traffic = await _play_traffic(settings, api.base_url)
        page_url = f"http://127.0.0.1:{settings.admin_api.review_port}/quarantine"
        late = Agent("late")

        def produce_late() -> None:
            record = [(late.record_key, late.encoded(object="n/a"))]
            topic = settings.kafka.topic(ASSERTIONS)
            asyncio.run(produce(settings.kafka.bootstrap_servers, topic, record))

        console_errors = await asyncio.to_thread(
            _run_page, page_url, traffic, late, produce_late, tmp_path
        )

        assert console_errors == []
        await _check_audit(settings, api.base_url, traffic)
    finally:
        code = api.stop()
    assert code == 0, api.log_tail()


async def _check_audit(settings: GateSettings, api_url: str, traffic: Traffic) -> None:
    """Check on the API and on Kafka what the page's actions did, and who did them."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for item_id in traffic.flood_ids:
            async with session.get(f"{api_url}{Q}/{item_id}") as response:
                item = await response.json()
            assert item["status"] == "rejected", item_id
            assert item["decided_by"] == OPERATOR
            assert FLOOD_NOTE in item["notes"]
        async with session.get(f"{api_url}{Q}/{traffic.keeper_item_id}") as response:
            approved = await response.json()
        url = f"{api_url}/v1/admin/circuit_breakers/{traffic.flooder.agent_id}"
        async with session.get(url) as response:
            breaker = await response.json()
    assert approved["status"] == "approved"
    assert APPROVE_NOTE in approved["notes"]
    assert breaker["state"] == "CLOSED"

    assertion_id = traffic.keeper_record["id"]
    accepted = await consume(
        settings.kafka.bootstrap_servers,
        [settings.kafka.topic(ACCEPTED)],
        until=lambda got: any(r.value["assertion"]["id"] == assertion_id for r in got),
        timeout_seconds=WAIT_SECONDS,
    )
    (record,) = [r for r in accepted if r.value["assertion"]["id"] == assertion_id]
    assert record.value["verdict"]["review"]["decided_by"] == OPERATOR

    commands = await consume(
        settings.kafka.bootstrap_servers,
        [settings.kafka.topic(ADMIN_COMMANDS)],
        until=lambda got: len(got) >= 7,
        timeout_seconds=WAIT_SECONDS,
        settle_seconds=2.0,
    )
    kinds = sorted(r.value["kind"] for r in commands)
    assert kinds == ["approve", "breaker_open", "breaker_reset"] + ["reject"] * 4
    assert {r.value["issued_by"] for r in commands} == {OPERATOR}
    assert all(r.value["command_id"].startswith("review-") for r in commands)
