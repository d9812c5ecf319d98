"""SEER's backend: the controller, the node daemon and the agent runtime.

The module names follow the original SEER: ``backend.controller`` and
``backend.agent``.
"""
