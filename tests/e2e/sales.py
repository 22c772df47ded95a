"""Sales sent to the api over several kept-alive connections at a steady rate, each request's
outcome kept: what the e2e checks the dashboard and Kafka against."""
import http.client
import json
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from harness import ROOT

CATALOG = json.loads((ROOT / "locust" / "catalog.json").read_text())["products"]


def sale(rng):
    """A valid sale of a product of the catalog (the api checks the catalog artifact)."""
    p = rng.choice(CATALOG)
    return {"categoria": p["category"], "producto_id": p["id"],
            "precio": round(p["base_price"] * rng.uniform(0.5, 1.0), 2),
            "cantidad_vendida": rng.randint(1, 3)}


@dataclass
class Outcome:
    status: int | None        # None: no answer (connection refused, reset, timed out)
    sale_id: str | None
    error: str = ""
    at: float = 0.0           # seconds since sending started, when the answer (or error) came


@dataclass
class Sender:
    """`total` sales to `url` (http://host:port) from `connections` threads, `rate` a second
    in all. `hold(i)`, when given, is called before sale i is sent and may block (a phase of
    the test waiting for the cluster)."""
    url: str
    total: int
    connections: int = 8
    rate: float = 60.0
    hold: object = None
    timeout: float = 15.0
    outcomes: list = field(default_factory=list)

    def __post_init__(self):
        self._next = 0
        self._lock = threading.Lock()
        self.sent = 0

    def _take(self):
        with self._lock:
            if self._next >= self.total:
                return None
            self._next += 1
            return self._next - 1

    def _worker(self, seed):
        rng = random.Random(seed)
        u = urllib.parse.urlsplit(self.url)
        conn = None
        while (i := self._take()) is not None:
            if self.hold:
                self.hold(i)
            delay = self.start + i / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps(sale(rng))
            try:
                conn = conn or http.client.HTTPConnection(u.hostname, u.port, timeout=self.timeout)
                conn.request("POST", "/ventas", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                text = r.read()
                sale_id = r.getheader("X-Sale-Id")
                if 200 <= r.status < 300:
                    sale_id = json.loads(text)["id"]
                out = Outcome(r.status, sale_id, "" if r.status < 300 else text.decode(errors="replace")[:200])
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                out = Outcome(None, None, f"{type(e).__name__}: {e}")
                if conn:
                    conn.close()
                conn = None
            out.at = round(time.monotonic() - self.start, 2)
            with self._lock:
                self.outcomes.append(out)
                self.sent += 1
        if conn:
            conn.close()

    def start_sending(self):
        self.start = time.monotonic()
        self.threads = [threading.Thread(target=self._worker, args=(n,), daemon=True)
                        for n in range(self.connections)]
        for t in self.threads:
            t.start()
        return self

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in self.threads):
            raise TimeoutError(f"sending did not finish in {timeout} s ({self.sent}/{self.total} sent)")
        return self

    def ok_ids(self):
        return [o.sale_id for o in self.outcomes if o.status is not None and 200 <= o.status < 300]

    def failed(self):
        """Requests that got neither a 2xx nor a 4xx: their sale may or may not be stored."""
        return [o for o in self.outcomes if o.status is None or o.status >= 500]

    def refused(self):
        return [o for o in self.outcomes if o.status is not None and 400 <= o.status < 500]
