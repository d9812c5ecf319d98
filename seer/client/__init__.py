"""seer.client -- the blocking Python API for experiment scripts and the CLI.

SEER style::

    from seer.client import Experiment

    with Experiment() as exp:                      # controller and certs from
        web = exp.agent("HTTP", "web1")           # SEER_CONTROLLER, SEER_CERTS,
        web.set(NODES="client1 client2",          # SEER_IDENTITY or defaults
                think="minmax(0.1,0.9)")
        web.start()
        ...
        web.stop()

Every command returns a :class:`Result` with each targeted node's
:class:`Outcome` -- ``applied``, ``failed`` (with the agent's error),
``skipped`` (not in the group's NODES) or ``unconfirmed`` (no answer before
the timeout, with the reason) -- and raises :class:`CommandFailed` when a
node failed or did not confirm, unless ``check=False``.

The API is plain blocking sockets (standard-library ``ssl``), so a script
needs no reactor, and importing it loads neither Twisted nor cryptography.
It speaks the same frames as every SEER process (:mod:`seer.protocol.wire`).

The package, by job: :mod:`~seer.client.errors`, :mod:`~seer.client.values`
(Outcome, Result), :mod:`~seer.client.credentials` (controller, certificates,
identity), :mod:`~seer.client.connection` (frames over a socket),
:mod:`~seer.client.experiment` (Experiment, AgentGroup, Pending, Agent), and
two helpers: :mod:`~seer.client.files` (FILE frames into local files) and
:mod:`~seer.client.polling`.  Every name is importable from here too.
"""

from __future__ import annotations

from seer.client.connection import SINK_FRAMES, Connection
from seer.client.credentials import DEFAULT_CONTROLLER
from seer.client.errors import CommandFailed, ControllerUnreachable, RequestRefused, SeerError
from seer.client.experiment import RESULT_MARGIN, Agent, AgentGroup, Experiment, Pending
from seer.client.values import OK_STATUSES, Outcome, Result

#: The experiment SEER-style ``Agent()`` calls use when given none (made at the first).
_default_experiment: Experiment | None = None

__all__ = [
    "Agent", "AgentGroup", "CommandFailed", "Connection", "ControllerUnreachable",
    "DEFAULT_CONTROLLER", "Experiment", "OK_STATUSES", "Outcome", "Pending", "RESULT_MARGIN",
    "RequestRefused", "Result", "SINK_FRAMES", "SeerError",
]
