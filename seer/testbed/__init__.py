"""The local testbed: a DETER-style experiment in network namespaces.

`seer testbed up TOPOLOGY` builds every node as a network namespace, the
experiment's LANs and links as veth pairs and bridges, a separate control
network, starts a supervisor that runs the controller and a daemon per node
(and restarts any that dies), and waits until every node has registered.
Everything lives in namespaces the testbed created (named
``seer-<testbed>.<node>``): the host's own interfaces, routes and firewall
are never touched, and only processes the testbed recorded are ever
stopped.  The shell that ran `up` reaches the controller
through a relay on 127.0.0.1.
"""
