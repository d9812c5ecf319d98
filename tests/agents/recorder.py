"""RECORDER: a test agent that writes down every command it runs, in order.

End-to-end tests read its file to check that each node ran every command
exactly once and in serial order.
"""

import json
import os

from backend.agent import Agent, Var


class Recorder(Agent):
    AGENT_TYPE = "RECORDER"
    NICE_NAME = "Records every command it runs (tests)"
    MENU = "Measurement"
    VARIABLES = [
        Var("label", "string", "", "written with each record"),
        Var("count", "int", 0, "an integer, to test type checks"),
    ]

    def _write(self, entry):
        os.makedirs(self.context.workdir, exist_ok=True)
        with open(os.path.join(self.context.workdir, "records.jsonl"), "a") as f:
            f.write(json.dumps(entry) + "\n")

    def handleRECORD(self, args):
        self._write({"i": args.get("i"), "label": self.getNodeVar("label")})

    def handleSTART(self):
        self._write({"event": "START"})

    def handleSTOP(self):
        self._write({"event": "STOP"})

    def handleFAIL(self, args):
        raise RuntimeError(args.get("why", "asked to fail"))
