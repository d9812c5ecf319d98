"""Settings: flags over a TOML file over documented defaults; clear errors."""

from __future__ import annotations

import pytest

from seer.config import (
    CONTROLLER_SETTINGS,
    DAEMON_SETTINGS,
    ConfigError,
    load,
    parse_hostport,
    read_nodefile,
)


def test_defaults_when_nothing_is_given():
    settings = load(CONTROLLER_SETTINGS, None, {})
    assert settings["listen"] == "127.0.0.1:7700"
    assert settings["retire_after"] == 120.0


def test_a_missing_key_takes_its_default_and_flags_win_over_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('listen = "127.0.0.1:9000"\nping_interval = 2\n')
    settings = load(CONTROLLER_SETTINGS, str(path), {"ping_interval": "0.5"})
    assert settings["listen"] == "127.0.0.1:9000"
    assert settings["ping_interval"] == 0.5
    assert settings["checkpoint_interval"] == 5.0


def test_unknown_key_is_a_clear_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('lissen = "x"\n')
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) lissen; known: "):
        load(CONTROLLER_SETTINGS, str(path), {})


@pytest.mark.parametrize("text, message", [
    ('ping_interval = "often"', "ping_interval must be a valid float"),
    ("ping_interval = 0", "ping_interval must be at least 0.01"),
    ("required = 5", "required must be a list of strings"),
    ('listen = "nowhere"', "must be HOST:PORT"),
    ("listen = [", "is not valid TOML"),
])
def test_wrong_values_name_the_key_and_the_file(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        load(CONTROLLER_SETTINGS, str(path), {})


def test_missing_config_file():
    with pytest.raises(ConfigError, match="cannot read config file /nonexistent.toml"):
        load(CONTROLLER_SETTINGS, "/nonexistent.toml", {})


def test_daemon_tables_and_lists_from_flags_and_file(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('labels = ["www"]\n[attributes]\nrole = "server"\n')
    settings = load(DAEMON_SETTINGS, str(path), {"agent_dirs": ["a,b", "c"]})
    assert settings["attributes"] == {"role": "server"}
    assert settings["labels"] == ["www"]
    assert settings["agent_dirs"] == ["a", "b", "c"]
    flags = load(DAEMON_SETTINGS, None, {"attributes": ["sink=true"]})
    assert flags["attributes"] == {"sink": "true"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load(DAEMON_SETTINGS, None, {"attributes": ["oops"]})


def test_hostport():
    assert parse_hostport("10.0.0.1:80") == ("10.0.0.1", 80)
    for bad in ("10.0.0.1", ":80", "h:99999", "h:x"):
        with pytest.raises(ConfigError):
            parse_hostport(bad)


def test_nodefile(tmp_path):
    path = tmp_path / "nodes"
    path.write_text("# the experiment\nclient1 client2\n\nserver1  # web\n")
    assert read_nodefile(str(path)) == ["client1", "client2", "server1"]


def test_the_testbed_lookup_reads_what_the_testbed_writes(tmp_path, monkeypatch):
    from seer.config import known_testbeds, read_testbed, testbed_client
    from seer.testbed import state

    monkeypatch.setenv("SEER_TESTBED_DIR", str(tmp_path))
    monkeypatch.delenv("SEER_TESTBED", raising=False)
    assert known_testbeds() == [] and testbed_client() is None
    state.write("demo", {"up": True, "client": {"controller": "198.18.0.1:7700"}})
    (tmp_path / "half").mkdir()  # a folder without its state file is not a testbed
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "testbed.json").write_text("{not json")
    assert known_testbeds() == ["demo", "garbled"]
    assert read_testbed("garbled") is None
    assert testbed_client() == {"controller": "198.18.0.1:7700"}
    assert testbed_client("garbled") is None
