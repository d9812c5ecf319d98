"""NOOP: an agent that does nothing and answers at once.

Benchmarks time the control plane with it, and it is the smallest complete
example of an agent: a type name, one variable, three commands.
"""

from backend.agent import Agent, Var


class Noop(Agent):
    AGENT_TYPE = "NOOP"
    NICE_NAME = "Does nothing and answers at once (benchmarks, smoke tests)"
    MENU = "Control"
    VARIABLES = [Var("note", "string", "", "a note the ECHO command returns")]

    def handleSTART(self):
        self.report("started")

    def handleSTOP(self):
        self.report("stopped")

    def handleECHO(self, args):
        """Return this node's note (and any arguments) as the outcome's result."""
        return {"node": self.nodename, "note": self.getNodeVar("note"), "args": args}
