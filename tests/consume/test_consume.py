"""The consumer against a real Kafka broker and a real Valkey primary + replica: the dashboard's
numbers are exactly those of the sales in the topic, whatever crashes in between."""
import json
import random
import time

import pytest

from consume_helpers import (CARNET_FOR, Streamer, aggregate_keys, check_dashboard, dashboard,
                             encode, make_sales, produce, produce_sales, salesctl,
                             start_consumer, stored_offsets, wait_applied)
from harness import free_port, http_get, wait_until


def check_all_carnets(valkey, sales, series=True):
    for carnet in CARNET_FOR.values():
        check_dashboard(dashboard(valkey.url, carnet), sales, carnet, series)


def test_dashboard_matches_the_sales(kafka, topic, valkey_clean, pb, workers):
    """With the consumer's defaults, every sale is also a point of its product's price series
    (sales 1 ms apart: a per-second series would hold a fraction of them)."""
    valkey = valkey_clean
    sales = make_sales(2000, seed=1)
    produce_sales(kafka, topic, pb, sales)
    c = start_consumer(workers, kafka, topic, valkey)
    wait_applied(valkey, topic, len(sales))
    check_all_carnets(valkey, sales)
    # The env var picks the carnet as well as the flag.
    d = json.loads(salesctl("dashboard", "--json", "--valkey-url", valkey.url,
                            env={"CARNET": "202300537"}))
    check_dashboard(d, sales, "202300537")
    table = salesctl("dashboard", "--valkey-url", valkey.url)
    assert "Total sales: 2000" in table and "Belleza" in table

    m = c.metrics()
    assert m["sp_consumer_records_total"] == 2000
    assert m["sp_consumer_sales_applied_total"] == 2000
    assert m["sp_consumer_duplicates_total"] == 0
    assert m["sp_consumer_batches_total"] >= 4
    assert m["sp_consumer_batch_seconds_count"] == m["sp_consumer_batches_total"]
    assert m["sp_consumer_assigned_partitions"] == 6
    wait_until(lambda: c.metrics()["sp_consumer_lag"] == 0, 30, what="lag 0")

    # Totals never expire; only the price series carry a TTL.
    client = valkey.client()
    for key in client.scan_iter("sp:*"):
        ttl = client.ttl(key)
        if key.startswith("sp:series"):
            assert 0 < ttl <= 86400, key
        else:
            assert ttl == -1, key
    assert c.terminate() == 0


def test_offsets_are_committed_to_kafka_for_lag_tools(kafka, topic, valkey_clean, pb, workers):
    from confluent_kafka import Consumer, TopicPartition
    sales = make_sales(600, seed=2)
    produce_sales(kafka, topic, pb, sales)
    group = f"g-{topic}"
    start_consumer(workers, kafka, topic, valkey_clean, group=group)
    wait_applied(valkey_clean, topic, len(sales))
    stored = stored_offsets(valkey_clean.client(), topic)
    probe = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group})
    try:
        def committed():
            tps = probe.committed([TopicPartition(topic, p) for p in range(6)], timeout=10)
            return {tp.partition: tp.offset for tp in tps if tp.offset >= 0} == \
                {p: o for p, o in stored.items() if o > 0}
        wait_until(committed, 30, interval=0.5, what="Kafka's committed offsets")
    finally:
        probe.close()


def test_consumer_killed_mid_stream_and_restarted(kafka, topic, valkey_clean, pb, workers):
    valkey = valkey_clean
    sales = make_sales(12000, seed=3)
    streamer = Streamer(kafka, topic, pb, sales, chunk=400, pause=0.05)
    streamer.start()
    c = start_consumer(workers, kafka, topic, valkey, "--batch-size", "100", "--batch-wait-ms", "5")
    client = valkey.client()
    for round_ in range(2):
        floor = (round_ + 1) * 2500
        wait_until(lambda: int(client.get("sp:total_sales") or 0) >= floor, 120, interval=0.05,
                   what=f"{floor} sales applied")
        c.kill()  # SIGKILL, mid-stream
        c = start_consumer(workers, kafka, topic, valkey, "--batch-size", "100",
                           "--batch-wait-ms", "5")
    streamer.finish()
    assert streamer.sent == len(sales)
    wait_applied(valkey, topic, len(sales))
    check_all_carnets(valkey, sales)


