"""The inspection app in a real headless browser (Debian's chromium, driven by selenium).

Grades are typed on the keyboard, land in the database, survive a restart of the app, and a
second grader on the same database makes the consensus the page shows. With
LENSFLOW_SCREENSHOTS=FOLDER the grid and the zoomed view are saved there as inspect-grid.png
and inspect-zoom.png (`LENSFLOW_SCREENSHOTS=docs pytest tests/inspect/test_browser.py` makes
the README's pictures).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lensflow.inspect.app import Server, create_app, serve_in_thread
from lensflow.inspect.consensus import consensus
from lensflow.inspect.critical import critical_curve
from lensflow.inspect.grades import GradeBook
from lensflow.inspect.ranked import ScanCandidates

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 20.0  # seconds for the page to show what was asked
OCCLUSION_WAIT = 90.0  # the ensemble scores 226 occluded copies on the CPU

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium through the system's chromedriver: nothing downloaded."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def top(scanned: Path) -> ScanCandidates:
    """The eight best candidates of the scan."""
    return ScanCandidates(scanned, top=8, min_score=0.0)


def start(
    candidates: ScanCandidates, url: str, *, grader: str | None = None, port: int = 0
) -> Server:
    return serve_in_thread(create_app(candidates, GradeBook(url), grader=grader), port=port)


def wait_for(driver: Any, what: str, check: Any, *, timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: check(d), message=f"the page never showed {what}"
    )


def badge(driver: Any, candidate_id: int) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f"#card-{candidate_id} .mine").text)


def agreed(driver: Any, candidate_id: int) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f"#card-{candidate_id} .agreed").text)


def press(driver: Any, keys: str) -> None:
    driver.find_element(By.TAG_NAME, "body").send_keys(keys)


def open_page(driver: Any, server: Server) -> None:
    driver.get(server.url)
    wait_for(driver, "the grid", lambda d: d.find_elements(By.CSS_SELECTOR, ".card"))


def ready(driver: Any) -> bool:
    return driver.execute_script("return document.body.dataset.ready === '1'") is True


def images_loaded(driver: Any, selector: str) -> bool:
    return bool(
        driver.execute_script(
            "const imgs = [...document.querySelectorAll(arguments[0])];"
            "return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);",
            selector,
        )
    )


def test_grades_typed_are_stored_survive_a_restart_and_make_the_consensus(
    browser: Any, top: ScanCandidates, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'grades.sqlite'}"
    first, second, third = top.ids[:3]

    # Ann opens the app; it asks her name once.
    server = start(top, url)
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    try:
        open_page(browser, server)
        browser.execute_script("localStorage.clear()")
        open_page(browser, server)
        name = wait_for(browser, "the name form", lambda d: d.find_element(By.ID, "grader-name"))
        wait_for(browser, "the name form shown", lambda d: name.is_displayed())
        assert [
            c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, ".card")
        ] == [str(i) for i in top.ids]  # ranked by ensemble score, ids exact past 2**53
        name.send_keys("ann\n")
        wait_for(browser, "Ann's grades loaded", ready)
        wait_for(browser, "every composite", lambda d: images_loaded(d, ".card img"))

        press(browser, "a")
        wait_for(browser, "A on the first", lambda d: badge(d, first) == "A")
        press(browser, "2")
        wait_for(browser, "B on the second", lambda d: badge(d, second) == "B")
        press(browser, "c")
        wait_for(browser, "C on the third", lambda d: badge(d, third) == "C")
        press(browser, "u")
        wait_for(browser, "the C undone", lambda d: badge(d, third) == "")
    finally:
        server.stop()

    book = GradeBook(url)
    assert {(g.candidate_id, g.grader, g.letter) for g in book.history()} == {
        (first, "ann", "A"),
        (second, "ann", "B"),
    }
    assert all(g.graded_at.tzinfo is not None for g in book.history())

    # The app restarted on the same port: the page remembers Ann and shows her grades.
    server = start(top, url, port=port)
    try:
        open_page(browser, server)
        wait_for(browser, "Ann remembered", ready)
        assert browser.find_element(By.ID, "grader-shown").text == "ann"
        wait_for(
            browser,
            "Ann's grades back",
            lambda d: (badge(d, first), badge(d, second)) == ("A", "B"),
        )
    finally:
        server.stop()

    # Bob grades on the same database from his own app.
    server = start(top, url, grader="bob")
    try:
        open_page(browser, server)
        wait_for(browser, "Bob's page", ready)
        assert browser.find_element(By.ID, "grader-shown").text == "bob"
        assert badge(browser, first) == ""  # Ann's grades are hers
        press(browser, "4")  # not a lens
        wait_for(browser, "0 from Bob", lambda d: badge(d, first) == "0")
        press(browser, "b")
        wait_for(browser, "B from Bob", lambda d: badge(d, second) == "B")
        wait_for(browser, "the consensus", lambda d: agreed(d, first) == "B 1.50 ±1.50 (2)")
        assert agreed(browser, second) == "B 2.00 ±0.00 (2)"

        press(browser, "k")  # back to the second, then the first, and zoom
        press(browser, "k")
        press(browser, "z")
        wait_for(browser, "the zoomed view", lambda d: d.find_element(By.ID, "zoom").is_displayed())
        wait_for(browser, "each band", lambda d: images_loaded(d, "#zoom img"))
        title = browser.find_element(By.ID, "zoom-title").text
        assert str(first) in title
        bands = browser.find_elements(By.CSS_SELECTOR, "#zoom-bands img")
        assert [b.get_attribute("alt") for b in bands] == [f"{b} band" for b in top.store.bands]
        field = browser.find_element(By.CSS_SELECTOR, "[data-field='graders']").text
        assert field == "ann: A, bob: 0"
        row = next(r for r in top.rows() if r["id"] == first)
        if row.get("theta_E") is not None:  # modelled: its parameters, and its critical curve
            shown = browser.find_element(By.CSS_SELECTOR, "[data-field='theta_E (lens model)']")
            assert "±" in shown.text
            curve = critical_curve(
                row, size=top.store.cutout_size, pixel_scale_arcsec=top.store.pixel_scale_arcsec
            )
            if curve is not None and curve.lines:
                wait_for(
                    browser,
                    "the critical curve",
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#zoom-curve polyline"),
                )
        press(browser, "o")  # why the ensemble said lens: the occlusion map, computed on demand
        wait_for(
            browser,
            "the occlusion map",
            lambda d: images_loaded(d, "#zoom-occlusion img"),
            timeout=OCCLUSION_WAIT,
        )
        assert "largest" in browser.find_element(By.ID, "occlusion-caption").text
        shots = os.environ.get("LENSFLOW_SCREENSHOTS")
        if shots:
            save(browser, Path(shots), server)
        press(browser, "z")
        wait_for(
            browser, "the grid again", lambda d: not d.find_element(By.ID, "zoom").is_displayed()
        )
    finally:
        server.stop()

    agreed_now = consensus(GradeBook(url).history())
    assert (agreed_now[first].mean, agreed_now[first].graders, agreed_now[first].spread) == (
        1.5,
        2,
        1.5,
    )
    assert (agreed_now[second].mean, agreed_now[second].graders) == (2.0, 2)
    assert third not in agreed_now


def save(browser: Any, folder: Path, server: Server) -> None:
    """The zoomed view as it is, then the grid, as PNG files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    zoom = folder / "inspect-zoom.png"
    browser.save_screenshot(str(zoom))
    press(browser, "z")
    wait_for(browser, "the grid", lambda d: not d.find_element(By.ID, "zoom").is_displayed())
    browser.save_screenshot(str(folder / "inspect-grid.png"))
    press(browser, "z")
