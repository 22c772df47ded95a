#!/usr/bin/env python3
"""`make report` / scripts/report.sh: runs the comparisons of docs/informe.md on this machine
and writes CSV files, Markdown tables and PNG plots into SP_REPORT_OUT (default docs/report/),
then copies the tables into docs/informe.md between their markers.

    report.py [kafka] [valkey] [hops] [writers] [render]     (none: all of them)

Each scenario starts its own stack (scripts/local.sh, state in build/report/<scenario>/) and
stops it, even on failure. `render` only redraws the tables and plots from the CSV files.
Environment: SP_REPORT_SECONDS (each wrk run, default 5), SP_REPORT_LOADS (wrk connections,
default "1 16 64"), SP_REPORT_OUT, SP_REPORT_INFORME (the report to splice into; default
docs/informe.md when SP_REPORT_OUT is docs/report, else none), SP_PORT_BASE (default: a free
range between 20000 and 40000),
SP_BIN_DIR (default build/bin)."""
import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import render  # noqa: E402
import scenarios  # noqa: E402
from stack import ROOT, Stack, loadavg, local_sh_port_base, log, machine_info  # noqa: E402

SCENARIOS = ("kafka", "valkey", "hops", "writers")


def write_csv(path, rows, meta):
    """Rows as CSV, after comment lines saying how, when and where they were measured."""
    columns = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with open(path, "w", newline="") as f:
        for key in ("command", "date", "commit", "machine", "loadavg_before", "loadavg_after"):
            f.write(f"# {key}: {meta[key]}\n")
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)


def run(name, out, seconds, loads, port_base, bin_dir):
    info = machine_info()
    meta = {"command": f"scripts/report.sh {name}", "date": info["date"], "commit": info["commit"],
            "machine": f"{info['nproc']} núcleos, {info['cpu_model']}, {info['memory_gib']} GiB",
            "loadavg_before": info["loadavg"], "seconds_per_run": seconds, "loads": loads}
    stack = Stack(ROOT / "build" / "report" / name, port_base, bin_dir)
    t0 = time.monotonic()
    log(f"{name}: load average {info['loadavg']}; {seconds} s per run at {loads} connections")
    try:
        stack.down()  # what a previous, interrupted run left
        tables, notes = getattr(scenarios, name)(stack, loads, seconds)
    finally:
        stack.down()
    meta["loadavg_after"] = loadavg()
    meta["wall_seconds"] = round(time.monotonic() - t0)
    meta["notes"] = notes
    for fname, rows in zip(render.SCENARIO_FILES[name][1], tables, strict=True):
        write_csv(out / fname, rows, meta)
    (out / f"{name}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    log(f"{name}: done in {meta['wall_seconds']} s")


def main():
    # SIGTERM, and SIGINT even when a background shell started us with it ignored, end the run
    # through the scenarios' `finally`, which stops their stack.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    wanted = sys.argv[1:] or [*SCENARIOS, "render"]
    bad = [w for w in wanted if w not in (*SCENARIOS, "render", "all")]
    if bad:
        sys.exit(f"usage: report.py [{'|'.join(SCENARIOS)}|render|all]... (not {' '.join(bad)})")
    if "all" in wanted:
        wanted = [*SCENARIOS, "render"]
    out = Path(os.environ.get("SP_REPORT_OUT", ROOT / "docs" / "report")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    default_informe = ROOT / "docs" / "informe.md" if out == (ROOT / "docs" / "report") else ""
    informe = os.environ.get("SP_REPORT_INFORME", str(default_informe))
    seconds = int(os.environ.get("SP_REPORT_SECONDS", "5"))
    loads = [int(c) for c in os.environ.get("SP_REPORT_LOADS", "1 16 64").split()]
    port_base = int(os.environ.get("SP_PORT_BASE") or local_sh_port_base())
    bin_dir = Path(os.environ.get("SP_BIN_DIR", ROOT / "build" / "bin"))
    for name in wanted:
        if name in SCENARIOS:
            run(name, out, seconds, loads, port_base, bin_dir)
    # Tables and plots of every scenario with results, the new and the kept ones.
    render.render_all(out, Path(informe) if informe else None)


if __name__ == "__main__":
    main()
