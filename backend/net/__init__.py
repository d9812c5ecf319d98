"""Transports: TLS frame sessions and the multicast sockets.

Thin adapters only: they turn bytes into frames and datagrams and hand them
to a router (the controller, or a daemon's controller link).
"""
