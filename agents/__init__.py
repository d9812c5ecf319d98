"""SEER's shipped agents, loaded by every daemon as an agent directory."""
