"""Issue 4: `make up`'s stack under a headless Locust run; every 2xx counted exactly once.

The stack is scripts/local.sh with the sanitizer-built workers, in a tmp state folder and on
its own port range. Exactly-once is checked three ways: the dashboard's total equals the 2xx
count; every 2xx sale id is in Kafka exactly once; the dashboard counts every valid record in
Kafka once."""
import contextlib
import json
import os
import signal
import subprocess
import time

import pytest

from harness import BIN_DIR, ROOT, SANITIZER_ENV, local_sh_port_base, process_gone, topic_sale_ids, wait_until

LOCUST_SECONDS = int(os.environ.get("SP_TEST_LOCUST_SECONDS", "30"))


class Stack:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.env = dict(os.environ, **SANITIZER_ENV, SP_LOCAL_DIR=str(state_dir),
                        SP_PORT_BASE=str(local_sh_port_base()), SP_BIN_DIR=str(BIN_DIR))

    def local(self, *args):
        subprocess.run([str(ROOT / "scripts" / "local.sh"), *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def vars(self):
        """What `. build/local/env` exports into a shell (a variable only set would be missing)."""
        out = subprocess.run(["bash", "-c", '. "$1" && env -0', "-", str(self.dir / "env")],
                             env={"PATH": os.environ["PATH"]}, capture_output=True, check=True).stdout
        return dict(item.split("=", 1) for item in out.decode().split("\0") if item)

    def pid(self, part):
        return int((self.dir / f"{part}.pid").read_text())

    def dashboard(self):
        """As a person runs it: `. build/local/env`, then salesctl takes VALKEY_URL from there."""
        env = {k: v for k, v in self.env.items() if k != "VALKEY_URL"}
        out = subprocess.run(["bash", "-c", '. "$1" && exec "$2" dashboard --json', "-",
                              str(self.dir / "env"), str(BIN_DIR / "salesctl")], env=env,
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)


@contextlib.contextmanager
def running(s):
    """`local.sh up` for the block, then `down`; a sanitizer report in a part's log fails."""
    try:
        s.local("up")
        yield s
    finally:
        logs = {p.name: p.read_text(errors="replace")[-3000:] for p in s.dir.glob("*.log")}
        s.local("down")
        # ASan reports at exit land in the parts' logs: a leak or UB finding fails the test.
        bad = [name for name, text in logs.items() if "ERROR: AddressSanitizer" in text
               or "ERROR: LeakSanitizer" in text or "runtime error:" in text]
        assert not bad, {name: logs[name] for name in bad}


@pytest.fixture
def stack(tmp_path):
    with running(Stack(tmp_path / "local")) as s:
        yield s


def run_locust(stack, tmp_path, seconds, invalid_share, during=None):
    """A headless Black Friday run; `during(stack)` runs at the midpoint. Returns (summary, ids)."""
    summary, ids = tmp_path / "summary.json", tmp_path / "ids.txt"
    env = dict(stack.env, SP_SCENARIO="blackfriday", SP_DURATION=str(seconds), SP_PEAK_USERS="20",
               SP_INVALID_SHARE=str(invalid_share), SP_SUMMARY=str(summary), SP_ACCEPTED_IDS=str(ids))
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "locust"), "-f", str(ROOT / "locust" / "locustfile.py"),
                             "--headless", "--host", stack.vars()["API_URL"], "--only-summary", "--stop-timeout", "30",
                             "--loglevel", "WARNING"], env=env, stdout=subprocess.DEVNULL)
    try:
        if during:
            time.sleep(seconds / 2)  # the midpoint of a time-shaped load, not a synchronisation
            during(stack)
        proc.wait(timeout=seconds + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
    counts = json.loads(summary.read_text())
    accepted_ids = ids.read_text().split() if ids.exists() else []
    return counts, accepted_ids


def kafka_sale_ids(stack):
    v = stack.vars()
    return topic_sale_ids(v["KAFKA_BROKERS"], v["KAFKA_TOPIC"])


def wait_counted(stack, expected_at_least):
    return wait_until(lambda: (d := stack.dashboard())["total_sales"] >= expected_at_least and d,
                      timeout=180, interval=0.5, what=f"dashboard total >= {expected_at_least}")


def test_locust_run_counts_every_accepted_sale_once(stack, tmp_path):
    counts, ids = run_locust(stack, tmp_path, LOCUST_SECONDS, invalid_share=0.1)
    assert counts["accepted"] > 100, counts
    assert counts["rejected_invalid"] > 0, counts
    assert counts["invalid_accepted"] == 0, counts
    assert len(ids) == counts["accepted"]
    dash = wait_counted(stack, counts["accepted"])
    # Nothing more arrives late: Kafka holds exactly the accepted sales.
    in_kafka = kafka_sale_ids(stack)
    assert sorted(in_kafka) == sorted(ids)
    dash = stack.dashboard()
    assert dash["total_sales"] == counts["accepted"]
    assert sum(dash["reports_by_category"].values()) == counts["accepted"]


def test_writer_and_consumer_killed_mid_run(stack, tmp_path):
    def faults(s):
        killed = [s.pid("writer-b-1"), s.pid("consumer")]
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        # SIGKILL is delivered asynchronously: `up` must see them dead to start them again.
        wait_until(lambda: all(process_gone(pid) for pid in killed), 10, what="killed parts to exit")
        s.local("up")  # starts again exactly the parts that stopped
    counts, ids = run_locust(stack, tmp_path, LOCUST_SECONDS, invalid_share=0.0, during=faults)
    assert counts["accepted"] > 100, counts
    in_kafka = kafka_sale_ids(stack)
    # No duplicates anywhere; every 2xx is stored; a sale whose answer was lost may be stored
    # (once) without a 2xx, so Kafka may hold more than the 2xx ids, never fewer.
    assert len(in_kafka) == len(set(in_kafka)), "a sale reached Kafka twice"
    assert set(ids) <= set(in_kafka)
    dash = wait_counted(stack, len(in_kafka))
    assert dash["total_sales"] == len(in_kafka)
    assert sum(dash["reports_by_category"].values()) == len(in_kafka)
