"""The agent worker as the real program: python -m backend.runtime.worker on its
pipes, spoken to with the worker protocol (bounded in time; no network)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.runtime import workerproto as wp
from seer.protocol.wire import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parents[1]

AGENT = '''
from backend.agent import Agent


class Talker(Agent):
    AGENT_TYPE = "TALKER"

    def handleSAY(self, args):
        print("printed by the agent")  # must not reach the protocol
        self.report("said", text=args["text"])
        return {"said": args["text"]}

    def handleTABLE(self):
        return self.context.node_table()
'''


class Worker:
    def __init__(self, tmp_path: Path) -> None:
        path = tmp_path / "talker.py"
        path.write_text(AGENT)
        self.source = {"file": str(path)}
        self.tmp_path = tmp_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", wp.WORKER_MODULE, "n1/TALKER/g"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=open(tmp_path / "stderr.log", "wb"),
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.decoder = FrameDecoder()
        self.frames: list[dict] = []

    def send(self, header: dict) -> None:
        self.proc.stdin.write(encode_frame(header))
        self.proc.stdin.flush()

    def expect(self, kind: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, frame in enumerate(self.frames):
                if frame["type"] == kind:
                    return self.frames.pop(i)
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                data = os.read(self.proc.stdout.fileno(), 65536)
                if not data:
                    break
                self.frames += [f.header for f in self.decoder.feed(data)]
        raise AssertionError(f"no {kind} from the worker; got {self.frames}; stderr: "
                             f"{self.stderr()}")

    def stderr(self) -> str:
        return (self.tmp_path / "stderr.log").read_text(errors="replace")

    def setup(self) -> dict:
        self.send({"type": wp.SETUP, "node": "n1", "agent": "TALKER", "group": "g",
                   "source": self.source, "node_info": {}, "workdir": str(self.tmp_path / "w"),
                   "process_tag": f"seer-test/{os.getpid()}/TALKER/g", "counters_interval": None})
        return self.expect(wp.HELLO)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def worker(tmp_path):
    w = Worker(tmp_path)
    yield w
    w.close()


def test_the_worker_runs_a_message_and_what_the_agent_prints_goes_to_its_log(worker):
    hello = worker.setup()
    assert hello == {"type": wp.HELLO, "pid": worker.proc.pid}
    worker.send({"type": wp.RUN, "id": 1, "serial": 5,
                 "message": {"type": "COMMAND", "command": "SAY", "args": {"text": "hi"}}})
    assert worker.expect(wp.EVENT) == {"type": wp.EVENT, "event": "said", "data": {"text": "hi"}}
    assert worker.expect(wp.DONE) == {"type": wp.DONE, "id": 1, "status": "applied",
                                      "error": None, "result": {"said": "hi"}}
    worker.send({"type": wp.RUN, "id": 2, "serial": 6,
                 "message": {"type": "COMMAND", "command": "TABLE", "args": {}}})
    ask = worker.expect(wp.ASK)
    assert ask["what"] == "node_table"
    worker.send({"type": wp.REPLY, "id": ask["id"], "ok": True, "value": {"n1": {}}})
    assert worker.expect(wp.DONE)["result"] == {"n1": {}}
    worker.send({"type": wp.STOP})
    assert worker.proc.wait(timeout=20) == 0
    assert "printed by the agent" in worker.stderr()


def test_a_worker_whose_daemon_goes_away_stops(worker):
    worker.setup()
    worker.proc.stdin.close()
    assert worker.proc.wait(timeout=20) == 0


def test_a_worker_that_cannot_load_its_agent_says_why_and_exits(worker):
    worker.source = {"file": str(worker.tmp_path / "missing.py")}
    hello = worker.setup()
    assert "could not load agent TALKER" in hello["error"]
    assert worker.proc.wait(timeout=20) == wp.EXIT_UNLOADABLE
