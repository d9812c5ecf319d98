"""Job history end to end: the id the CLI prints, `seer jobs`, and `seer job ID`
with an outcome that came after the client stopped waiting."""

from __future__ import annotations

import json
import re
import signal

import pytest

from e2e import eventually, lab_for

pytestmark = pytest.mark.e2e


def test_a_job_id_is_printed_listed_and_shows_a_late_outcome(tmp_path, certs_dir):
    lab = lab_for(tmp_path, certs_dir, 2)
    with lab:
        started = lab.cli("start", "RECORDER", "g")
        job = int(re.search(r"job (\d+),", started.stdout).group(1))
        listed = lab.cli("jobs")
        assert re.search(rf"job {job}\s.*experimenter\s+START RECORDER g\s+to all\s+2 applied",
                         listed.stdout), listed.stdout
        slow = lab.daemons["n2"]
        slow.send_signal(signal.SIGSTOP)
        try:
            late = lab.cli("command", "RECORDER", "g", "RECORD", "i=7", "--timeout", "1",
                           "--json")
            late_job = json.loads(late.stdout)["job"]
            assert late.returncode == 4  # unconfirmed: a node did not answer
            assert json.loads(late.stdout)["outcomes"]["n2"]["status"] == "unconfirmed"
        finally:
            slow.send_signal(signal.SIGCONT)
        shown = eventually(lambda: lab.cli("job", str(late_job)).stdout,
                           lambda text: "after the client stopped waiting" in text, timeout=30)
    print(f"\n{shown}")
    assert re.search(r"n2\s+applied  \(after the client stopped waiting\)", shown), shown
    assert f"job {late_job}: RECORD RECORDER g to all, sent by experimenter" in shown
