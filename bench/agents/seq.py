"""SEQ: counts numbered commands, and any that come twice or out of order."""

from backend.agent import Agent


class Seq(Agent):
    AGENT_TYPE = "SEQ"
    NICE_NAME = "Counts numbered commands, duplicates and reorderings (benchmark)"
    # Benchmark agents time the control plane: no hop to a worker process.
    ISOLATED = False

    def setup(self):
        self.last = -1

    def handleNEXT(self, args):
        i = args["i"]
        if i <= self.last:
            self.counters["duplicates"] += 1
        elif i != self.last + 1:
            self.counters["reorderings"] += 1
        self.last = max(self.last, i)
        self.counters["received"] += 1

    def handleRESET(self):
        self.last = -1
        self.counters.clear()

    def handleSTART(self):
        """Begin a run: counting from scratch."""
        self.handleRESET()
