"""`make report`'s scripts run: one scenario (REST vs gRPC, `scripts/report.sh hops`) at a tiny
size (one 1-second wrk run per layout: the api with one sale per request, the api with
batches, wrk straight to the bridge) against the real local stack, then its tables, plots
and the splice into a copy of the report. The full measurement is `make report`, never part of
`make test`."""
import csv
import os
import signal
import subprocess

from harness import BIN_DIR, ROOT, SANITIZER_ENV, stop_process


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def stop_report(report, env):
    """Stops a report.sh still running, so that its local stack comes down: SIGTERM ends
    report.py through its scenario's `finally` (stack.down()); if even that hangs, it is
    killed and local.sh down runs on the scenario's state folder."""
    if report.poll() is not None:
        return
    stop_process(report, 120)
    if report.returncode == -signal.SIGKILL:
        subprocess.run([str(ROOT / "scripts" / "local.sh"), "down"], check=True, timeout=120,
                       env=dict(env, SP_LOCAL_DIR=str(ROOT / "build" / "report" / "hops")))


def test_hops_scenario_writes_its_csv_tables_and_plots(tmp_path):
    informe = tmp_path / "informe.md"
    informe.write_text("antes\n<!-- BEGIN report/hops.md -->\nviejo\n<!-- END report/hops.md -->\ndespués\n")
    out = tmp_path / "report"
    env = dict(os.environ, **SANITIZER_ENV, SP_REPORT_OUT=str(out), SP_REPORT_INFORME=str(informe),
               SP_REPORT_SECONDS="1", SP_REPORT_LOADS="2", SP_BIN_DIR=str(BIN_DIR))
    report = subprocess.Popen([str(ROOT / "scripts" / "report.sh"), "hops"], env=env)
    try:
        assert report.wait(240) == 0, f"scripts/report.sh hops exited {report.returncode}"
    finally:
        stop_report(report, env)

    per_sale, batched, direct_layout = ("wrk → api → bridge → writer",
                                        "wrk → api → bridge → writer, lotes de hasta 60",
                                        "wrk → bridge → writer (sin api)")
    runs = {r["layout"]: r for r in rows(out / "hops.csv")}
    assert set(runs) == {per_sale, batched, direct_layout}
    assert all(int(r["accepted"]) > 0 and float(r["cpu_us_machine"]) > 0 for r in runs.values())
    # Every layer's own histogram saw the run (its mean over the run's window).
    for layout in (per_sale, batched):
        assert all(float(runs[layout][f"{k}_ms_mean"]) > 0 for k in ("api", "bridge", "writer"))
    # One POST per sale against batches: the bridge took as many requests as sales, or fewer.
    assert runs[per_sale]["bridge_batch_max"] == "1" and runs[batched]["bridge_batch_max"] == "60"
    assert float(runs[per_sale]["sales_per_bridge_request"]) == 1.0
    assert float(runs[batched]["sales_per_bridge_request"]) >= 1.0

    hops = {(b["layout"], b["hop"]): b for b in rows(out / "hops-bytes.csv")}
    rest = hops[(per_sale, "api→bridge")]
    grpc = hops[(per_sale, "bridge→writer")]
    assert rest["protocol"] == "REST (HTTP/1.1, JSON)" and grpc["protocol"].startswith("gRPC")
    for hop in (rest, grpc):
        assert float(hop["request_bytes_per_call"]) > 0 and float(hop["response_bytes_per_call"]) > 0
        assert float(hop["sales_per_call"]) == 1.0  # each call counted once, each sale once
    lot = hops[(batched, "api→bridge")]
    assert "lotes" in lot["protocol"] and int(lot["sales"]) >= int(lot["calls"]) > 0
    lot_grpc = hops[(batched, "bridge→writer")]  # the api's batch goes on as one ProcesarLote
    assert "ProcesarLote" in lot_grpc["protocol"] and int(lot_grpc["sales"]) >= int(lot_grpc["calls"]) > 0
    assert (direct_layout, "api→bridge") not in hops  # no api, no such hop
    direct = hops[(direct_layout, "wrk→bridge")]
    assert direct["protocol"].startswith("REST") and int(direct["packets_dropped"]) == 0

    groups = {(c["part"], c["threads"]) for c in rows(out / "hops-cpu.csv")}
    assert ("api", "cliente libcurl + main") in groups and ("writer-a", "librdkafka") in groups

    for png in ("hops.png", "hops-api.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "hops.md").read_text()
    assert "scripts/report.sh hops" in table and "| wrk → api → bridge → writer | 2 |" in table
    assert f"| {batched} | 2 |" in table
    text = informe.read_text()
    assert "viejo" not in text and table in text and text.startswith("antes\n") and text.endswith("después\n")
