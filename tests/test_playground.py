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
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

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
    # IDENTITY_VERIFICATION is not set: the playground runs with the product's default (required).
    env = clean_env(PORT=str(port), SANDBOX_COMPLETE_AFTER="1", SANDBOX_HOLD_SECONDS="0.2")
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


def thread_button(browser: WebDriver, label: str) -> WebElement | None:
    """The first button with this label in the open thread."""
    found = (button(m, label) for m in browser.find_elements(By.CSS_SELECTOR, "#thread-messages .msg"))
    return next(filter(None, found), None)


def open_thread(browser: WebDriver, text: str) -> None:
    """Open the thread of the newest message containing ``text`` once it has replies."""
    replies = wait(
        browser, lambda d: (m := message_with(d, text)) and next(iter(m.find_elements(By.CLASS_NAME, "replies")), None)
    )
    replies.click()
    wait(browser, lambda d: d.find_element(By.ID, "thread").is_displayed())


def form_field(browser: WebDriver, block_id: str) -> WebElement:
    """The open form's field in the input block ``block_id`` (once the form is drawn)."""
    selector = f"#modal-blocks .input-block[data-block-id='{block_id}'] .field"
    return wait(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, selector) if d.find_elements(By.CSS_SELECTOR, selector) else None,
    )


def choose(browser: WebDriver, block_id: str, label: str) -> None:
    """Pick the option shown as ``label`` in the form's select ``block_id``."""
    Select(form_field(browser, block_id)).select_by_visible_text(label)


def submit_form(browser: WebDriver) -> None:
    browser.find_element(By.ID, "modal-submit").click()


def form_closed(browser: WebDriver) -> None:
    wait(browser, lambda d: not d.find_element(By.ID, "modal-backdrop").is_displayed())


def be(browser: WebDriver, name: str) -> None:
    """Switch the person at the keyboard."""
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#person option"))  # drawn once the page has its state
    Select(browser.find_element(By.ID, "person")).select_by_visible_text(name)
    wait(browser, lambda d: f"you are {name}" in d.find_element(By.ID, "main-sub").text)


def test_a_retrieval_is_downloaded_once_someone_records_the_shoppers_identity_through_the_form(
    browser: WebDriver, screenshot: Callable[[str], None]
) -> None:
    """Download is refused to the clicker alone until Verify identity's form is sent; then it shows a link."""
    type_command(browser, "/data-request jane.doe@example.com")
    parent = wait(browser, lambda d: message_with(d, "j***@example.com"))
    assert "jane.doe" not in parent.text
    open_thread(browser, "j***@example.com")
    wait(browser, lambda d: thread_button(d, "Download")).click()
    refusal = wait(browser, lambda d: message_with(d, "not recorded as verified yet", where="thread-messages"))
    assert "Only visible to you" in refusal.text and "Verify identity" in refusal.text
    assert "/data-request verify" in refusal.text
    assert "X-Amz-Signature" not in refusal.get_attribute("innerHTML")

    wait(browser, lambda d: thread_button(d, "Verify identity")).click()
    choose(browser, "method", "Order details only the shopper knows")
    form_field(browser, "note").send_keys("Order 112-4711 and its delivery address matched.")
    screenshot("playground-verify-form")
    submit_form(browser)
    form_closed(browser)
    recorded = wait(browser, lambda d: message_with(d, "recorded the shopper's identity", where="thread-messages"))
    assert "@Alice" in recorded.text and "order details only the shopper knows" in recorded.text
    assert "112-4711" not in browser.find_element(By.ID, "messages").text  # the note is kept with the case
    wait(browser, lambda d: thread_button(d, "Verify identity") is None)  # the parent was updated without it

    wait(browser, lambda d: thread_button(d, "Download")).click()
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
    assert "Only visible to you" in link.find_element(By.XPATH, "ancestor::div[contains(@class, 'msg')]").text
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
    type_command(browser, "/data-request delete erase.me@example.com --verified email --reason shopper asked by email")
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


