"""A controller on fakes for unit tests: fake sessions, a fake reactor,
synchronous "threads" (the `lab` fixture in conftest.py builds one)."""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred

from backend.controller import Controller
from seer.protocol.datagrams import VerifyingKeys, decode_datagram
from seer.protocol.tags import NodeTag
from seer.protocol.wire import Frame
from seer.testing import FakeSession

CATALOGUE = {
    "NOOP": {"type": "NOOP", "nice": "", "menu": "Control", "commands": ["ECHO", "START", "STOP"],
             "variables": [{"name": "NODES", "type": "nodelist", "default": None, "help": ""},
                           {"name": "note", "type": "string", "default": "", "help": ""},
                           {"name": "count", "type": "int", "default": 0, "help": ""}]},
    "FLOOD": {"type": "FLOOD", "nice": "", "menu": "Attack", "attack": True,
              "commands": ["START", "STOP"],
              "variables": [{"name": "NODES", "type": "nodelist", "default": None, "help": ""}]},
}


def synchronous(function, *args):
    return maybeDeferred(function, *args)


def make_controller(reactor, certs_dir, state_dir, **options):
    c = Controller(("239.255.1.1", 7701), "ctl", reactor=reactor, certs=certs_dir,
                   state_dir=state_dir, blocking=synchronous, **options)
    c.startService()
    return c


class Lab:
    def __init__(self, controller, reactor):
        self.c = controller
        self.reactor = reactor
        self.sender = reactor.multicast[0]
        self.keys = None

    def register(self, name, epoch=0, serial=0, **info):
        s = FakeSession(name, "node")
        self.c.sessionOpened(s)
        header = dict({"type": "INFO", "name": name, "agents": CATALOGUE, "epoch": epoch,
                       "serial": serial}, **info)
        self.c.frameReceived(s, Frame(header))
        welcome = s.of_type("WELCOME")[0]
        # The keys of the node registered last: its own tag checks the datagrams.
        self.keys = VerifyingKeys.from_json(welcome.get("keys")).with_tag(
            NodeTag.from_welcome(welcome.get("tag")))
        return s

    def client(self, name="alice"):
        s = FakeSession(name, "experimenter")
        self.c.sessionOpened(s)
        return s

    def request(self, session, header):
        self.c.frameReceived(session, Frame(header))
        self.reactor.advance(0)  # the per-turn flush

    def datagrams(self):
        return [decode_datagram(self.keys, d) for d in self.sender.take()]


def command(**extra):
    return dict({"type": "COMMAND", "id": 1, "agent": "NOOP", "group": "g", "command": "START"},
                **extra)
