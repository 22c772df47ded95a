"""The Grafana dashboards the operator generates.

Sales dashboard: a real Valkey is filled by the real consumer from a known set of sales (real
Kafka); then every panel's query, translated from the Redis data source plugin's target
(command, keyName, min/max, start/end) into the Valkey command the plugin sends, is run; its
reply becomes the data frames the plugin makes of it, the panel's transformations run on those
(grafana_frames.py), and what the panel then shows must be exactly what `salesctl dashboard
--json` shows for it. Two carnets, two categories: the assigned-category section follows the
carnet.

Both dashboards decode strictly into the Grafana Foundation SDK's dashboard types
(tools/dashcheck). Health dashboard: every metric it queries is one the workers (or
kube-state-metrics) export."""
import json
import re
import subprocess
from pathlib import Path

import pytest

from consume.consume_helpers import (dashboard, make_sales, produce_sales,
                                     start_consumer, wait_applied)
from grafana_frames import (custom_frame, fields_by_name, get_frame, hgetall_frame, last_not_null,
                            transform, xrange_frame, zrange_frame)
from harness import ROOT
from infra_helpers import render, render_json, write_pipeline

CARNETS = {"202300539": "Belleza", "202300533": "Ropa"}
VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def raw(client, *args):
    """The server's reply as the plugin gets it (no client-side reshaping)."""
    conn = client.connection_pool.get_connection(args[0])
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        client.connection_pool.release(conn)


def plugin_command(target, variables):
    """The command grafana-redis-datasource sends for a target (pkg/redis-*.go)."""
    key = VARIABLE.sub(lambda m: variables[m.group(1)], target["keyName"])
    cmd = target["command"]
    if cmd in ("get", "hgetall"):
        return [cmd.upper(), key]
    if cmd == "zrange":
        extra = [target["zrangeQuery"]] if target.get("zrangeQuery") else []
        return ["ZRANGE", key, target["min"], target["max"], *extra, "WITHSCORES"]
    if cmd == "xrange":
        count = ["COUNT", str(target["count"])] if target.get("count") else []
        return ["XRANGE", key, target.get("start") or "-", target.get("end") or "+", *count]
    raise AssertionError(f"a command this test does not know: {cmd}")


def resolve_variables(dash, client):
    """Query variables as Grafana fills them: the plugin runs the query as a custom command,
    its frame's values are the options, and the first is selected."""
    values = {}
    for v in dash["templating"]["list"]:
        assert v["type"] == "query" and v["datasource"]["type"] == "redis-datasource", v
        (frame,) = [custom_frame(raw(client, *v["query"].split()))]
        options = fields_by_name(frame)["Value"]["values"]
        assert options != ["(empty array)"], f"variable {v['name']}: {v['query']} gave nothing"
        values[v["name"]] = options[0]
    return values


def frames_of(target, cmd, reply):
    """The frames the plugin makes of the reply to `cmd` (grafana_frames.py)."""
    return {"hgetall": lambda: [hgetall_frame(reply)], "zrange": lambda: [zrange_frame(reply)],
            "get": lambda: [get_frame(cmd[1], reply)],
            "xrange": lambda: [xrange_frame(reply)]}[target["command"]]()


def bars(panel, frames):
    """A bar chart's bars: {x value: number}. It needs one frame with the xField as strings and
    one number field beside it (Grafana draws nothing otherwise)."""
    what = f"panel {panel['title']!r}"
    assert len(frames) == 1, f"{what}: {len(frames)} frames"
    fields = fields_by_name(frames[0])
    x = panel["options"]["xField"]
    assert x in fields and fields[x]["type"] == "string", f"{what}: no string field {x}: {fields}"
    numbers = [f for n, f in fields.items() if n != x and f["type"] == "number"]
    assert len(numbers) == 1, f"{what}: bars need one number field: {fields}"
    return dict(zip(fields[x]["values"], numbers[0]["values"]))


def stat_values(panel, frames):
    """A stat panel's values with values=false: {field name: its lastNotNull}, for the fields
    its reduceOptions.fields regex selects."""
    red = panel["options"]["reduceOptions"]
    assert red["values"] is False and red["calcs"] == ["lastNotNull"], red
    pattern = re.compile(red["fields"].strip("/"))
    return {f["name"]: last_not_null(f["values"]) for fr in frames for f in fr["fields"]
            if pattern.search(f["name"])}


