"""Headless Chromium for the dashboard's tests and its benchmark: a real browser, kept at home.

Debian's ``chromium`` driven through the system ``/usr/bin/chromedriver``
with selenium -- never a downloaded driver: the Service is given the
driver's path, so Selenium Manager is never run (and SE_OFFLINE tells it
not to go online if it were).  The browser contacts nothing outside the
machine: no background networking, component updates, sync, first-run or
default apps, no proxy, and every host name but localhost resolves to
nothing (our URLs are 127.0.0.1 literals).  A fresh profile per browser.
As root, Chromium needs --no-sandbox.

:func:`chromium` yields the driver and always quits it (browser and
driver, by the PIDs selenium started) in a ``finally``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-default-apps", "--disable-extensions",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--no-pings", "--no-proxy-server", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--password-store=basic",
)


def why_not() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"no {path} (Debian's {package}; scripts/setup-machine installs it)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "no selenium (pip install -e '.[test]')"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 900) -> Iterator[object]:
    """A headless Chromium under selenium; quit (browser and driver) on the way out."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, were it ever asked, stays offline
    os.environ["SE_AVOID_STATS"] = "true"
    profile = Path(tempfile.mkdtemp(prefix="seer-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(profile / "driver.log"))
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(30)
        yield driver
    finally:
        if driver is not None:
            driver.quit()  # the browser, then the driver selenium started (its PID)
        elif service.process is not None:
            service.stop()
        shutil.rmtree(profile, ignore_errors=True)


def browser_pids(driver: object) -> list[int]:
    """The Chromium processes under this driver: every descendant of its chromedriver."""
    root = driver.service.process.pid
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents[int(entry)] = int(text[text.rindex(")") + 2:].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                found.append(pid)
                frontier.append(pid)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (those gone count nothing)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def console_errors(driver: object) -> list[dict]:
    """The page's console messages at error level since the last call."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
