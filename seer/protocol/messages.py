"""The messages a controller sends to the experiment: their types and the
commands that set an agent group's run state.

Shared by the controller (what a snapshot restores), the node (what a
snapshot resumes) and the agent base class, none of which should import
the others for it.
"""

from __future__ import annotations

#: The message types a datagram may carry to the experiment.
EXPERIMENT_MESSAGE_TYPES = frozenset({"COMMAND", "SET", "EXECUTE", "GET", "PUT"})

#: Commands that set an agent group's run state, which snapshots restore.
RUN_COMMANDS = {"START": "running", "STOP": "stopped"}

#: SEER's retirement age (seconds): a datagram older than this is no longer
#: kept for repairs, and a node still missing it gets a snapshot instead.
RETIRE_AFTER = 120.0

#: Seconds of quiet on a daemon's TLS link before a HEARTBEAT frame is sent
#: (both ways), and of silence after which the peer is unreachable (three
#: missed); the controller's WELCOME tells each daemon its own settings.
HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TIMEOUT = 6.0
