"""LAUNCHER: a traffic agent whose clients do nothing (`true`): it measures
how fast the runtime itself launches client processes."""

from backend.agent import TrafficAgent


class Launcher(TrafficAgent):
    AGENT_TYPE = "LAUNCHER"
    NICE_NAME = "Launches no-op clients as fast as allowed (runtime benchmark)"

    def clientExec(self, src, dst, size):
        self.spawn(["true"], name="true")
