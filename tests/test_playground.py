"""``data-request-bot playground`` in a real headless browser: the page is a Slack channel for the real bot.

The playground runs as an operator runs it (``python -m bot playground``, a real process); the browser
types, clicks and fills forms as a person would. ``pytest tests/test_playground.py --screenshots DIR``
also saves the docs' screenshots at the moments they show.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import clean_env, free_port

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 30  # seconds a step may take: the sandbox's tasks, the page's long poll

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs Debian's chromium and chromium-driver"
)


@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The playground as a process; yields the page's address, and proves Ctrl-C stops it cleanly."""
    port = free_port()
    # Identity verification has its own tests; here Download and Approve answer at once, whatever the default.
    env = clean_env(PORT=str(port), SANDBOX_COMPLETE_AFTER="1", SANDBOX_HOLD_SECONDS="0.2", IDENTITY_VERIFICATION="off")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "playground"],
        env=env,
        cwd=tmp_path_factory.mktemp("playground"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    said = []
    for line in process.stdout:  # the address is printed once the bot and the page serve
        said.append(line)
        if line.startswith("Playground: "):
            break
    else:
        raise AssertionError("the playground did not start:\n" + "".join(said))
    assert f"http://localhost:{port}/" in line
    yield f"http://localhost:{port}/"
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=WAIT)
    assert process.returncode == 0, "".join(said) + rest


@pytest.fixture
def browser(playground: str) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.get(playground)
        driver.execute_script("localStorage.clear()")
        driver.get(playground)
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, browser: WebDriver) -> Callable[[str], None]:
    """Save the page as ``DIR/<name>.png`` when pytest runs with ``--screenshots DIR``; else nothing."""
    folder = request.config.getoption("--screenshots")

    def take(name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(Path(folder) / f"{name}.png"))

    return take


def wait(browser: WebDriver, found: Callable[[WebDriver], Any]) -> Any:
    """found()'s first truthy value, asked again as the page changes (a vanished element counts as not yet)."""

    def ask(driver: WebDriver) -> Any:
        try:
            return found(driver)
        except StaleElementReferenceException:
            return None

    return WebDriverWait(browser, WAIT).until(ask)


def type_command(browser: WebDriver, text: str) -> None:
    box = browser.find_element(By.ID, "composer-input")
    box.send_keys(text, Keys.ENTER)


def message_with(browser: WebDriver, text: str, *, where: str = "messages") -> WebElement | None:
    """The newest message in the channel (or ``thread-messages``) whose text contains ``text``."""
    found = [m for m in browser.find_elements(By.CSS_SELECTOR, f"#{where} .msg") if text in m.text]
    return found[-1] if found else None


def button(message: WebElement | None, label: str) -> WebElement | None:
    """The message's button with this label, if the message is there and has one."""
    if message is None:
        return None
    return next((b for b in message.find_elements(By.CSS_SELECTOR, "button.button") if b.text == label), None)


def be(browser: WebDriver, name: str) -> None:
    """Switch the person at the keyboard."""
    for option in browser.find_elements(By.CSS_SELECTOR, "#person option"):
        if option.text == name:
            option.click()
    wait(browser, lambda d: f"you are {name}" in d.find_element(By.ID, "main-sub").text)


def test_a_retrieval_typed_in_the_page_ends_in_its_thread_with_a_download_link_for_the_clicker_alone(
    browser: WebDriver, screenshot: Callable[[str], None]
) -> None:
    """Typed, signed and sent as Slack would: the thread fills in, and Download shows a link that downloads."""
    type_command(browser, "/data-request jane.doe@example.com")
    parent = wait(browser, lambda d: message_with(d, "j***@example.com"))
    assert "jane.doe" not in parent.text
    wait(browser, lambda d: (m := message_with(d, "j***@example.com")) and m.find_elements(By.CLASS_NAME, "replies"))
    message_with(browser, "j***@example.com").find_element(By.CLASS_NAME, "replies").click()  # type: ignore[union-attr]
    download = wait(
        browser,
        lambda d: next(
            filter(None, (button(m, "Download") for m in d.find_elements(By.CSS_SELECTOR, "#thread-messages .msg"))),
            None,
        ),
    )
    download.click()
    link = wait(
        browser,
        lambda d: next(
            (
                a
                for a in d.find_elements(By.CSS_SELECTOR, "#thread-messages .msg.ephemeral a")
                if "X-Amz-Signature" in (a.get_attribute("href") or "")
            ),
            None,
        ),
    )
    ephemeral = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#thread-messages .msg.ephemeral"))
    assert "Only visible to you" in ephemeral.text
    answer = httpx.get(link.get_attribute("href") or "", timeout=10)  # the browser's machine reaches it
    assert answer.status_code == 200 and answer.content.startswith(b"PK")
    screenshot("playground-thread")

    be(browser, "Bob")  # the link was shown to Alice alone
    wait(browser, lambda d: message_with(d, "j***@example.com"))
    assert not browser.find_elements(By.CSS_SELECTOR, ".msg.ephemeral a[href*='X-Amz-Signature']")

    be(browser, "Carol")  # not on the allow-list: her Download is refused, to her alone
    download = wait(browser, lambda d: button(message_with(d, "Download", where="thread-messages"), "Download"))
    download.click()
    refusal = wait(browser, lambda d: message_with(d, "not allowed", where="thread-messages"))
    assert "Only visible to you" in refusal.text and "X-Amz-Signature" not in refusal.get_attribute("innerHTML")


