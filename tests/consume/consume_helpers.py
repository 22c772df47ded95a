"""Consume path helpers: protobuf sales produced straight into Kafka, the consumer started as a
worker, the dashboard read back with salesctl, and the numbers the dashboard must show computed
here from the same sales. Used by the tests here and by bench_consumer.py."""
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict

from harness import BIN_DIR, ROOT, SANITIZER_ENV, free_port, stored_offsets, wait_until

CATEGORIES = {1: "Electronica", 2: "Ropa", 3: "Hogar", 4: "Belleza"}
CARNET_FOR = {1: "202300530", 2: "202300533", 3: "202300536", 4: "202300539"}


class Sale:
    __slots__ = ("categoria", "producto_id", "precio", "cantidad_vendida", "ts")

    def __init__(self, categoria, producto_id, precio, cantidad_vendida, ts):
        self.categoria, self.producto_id, self.precio = categoria, producto_id, precio
        self.cantidad_vendida, self.ts = cantidad_vendida, ts


def protobuf_stubs(out_dir):
    """Generates the Python stubs of proto/blackfriday.proto into `out_dir`; returns the module."""
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
                    f"--python_out={out_dir}", str(ROOT / "proto" / "blackfriday.proto")], check=True)
    sys.path.insert(0, str(out_dir))
    import blackfriday_pb2
    return blackfriday_pb2


def make_sales(n, seed, products_per_category=12, ts0=None, step_ms=1):
    """`n` random sales over the four categories, `step_ms` apart; prices mix cents and
    arbitrary doubles."""
    rng = random.Random(seed)
    ts0 = ts0 or int(time.time() * 1000) - step_ms * n - 10000
    sales = []
    for i in range(n):
        cat = rng.choice([1, 1, 2, 2, 3, 4])  # uneven, so the bars differ
        pid = f"{CATEGORIES[cat][:4].upper()}-{rng.randrange(products_per_category):03d}"
        if rng.random() < 0.5:
            price = round(rng.uniform(0.01, 5000), 2)
        else:
            price = rng.uniform(0.5, 999999.0)
        sales.append(Sale(cat, pid, price, rng.randint(1, 50), ts0 + i * step_ms))
    return sales


def encode(pb, sale):
    msg = pb.ProductSaleRequest(categoria=sale.categoria, producto_id=sale.producto_id,
                                precio=sale.precio, cantidad_vendida=sale.cantidad_vendida)
    return msg.SerializeToString()


def producer(kafka):
    from confluent_kafka import Producer
    return Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True,
                     "linger.ms": 5, "queue.buffering.max.messages": 1000000})


