"""A known set of sales through the real chain, api -> bridge -> writer -> Kafka -> consumer ->
Valkey: the dashboard shows exactly the sales the api accepted, and none it refused."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from consume_helpers import (CARNET_FOR, CATEGORIES, check_dashboard, dashboard, make_sales,
                             start_consumer, wait_applied)
from harness import free_port


def start_chain(workers, kafka, topic):
    grpc_port, writer_http = free_port(), free_port()
    workers("writer", ["--grpc-port", str(grpc_port), "--http-port", str(writer_http),
                       "--kafka-brokers", kafka.bootstrap, "--topic", topic],
            http_port=writer_http).wait_ready(60)
    bridge_port = free_port()
    b = workers("bridge", ["--port", str(bridge_port), "--writer-target",
                           f"ipv4:127.0.0.1:{grpc_port}"], http_port=bridge_port).wait_ready(60)
    api_port = free_port()
    return workers("api", ["--port", str(api_port), "--bridge-url", b.url("/ventas")],
                   http_port=api_port).wait_ready(60)


def body(sale, i):
    # Categories go in by name (any case) or by number, as the api accepts both.
    cat = [CATEGORIES[sale.categoria], CATEGORIES[sale.categoria].lower(), sale.categoria][i % 3]
    return json.dumps({"categoria": cat, "producto_id": sale.producto_id, "precio": sale.precio,
                       "cantidad_vendida": sale.cantidad_vendida})


def test_sales_through_the_api_reach_the_dashboard(kafka, topic, valkey_clean, workers):
    valkey = valkey_clean
    api = start_chain(workers, kafka, topic)
    start_consumer(workers, kafka, topic, valkey)
    sales = make_sales(1500, seed=10)
    refused = [{"categoria": "Juguetes", "producto_id": "X", "precio": 1, "cantidad_vendida": 1},
               {"categoria": 1, "producto_id": "X", "precio": 0, "cantidad_vendida": 1},
               {"categoria": 2, "producto_id": "", "precio": 5, "cantidad_vendida": 1},
               {"categoria": 3, "producto_id": "X", "precio": 5, "cantidad_vendida": 0}]
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))

    def post(data):
        return session.post(api.url("/ventas"), data=data, timeout=60,
                            headers={"Content-Type": "application/json"})

    t0 = int(time.time() * 1000)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, [body(s, i) for i, s in enumerate(sales)]))
        bad = list(pool.map(post, [json.dumps(r) for r in refused]))
    t1 = int(time.time() * 1000)
    assert [r.status_code for r in codes] == [202] * len(sales), {r.status_code for r in codes}
    assert all(r.status_code == 400 for r in bad), [(r.status_code, r.text) for r in bad]

    wait_applied(valkey, topic, len(sales))
    for carnet in CARNET_FOR.values():
        check_dashboard(dashboard(valkey.url, carnet), sales, carnet, window=(t0 - 1000, t1 + 1000))
