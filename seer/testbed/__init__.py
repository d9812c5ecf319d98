"""The local testbed: a DETER-style experiment in network namespaces.

`seer testbed up TOPOLOGY` builds every node as a network namespace, the
experiment's LANs and links as veth pairs and bridges, a separate control
network, starts the controller and a daemon per node, and waits until every
node has registered.  Everything lives in namespaces the testbed created
(named ``seer-<testbed>-...``): the host's own interfaces, routes and
firewall are never touched.  The shell that ran `up` reaches the controller
through a relay on 127.0.0.1.
"""