def produce(kafka, topic, values, timestamps=None, prod=None, partition=None):
    """Sends raw record values (bytes), to `partition` or spread by the producer; returns once
    all are acknowledged."""
    p = prod or producer(kafka)
    errors = []

    def delivered(err, _msg):
        if err:
            errors.append(err)

    for i, value in enumerate(values):
        kw = {"timestamp": timestamps[i]} if timestamps else {}
        if partition is not None:
            kw["partition"] = partition
        while True:
            try:
                p.produce(topic, value=value, on_delivery=delivered, **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0
    assert not errors, errors


def produce_sales(kafka, topic, pb, sales, prod=None, partition=None):
    produce(kafka, topic, [encode(pb, s) for s in sales], [s.ts for s in sales], prod, partition)


class Streamer(threading.Thread):
    """Produces `sales` in chunks with pauses, so that faults land mid-stream. With `hold_after`,
    it stops after that many sales until `resume` is set (so that a fault is sure to find sales
    still to come, however slow the machine)."""

    def __init__(self, kafka, topic, pb, sales, chunk=500, pause=0.05, hold_after=None):
        super().__init__(daemon=True)
        self.args = (kafka, topic, pb, sales, chunk, pause)
        self.hold_after = hold_after
        self.resume = threading.Event()
        self.sent = 0
        self.error = None

    def run(self):
        kafka, topic, pb, sales, chunk, pause = self.args
        try:
            p = producer(kafka)
            for i in range(0, len(sales), chunk):
                if self.hold_after is not None and i >= self.hold_after:
                    self.resume.wait()
                produce_sales(kafka, topic, pb, sales[i:i + chunk], p)
                self.sent = min(len(sales), i + chunk)
                time.sleep(pause)
        except Exception as e:  # reported by finish()
            self.error = e

    def finish(self, timeout=300):
        self.resume.set()
        self.join(timeout)
        assert not self.is_alive(), "producer thread did not finish"
        assert self.error is None, self.error


def start_consumer(workers, kafka, topic, valkey, *args, group=None, interval_ms=None):
    """A consumer on `topic`, with the consumer's own price series settings unless
    `interval_ms` is given (its default keeps a point per sale, which the exact series checks
    need)."""
    port = free_port()
    interval = ["--series-interval-ms", str(interval_ms)] if interval_ms is not None else []
    w = workers("consumer", args=[
        "--kafka-brokers", kafka.bootstrap, "--topic", topic, "--group", group or f"g-{topic}",
        "--valkey-url", valkey.url, "--http-port", str(port), "--session-timeout-ms", "6000",
        *interval, *args], http_port=port)
    return w.wait_ready(60)


def wait_applied(valkey, topic, records, timeout=180, client=None):
    """Waits until Valkey's stored offsets cover `records` records of the topic (offsets of a
    fresh topic written by an idempotent, non-transactional producer are dense)."""
    c = client or valkey.client()
    wait_until(lambda: sum(stored_offsets(c, topic).values()) >= records, timeout, interval=0.2,
               what=f"{records} records of {topic} applied in Valkey")
    assert sum(stored_offsets(c, topic).values()) == records


def salesctl(*args, env=None):
    full_env = dict(os.environ, **SANITIZER_ENV)
    full_env.update(env or {})
    r = subprocess.run([str(BIN_DIR / "salesctl"), *args], capture_output=True, text=True,
                       env=full_env, timeout=60)
    assert r.returncode == 0, f"salesctl {args} exited {r.returncode}: {r.stderr}"
    return r.stdout


def dashboard(valkey_url, carnet=None):
    args = ["dashboard", "--json", "--valkey-url", valkey_url]
    if carnet:
        args += ["--carnet", carnet]
    return json.loads(salesctl(*args))


# ---------------------------------------------------------------- expected numbers

def close(a, b):
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def check_by_category(actual, expected, what):
    assert set(actual) == set(CATEGORIES.values()), (what, actual)
    for name, value in expected.items():
        assert close(actual[name], value), (what, name, actual[name], value)


def check_product(actual, units_by_product, best, what):
    if not units_by_product:
        assert actual["producto_id"] is None, (what, actual)
        return
    target = (max if best else min)(units_by_product.values())
    assert actual["units"] == target, (what, actual, target)
    assert units_by_product.get(actual["producto_id"]) == target, (what, actual)


def check_price(actual, sales, highest, what):
    target = (max if highest else min)(s.precio for s in sales)
    assert actual["precio"] == target, (what, actual, target)
    assert actual["producto_id"] in {s.producto_id for s in sales if s.precio == target}, (what, actual)


def check_dashboard(d, sales, carnet=None, series=True, window=None, interval_ms=0):
    """Every field of the dashboard JSON against what `sales` must give. Ties: any tied
    product is right. `series=False` expects the price series to have expired. `window`
    (lo_ms, hi_ms): the sales' times are not known (a writer stamped them), so the series must
    hold the product's prices, each stamped within the window. `interval_ms`: the consumer
    kept at most one point per interval, so the points are some of the product's sales, one
    per interval at most."""
    by_cat = defaultdict(list)
    units = defaultdict(int)
    for s in sales:
        by_cat[s.categoria].append(s)
        units[s.producto_id] += s.cantidad_vendida
    assert d["total_sales"] == len(sales)
    check_by_category(d["reports_by_category"],
                      {CATEGORIES[c]: len(by_cat[c]) for c in CATEGORIES}, "reports")
    check_by_category(d["avg_units_by_category"],
                      {CATEGORIES[c]: (sum(s.cantidad_vendida for s in by_cat[c]) / len(by_cat[c])
                                       if by_cat[c] else 0) for c in CATEGORIES}, "avg units")
    check_by_category(d["avg_price_by_category"],
                      {CATEGORIES[c]: (sum(s.precio for s in by_cat[c]) / len(by_cat[c])
                                       if by_cat[c] else 0) for c in CATEGORIES}, "avg price")
    check_price(d["max_price"], sales, True, "max price")
    check_price(d["min_price"], sales, False, "min price")
    check_product(d["best_selling_product"], units, True, "best")
    check_product(d["least_selling_product"], units, False, "least")

    a = d["assigned"]
    carnet = carnet or "202300539"
    cat = {0: 1, 1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 3, 7: 3, 8: 4, 9: 4}[int(carnet[-1])]
    assert a["carnet"] == carnet and a["categoria"] == CATEGORIES[cat]
    cat_units = defaultdict(int)
    for s in by_cat[cat]:
        cat_units[s.producto_id] += s.cantidad_vendida
    check_product(a["best_selling_product"], cat_units, True, "category best")
    check_product(a["least_selling_product"], cat_units, False, "category least")
    ps = a["price_series"]
    assert ps["producto_id"] == a["best_selling_product"]["producto_id"]
    want = sorted((s.ts, s.precio) for s in by_cat[cat] if s.producto_id == ps["producto_id"])
    got = sorted((int(t), p) for t, p in ps["points"])
    if series and interval_ms:
        assert got and set(got) <= set(want), ps["producto_id"]
        starts = [t - t % interval_ms for t, _ in got]
        assert len(set(starts)) == len(starts), starts
    elif series and window:
        assert sorted(p for _, p in got) == sorted(p for _, p in want), ps["producto_id"]
        assert all(window[0] <= t <= window[1] for t, _ in got), (window, got[:3])
    elif series:
        assert got == want, f"series of {ps['producto_id']}: {len(got)} points, wanted {len(want)}"
    else:
        assert got == []


def aggregate_keys(client):
    """Every aggregate key's content (series and offsets included), for primary/replica checks."""
    out = {}
    for key in client.scan_iter("sp:*", count=1000):
        kind = client.type(key)
        if kind == "string":
            out[key] = client.get(key)
        elif kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            out[key] = client.xrange(key)
        else:
            out[key] = kind
    return out
