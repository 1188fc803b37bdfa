"""The live page in a real browser: Debian's chromium, headless, driven by Playwright, against
``silentgate run`` with a simulated ThingMagic reader on a pty (tests/browser/install-chromium.sh
installs the browser; Playwright never downloads one).

One daemon for the whole file, with a password: the page asks for it, shows each device, a
zone's count when a simulated customer walks in, an antenna's rate when its traffic starts, and
the tuning view with a neighbour's bleed. Screenshots of each view go to ``screenshots/`` in the
pytest tmp dir (docs/images/ holds copies).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from harness import SECRET, HeldClock, start_daemon, stop_daemon
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from playwright.async_api import Error as PlaywrightError

from demo.broker import BrokerProcess, free_port
from firmware_sim.epc import Sgtin, customer_epc
from firmware_sim.pty import SimPort
from firmware_sim.scenario import Scenario, Subject, Visit
from firmware_sim.thingmagic import ThingMagicSim
from firmware_sim.traffic import Antenna, TrafficModel

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.asyncio(loop_scope="module"),
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "a-page-password-of-16-bytes"
CUSTOMER = customer_epc("C0FFEE", 9)
ITEMS = [Sgtin(1, "0614141", "812345", n).to_hex() for n in (42, 43)]
ENTERS_AT = 6.0  # the customer walks in this long after the store opens
# Two items on shelf-b (whose reads bleed faintly into shelf-a's antenna) from the opening;
# the customer comes to the entrance later and stays.
SCENARIO = Scenario(
    zones=("entrance", "shelf-a", "shelf-b"),
    subjects=(Subject(CUSTOMER, "customer"), *(Subject(i, "item") for i in ITEMS)),
    visits=(
        Visit(CUSTOMER, "entrance", ENTERS_AT, 1000.0),
        *(Visit(i, "shelf-b", 0.0, 1000.0) for i in ITEMS),
    ),
    duration=1000.0,
)


@dataclass
class Store:
    url: str
    clock: HeldClock
    screenshots: Path


def config_text(tmp: Path, port: str, broker: str, web_port: int) -> str:
    (tmp / "secret").write_text(SECRET + "\n")
    password = tmp / "web-password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    return f"""
[site]
store = "store-042"
gateway = "gw-web"
[mqtt]
url = "{broker}"
[storage]
path = "{tmp / "outbox.db"}"
[privacy]
secret_file = "{tmp / "secret"}"
[tags]
customer_prefixes = ["C0FFEE"]
[[readers]]
id = "door"
driver = "thingmagic"
port = "{port}"
antennas = {{ 1 = "entrance", 2 = "shelf-a", 3 = "shelf-b" }}
[web]
enabled = true
host = "0.0.0.0"
port = {web_port}
password_file = "{password}"
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(
    broker: BrokerProcess, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Store]:
    tmp = tmp_path_factory.mktemp("web")
    port = SimPort(tmp, "door", seed=3)
    port.open()
    antennas = [Antenna("door", i + 1, z) for i, z in enumerate(SCENARIO.zones)]
    model = TrafficModel(miss_rate=0.1, bleed_rate_hz=4.0, neighbours={"shelf-b": ("shelf-a",)})
    clock = HeldClock()
    sim = ThingMagicSim(port, SCENARIO, antennas, model=model, seed=3, clock=clock)
    task = asyncio.create_task(sim.run())
    web_port = free_port()
    config = tmp / "gw.toml"
    config.write_text(config_text(tmp, str(port.path), broker.url, web_port))
    daemon = start_daemon(config)
    screenshots = tmp / "screenshots"
    screenshots.mkdir()
    try:
        yield Store(f"http://127.0.0.1:{web_port}/", clock, screenshots)
    finally:
        await stop_daemon(daemon)
        task.cancel()
        port.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context: BrowserContext = await browser.new_context(
        http_credentials={"username": "installer", "password": PASSWORD},
        viewport={"width": 1280, "height": 900},
    )
    yield await context.new_page()
    await context.close()


async def wait_page(page: Page, url: str) -> None:
    """The daemon starts in a few seconds: load the page once it answers."""
    async with asyncio.timeout(40):
        while True:
            try:
                response = await page.goto(url)
            except PlaywrightError as exc:  # connection refused while it starts
                if "ERR_CONNECTION_REFUSED" not in str(exc):
                    raise
            else:
                assert response is not None
                assert response.status == 200
                return
            await asyncio.sleep(0.3)


async def test_the_password_is_required(browser: Browser, store: Store) -> None:
    for credentials, status in ((None, 401), ("not-the-password", 401), (PASSWORD, 200)):
        context = await browser.new_context(
            http_credentials=None
            if credentials is None
            else {"username": "installer", "password": credentials}
        )
        async with asyncio.timeout(40):  # the daemon may still be starting
            while True:
                try:
                    response = await context.request.get(store.url + "api/state")
                    break
                except PlaywrightError:
                    await asyncio.sleep(0.3)
        assert response.status == status
        await context.close()
    page = await browser.new_page()
    # Headless chromium has nobody to ask for the password: it ends the navigation.
    with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        await page.goto(store.url)
    await page.close()


async def test_devices_zone_counts_and_antenna_rates_follow_the_store(
    page: Page, store: Store
) -> None:
    await wait_page(page, store.url)
    await expect(page.locator("#live")).to_have_text("live", timeout=10_000)
    await expect(page.locator('[data-device="door"] .state')).to_have_text("ok", timeout=30_000)
    entrance = page.locator('[data-zone="entrance"] .count-customers')
    shelf_b_rate = page.locator('[data-antenna="door:3"] .rate')
    await expect(entrance).to_have_text("0")
    await expect(shelf_b_rate).to_have_text("0.0")  # the store is not open yet: no traffic
    store.clock.start()
    # The items on shelf-b are read from the opening: its antenna's rate rises.
    await expect(shelf_b_rate).not_to_have_text("0.0", timeout=10_000)
    await expect(page.locator('[data-zone="shelf-b"] .count-items')).to_have_text("2")
    await expect(entrance).to_have_text("0")
    # The customer walks in: the entrance counts one, named by pseudonym only.
    await expect(entrance).to_have_text("1", timeout=20_000)
    customer = page.locator('[data-zone="entrance"] li .mono').first
    await expect(customer).to_have_text(re.compile(r"^customer [0-9a-f]{12}$"))
    assert "C0FFEE" not in (await page.content()).upper()
    await page.wait_for_timeout(2000)  # a second snapshot: RSSI histograms with some height
    await page.screenshot(path=store.screenshots / "store.png", full_page=True)


async def test_the_tuning_view_shows_an_antennas_tags_and_their_bleed(
    page: Page, store: Store
) -> None:
    await wait_page(page, store.url)
    if store.clock.origin is None:  # run alone
        store.clock.start()
    await page.click("#tab-tuning")
    await page.select_option("#antenna-pick", "door:2")
    rows = page.locator("#tuning tbody tr[data-tag]")
    # shelf-a's antenna hears shelf-b's items faintly: bleed from a neighbouring zone.
    await expect(rows.first).to_be_visible(timeout=20_000)
    await expect(rows.first.locator(".bleed")).to_have_text("bleed")
    await expect(rows.first).to_contain_text("shelf-b")
    await page.wait_for_timeout(3000)  # a few seconds of history in the charts
    await page.screenshot(path=store.screenshots / "tuning.png", full_page=True)
