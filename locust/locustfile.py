"""Black Friday sales for the api's POST /ventas.

Sales are drawn from catalog.json (300 products): a few products sell most (Zipf-like
popularity), prices carry Black Friday discounts, quantities are mostly small.

Settings (environment):
  SP_SCENARIO      steady (default: -u/-r/-t from the command line), blackfriday (a
                   LoadTestShape: ramp, spike, plateau, wind-down over SP_DURATION seconds) or
                   hpa (ramp to SP_PEAK_USERS over SP_RAMP_SECONDS, hold them SP_PLATEAU_SECONDS,
                   then stop: make hpa-demo)
  SP_DURATION      length of the blackfriday shape in seconds (default 60)
  SP_PEAK_USERS    users at the spike (default 60)
  SP_INVALID_SHARE share of deliberately invalid sales, 0..1 (default 0); they must get 400.
                   With CATALOG_ARTIFACT set the api checks sales against the same catalog,
                   so unknown products and wrong categories join the invalid kinds
  CATALOG_ARTIFACT the catalog's OCI artifact (host:port/repo:tag); when set, the catalog is
                   pulled from the registry at start instead of read from a file
                   (REGISTRY_AUTH_FILE or REGISTRY_USER/REGISTRY_PASSWORD, REGISTRY_CA; see
                   docs/catalog.md)
  SP_CATALOG       catalog path when no artifact is set (default: catalog.json beside this file)
  SP_SUMMARY       if set, a JSON file written at the end: accepted (2xx) and rejected counts
  SP_ACCEPTED_IDS  if set, a file that gets the sale id of every 2xx answer, one per line
"""
import json
import math
import os
import random
import sys
import threading
from pathlib import Path

from locust import FastHttpUser, LoadTestShape, constant_throughput, events, task

def load_catalog():
    artifact = os.environ.get("CATALOG_ARTIFACT")
    if artifact:
        from catalog_artifact import pull_with_retries
        data, digest = pull_with_retries(artifact)
        print(f"catalog: {artifact} ({digest}, {len(data)} bytes)", file=sys.stderr)
        return json.loads(data)
    return json.loads(Path(os.environ.get("SP_CATALOG", Path(__file__).with_name("catalog.json"))).read_text())


CATALOG = load_catalog()
PRODUCTS = CATALOG["products"]
INVALID_SHARE = float(os.environ.get("SP_INVALID_SHARE", "0"))
SCENARIO = os.environ.get("SP_SCENARIO", "steady")

# Popularity: rank r sells about 1/r^1.1 as much as the best seller; ranks shuffled once.
_ranked = PRODUCTS[:]
random.Random(11).shuffle(_ranked)
_weights = [1.0 / (r + 1) ** 1.1 for r in range(len(_ranked))]
_cumulative = []
_total = 0.0
for w in _weights:
    _total += w
    _cumulative.append(_total)

DISCOUNTS = [0.0, 0.10, 0.20, 0.30, 0.50]
DISCOUNT_WEIGHTS = [40, 20, 20, 12, 8]

_counts = {"accepted": 0, "rejected_invalid": 0, "invalid_accepted": 0, "other": 0}
_counts_lock = threading.Lock()
_ids_path = os.environ.get("SP_ACCEPTED_IDS")
_ids_file = open(_ids_path, "a", buffering=1) if _ids_path else None


def _count(key):
    with _counts_lock:
        _counts[key] += 1