@pytest.mark.parametrize("strategy", ["range,roundrobin", "cooperative-sticky"], ids=["eager", "cooperative"])
def test_two_consumers_one_killed(kafka, topic, valkey_clean, pb, workers, strategy):
    valkey = valkey_clean
    sales = make_sales(12000, seed=4)
    args = ("--batch-size", "100", "--batch-wait-ms", "5", "--assignment-strategy", strategy)
    a = start_consumer(workers, kafka, topic, valkey, *args)
    b = start_consumer(workers, kafka, topic, valkey, *args)
    wait_until(lambda: a.metrics()["sp_consumer_assigned_partitions"] == 3 and
               b.metrics()["sp_consumer_assigned_partitions"] == 3, 60, interval=0.2,
               what="both members to own 3 partitions")
    streamer = Streamer(kafka, topic, pb, sales, chunk=400, pause=0.05)
    streamer.start()
    client = valkey.client()
    wait_until(lambda: int(client.get("sp:total_sales") or 0) >= 3000, 120, interval=0.05,
               what="3000 sales applied")
    b.kill()
    # After the session timeout the group gives b's partitions to a.
    wait_until(lambda: a.metrics()["sp_consumer_assigned_partitions"] == 6, 90, interval=0.2,
               what="the survivor to own every partition")
    streamer.finish()
    wait_applied(valkey, topic, len(sales))
    check_all_carnets(valkey, sales)


def test_valkey_primary_killed_and_restarted_from_aof(kafka, topic, valkey_clean, pb, workers):
    valkey = valkey_clean
    sales = make_sales(12000, seed=5)
    streamer = Streamer(kafka, topic, pb, sales, chunk=400, pause=0.05)
    c = start_consumer(workers, kafka, topic, valkey, "--batch-size", "200",
                       "--valkey-timeout-ms", "2000")
    streamer.start()
    client = valkey.client()
    wait_until(lambda: int(client.get("sp:total_sales") or 0) >= 3000, 120, interval=0.05,
               what="3000 sales applied")
    valkey.kill_primary()
    wait_until(lambda: http_get(c.url("/readyz"))[0] == 503, 30, what="/readyz to fail")
    time.sleep(1.0)  # an outage long enough for several retries (not a synchronisation)
    assert c.proc.poll() is None, "the consumer must ride out a Valkey outage"
    valkey.start_primary()
    c.wait_ready(60)
    streamer.finish()
    wait_applied(valkey, topic, len(sales))
    check_all_carnets(valkey, sales)
    assert c.metrics()["sp_consumer_valkey_errors_total"] > 0

    # The replica resynchronised from the restarted primary and holds the same aggregates.
    valkey.wait_replica_synced()
    primary = aggregate_keys(valkey.client())
    wait_until(lambda: aggregate_keys(valkey.replica_client()) == primary, 60, interval=0.2,
               what="the replica to hold the primary's keys")


def test_undecodable_and_invalid_records_are_skipped(kafka, topic, valkey_clean, pb, workers):
    valkey = valkey_clean
    rng = random.Random(6)
    sales = make_sales(1500, seed=6)
    values, stamps, junk, invalid = [], [], 0, 0
    bad = [pb.ProductSaleRequest(categoria=0, producto_id="X", precio=1, cantidad_vendida=1),
           pb.ProductSaleRequest(categoria=9, producto_id="X", precio=1, cantidad_vendida=1),
           pb.ProductSaleRequest(categoria=1, producto_id="", precio=1, cantidad_vendida=1),
           pb.ProductSaleRequest(categoria=1, producto_id="X" * 65, precio=1, cantidad_vendida=1),
           pb.ProductSaleRequest(categoria=2, producto_id="X", precio=-3, cantidad_vendida=1),
           pb.ProductSaleRequest(categoria=2, producto_id="X", precio=2e6, cantidad_vendida=1),
           pb.ProductSaleRequest(categoria=3, producto_id="X", precio=1, cantidad_vendida=0)]
    for s in sales:
        values.append(encode(pb, s))
        stamps.append(s.ts)
        if rng.random() < 0.1:
            # Field 0 / wire type 7 never parses, whatever follows.
            values.append(b"\x07" + rng.randbytes(rng.randrange(0, 40)))
            stamps.append(s.ts)
            junk += 1
        if rng.random() < 0.1:
            values.append(rng.choice(bad).SerializeToString())
            stamps.append(s.ts)
            invalid += 1
    values.append(b"")  # an empty value: a message with every field unset
    stamps.append(sales[-1].ts)
    invalid += 1
    produce(kafka, topic, values, stamps)
    c = start_consumer(workers, kafka, topic, valkey)
    wait_applied(valkey, topic, len(values))
    check_all_carnets(valkey, sales)
    m = c.metrics()
    assert m['sp_consumer_decode_errors_total{reason="undecodable"}'] == junk
    assert m['sp_consumer_decode_errors_total{reason="invalid"}'] == invalid
    assert m["sp_consumer_sales_applied_total"] == len(sales)
    assert any(e["event"] == "record_skipped" for e in c.log_events())


