"""The dashboard end to end: the demo testbed, its controller's page in a real
headless Chromium (Debian's, through the system chromedriver; nothing
leaves the machine -- seer.testing.browser).

The page loads with its token and no console error, and is 403 without
it; the graph has every node and link of the demo by name; the bottleneck's
rate label reads above 10 Mbit/s within 5 s of a 15 Mbit/s CBR starting and
falls back after it stops; clicking a node shows its groups and the tail of
its agent logs, clicking a link its plot; the event log shows commands and
a running script's output; a node whose daemon is stopped turns unreachable
or down within 10 s.  Every wait is for the event itself (WebDriverWait on
a condition), each bounded.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from seer.client import Experiment
from seer.testbed import control
from seer.testbed.netns import can_build
from seer.testing import browser

from conftest import EXAMPLE_TOPOLOGIES
from e2e import running_testbed

REASON = can_build() or browser.why_not()
pytestmark = [pytest.mark.e2e, pytest.mark.netns,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

DEMO_NODES = ["attacker", "client1", "client2", "client3", "router", "server1"]
DEMO_LINKS = ["lan1", "lan2", "servers"]
_UNITS = {"bit/s": 1, "kbit/s": 1e3, "Mbit/s": 1e6, "Gbit/s": 1e9}


def label_bps(text: str) -> float:
    """The page's rate text ("15.21 Mbit/s") as bit/s."""
    match = re.fullmatch(r"([\d.]+) (bit/s|kbit/s|Mbit/s|Gbit/s)", text or "")
    assert match, f"not a rate label: {text!r}"
    return float(match.group(1)) * _UNITS[match.group(2)]


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    with running_testbed(tmp_path_factory.mktemp("testbeds"), EXAMPLE_TOPOLOGIES / "demo.toml",
                         f"dash{os.getpid() % 1000}") as testbed:
        yield testbed


@pytest.fixture(scope="module")
def exp(bed):
    c = bed["client"]
    with Experiment(c["controller"], c["certs"], c["identity"]) as e:
        yield e


@pytest.fixture(scope="module")
def url(exp):
    return exp.status()["dashboard"]


@pytest.fixture(scope="module")
def driver(url):
    from selenium.webdriver.support.ui import WebDriverWait

    with browser.chromium() as d:
        d.get(url)
        WebDriverWait(d, 30, poll_frequency=0.2).until(
            lambda d: d.execute_script("return window.seer && window.seer.ticks >= 1"))
        yield d


