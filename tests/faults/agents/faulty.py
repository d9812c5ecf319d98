"""FAULTY and FAULTY_INLINE: agents that go wrong, on request, in every way
issue 12 names (fault tests only; loaded with --agent-dirs).

FAULTY declares no ISOLATED: from an agent folder it runs in a worker
process of its own.  FAULTY_INLINE says ``ISOLATED = False`` and runs in the
daemon itself -- the harder case for "one bad message never harms another".
"""

import ctypes
import os
import resource
import sys
import time

from backend.agent import Agent, Var


class Faulty(Agent):
    AGENT_TYPE = "FAULTY"
    NICE_NAME = "Misbehaves on request (fault tests)"
    VARIABLES = [
        Var("mode", "string", "", "how a SET goes wrong: processArgs or validate"),
        Var("label", "string", "", "a label, to see variables come back after a restart"),
    ]

    def setup(self):
        self.starts = 0

    def processArgs(self, args):
        if args.get("mode") == "processArgs":
            raise RuntimeError("processArgs broke on purpose")
        super().processArgs(args)

    def validate(self, new):
        if (new.get("mode") or {}).get("*") == "validate":
            raise LookupError("validate broke on purpose")

    def handleSTART(self):
        self.starts += 1

    def handleSTOP(self):
        pass

    def handleOK(self):
        return {"label": self.getNodeVar("label"), "pid": os.getpid(), "starts": self.starts}

    def handleEXIT(self):
        sys.exit(4)

    def handleINTERRUPT(self):
        raise KeyboardInterrupt

    def handleRESULT(self, args):
        return {"object": {"x": object()}, "nan": {"x": float("nan")}}[args["kind"]]

    def handleBLOCK(self, args):
        # Say so first, in a file (a blocked reactor sends nothing), then block.
        os.makedirs(self.context.workdir, exist_ok=True)
        with open(os.path.join(self.context.workdir, "blocking"), "w") as f:
            f.write(str(time.time()))
        time.sleep(float(args.get("seconds", 10)))
        return {"blocked": float(args.get("seconds", 10))}

    def handleOSEXIT(self, args):
        os._exit(int(args.get("code", 3)))

    def handleSEGV(self, args):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        ctypes.string_at(0)  # reads address 0: SIGSEGV, in this process only


class FaultyInline(Faulty):
    AGENT_TYPE = "FAULTY_INLINE"
    ISOLATED = False