def test_series_expire_and_totals_stay(kafka, topic, valkey_clean, pb, workers):
    valkey = valkey_clean
    sales = make_sales(1000, seed=7)
    produce_sales(kafka, topic, pb, sales)
    start_consumer(workers, kafka, topic, valkey, "--series-ttl-seconds", "2")
    wait_applied(valkey, topic, len(sales))
    client = valkey.client()
    assert any(True for _ in client.scan_iter("sp:series*"))
    wait_until(lambda: not any(True for _ in client.scan_iter("sp:series*")), 60, interval=0.2,
               what="the price series to expire")
    check_all_carnets(valkey, sales, series=False)


def test_series_keeps_one_point_per_product_and_interval(kafka, topic, valkey_clean, pb, workers):
    valkey = valkey_clean
    sales = make_sales(2000, seed=11, step_ms=10)  # 20 s of sales
    produce_sales(kafka, topic, pb, sales)
    start_consumer(workers, kafka, topic, valkey, interval_ms=1000)
    wait_applied(valkey, topic, len(sales))
    for carnet in CARNET_FOR.values():
        check_dashboard(dashboard(valkey.url, carnet), sales, carnet, interval_ms=1000)
    # Far fewer points than sales: the top products sold in every one of the ~20 seconds.
    client = valkey.client()
    lengths = [client.xlen(k) for k in client.scan_iter("sp:series:*")]
    assert max(lengths) <= 21 and sum(lengths) < len(sales) / 2, lengths
    assert client.ttl("sp:series_last") > 0


def test_series_length_is_bounded_per_product(kafka, topic, valkey_clean, pb, workers):
    """Every sale is a point, but a product's series keeps only about its latest
    --series-max-len points (XADD MAXLEN ~ trims whole stream nodes of 100 entries)."""
    valkey = valkey_clean
    sales = make_sales(1500, seed=13)
    for s in sales:
        s.producto_id, s.categoria = "ROPA-HOT", 2
    produce_sales(kafka, topic, pb, sales, partition=0)   # one partition: applied in order
    start_consumer(workers, kafka, topic, valkey, "--series-max-len", "200")
    wait_applied(valkey, topic, len(sales))
    client = valkey.client()
    length = client.xlen("sp:series:ROPA-HOT")
    assert 200 <= length <= 300, length
    # One partition, applied in offset order: the latest point is the latest sale.
    last = client.xrevrange("sp:series:ROPA-HOT", count=1)[0][1]
    assert int(last["ts"]) == sales[-1].ts
    assert int(client.get("sp:total_sales")) == 1500   # the totals are not bounded
    assert 0 < client.ttl("sp:series:ROPA-HOT") <= 86400


def test_wait_for_the_replica(kafka, topic, valkey_clean, pb, workers):
    valkey = valkey_clean
    sales = make_sales(3000, seed=8)
    produce_sales(kafka, topic, pb, sales)
    c = start_consumer(workers, kafka, topic, valkey, "--wait-replicas", "1",
                       "--wait-timeout-ms", "5000")
    wait_applied(valkey, topic, len(sales))
    check_all_carnets(valkey, sales)
    # Each batch waited for the replica, so it already holds what the primary holds.
    wait_applied(valkey, topic, len(sales), client=valkey.replica_client())
    assert aggregate_keys(valkey.replica_client()) == aggregate_keys(valkey.client())
    assert c.metrics()["sp_consumer_wait_short_total"] == 0


def test_starts_and_stops_while_valkey_is_down(kafka, topic, valkey, pb, workers):
    """Readiness follows Valkey; SIGTERM while Valkey has never answered still exits 0."""
    port = free_port()
    dead = f"redis://127.0.0.1:{free_port()}"
    w = workers("consumer", args=[
        "--kafka-brokers", kafka.bootstrap, "--topic", topic, "--group", f"g-{topic}",
        "--valkey-url", dead, "--http-port", str(port), "--stop-grace-seconds", "1"],
        http_port=port)
    wait_until(lambda: http_get(w.url("/healthz"))[0] == 200, 30, what="/healthz")
    assert http_get(w.url("/readyz"))[0] == 503
    produce_sales(kafka, topic, pb, make_sales(50, seed=9))
    wait_until(lambda: w.metrics()["sp_consumer_valkey_errors_total"] >= 2, 60,
               what="Valkey errors counted")
    assert w.terminate() == 0


def test_sigterm_mid_stream_then_restart(kafka, topic, valkey_clean, pb, workers):
    valkey = valkey_clean
    sales = make_sales(8000, seed=12)
    streamer = Streamer(kafka, topic, pb, sales, chunk=400, pause=0.05)
    streamer.start()
    c = start_consumer(workers, kafka, topic, valkey, "--batch-size", "100")
    client = valkey.client()
    wait_until(lambda: int(client.get("sp:total_sales") or 0) >= 2000, 120, interval=0.05,
               what="2000 sales applied")
    assert c.terminate() == 0
    events = [json.loads(line)["event"] for line in c.log_path.read_text().splitlines()
              if line.startswith("{")]
    assert "stopping" in events and events[-1] == "stopped", events[-5:]
    start_consumer(workers, kafka, topic, valkey, "--batch-size", "100")
    streamer.finish()
    wait_applied(valkey, topic, len(sales))
    check_all_carnets(valkey, sales)