def wait(driver, seconds: float, condition, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(condition, message)


def link_rate(driver, name: str) -> float:
    return label_bps(driver.execute_script(
        "return window.seer.graph.cy.getElementById(arguments[0]).data('rate')", f"link:{name}"))


def node_state(driver, name: str) -> str:
    return driver.execute_script(
        "return window.seer.graph.cy.getElementById(arguments[0]).data('state')", f"node:{name}")


def click_element(driver, element_id: str) -> None:
    """A real mouse click on a graph element, where the page drew it."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    x, y = driver.execute_script(
        "const e = window.seer.graph.cy.getElementById(arguments[0]);"
        "const p = e.isNode() ? e.renderedPosition() : e.renderedMidpoint();"
        "return [p.x, p.y];", element_id)
    graph = driver.find_element(By.ID, "graph")
    size = graph.size
    ActionChains(driver).move_to_element_with_offset(
        graph, int(x - size["width"] / 2), int(y - size["height"] / 2)).click().perform()


def test_the_page_loads_with_its_token_and_no_console_errors(driver, url):
    assert "token=" in url and url.startswith("http://127.0.0.1:")
    wait(driver, 10, lambda d: d.execute_script("return window.seer.ticks >= 3"),
         "the page got no updates")
    assert driver.title == "SEER dashboard"
    assert browser.console_errors(driver) == []


@pytest.mark.parametrize("query", ["", "?token=wrong"])
def test_without_its_token_the_page_is_403(url, query):
    base = url.split("?")[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + query, timeout=10)
    assert refused.value.code == 403


def test_seer_dashboard_prints_the_url_the_host_shell_reaches(bed, url):
    printed = subprocess.run([sys.executable, "-m", "seer", "dashboard", "--no-browser"],
                             env=dict(os.environ, SEER_TESTBED=bed["name"]),
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == url
    assert url.startswith(bed["metrics"].rsplit("/", 1)[0])  # the relay's port in the host
    with urllib.request.urlopen(url, timeout=10) as page:
        assert page.status == 200 and b"SEER dashboard" in page.read()


def test_the_graph_has_every_node_and_link_of_the_demo_by_name(driver):
    names = driver.execute_script(
        "const cy = window.seer.graph.cy; return [cy.nodes('.host').map(n => n.data('name')),"
        " cy.elements('.link').map(e => e.data('name'))];")
    assert sorted(names[0]) == DEMO_NODES
    assert sorted(names[1]) == DEMO_LINKS
    assert {node_state(driver, n) for n in DEMO_NODES} == {"up"}


def test_the_bottleneck_reads_above_10_mbit_within_5_s_of_a_15_mbit_cbr_and_falls_back(
        driver, exp):
    cbr = exp.agent("CBR", "dash")
    cbr.set(senders="client1", sinks="server1", rate="15mbit", size=1000, duration=30)
    cbr.start(target="client1,server1")
    started = time.monotonic()
    try:
        wait(driver, 5, lambda d: link_rate(d, "servers") > 10e6,
             "the servers LAN's label did not pass 10 Mbit/s within 5 s")
        took = time.monotonic() - started
        assert took <= 5.0
        assert link_rate(driver, "servers") < 20e6  # its shaping: 20 Mbit/s
    finally:
        cbr.stop(target="client1,server1")
    wait(driver, 15, lambda d: link_rate(d, "servers") < 1e6,
         "the servers LAN's label did not fall back after the CBR stopped")


def test_clicking_a_node_shows_its_groups_and_the_tail_of_its_agent_logs(driver):
    from selenium.webdriver.common.by import By

    click_element(driver, "node:client1")
    panel = driver.find_element(By.ID, "node-panel")
    wait(driver, 10, lambda d: panel.is_displayed() and "CBR / dash" in panel.text,
         "the node panel did not show client1's CBR group")
    assert "client1" in panel.text and "senders" in panel.text
    wait(driver, 10, lambda d: "CBR-dash/agent.log" in
         d.find_element(By.ID, "node-logs").text, "client1's agent log did not come")
    assert "ended" in driver.find_element(By.ID, "node-logs").text  # the sender's end
    assert browser.console_errors(driver) == []


def test_clicking_a_link_plots_its_rate_and_drops_over_the_last_minutes(driver):
    from selenium.webdriver.common.by import By

    click_element(driver, "link:servers")
    panel = driver.find_element(By.ID, "link-panel")
    wait(driver, 10, lambda d: panel.is_displayed() and
         d.execute_script("return !!window.seer.links.plot"), "no plot for servers")
    peak = driver.execute_script(
        "return Math.max(...window.seer.links.data[1].filter(v => v !== null))")
    assert peak > 10e6  # the CBR of the test before is in its history
    assert "servers" in panel.text and panel.find_elements(By.CSS_SELECTOR, ".uplot canvas")


def test_the_event_log_has_the_commands_and_a_running_scripts_output(driver, bed, tmp_path):
    from selenium.webdriver.common.by import By

    log = driver.find_element(By.ID, "log-rows")
    assert "START CBR/dash" in log.text and "applied" in log.text
    script = tmp_path / "talk.py"
    script.write_text("import time\nfor i in range(8):\n"
                      "    print(f'dashboard says {i}', flush=True)\n    time.sleep(0.5)\n")
    run = subprocess.Popen([sys.executable, "-m", "seer", "run", "--no-report", str(script)],
                           env=dict(os.environ, SEER_TESTBED=bed["name"]),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait(driver, 15, lambda d: "dashboard says 2" in log.text,
             "the script's output did not stream into the event log")
        assert "dashboard says 7" not in log.text  # it came while the script ran
        wait(driver, 20, lambda d: "ended (exit code 0)" in log.text, "no end of the run")
    finally:
        out, _ = run.communicate(timeout=60)
    assert run.returncode == 0, out


def test_a_screenshot_is_saved(driver, tmp_path):
    path = tmp_path / "dashboard.png"
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_a_node_whose_daemon_is_stopped_turns_unreachable_or_down_within_10_s(driver, bed):
    folder = bed["folder"]
    control.request(folder, "stop", "client3", timeout=30)
    stopped = time.monotonic()
    try:
        wait(driver, 10, lambda d: node_state(d, "client3") in ("unreachable", "down"),
             "client3 did not turn unreachable or down within 10 s")
        assert time.monotonic() - stopped <= 10.5
        assert node_state(driver, "client2") == "up"
    finally:
        control.request(folder, "restart", "client3", timeout=30)
    wait(driver, 60, lambda d: node_state(d, "client3") == "up", "client3 did not come back")


def test_a_node_whose_daemon_is_frozen_turns_unreachable_within_10_s(driver, bed):
    # SIGSTOP: the daemon's connection stays open but says nothing (a hung
    # node, or a partition); the heartbeat timeout makes it unreachable.
    folder = bed["folder"]
    pid = control.request(folder, "status", timeout=10)["processes"]["client2"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # the testbed's own daemon, by the PID its supervisor gave
    frozen = time.monotonic()
    try:
        wait(driver, 10, lambda d: node_state(d, "client2") in ("unreachable", "down"),
             "client2 did not turn unreachable within 10 s")
        assert time.monotonic() - frozen <= 10.5
        assert node_state(driver, "client2") == "unreachable"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait(driver, 60, lambda d: node_state(d, "client2") == "up", "client2 did not come back")