def series_points(panel, frames):
    """A time series panel's points: [(time ms, precio)], after its transformations. It needs
    a time field and the number field to plot."""
    what = f"panel {panel['title']!r}"
    assert len(frames) == 1, f"{what}: {len(frames)} frames"
    fields = fields_by_name(frames[0])
    times = [f for f in fields.values() if f["type"] == "time"]
    assert len(times) == 1, f"{what}: one time field wanted: {list(fields)}"
    assert fields["precio"]["type"] == "number", fields["precio"]
    assert all(f["type"] in ("time", "number") for f in fields.values()), list(fields)
    return list(zip(times[0]["values"], fields["precio"]["values"]))


def check_panel(panel, frames, cmd, want):
    """What the panel shows, from its transformed frames, against salesctl for its key."""
    key, a = cmd[1], want["assigned"]
    what = f"panel {panel['title']!r}: {' '.join(cmd)}"
    frames = transform(panel, frames)
    if key == "sp:total_sales":
        assert panel["type"] == "stat", what
        assert stat_values(panel, frames) == {"Value": want["total_sales"]}, what
    elif key in ("sp:avg_units", "sp:avg_price", "sp:reports"):
        field = {"sp:avg_units": "avg_units_by_category", "sp:avg_price": "avg_price_by_category",
                 "sp:reports": "reports_by_category"}[key]
        assert panel["type"] == "barchart", what
        assert bars(panel, frames) == want[field], what
    elif key in ("sp:max_price", "sp:min_price"):
        assert panel["type"] == "stat", what
        assert stat_values(panel, frames) == want[key[3:]], what
    elif key == "sp:units" or key.startswith("sp:units:"):
        side = {"-1": "best_selling_product", "0": "least_selling_product"}[cmd[2]]
        if key != "sp:units":
            assert key == f"sp:units:{a['categoria']}", what
        best = (want if key == "sp:units" else a)[side]
        assert panel["type"] == "stat", what
        assert stat_values(panel, frames) == {best["producto_id"]: best["units"]}, what
    elif key.startswith("sp:series:"):
        series = a["price_series"]
        assert key == f"sp:series:{series['producto_id']}", what
        assert panel["type"] == "timeseries", what
        points = series_points(panel, frames)
        assert points and points == [(int(t), p) for t, p in series["points"]], what
    else:
        raise AssertionError(f"{what}: a key the dashboard layout does not have")


def check_text_panels(dash, carnet, category):
    texts = {p["title"]: p["options"]["content"] for p in dash["panels"] if p["type"] == "text"}
    assert texts["Carnet"] == f"# {carnet}"
    assert texts["Categoría asignada"] == f"# {category}"


@pytest.fixture(scope="module")
def filled(kafka, tmp_path_factory, pb_stubs, valkey):
    """A Valkey filled by the real consumer from 3000 known sales (module scope: the data is
    only read afterwards)."""
    from harness import Worker
    valkey.flushall()
    topic = kafka.create_topic(f"t-infra-dashboard-{id(tmp_path_factory)}", partitions=6)
    sales = make_sales(3000, seed=61)
    produce_sales(kafka, topic, pb_stubs, sales)
    log_dir = tmp_path_factory.mktemp("consumer")
    started = []

    def workers(name, *args, **kw):
        w = Worker(name, *args, log_dir=log_dir, **kw)
        started.append(w)
        return w
    try:
        start_consumer(workers, kafka, topic, valkey)
        wait_applied(valkey, topic, len(sales))
    finally:
        codes = [w.terminate() for w in started]
    assert codes == [0], codes
    return valkey


