"""Test doubles for SEER and for agent authors' own tests.

The library ships its doubles, as treq ships ``treq.testing``, so that code
built on SEER can be tested the way SEER tests itself -- on a clock the test
moves, without sockets or processes:

* :class:`FakeReactor` -- a ``MemoryReactorClock`` with recording multicast
  ports and answers to TCP connects (:mod:`seer.testing.network`);
* :class:`FakeSession` -- a verified TLS frame session that records frames;
* :class:`FakeProcessReactor` -- a FakeReactor whose ``spawnProcess``
  records :class:`FakeProcess` es the test feeds output and exit codes to
  (:mod:`seer.testing.processes`);
* :class:`AgentHarness` -- one agent class run through the node's real
  Dispatcher on a FakeProcessReactor, each message's outcome returned
  (:mod:`seer.testing.agents`);
* :class:`FakeWorkers` -- the agent workers a daemon starts on a
  FakeProcessReactor, played in-process by the worker's real code
  (:mod:`seer.testing.workers`).
"""

from seer.testing.agents import AgentHarness, Outcome
from seer.testing.network import FakeMulticastPort, FakeReactor, FakeSession
from seer.testing.processes import FAKE_PID_BASE, FakeProcess, FakeProcessReactor
from seer.testing.workers import FakeWorker, FakeWorkers

__all__ = ["AgentHarness", "Outcome", "FakeMulticastPort", "FakeReactor", "FakeSession",
           "FakeProcess", "FakeProcessReactor", "FAKE_PID_BASE", "FakeWorker", "FakeWorkers"]
