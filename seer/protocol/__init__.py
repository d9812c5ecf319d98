"""What every SEER process agrees on: the wire format, targets, typed
variables, distributions, certificates' layout.

Importing this package loads nothing: no Twisted, no TLS machinery, so the
blocking client stays light.  Nothing here imports ``backend``, the client or
the command line (tests/test_layering.py holds it).
"""