def test_an_erasure_is_approved_by_a_second_person_never_by_its_requester(
    browser: WebDriver, screenshot: Callable[[str], None]
) -> None:
    """Alice's own Approve is refused, to her alone; Bob's Approve starts the deletion."""
    be(browser, "Alice")
    type_command(browser, "/data-request delete erase.me@example.com --reason shopper asked by email")
    parent = wait(browser, lambda d: (m := message_with(d, "e***@example.com")) and button(m, "Approve") and m)
    button(parent, "Approve").click()  # type: ignore[union-attr]
    refusal = wait(browser, lambda d: message_with(d, "another allowed person must approve"))
    assert "Only visible to you" in refusal.text
    screenshot("playground-erasure")

    be(browser, "Bob")
    assert message_with(browser, "another allowed person must approve") is None
    parent = wait(browser, lambda d: (m := message_with(d, "e***@example.com")) and button(m, "Approve") and m)
    button(parent, "Approve").click()  # type: ignore[union-attr]
    wait(browser, lambda d: (m := message_with(d, "e***@example.com")) and button(m, "Approve") is None)


def test_the_reject_form_shows_the_bots_refusal_beside_the_field_then_closes(
    browser: WebDriver, screenshot: Callable[[str], None]
) -> None:
    """Reject opens the bot's modal; a reason naming an email is refused in the form; a good one rejects."""
    be(browser, "Alice")
    type_command(browser, "/data-request delete keep.me@example.com")
    parent = wait(browser, lambda d: (m := message_with(d, "k***@example.com")) and button(m, "Reject") and m)
    be(browser, "Bob")
    parent = wait(browser, lambda d: (m := message_with(d, "k***@example.com")) and button(m, "Reject") and m)
    button(parent, "Reject").click()  # type: ignore[union-attr]
    field = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#modal-blocks .input-block .field"))
    field.send_keys("keep.me@example.com asked us to stop")
    browser.find_element(By.ID, "modal-submit").click()
    error = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#modal-blocks .field-error"))
    assert "without the shopper's email" in error.text
    screenshot("playground-reject-form")
    field = browser.find_element(By.CSS_SELECTOR, "#modal-blocks .input-block .field")
    field.clear()
    field.send_keys("the shopper withdrew the request")
    browser.find_element(By.ID, "modal-submit").click()
    wait(browser, lambda d: not d.find_element(By.ID, "modal-backdrop").is_displayed())
    wait(browser, lambda d: (m := message_with(d, "k***@example.com")) and button(m, "Reject") is None)


def test_the_home_tab_lists_the_persons_open_requests(browser: WebDriver, screenshot: Callable[[str], None]) -> None:
    """Opening Home sends app_home_opened; the view the bot publishes is drawn."""
    be(browser, "Alice")
    type_command(browser, "/data-request home.tab@example.com")
    wait(browser, lambda d: message_with(d, "h***@example.com"))
    browser.find_element(By.ID, "nav-home").click()
    home = wait(browser, lambda d: (h := d.find_element(By.ID, "home")) and "Your open requests" in h.text and h)
    wait(browser, lambda d: "h***@example.com" in d.find_element(By.ID, "home").text)
    assert "Shopper data requests" in home.find_element(By.CSS_SELECTOR, ".block.header").text
    screenshot("playground-home")

    row = next(a for a in home.find_elements(By.TAG_NAME, "a") if a.text == "thread")
    row.click()  # a permalink to a message of the channel opens its thread in the page
    wait(browser, lambda d: d.find_element(By.ID, "thread").is_displayed())
    assert "j***@example.com" in browser.find_element(By.ID, "thread-messages").text
