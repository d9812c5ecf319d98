"""LAUNCHER: a traffic agent whose clients do nothing (`true`), to measure
how fast the runtime launches client processes."""

from backend.agent import TrafficAgent


class Launcher(TrafficAgent):
    AGENT_TYPE = "LAUNCHER"
    NICE_NAME = "Launches no-op clients as fast as allowed (benchmark)"
    # Benchmark agents time the control plane: no hop to a worker process.
    ISOLATED = False

    def clientExec(self, src, dst, size):
        self.spawn(["true"], name="true")