def test_an_erasure_is_denied_through_the_deny_form_and_nothing_reaches_amazon(
    browser: WebDriver, screenshot: Callable[[str], None]
) -> None:
    """Deny opens the bot's form; a reason and a note close the case, and the thread says nothing was sent."""
    be(browser, "Bob")
    type_command(browser, "/data-request delete deny.me@example.com")
    parent = wait(browser, lambda d: (m := message_with(d, "d***@example.com")) and button(m, "Deny") and m)
    button(parent, "Deny").click()  # type: ignore[union-attr]
    choose(browser, "reason", "The shopper withdrew the request")
    form_field(browser, "note").send_keys("They wrote back that they only wanted a copy.")
    screenshot("playground-deny-form")
    submit_form(browser)
    form_closed(browser)
    open_thread(browser, "d***@example.com")
    denied = wait(browser, lambda d: message_with(d, "denied this request", where="thread-messages"))
    assert "Nothing was sent to Buy with Prime" in denied.text and "the shopper withdrew the request" in denied.text
    assert "only wanted a copy" not in browser.find_element(By.ID, "thread-messages").text
    wait(browser, lambda d: (m := message_with(d, "d***@example.com")) and button(m, "Approve") is None)
    assert button(message_with(browser, "d***@example.com"), "Deny") is None


def test_the_bare_command_opens_the_form_which_refuses_beside_the_field_then_starts_the_request(
    browser: WebDriver, screenshot: Callable[[str], None]
) -> None:
    """A bare /data-request opens the intake form; a bad email is refused beside its field; a good one starts."""
    be(browser, "Alice")
    type_command(browser, "/data-request")
    wait(browser, lambda d: d.find_element(By.ID, "modal-title").text == "New data request")
    email = form_field(browser, "email")
    email.send_keys("not an email")
    received = form_field(browser, "received")
    assert received.get_attribute("type") == "date" and received.get_attribute("value")
    choose(browser, "via", "Email")
    submit_form(browser)
    error = wait(
        browser,
        lambda d: next(
            iter(d.find_elements(By.CSS_SELECTOR, ".input-block[data-block-id='email'] .field-error")), None
        ),
    )
    assert "is not an email address" in error.text
    assert Select(form_field(browser, "via")).first_selected_option.text == "Email"  # what was typed is kept
    screenshot("playground-intake-form")
    email = form_field(browser, "email")
    email.clear()
    email.send_keys("form.filled@example.com")
    form_field(browser, "ref").send_keys("ZD-4711")
    submit_form(browser)
    form_closed(browser)
    started = wait(browser, lambda d: message_with(d, "f***@example.com"))
    assert "form.filled" not in started.text


def test_the_shortcuts_form_asks_for_the_channel_and_answers_there(browser: WebDriver) -> None:
    """The "New data request" shortcut's form has a channel picker (the playground's one channel): left empty it
    is refused beside the field; picked, the request's thread starts in it."""
    be(browser, "Bob")
    browser.find_element(By.ID, "composer-shortcut").click()
    wait(browser, lambda d: next((b for b in d.find_elements(By.CSS_SELECTOR, "#shortcut-menu button")), None)).click()
    wait(browser, lambda d: d.find_element(By.ID, "modal-title").text == "New data request")
    form_field(browser, "email").send_keys("short.cut@example.com")
    picker = Select(form_field(browser, "channel"))
    assert [o.text for o in picker.options][1:] == ["# compliance"]
    submit_form(browser)
    error = wait(
        browser,
        lambda d: next(
            iter(d.find_elements(By.CSS_SELECTOR, ".input-block[data-block-id='channel'] .field-error")), None
        ),
    )
    assert "channel" in error.text.lower()
    assert form_field(browser, "email").get_attribute("value") == "short.cut@example.com"
    choose(browser, "channel", "# compliance")
    submit_form(browser)
    form_closed(browser)
    started = wait(browser, lambda d: message_with(d, "s***@example.com"))
    assert "@Bob" in started.text


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

    # a row's link is the first "thread" after its email; a permalink to a message of the channel opens it here
    after = ".//a[text()='thread'][preceding-sibling::node()[contains(., 'h***@example.com')]]"
    home.find_elements(By.XPATH, after)[0].click()
    wait(browser, lambda d: d.find_element(By.ID, "thread").is_displayed())
    assert "h***@example.com" in browser.find_element(By.ID, "thread-messages").text


def test_the_report_is_a_table_shown_to_the_asker_alone(browser: WebDriver) -> None:
    """/data-request report answers with the year's figures in a code block, drawn as a preformatted table."""
    be(browser, "Alice")
    type_command(browser, "/data-request report")
    table = wait(
        browser,
        lambda d: next(
            (p for p in d.find_elements(By.CSS_SELECTOR, "#messages .msg.ephemeral pre") if "kind" in p.text), None
        ),
    )
    assert "median days" in table.text and "Only visible to you" in message_with(browser, "median days").text  # type: ignore[union-attr]
