"""The "Opsera" connection form in Airflow's own UI, in a real (headless) browser.

Adds connections of type Opsera through the form, checks what the provider declares in
``connection_form.py`` reaches the page, and presses Test: success against the emulator
with a valid token, a clear failure with an expired one. Screenshots go to ``artifacts/``;
``docs/connection-form*.png`` are written when missing or with OPSERA_E2E_UPDATE_DOCS=1.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from airflow_provider_opsera.client.connection_form import CONN_FIELDS, HOOK_NAME, UI_FIELD_BEHAVIOUR
from tests.e2e.browser import ensure_browser, start_chromium, stop_chromium
from tests.e2e.stack import ARTIFACTS, REPO

pytestmark = pytest.mark.browser

DOCS = REPO / "docs"
UI_TIMEOUT = 30


@pytest.fixture(scope="module")
def browser(airflow):
    ensure_browser()
    driver = start_chromium()
    try:
        yield driver
    finally:
        stop_chromium(driver)


def _by():
    from selenium.webdriver.common.by import By

    return By


def wait_for(driver, find, what: str, timeout: float = UI_TIMEOUT):
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while True:
        try:
            found = find()
        except WebDriverException:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            ARTIFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "browser-failure.png"))
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (see artifacts/browser-failure.png)")
        time.sleep(0.1)


def visible(driver, xpath: str):
    elements = [e for e in driver.find_elements(_by().XPATH, xpath) if e.is_displayed()]
    return elements[0] if elements else None


def field_root(driver, element):
    return element.find_element(_by().XPATH, "./ancestor::div[@data-scope='field' and @data-part='root'][1]")


def label_of(driver, element) -> str:
    return field_root(driver, element).find_element(_by().XPATH, ".//label").text.replace("*", "").strip()


def save_shot(driver, element, name: str, *, docs: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    time.sleep(0.3)  # let the focus ring fade
    element.screenshot(str(path))
    if docs:
        target = DOCS / name
        if not target.exists() or os.environ.get("OPSERA_E2E_UPDATE_DOCS") == "1":
            DOCS.mkdir(exist_ok=True)
            shutil.copyfile(path, target)


def open_add_form(driver, airflow, conn_id: str):
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{airflow.api_url}/connections")
    add = wait_for(driver, lambda: visible(driver, "//button[contains(., 'Add Connection')]"), "the Add button")
    add.click()
    conn_id_input = wait_for(driver, lambda: visible(driver, "//input[@name='connection_id']"), "the connection form")
    conn_id_input.send_keys(conn_id)
    combo = driver.find_element(
        _by().XPATH, "//label[contains(., 'Connection Type')]/ancestor::div[@role='group']//input[@role='combobox']"
    )
    combo.send_keys(HOOK_NAME)
    option = f"//*[@role='option' and normalize-space()='{HOOK_NAME}']"
    wait_for(driver, lambda: visible(driver, option), "the Opsera option")
    combo.send_keys(Keys.ENTER)
    return wait_for(driver, lambda: visible(driver, "//input[@name='host']"), "the standard fields of the Opsera form")


def open_section(driver, title: str) -> None:
    button = driver.find_element(_by().XPATH, f"//button[@data-part='item-trigger' and contains(., '{title}')]")
    if button.get_attribute("aria-expanded") != "true":
        button.click()
    wait_for(driver, lambda: button.get_attribute("aria-expanded") == "true", f"the {title} section to open")


def dialog(driver):
    return driver.find_element(_by().XPATH, "//div[@role='dialog']")


def save_form(driver, conn_id: str):
    driver.find_element(_by().XPATH, "//div[@role='dialog']//button[contains(., 'Save')]").click()
    wait_for(driver, lambda: not driver.find_elements(_by().XPATH, "//div[@role='dialog']"), "the form to close")
    return wait_for(
        driver,
        lambda: visible(driver, f"//tr[td[@data-testid='table-cell-connection_id' and normalize-space()='{conn_id}']]"),
        f"connection {conn_id} in the list",
    )


def press_test(driver, row) -> str:
    row.find_element(_by().XPATH, ".//button[@aria-label='Test Connection']").click()

    def toast():
        for element in driver.find_elements(_by().XPATH, "//*[@data-scope='toast' and @data-part='root']"):
            text = element.text.strip()
            # the title renders first, Opsera's message (the description) a moment later
            if "Test Connection" in text and len(text.splitlines()) >= 2:
                return text
        return None

    return wait_for(driver, toast, "the Test Connection result")


def add_connection(driver, airflow, conn_id: str, token: str) -> object:
    host = open_add_form(driver, airflow, conn_id)
    host.send_keys(airflow.emulator_url)
    driver.find_element(_by().NAME, "password").send_keys(token)
    open_section(driver, "Extra Fields")
    driver.find_element(_by().NAME, "element_portal_url").send_keys(f"{airflow.emulator_url}/portal")
    return save_form(driver, conn_id)


def test_the_form_shows_the_providers_fields(airflow, browser):
    driver = browser
    host = open_add_form(driver, airflow, "opsera_default")
    behaviour = UI_FIELD_BEHAVIOUR
    # Standard fields: relabelled, with the provider's placeholders; the unused ones hidden.
    password = driver.find_element(_by().NAME, "password")
    assert label_of(driver, host) == behaviour["relabeling"]["host"]
    assert host.get_attribute("placeholder") == behaviour["placeholders"]["host"]
    assert label_of(driver, password) == behaviour["relabeling"]["password"]
    assert password.get_attribute("placeholder") == behaviour["placeholders"]["password"]
    assert password.get_attribute("type") == "password"
    for hidden in behaviour["hidden-fields"]:
        shown = [e for e in driver.find_elements(_by().NAME, hidden) if e.is_displayed()]
        assert not shown, f"{hidden} should be hidden"
    save_shot(driver, dialog(driver), "connection-form.png", docs=True)

    # Extra fields: one per entry of CONN_FIELDS, with its label, description and default.
    open_section(driver, "Extra Fields")
    for name, spec in CONN_FIELDS.items():
        element = wait_for(driver, lambda n=name: visible(driver, f"//*[@name='element_{n}']"), f"extra field {name}")
        root = field_root(driver, element)
        assert spec["label"] in root.text, (name, root.text)
        assert spec["description"] in root.text, (name, root.text)
    assert driver.find_element(_by().NAME, "element_auth_prefix").get_attribute("value") == "Bearer"
    assert driver.find_element(_by().NAME, "element_timeout").get_attribute("value") == "30"
    assert driver.find_element(_by().NAME, "element_verify").is_selected()
    save_shot(driver, dialog(driver), "connection-form-extra-fields.png", docs=True)


def test_the_test_button_reports_success_against_the_emulator(airflow, browser):
    row = add_connection(browser, airflow, "opsera_browser_ok", airflow.emulator_tokens()["admin"])
    result = press_test(browser, row)
    save_shot(browser, browser.find_element(_by().TAG_NAME, "body"), "connection-test-success.png")
    assert "Test Connection Successful" in result, result
    assert f"Connected to Opsera at {airflow.emulator_url}" in result, result
    assert "pipelines visible" in result, result


def test_the_test_button_explains_an_expired_token(airflow, browser):
    row = add_connection(browser, airflow, "opsera_browser_expired", airflow.emulator_tokens()["expired"])
    result = press_test(browser, row)
    save_shot(browser, browser.find_element(_by().TAG_NAME, "body"), "connection-test-expired.png")
    assert "Test Connection Failed" in result, result
    assert "expired" in result.lower(), result
    assert "personal access token" in result.lower(), result
    assert "eyJ" not in result  # the token itself is never shown
