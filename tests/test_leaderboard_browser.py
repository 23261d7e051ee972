"""The static page in a real headless browser (Debian chromium + chromium-driver via selenium).

Skipped only when chromium / chromedriver are not installed (``make`` installs them); selenium
is a test dependency (``pip install selenium``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_leaderboard_fixtures import small_board  # noqa: E402

from leaderboard.build import build_leaderboard  # noqa: E402
from leaderboard.significance import BootstrapConfig  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def driver():
    # selenium is a test dependency: with chromium present, a missing selenium is a failure.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch drivers
    profile = tempfile.mkdtemp(prefix="tas-bench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = small_board(tmp_path_factory.mktemp("in") / "res")
    out = tmp_path_factory.mktemp("board")
    s = build_leaderboard(root, out, figures=False, bootstrap=BootstrapConfig(n_boot=200))
    return s.index_html


def _rows(table) -> list[str]:
    return [tr.get_attribute("data-system") for tr in table.find_elements("css selector", "tbody tr")]


def _values(table, key: str) -> list[float]:
    th = table.find_element("css selector", f'th[data-key="{key}"]')
    idx = table.find_elements("css selector", "thead th").index(th)
    return [float(tr.find_elements("css selector", "td")[idx].get_attribute("data-value"))
            for tr in table.find_elements("css selector", "tbody tr")]


def test_page_loads_without_console_errors(driver, page: Path) -> None:
    driver.get(page.as_uri())
    assert driver.title == "tas-bench leaderboard"
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    driver.execute_script("console.error('tas-bench probe')")  # the log capture itself works
    assert any("tas-bench probe" in e["message"] for e in driver.get_log("browser"))


def test_every_system_is_a_row(driver, page: Path) -> None:
    driver.get(page.as_uri())
    measured = {tr.get_attribute("data-system")
                for tr in driver.find_elements("css selector", "table.board.measured tbody tr")}
    assert measured == {"mono-mono", "pseudobinaural", "tas-demo", "legacy-sys"}
    table3 = driver.find_element("css selector", 'table[data-block="table3-published"]')
    assert len(_rows(table3)) == 11
    badges = table3.find_elements("css selector", "span.badge")
    assert {b.text for b in badges} == {"published"}
    demo = driver.find_element("css selector", 'table[data-block="table3-measured-2"]')
    assert sorted(_rows(demo)) == ["mono-mono", "pseudobinaural", "tas-demo"]
    cell = demo.find_elements("css selector", "tbody tr")[0].find_elements("css selector", "td")[2]
    assert "95 % CI [" in cell.get_attribute("title")  # CI on hover


def test_clicking_a_header_sorts_rows(driver, page: Path) -> None:
    driver.get(page.as_uri())
    demo = driver.find_element("css selector", 'table[data-block="table3-measured-2"]')
    before = _rows(demo)
    demo.find_element("css selector", 'th[data-key="stft"]').click()
    after = _rows(demo)
    vals = _values(demo, "stft")
    assert after != before and sorted(after) == sorted(before)
    assert vals == sorted(vals)
    demo.find_element("css selector", 'th[data-key="stft"]').click()
    vals = _values(demo, "stft")
    assert vals == sorted(vals, reverse=True) and _rows(demo) == after[::-1]
    pub = driver.find_element("css selector", 'table[data-block="table2-published"]')
    pub.find_element("css selector", 'th[data-key="fd"]').click()
    assert _rows(pub)[0] == "TAS (ours)" and _values(pub, "fd") == sorted(_values(pub, "fd"))
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