def test_valkey_emptied_mid_stream_is_rebuilt_from_kafka(kafka, topic, valkey_clean, pb, workers):
    """Valkey losing writes (here all of them, as a restart without its AOF would) must not
    leave a gap: the consumer sees that Valkey holds less than it applied, rewinds those
    partitions to what Valkey holds and counts everything again from Kafka."""
    valkey = valkey_clean
    sales = make_sales(10000, seed=13)
    streamer = Streamer(kafka, topic, pb, sales, chunk=400, pause=0.05)
    c = start_consumer(workers, kafka, topic, valkey, "--batch-size", "200")
    streamer.start()
    client = valkey.client()
    wait_until(lambda: int(client.get("sp:total_sales") or 0) >= 3000, 120, interval=0.05,
               what="3000 sales applied")
    client.flushall()
    streamer.finish()
    wait_applied(valkey, topic, len(sales))
    check_all_carnets(valkey, sales)
    assert c.metrics()["sp_consumer_rewinds_total"] >= 1
    assert any(e["event"] == "valkey_behind" for e in c.log_events())


def test_password_from_the_url_or_the_environment(kafka, topic, valkey_with_password, pb,
                                                  workers):
    port, client = valkey_with_password
    sales = make_sales(300, seed=14)
    produce_sales(kafka, topic, pb, sales)
    http = free_port()
    url = f"redis://127.0.0.1:{port}"
    w = workers("consumer", args=[
        "--kafka-brokers", kafka.bootstrap, "--topic", topic, "--group", f"g-{topic}",
        "--valkey-url", url, "--http-port", str(http), "--series-interval-ms", "0"],
        env={"VALKEY_PASSWORD": "s3cr@t/pw"}, http_port=http).wait_ready(60)

    class Server:  # what wait_applied needs
        pass
    wait_applied(Server, topic, len(sales), client=client)
    # The password in the URL, %-encoded.
    check_dashboard(dashboard(f"redis://:s3cr%40t%2Fpw@127.0.0.1:{port}"), sales)
    check_dashboard(json.loads(salesctl("dashboard", "--json", "--valkey-url", url,
                                        env={"VALKEY_PASSWORD": "s3cr@t/pw"})), sales)
    assert w.terminate() == 0


def test_member_stalled_past_its_session_counts_nothing_twice(kafka, topic, valkey_clean, pb,
                                                             workers):
    """A member frozen (SIGSTOP) past its session timeout loses its partitions to another; when
    it wakes up it may still apply the batch it held: the script's offset check refuses what
    the other member applied meanwhile."""
    import signal
    valkey = valkey_clean
    sales = make_sales(12000, seed=15)
    # Paced (about 1,600 sales/s), and the second half held back until the takeover, so that
    # most sales are still to come when `a` freezes: at full speed `a` could apply nearly all of
    # them between two polls of a loaded machine, and on a slow one the takeover (the session
    # timeout, then a rebalance) outlasted the whole paced stream.
    hold_after = 6000   # a multiple of the chunk: exactly this many are produced before the resume
    streamer = Streamer(kafka, topic, pb, sales, chunk=400, pause=0.25, hold_after=hold_after)
    streamer.start()
    a = start_consumer(workers, kafka, topic, valkey, "--batch-size", "100")
    client = valkey.client()
    wait_until(lambda: int(client.get("sp:total_sales") or 0) >= 2000, 120, interval=0.05,
               what="2000 sales applied")
    a.proc.send_signal(signal.SIGSTOP)
    try:
        b = start_consumer(workers, kafka, topic, valkey, "--batch-size", "100")
        wait_until(lambda: b.metrics()["sp_consumer_assigned_partitions"] == 6, 90, interval=0.2,
                   what="the other member to take every partition")
        applied = int(client.get("sp:total_sales") or 0)
        assert applied <= hold_after, f"{applied} applied of {hold_after} produced: a sale counted twice"
        streamer.resume.set()
        floor = applied + 1000
        wait_until(lambda: int(client.get("sp:total_sales") or 0) >= floor, 120, interval=0.05,
                   what="the other member to apply sales")
    finally:
        a.proc.send_signal(signal.SIGCONT)
    streamer.finish()
    wait_applied(valkey, topic, len(sales))
    check_all_carnets(valkey, sales)
    wait_until(lambda: a.metrics()["sp_consumer_assigned_partitions"] +
               b.metrics()["sp_consumer_assigned_partitions"] == 6, 90, interval=0.2,
               what="the woken member to rejoin")
