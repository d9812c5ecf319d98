"""The agent runtime: loading agents, their processes, address pools, target
safety, the traffic-controller process and the files PUT and GET move.

Agent authors import :mod:`backend.agent`, which re-exports what they need."""