@pytest.mark.parametrize("carnet", CARNETS)
def test_every_panel_reads_what_salesctl_shows(filled, tmp_path, carnet):
    category = CARNETS[carnet]

    def set_carnet(spec):
        spec["grafana"]["carnet"] = carnet
    dash = render_json("dashboard-sales", write_pipeline(tmp_path, set_carnet))
    want = dashboard(filled.url, carnet)
    assert want["assigned"]["categoria"] == category
    client = filled.replica_client()  # Grafana reads the replica
    filled.wait_replica_synced()
    variables = resolve_variables(dash, client)
    assert variables["producto"] == want["assigned"]["best_selling_product"]["producto_id"]

    checked = 0
    for panel in dash["panels"]:
        if panel["type"] in ("row", "text"):
            assert "targets" not in panel
            continue
        assert len(panel["targets"]) == 1, f"{panel['title']}: one read per panel"
        target = panel["targets"][0]
        assert target["type"] == "command" and target["datasource"]["type"] == "redis-datasource"
        assert panel["datasource"] == target["datasource"]
        cmd = plugin_command(target, variables)
        check_panel(panel, frames_of(target, cmd, raw(client, *cmd)), cmd, want)
        checked += 1
    assert checked == 11  # the 7 reads of the top part, total sales, 2 products + series of the category
    check_text_panels(dash, carnet, category)
    uses_category = {p["targets"][0]["keyName"] for p in dash["panels"] if "targets" in p}
    assert f"sp:units:{category}" in uses_category
    assert not any(k.startswith("sp:units:") and k != f"sp:units:{category}" for k in uses_category)


def test_dashboards_decode_strictly_into_the_foundation_sdk(tmp_path):
    """Every field of both dashboards is one the Grafana Foundation SDK's types know, with the
    right type, and none they require is missing (panel options included)."""
    files = []
    for which in ("dashboard-sales", "dashboard-health"):
        path = tmp_path / f"{which}.json"
        path.write_text(render(which, write_pipeline(tmp_path)))
        files.append(str(path))
    dashcheck = subprocess.run([str(ROOT / "scripts" / "gotool.sh"), "dashcheck"], check=True,
                               capture_output=True, text=True, timeout=1800).stdout.strip()
    r = subprocess.run([dashcheck, *files], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(": ok (") == 2, r.stdout
    # and it does refuse: an option the barchart type does not have
    sales = json.loads(Path(files[0]).read_text())
    bar = next(p for p in sales["panels"] if p["type"] == "barchart")
    bar["options"]["bogus"] = True
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(sales))
    r = subprocess.run([dashcheck, str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "unexpected field 'bogus'" in r.stderr, r.stderr


def test_two_pipelines_two_dashboards(tmp_path):
    """Dashboards of different pipelines never collide in Grafana (uid, title), and a pipeline
    without a carnet gets no assigned-category reads."""
    def other(spec):
        spec["grafana"]["carnet"] = ""
    a = render_json("dashboard-sales", write_pipeline(tmp_path / "a"))
    b = render_json("dashboard-sales", write_pipeline(tmp_path / "b", other, name="b.yaml"))
    assert a["uid"] == b["uid"]  # same namespace/name: same dashboard, updated in place
    assert len(a["uid"]) <= 40
    keys = [p["targets"][0]["keyName"] for p in b["panels"] if "targets" in p]
    assert not any(k.startswith("sp:units:") or k.startswith("sp:series:") for k in keys)
    assert b["templating"]["list"] == []


def exported_metric_names():
    """Every metric name our programs register (sp_counter_new("name", ...) and friends)."""
    names = set()
    for src in list((ROOT / "workers").rglob("*.c")) + list((ROOT / "common").glob("*.c")):
        for kind, name in re.findall(r"sp_(counter|gauge|gauge_fn|histogram)_new\(\s*\"(\w+)\"",
                                     Path(src).read_text()):
            names.add(name)
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


def test_health_dashboard_queries_exported_metrics(tmp_path):
    dash = render_json("dashboard-health", write_pipeline(tmp_path))
    exported = exported_metric_names()
    assert "sp_http_request_duration_seconds_bucket" in exported
    seen = set()
    for panel in dash["panels"]:
        for t in panel["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for name in re.findall(r"\b((?:sp|kube)_\w+)\{", t["expr"]):
                seen.add(name)
                if name.startswith("sp_"):
                    assert name in exported, f"{panel['title']}: {name} is not exported"
            assert 'namespace="blackfriday"' in t["expr"]
    # sales/s by status, p99 per hop, consumer lag, HPA replicas
    for needed in ("sp_http_requests_total", "sp_writer_request_duration_seconds_bucket",
                   "sp_consumer_lag", "kube_horizontalpodautoscaler_status_current_replicas"):
        assert needed in seen, needed
