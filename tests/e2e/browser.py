"""Headless Debian Chromium driven by Selenium, for looking at Airflow's UI as a person would.

The browser comes from Debian (``chromium`` + ``chromium-driver``, installed by
``scripts/install_browser.sh`` when missing); Selenium is told both paths, so it never
downloads a browser or a driver of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.stack import REPO

CHROMIUM = os.environ.get("OPSERA_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OPSERA_E2E_CHROMEDRIVER", "/usr/bin/chromedriver")
LAUNCH_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1200",
)


def ensure_browser() -> None:
    """Install Chromium when missing; skip the calling test, with the reason, when it cannot be had."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    script = REPO / "scripts" / "install_browser.sh"
    try:
        result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"headless Chromium is not installed and could not be installed: {error}")
    if result.returncode != 0 or not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        reason = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["unknown error"]
        pytest.skip(f"headless Chromium is not installed and could not be installed: {reason[0]}")


def start_chromium():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    profile = tempfile.mkdtemp(prefix="opsera-e2e-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in LAUNCH_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # Selenium Manager is never consulted: both the browser and the driver are given.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver._opsera_profile = profile  # removed with the driver
    return driver


def stop_chromium(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "_opsera_profile", ""), ignore_errors=True)
