"""`make report`'s scripts run: one scenario (REST vs gRPC, `scripts/report.sh hops`) at a tiny
size (one 1-second wrk run per layout) against the real local stack, then its tables, plots
and the splice into a copy of the report. The full measurement is `make report`, never part of
`make test`."""
import csv
import os
import subprocess

from harness import BIN_DIR, ROOT, SANITIZER_ENV


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def test_hops_scenario_writes_its_csv_tables_and_plots(tmp_path):
    informe = tmp_path / "informe.md"
    informe.write_text("antes\n<!-- BEGIN report/hops.md -->\nviejo\n<!-- END report/hops.md -->\ndespués\n")
    out = tmp_path / "report"
    env = dict(os.environ, **SANITIZER_ENV, SP_REPORT_OUT=str(out), SP_REPORT_INFORME=str(informe),
               SP_REPORT_SECONDS="1", SP_REPORT_LOADS="2", SP_BIN_DIR=str(BIN_DIR))
    subprocess.run([str(ROOT / "scripts" / "report.sh"), "hops"], env=env, check=True, timeout=240)

    runs = rows(out / "hops.csv")
    assert {r["layout"] for r in runs} == {"wrk → api → bridge → writer", "wrk → bridge → writer (sin api)"}
    assert all(int(r["accepted"]) > 0 and float(r["cpu_us_machine"]) > 0 for r in runs)
    through_api = next(r for r in runs if r["layout"].startswith("wrk → api"))
    # Every layer's own histogram saw the run (its mean over the run's window).
    assert all(float(through_api[f"{k}_ms_mean"]) > 0 for k in ("api", "bridge", "writer"))

    hops = {(b["layout"], b["hop"]): b for b in rows(out / "hops-bytes.csv")}
    rest = hops[("wrk → api → bridge → writer", "api→bridge")]
    grpc = hops[("wrk → api → bridge → writer", "bridge→writer")]
    assert rest["protocol"].startswith("REST") and grpc["protocol"].startswith("gRPC")
    for hop in (rest, grpc):
        assert float(hop["request_bytes_per_call"]) > 0 and float(hop["response_bytes_per_call"]) > 0
    assert ("wrk → bridge → writer (sin api)", "api→bridge") not in hops  # no api, no such hop
    direct = hops[("wrk → bridge → writer (sin api)", "wrk→bridge")]
    assert direct["protocol"].startswith("REST") and int(direct["packets_dropped"]) == 0

    groups = {(c["part"], c["threads"]) for c in rows(out / "hops-cpu.csv")}
    assert ("api", "cliente libcurl + main") in groups and ("writer-a", "librdkafka") in groups

    for png in ("hops.png", "hops-api.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "hops.md").read_text()
    assert "scripts/report.sh hops" in table and "| wrk → api → bridge → writer | 2 |" in table
    text = informe.read_text()
    assert "viejo" not in text and table in text and text.startswith("antes\n") and text.endswith("después\n")