def pick_product(rng):
    x = rng.random() * _total
    lo, hi = 0, len(_cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return _ranked[lo]


def valid_sale(rng):
    product = pick_product(rng)
    discount = rng.choices(DISCOUNTS, DISCOUNT_WEIGHTS)[0]
    price = round(product["base_price"] * (1 - discount) * rng.uniform(0.97, 1.03), 2)
    units = min(20, 1 + int(rng.expovariate(0.8)))
    category = product["category"] if rng.random() < 0.5 else ["Electronica", "Ropa", "Hogar", "Belleza"].index(product["category"]) + 1
    return {"categoria": category, "producto_id": product["id"], "precio": max(price, 0.01),
            "cantidad_vendida": units}


CATALOG_CHECKED = bool(os.environ.get("CATALOG_ARTIFACT"))


def invalid_body(rng):
    """One of the mistakes the api must refuse with 400."""
    sale = valid_sale(rng)
    kind = rng.randrange(9 if CATALOG_CHECKED else 7)
    if kind == 0:
        sale["categoria"] = "Juguetes"
    elif kind == 1:
        sale["precio"] = -abs(sale["precio"])
    elif kind == 2:
        sale["cantidad_vendida"] = 0
    elif kind == 3:
        sale["producto_id"] = "X" * 65
    elif kind == 4:
        del sale["producto_id"]
    elif kind == 5:
        sale["cantidad_vendida"] = 1.5
    elif kind == 7:
        sale["producto_id"] = f"ZZZ-{rng.randrange(1000):03d}"   # in no catalog
    elif kind == 8:
        product = next(p for p in PRODUCTS if p["id"] == sale["producto_id"])
        sale["categoria"] = next(c for c in ["Electronica", "Ropa", "Hogar", "Belleza"]
                                 if c != product["category"])
    else:
        return '{"categoria": 1, "producto_id": '  # malformed JSON
    return json.dumps(sale)


class Shopper(FastHttpUser):
    """One shopper: a sale about every 100 ms at most (10/s per user)."""
    wait_time = constant_throughput(10)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self):
        self.rng = random.Random()

    @task
    def buy(self):
        if INVALID_SHARE and self.rng.random() < INVALID_SHARE:
            self._post(invalid_body(self.rng), "/ventas [invalid]", expect_invalid=True)
        else:
            self._post(json.dumps(valid_sale(self.rng)), "/ventas", expect_invalid=False)

    def _post(self, body, name, expect_invalid):
        with self.client.post("/ventas", data=body, name=name, catch_response=True,
                              headers={"Content-Type": "application/json"}) as r:
            if expect_invalid:
                if r.status_code == 400:
                    _count("rejected_invalid")
                    r.success()
                else:
                    if 200 <= r.status_code < 300:
                        _count("invalid_accepted")
                    else:
                        _count("other")
                    r.failure(f"invalid sale got {r.status_code}")
            elif 200 <= r.status_code < 300:
                _count("accepted")
                if _ids_file:
                    with _counts_lock:
                        _ids_file.write(r.json()["id"] + "\n")
                r.success()
            else:
                _count("other")
                r.failure(f"status {r.status_code}")


if SCENARIO == "blackfriday":
    class BlackFridayShape(LoadTestShape):
        """Doors open (ramp), the spike at midnight, a long plateau, then the wind-down."""
        duration = float(os.environ.get("SP_DURATION", "60"))
        peak = int(os.environ.get("SP_PEAK_USERS", "60"))

        def tick(self):
            t = self.get_run_time()
            d = self.duration
            if t >= d:
                return None
            if t < 0.25 * d:                      # ramp to 40% of peak
                users = 0.4 * self.peak * t / (0.25 * d)
            elif t < 0.40 * d:                    # spike
                users = self.peak
            elif t < 0.85 * d:                    # plateau at 70%
                users = 0.7 * self.peak
            else:                                 # wind-down
                users = 0.7 * self.peak * (d - t) / (0.15 * d)
            return max(1, math.ceil(users)), max(1, self.peak // 4)


if SCENARIO == "hpa":
    class HpaShape(LoadTestShape):
        """A ramp, a plateau, then the load ends: the api's HPA scales up, then down."""
        ramp = float(os.environ.get("SP_RAMP_SECONDS", "60"))
        plateau = float(os.environ.get("SP_PLATEAU_SECONDS", "120"))
        peak = int(os.environ.get("SP_PEAK_USERS", "60"))

        def tick(self):
            t = self.get_run_time()
            if t >= self.ramp + self.plateau:
                return None
            users = self.peak * min(1.0, t / self.ramp) if self.ramp > 0 else self.peak
            return max(1, math.ceil(users)), max(1, self.peak // 10)


@events.quitting.add_listener
def _write_summary(environment, **_kwargs):
    path = os.environ.get("SP_SUMMARY")
    if path:
        with _counts_lock:
            Path(path).write_text(json.dumps(_counts))
    if _ids_file:
        _ids_file.flush()
