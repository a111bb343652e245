"""The embedded broker (the filesystem transport under var/) survives several producers at once.

kombu's own transport lets the worker read a message file before its writer filled it; the worker
then dies with `Unrecoverable error: JSONDecodeError` (celery/kombu#1551). Set STOCK_KOMBU=1 to see it."""

import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests.conftest import ROOT

PRODUCERS = 5
MESSAGES_PER_PRODUCER = 500
# The race needs a reader that lists the folder while a file is being written: producers paced so the
# worker keeps up (as in `make run`, where a check's message is read moments after it is written), and a
# larger body that keeps each writer busy longer between creating the file and filling it.
PACE_SECONDS = 0.005
PADDING = "x" * 200_000


def _produce(first: int, count: int) -> None:
    from tests.broker_stress_app import receipt

    for number in range(first, first + count):
        receipt.delay(number, PADDING)
        time.sleep(PACE_SECONDS)


@pytest.mark.slow
def test_several_producers_and_a_worker_lose_nothing_and_crash_nothing(tmp_path, monkeypatch):
    broker_dir, receipts = tmp_path / "broker", tmp_path / "receipts.txt"
    for sub in ("in", "processed", "control"):
        (broker_dir / sub).mkdir(parents=True)
    receipts.touch()
    monkeypatch.setenv("BROKER_DIR", str(broker_dir))
    monkeypatch.setenv("RECEIPTS", str(receipts))
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.broker_stress_app",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        total = PRODUCERS * MESSAGES_PER_PRODUCER
        with ProcessPoolExecutor(PRODUCERS) as pool:
            list(pool.map(_produce, range(0, total, MESSAGES_PER_PRODUCER), [MESSAGES_PER_PRODUCER] * PRODUCERS))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            if len(receipts.read_text().split()) >= total:
                break
            time.sleep(0.5)
        log = log_path.read_text()
        assert worker.poll() is None, f"the worker died:\n{log[-3000:]}"
        assert "Unrecoverable error" not in log, log[-3000:]
        received = [int(line) for line in receipts.read_text().split()]
        assert sorted(set(received)) == list(range(total)), f"{total - len(set(received))} messages lost"
        assert len(received) == total, f"{len(received) - total} messages delivered twice"
        assert os.listdir(broker_dir / "in") == []
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
