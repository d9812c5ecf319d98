"""SEER: control experiments on network testbeds by signed IP multicast.

``seer`` holds what every SEER process shares -- the wire protocol, targets,
typed variables, certificates, configuration -- plus the client API
(:mod:`seer.client`) and the command line (:mod:`seer.cli`).  The controller,
the node daemon and the agent runtime live in ``backend``.
"""

__version__ = "0.1.0"
