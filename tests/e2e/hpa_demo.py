"""make hpa-demo (issue 12): the api's HorizontalPodAutoscaler for real, on the local node.

The pipeline is the e2e's (local_pipeline.py, one place for the setup) with
overlay/hpa-demo-patch.yaml on top: a small api CPU request and a 30 s scale-down window.
Real Locust (the venv's) runs the `hpa` shape of locust/locustfile.py against the api's
Service: a ramp to SP_HPA_PEAK_USERS users (10 sales/s each), a plateau, then the load ends.
Every SP_HPA_SAMPLE_SECONDS a recorder notes the api's replicas (ready, the HPA's current and
desired), the HPA's CPU reading against its target and each pod's CPU and memory (the metrics
API); Locust's stats history gives the answered requests/s and the p50/p95/p99 latency.
Afterwards: the dashboard's total against Locust's 2xx count (and Kafka's sale ids), the failed
requests counted, and under docs/report/:
  hpa.csv       one row per sample (comment lines first: command, date, commit, machine, result)
  hpa_pods.csv  CPU and memory of every pod of the pipeline per sample (the report's VPA answer)
  hpa.png       replicas, CPU utilisation, requests/s and latency over time
  hpa.md        the run in words and numbers: when the HPA scaled up and down, to what
  hpa.json      every number of the run
Locust's own files and the pods' logs stay in build/hpa-demo/.

It exits non-zero, saying why, when the api did not reach 3 replicas under the load, did not
come back to 1 after it, or the dashboard does not count exactly the 2xx sales. The node comes
down on every way out (SIGTERM and SIGINT included).
  .venv/bin/python tests/e2e/hpa_demo.py        (scripts/hpa-demo.sh, make hpa-demo)
  .venv/bin/python tests/e2e/hpa_demo.py --render   hpa.md again from hpa.json, no run"""
import csv
import datetime
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE), str(HERE.parent.parent / "scripts" / "report")]

from harness import ROOT, topic_sale_ids, wait_until  # noqa: E402
from local_pipeline import NAME, NS, OVERLAY, LocalPipeline, SetupError  # noqa: E402
from nodekit import running_node  # noqa: E402
from stack import loadavg, machine_info  # noqa: E402

WORK = ROOT / "build" / "hpa-demo"
DOCS = Path(os.environ.get("SP_HPA_OUT", ROOT / "docs" / "report"))
PEAK_USERS = int(os.environ.get("SP_HPA_PEAK_USERS", "30"))
RAMP_S = int(os.environ.get("SP_HPA_RAMP_SECONDS", "60"))
PLATEAU_S = int(os.environ.get("SP_HPA_PLATEAU_SECONDS", "150"))
COOLDOWN_S = int(os.environ.get("SP_HPA_COOLDOWN_SECONDS", "240"))
SAMPLE_S = float(os.environ.get("SP_HPA_SAMPLE_SECONDS", "5"))
BASELINE_S = 3 * SAMPLE_S       # recorded at rest before the load and after the way back
SALES_PER_USER_S = 10           # locustfile.py: constant_throughput(10)
HPA = f"{NAME}-api"


def log(msg):
    print(f"[hpa-demo] {msg}", flush=True)


def millicores(q):
    """A CPU quantity ("12345678n", "1500u", "20m", "1") in millicores."""
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0}
    return float(q[:-1]) * units[q[-1]] if q[-1] in units else float(q) * 1000


def mebibytes(q):
    for suffix, f in {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}.items():
        if q.endswith(suffix):
            return float(q[:-2]) * f
    return float(q) / (1 << 20)


def kube_time(stamp):
    """An RFC 3339 time of the API ("2026-11-29T13:20:05Z", maybe with fractions) as Unix time."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Recorder:
    """Samples the HPA, the api's Deployment and the metrics API every SAMPLE_S seconds, in a
    thread of its own; a sample that fails is counted and the recording goes on."""

    def __init__(self, node):
        self.node = node
        self.rows, self.pods = [], []
        self.missed, self.last_error = 0, None
        self.stop = threading.Event()

    def sample(self):
        k = self.node
        now = time.time()
        hpa = k.get("hpa", "-n", NS, HPA)
        st = hpa.get("status", {})
        cpu = next((m["resource"]["current"].get("averageUtilization") for m in st.get("currentMetrics") or []
                    if m.get("type") == "Resource"), None)
        deploy = k.get("deployment", "-n", NS, HPA)
        metrics = json.loads(k.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods").stdout)
        api_cpu = {}
        for item in metrics["items"]:
            name = item["metadata"]["name"]
            component = item["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
            c = sum(millicores(ct["usage"]["cpu"]) for ct in item["containers"])
            m = sum(mebibytes(ct["usage"]["memory"]) for ct in item["containers"])
            self.pods.append({"unix": round(now, 1), "pod": name, "component": component,
                              "cpu_m": round(c, 1), "mem_mib": round(m, 1), "window": item.get("window", "")})
            if component == "api":
                api_cpu[name] = round(c, 1)
        self.rows.append({"unix": round(now, 1), "api_ready": deploy.get("status", {}).get("readyReplicas", 0),
                          "hpa_current": st.get("currentReplicas"), "hpa_desired": st.get("desiredReplicas"),
                          "hpa_cpu_pct": cpu,
                          "target_pct": hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
                          "api_pods_cpu_m": api_cpu})

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                self.sample()
            except Exception as e:  # noqa: BLE001 - a missed sample is counted, not fatal
                self.missed += 1
                self.last_error = str(e)[-300:]
            self.stop.wait(max(0.0, SAMPLE_S - (time.monotonic() - t)))

    def __enter__(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)


def locust_history(path):
    """Locust's aggregated stats history, one row a second: [(unix second, row)]."""
    if not path.exists():
        return []
    with path.open() as f:
        return sorted((int(r["Timestamp"]), r) for r in csv.DictReader(f) if r["Name"] == "Aggregated")


def merge(rows, history, t_load):
    """Each recorder row with Locust's latest history row at most 3 s older; times relative to
    the start of the load."""
    out = []
    for r in rows:
        before = [h for s, h in history if s <= r["unix"] and r["unix"] - s < 3]
        h = before[-1] if before else None

        def num(key):
            return float(h[key]) if h and h[key] not in ("", "N/A") else None
        pods = r["api_pods_cpu_m"]
        out.append({"t_s": round(r["unix"] - t_load, 1), "users": int(h["User Count"]) if h else 0,
                    "rps": num("Requests/s"), "failures_per_s": num("Failures/s"),
                    "p50_ms": num("50%"), "p95_ms": num("95%"), "p99_ms": num("99%"),
                    "api_ready": r["api_ready"], "hpa_current": r["hpa_current"], "hpa_desired": r["hpa_desired"],
                    "hpa_cpu_pct": r["hpa_cpu_pct"], "target_pct": r["target_pct"],
                    "api_cpu_m": round(sum(pods.values()), 1),
                    "api_pods_cpu_m": " ".join(f"{k.rsplit('-', 1)[-1]}={v}" for k, v in sorted(pods.items()))})
    return out


def write_csv(path, rows, comments=()):
    """Rows as CSV after `# ` comment lines (the form docs/report/ uses: scripts/report/render.py
    skips them when it reads the rows and quotes them as the run's description)."""
    columns = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with path.open("w", newline="") as f:
        for line in comments:
            f.write(f"# {line}\n")
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)


def hpa_events(node, t_load):
    """The HPA controller's own rescale events (reason SuccessfulRescale), in time order."""
    items = node.get("events", "-n", NS, "--field-selector",
                     f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={HPA}")["items"]
    out = []
    for e in items:
        stamp = e.get("lastTimestamp") or e.get("eventTime") or e["metadata"]["creationTimestamp"]
        out.append({"t_s": round(kube_time(stamp) - t_load, 1), "reason": e.get("reason", ""),
                    "message": e.get("message", "")})
    return sorted(out, key=lambda e: e["t_s"])


def transitions(rows, key):
    """(t_s, before, after) each time rows[key] changes."""
    out = []
    for a, b in zip(rows, rows[1:]):
        if a[key] != b[key]:
            out.append((b["t_s"], a[key], b[key]))
    return out


def plot(rows, path, load_s, request_m):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [r["t_s"] for r in rows]
    fig, (a1, a2, a3, a4) = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    a1.step(t, [r["hpa_desired"] for r in rows], where="post", linestyle="--", label="deseadas (HPA)")
    a1.step(t, [r["hpa_current"] for r in rows], where="post", label="actuales (HPA)")
    a1.step(t, [r["api_ready"] for r in rows], where="post", linestyle=":", label="pods Ready")
    a1.set_ylabel("réplicas del api")
    a1.set_ylim(0, 4)
    a1.legend(loc="upper right", fontsize="small")
    a2.plot(t, [r["hpa_cpu_pct"] for r in rows], marker=".", label="CPU según el HPA (% de la request)")
    a2.plot(t, [r["target_pct"] for r in rows], color="grey", linestyle=":", label="objetivo")
    a2.set_ylabel("% de la request")
    a2b = a2.twinx()
    a2b.plot(t, [r["api_cpu_m"] for r in rows], color="tab:green", alpha=0.6,
             label=f"CPU de todos los pods del api (m; request {request_m:g} m por pod)")
    a2b.set_ylabel("milinúcleos")
    a2.legend(loc="upper left", fontsize="small")
    a2b.legend(loc="upper right", fontsize="small")
    a3.plot(t, [r["rps"] for r in rows], label="respuestas/s (Locust)")
    a3.plot(t, [r["failures_per_s"] for r in rows], color="tab:red", label="fallos/s")
    a3.plot(t, [r["users"] * SALES_PER_USER_S for r in rows], color="grey", linestyle=":",
            label=f"oferta máxima (usuarios × {SALES_PER_USER_S}/s)")
    a3.set_ylabel("peticiones/s")
    a3.legend(loc="upper right", fontsize="small")
    a4.plot(t, [r["p95_ms"] for r in rows], label="p95")
    a4.plot(t, [r["p99_ms"] for r in rows], linestyle=":", label="p99")
    a4.plot(t, [r["p50_ms"] for r in rows], linestyle="--", label="p50")
    a4.set_ylabel("latencia (ms, ventana de 10 s)")
    a4.set_xlabel("segundos desde el inicio de la carga")
    a4.legend(loc="upper right", fontsize="small")
    for ax in (a1, a2, a3, a4):
        ax.axvspan(load_s[0], load_s[1], color="tab:orange", alpha=0.08)
        ax.grid(alpha=0.3)
    a1.set_title("make hpa-demo: HPA del api (1..3 pods, 30 % de CPU) bajo Locust; sombreado: con carga")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def per_component(pods, since, until):
    """CPU and memory per pod of each component in [since, until] (Unix time): mean, p95, max."""
    out = {}
    for comp in sorted({p["component"] for p in pods}):
        sel = [p for p in pods if p["component"] == comp and since <= p["unix"] <= until]
        if not sel:
            continue
        cpu = sorted(p["cpu_m"] for p in sel)
        mem = sorted(p["mem_mib"] for p in sel)

        def p95(v):
            return v[min(len(v) - 1, int(0.95 * len(v)))]
        out[comp] = {"samples": len(sel), "cpu_m_mean": round(statistics.mean(cpu), 1), "cpu_m_p95": p95(cpu),
                     "cpu_m_max": cpu[-1], "mem_mib_mean": round(statistics.mean(mem), 1),
                     "mem_mib_p95": p95(mem), "mem_mib_max": mem[-1]}
    return out


def rescales(r):
    """The HPA's rescale events: [(t_s, message)]."""
    return [(e["t_s"], e["message"]) for e in r["hpa_events"] if e["reason"] == "SuccessfulRescale"]


def timeline(r):
    """The run's events in words (Spanish, as docs/informe.md): [(seconds from the load's start,
    what)]. The HPA's rescale events carry its own time; pod counts are the recorder's samples."""
    s = r["settings"]
    out = [(r["load_s"][0], f"empieza la carga (rampa de {s['ramp_s']} s hasta {s['peak_users']} usuarios)"),
           (r["load_s"][1], "termina la carga")]
    out += [(t, f"el HPA: {message}") for t, message in rescales(r)]
    out += [(t, f"muestra: pods Ready del api {a} → {b}") for t, a, b in r["ready_changes"]]
    return sorted(out, key=lambda e: e[0])


def summary_lines(r):
    """The result in a few lines: the CSV's comment lines (render.py quotes them) and the log."""
    s = r["settings"]
    return [
        f"carga: Locust, forma hpa de locust/locustfile.py, {s['peak_users']} usuarios × {SALES_PER_USER_S} ventas/s, "
        f"rampa {s['ramp_s']} s, meseta {s['plateau_s']} s, contra el Service del api",
        f"api: request de CPU {s['api_cpu_request_m']:g} m, HPA {s['min_replicas']}..{s['max_replicas']} pods al "
        f"{s['target_pct']} %, ventana de bajada {s['scale_down_window_s']} s (300 s por defecto en Kubernetes)",
        f"subida: el HPA pasa a 3 a los {r['scale_up_s']} s del inicio de la carga (CPU {r['cpu_pct_at_scale_up']} % de "
        f"la request), 3 pods Ready en la muestra de los {r['first_ready_3_s']} s",
        f"bajada: el HPA pasa a 1 a los {r['scale_down_after_load_s']} s del fin de la carga, 1 pod Ready en la muestra "
        f"de los {r['ready_1_after_load_s']} s; su estado dice 1 réplica a los {r['back_to_1_s_after_load']} s",
        f"meseta con 3 pods: {r['plateau3_rps_mean']} respuestas/s de media, p95 {r['plateau3_p95_ms_median']} ms "
        f"(mediana de las ventanas de 10 s; máximo {r['plateau3_p95_ms_max']} ms), CPU según el HPA "
        f"{r['plateau3_cpu_pct_mean']} % de la request",
        f"ventas: {r['accepted_2xx']} con 2xx, {r['failed_requests']} peticiones fallidas; dashboard {r['dashboard_total']}, "
        f"Kafka {r['kafka_records']} registros",
        "problemas: " + ("; ".join(r["problems"]) if r["problems"] else "ninguno"),
    ]


def markdown(r):
    s, m = r["settings"], r["meta"]
    lines = [
        f"*Medido con `{m['command']}` el {m['date']} (commit `{m['commit']}`), {m['machine']}; carga media "
        f"(1, 5, 15 min) antes {m['loadavg_before']}, después {m['loadavg_after']}; {m['wall_seconds']} s en total "
        f"({r['load_s'][1] - r['load_s'][0]:.0f} s de carga). Locust, el nodo y todo el pipeline comparten los "
        "mismos 2 núcleos.*", "",
        f"El pipeline de `make e2e-k8s` en el nodo local, con `tests/e2e/overlay/hpa-demo-patch.yaml`: request de "
        f"CPU del api {s['api_cpu_request_m']:g} m (el 30 % son {s['api_cpu_request_m'] * s['target_pct'] / 100:g} m "
        "por pod, alcanzable en esta máquina) y una ventana de estabilización de bajada de "
        f"{s['scale_down_window_s']} s en vez de los 300 s por defecto, para que la vuelta a 1 quepa en unos minutos. "
        f"Locust ({s['peak_users']} usuarios a {SALES_PER_USER_S} ventas/s como máximo cada uno, rampa "
        f"{s['ramp_s']} s, meseta {s['plateau_s']} s) contra el Service del api. Una muestra cada {s['sample_s']:g} s: "
        "`hpa.csv` (réplicas, CPU según el HPA, respuestas/s, p50/p95/p99 de Locust en ventanas de 10 s), "
        "`hpa_pods.csv` (CPU y memoria de cada pod, de metrics-server), `hpa.json`.", "",
        "| segundos desde el inicio de la carga | qué pasó |", "|---|---|"]
    lines += [f"| {t:g} | {what} |" for t, what in timeline(r)]
    warnings = [e for e in r["hpa_events"] if e["reason"] != "SuccessfulRescale"]
    if warnings:
        lines += ["", f"Antes de la carga el HPA dejó {len(warnings)} avisos "
                  f"({', '.join(sorted({e['reason'] for e in warnings}))}): metrics-server aún no tenía una "
                  "medida del pod recién arrancado; desaparecen con la primera."]
    lines += ["", "| medida | valor |", "|---|---|",
              f"| réplicas del api: máximo | {r['peak_api_replicas']} |",
              f"| subida a 3: decisión del HPA / 3 pods Ready (muestra) | {r['scale_up_s']} s / {r['first_ready_3_s']} s "
              "desde el inicio de la carga |",
              f"| bajada a 1: decisión del HPA / 1 pod Ready (muestra) / estado del HPA | {r['scale_down_after_load_s']} s / "
              f"{r['ready_1_after_load_s']} s / {r['back_to_1_s_after_load']} s después del fin de la carga |",
              f"| CPU según el HPA al decidir subir | {r['cpu_pct_at_scale_up']} % de la request (objetivo "
              f"{s['target_pct']} %) |",
              f"| meseta con 3 pods: respuestas/s (media) | {r['plateau3_rps_mean']} |",
              f"| meseta con 3 pods: p95 (mediana / máximo de las ventanas de 10 s) | {r['plateau3_p95_ms_median']} / "
              f"{r['plateau3_p95_ms_max']} ms |",
              f"| meseta con 3 pods: CPU según el HPA (media) | {r['plateau3_cpu_pct_mean']} % (sin el tope de "
              f"{s['max_replicas']} querría {r['plateau3_uncapped_replicas']} pods) |",
              f"| meseta con 3 pods: CPU de cada pod del api (media, m) | {r['plateau3_api_pod_cpu_m']} |",
              f"| toda la carga: peticiones / p95 / p99 (Locust) | {r['locust_total']['requests']} / "
              f"{r['locust_total']['p95_ms']} ms / {r['locust_total']['p99_ms']} ms |",
              f"| ventas con 2xx / peticiones fallidas | {r['accepted_2xx']} / {r['failed_requests']} |",
              f"| total del dashboard / registros en Kafka | {r['dashboard_total']} / {r['kafka_records']} |",
              *([] if r["locust_total"].get("requests") == sum(r["locust_counts"].values()) else [
                  "", f"`locust_stats.csv` cuenta {r['locust_total'].get('requests')} peticiones: Locust lo escribe "
                  "por última vez un poco antes de parar. Su resumen final (`locust_stderr_tail` en `hpa.json`) y el "
                  f"locustfile cuentan {sum(r['locust_counts'].values())} respuestas, {r['accepted_2xx']} de ellas 2xx "
                  "con su id; el recuento (dashboard = Kafka = 2xx) usa los ids."]),
              *([] if not r["plateau3_api_pods_uneven"] else [
                  "", "La CPU no se reparte por igual entre los pods del api, como se espera de kube-proxy: "
                  "reparte conexiones, no peticiones, y cada usuario de Locust conserva la suya (keep-alive), así "
                  "que los que se conectaron antes de la subida siguen en el primer pod. El HPA promedia la CPU "
                  "de los pods y decide igual; repartirían la carga clientes que reabren sus conexiones o un "
                  "balanceador por petición (L7, como el Ingress NGINX)."]),
              "", "CPU (milinúcleos) y memoria (MiB) por pod con carga (metrics-server, ventanas de "
              f"{r['metrics_window']}), la base de la respuesta sobre el VPA:", "",
              "| componente | muestras | CPU media | CPU p95 | CPU máx. | memoria media | memoria p95 | memoria máx. |",
              "|---|---|---|---|---|---|---|---|"]
    for comp, c in r["per_pod_while_loaded"].items():
        lines.append(f"| {comp} | {c['samples']} | {c['cpu_m_mean']} | {c['cpu_m_p95']} | {c['cpu_m_max']} | "
                     f"{c['mem_mib_mean']} | {c['mem_mib_p95']} | {c['mem_mib_max']} |")
    lines += ["", "Problemas: " + ("; ".join(r["problems"]) if r["problems"] else "ninguno") + ".", "",
              "![make hpa-demo](report/hpa.png)", ""]
    return "\n".join(lines)


def load(lp):
    """Locust's run with the recorder around it; then the wait for the way back to 1 pod."""
    env = dict(os.environ, SP_SCENARIO="hpa", SP_PEAK_USERS=str(PEAK_USERS), SP_RAMP_SECONDS=str(RAMP_S),
               SP_PLATEAU_SECONDS=str(PLATEAU_S), SP_SUMMARY=str(WORK / "summary.json"),
               SP_ACCEPTED_IDS=str(WORK / "ids.txt"), SP_CATALOG=str(ROOT / "locust" / "catalog.json"))
    env.pop("CATALOG_ARTIFACT", None)
    cmd = [ROOT / ".venv" / "bin" / "locust", "-f", ROOT / "locust" / "locustfile.py", "--headless",
           "--host", lp.service_url("api"), "--csv", WORK / "locust", "--only-summary", "--stop-timeout", "30",
           "--loglevel", "WARNING"]
    with Recorder(lp.node) as rec:
        rec.stop.wait(BASELINE_S)
        log(f"Locust: {PEAK_USERS} users at {SALES_PER_USER_S} sales/s each, ramp {RAMP_S} s, plateau {PLATEAU_S} s")
        t_load = time.time()
        locust = subprocess.run([str(c) for c in cmd], env=env, cwd=WORK, capture_output=True, text=True,
                                timeout=RAMP_S + PLATEAU_S + 300)
        t_end = time.time()
        log(f"load ended after {t_end - t_load:.0f} s (Locust exit {locust.returncode}); "
            f"waiting up to {COOLDOWN_S} s for the api to come back to 1 pod")
        try:
            wait_until(lambda: lp.node.get("hpa", "-n", NS, HPA)["status"].get("currentReplicas") == 1 and
                       lp.node.get("deployment", "-n", NS, HPA)["status"].get("readyReplicas") == 1,
                       COOLDOWN_S, interval=1, what="the api back at 1 pod")
            back = time.time()
        except TimeoutError:
            back = None
        rec.stop.wait(BASELINE_S)
    return rec, locust, t_load, t_end, back


def collect(lp):
    """The run, then what the cluster and the stores say about it, before the teardown."""
    rec, locust, t_load, t_end, back = load(lp)
    kafka = topic_sale_ids(lp.storage["KAFKA_BROKERS"], lp.storage["KAFKA_TOPIC"])
    dash = wait_until(lambda: (d := lp.dashboard())["total_sales"] >= len(kafka) and d, 120, interval=1,
                      what="the dashboard to count every sale in Kafka")
    hpa = lp.node.get("hpa", "-n", NS, HPA)
    deploy = lp.node.get("deployment", "-n", NS, HPA)
    return {"rec": rec, "locust": locust, "t_load": t_load, "t_end": t_end, "back": back, "kafka": kafka,
            "dash": dash, "hpa": hpa, "deploy": deploy, "events": hpa_events(lp.node, t_load),
            "logs": lp.save_logs()}


def analyse(c, meta):
    t_load, t_end = c["t_load"], c["t_end"]
    rec = c["rec"]
    rows = merge(rec.rows, locust_history(WORK / "locust_stats_history.csv"), t_load)
    counts = json.loads((WORK / "summary.json").read_text()) if (WORK / "summary.json").exists() else {}
    ok_ids = (WORK / "ids.txt").read_text().split() if (WORK / "ids.txt").exists() else []
    kafka = c["kafka"]
    hpa_spec = c["hpa"]["spec"]
    request_m = millicores(c["deploy"]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"])
    load_s = [0.0, round(t_end - t_load, 1)]
    loaded = [r for r in rows if 0 <= r["t_s"] <= load_s[1]]
    plateau3 = [r for r in loaded if r["api_ready"] == 3 and r["t_s"] >= RAMP_S]

    def first(pred):
        return next((r["t_s"] for r in rows if pred(r)), None)

    def mean(values):
        values = [v for v in values if v is not None]
        return round(statistics.mean(values), 1) if values else None
    scale_up = next((r for r in rows if (r["hpa_desired"] or 0) > 1 and r["t_s"] >= 0), None)
    ups = [t for t, m in rescales({"hpa_events": c["events"]}) if t >= 0 and m.startswith("New size: 3")]
    downs = [t for t, m in rescales({"hpa_events": c["events"]}) if t >= load_s[1] and m.startswith("New size: 1")]
    ready_1 = next((r["t_s"] for r in rows if r["t_s"] >= load_s[1] and r["api_ready"] == 1), None)
    api_pods = {}
    for p in rec.pods:
        if p["component"] == "api" and t_load + RAMP_S <= p["unix"] <= t_end:
            api_pods.setdefault(p["pod"].rsplit("-", 1)[-1], []).append(p["cpu_m"])
    plateau3_cpu = mean(r["hpa_cpu_pct"] for r in plateau3)
    total = {}
    stats_path = WORK / "locust_stats.csv"
    if stats_path.exists():
        with stats_path.open() as f:
            agg = next((r for r in csv.DictReader(f) if r["Name"] == "Aggregated"), None)
        if agg:
            total = {"requests": int(agg["Request Count"]), "failures": int(agg["Failure Count"]),
                     "p50_ms": agg["50%"], "p95_ms": agg["95%"], "p99_ms": agg["99%"], "max_ms": round(float(agg["Max Response Time"]))}
    ok, kafka_set = set(ok_ids), set(kafka)
    extra = kafka_set - ok
    p95s = sorted(r["p95_ms"] for r in plateau3 if r["p95_ms"] is not None)
    results = {
        "meta": meta,
        "settings": {"peak_users": PEAK_USERS, "ramp_s": RAMP_S, "plateau_s": PLATEAU_S, "sample_s": SAMPLE_S,
                     "api_cpu_request_m": request_m, "min_replicas": hpa_spec.get("minReplicas", 1),
                     "max_replicas": hpa_spec["maxReplicas"], "target_pct": rows[0]["target_pct"] if rows else None,
                     "scale_down_window_s": ((hpa_spec.get("behavior") or {}).get("scaleDown") or {})
                     .get("stabilizationWindowSeconds")},
        "load_s": load_s,
        "hpa_events": c["events"],
        "desired_changes": transitions(rows, "hpa_desired"),
        "ready_changes": transitions(rows, "api_ready"),
        "peak_api_replicas": max((r["hpa_current"] or 0) for r in rows) if rows else 0,
        "first_desired_3_s": first(lambda r: (r["hpa_desired"] or 0) >= 3 and r["t_s"] >= 0),
        "first_ready_3_s": first(lambda r: r["api_ready"] >= 3 and r["t_s"] >= 0),
        "cpu_pct_at_scale_up": scale_up["hpa_cpu_pct"] if scale_up else None,
        "scale_up_s": ups[0] if ups else None,
        "scale_down_after_load_s": round(downs[0] - load_s[1], 1) if downs else None,
        "ready_1_after_load_s": round(ready_1 - load_s[1], 1) if ready_1 is not None else None,
        "back_to_1_s_after_load": round(c["back"] - t_end, 1) if c["back"] else None,
        "plateau3_samples": len(plateau3),
        "plateau3_rps_mean": mean(r["rps"] for r in plateau3),
        "plateau3_p95_ms_median": p95s[len(p95s) // 2] if p95s else None,
        "plateau3_p95_ms_max": p95s[-1] if p95s else None,
        "plateau3_cpu_pct_mean": plateau3_cpu,
        # What the HPA's formula asks for without maxReplicas: ceil(pods × utilisation / target).
        "plateau3_uncapped_replicas": math.ceil(3 * plateau3_cpu / rows[0]["target_pct"]) if plateau3_cpu else None,
        "plateau3_api_pod_cpu_m": " ".join(f"{k}={round(statistics.mean(v), 1)}" for k, v in sorted(api_pods.items())),
        "plateau3_api_pods_uneven": len(api_pods) > 1 and max(map(statistics.mean, api_pods.values())) >
        1.5 * min(map(statistics.mean, api_pods.values())),
        "locust_total": total, "locust_counts": counts,
        "accepted_2xx": len(ok_ids), "failed_requests": counts.get("other", 0),
        "kafka_records": len(kafka), "kafka_unique": len(kafka_set), "dashboard_total": c["dash"]["total_sales"],
        "stored_without_2xx": len(extra),
        "per_pod_while_loaded": per_component(rec.pods, t_load + RAMP_S, t_end),
        "metrics_window": sorted({p["window"] for p in rec.pods})[0] if rec.pods else None,
        "recorder_missed_samples": rec.missed, "recorder_last_error": rec.last_error,
        "locust_returncode": c["locust"].returncode, "locust_stderr_tail": c["locust"].stderr[-2000:],
        "pods_logs": str(c["logs"]),
    }
    problems = []
    if results["peak_api_replicas"] < 3:
        problems.append(f"the api reached {results['peak_api_replicas']} replicas, not 3")
    if c["back"] is None:
        problems.append(f"the api did not come back to 1 pod within {COOLDOWN_S} s of the load's end")
    if c["locust"].returncode not in (0, 1):   # 1: Locust saw failed requests, counted below
        problems.append(f"Locust exited {c['locust'].returncode}")
    if len(kafka) != len(kafka_set):
        problems.append(f"{len(kafka) - len(kafka_set)} sales reached Kafka twice")
    if not ok <= kafka_set:
        problems.append(f"{len(ok - kafka_set)} 2xx sales are not in Kafka")
    if c["dash"]["total_sales"] != len(kafka):
        problems.append(f"the dashboard counts {c['dash']['total_sales']}, Kafka holds {len(kafka)}")
    if len(extra) > results["failed_requests"]:
        problems.append(f"{len(extra)} sales stored without a 2xx, more than the {results['failed_requests']} "
                        "failed requests")
    if not ok_ids:
        problems.append("no sale got a 2xx")
    results["problems"] = problems
    return results, rows, rec.pods, request_m


def write(results, rows, pods, request_m, t_load):
    DOCS.mkdir(parents=True, exist_ok=True)
    comments = [f"{k}: {results['meta'][k]}" for k in ("command", "date", "commit", "machine", "loadavg_before",
                                                       "loadavg_after", "wall_seconds")]
    write_csv(DOCS / "hpa.csv", rows, comments + summary_lines(results))
    write_csv(DOCS / "hpa_pods.csv", [dict(p, t_s=round(p["unix"] - t_load, 1)) for p in pods], comments)
    plot(rows, DOCS / "hpa.png", results["load_s"], request_m)
    (DOCS / "hpa.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    (DOCS / "hpa.md").write_text(markdown(results))


def main():
    started = time.monotonic()
    info = machine_info()
    meta = {"command": "make hpa-demo", "date": info["date"], "commit": info["commit"],
            "machine": f"{info['nproc']} núcleos, {info['cpu_model']}, {info['memory_gib']} GiB",
            "loadavg_before": info["loadavg"]}
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with running_node(WORK / "node") as node:
        lp = LocalPipeline(node, WORK / "pipeline", patches=[OVERLAY / "hpa-demo-patch.yaml"])
        try:
            lp.start()
            log(f"pipeline Ready: {lp.timings}")
            wait_until(lambda: node.get("hpa", "-n", NS, HPA).get("status", {}).get("currentMetrics"),
                       180, interval=2, what="the HPA's first CPU reading")
            collected = collect(lp)
        finally:
            lp.stop()
    meta["loadavg_after"] = loadavg()
    meta["wall_seconds"] = round(time.monotonic() - started)
    results, rows, pods, request_m = analyse(collected, meta)
    write(results, rows, pods, request_m, collected["t_load"])
    for line in summary_lines(results):
        log(line)
    log(f"written: {DOCS}/hpa.{{csv,png,md,json}}, hpa_pods.csv; Locust's files and the pods' logs in {WORK}; "
        f"{meta['wall_seconds']} s in all")
    if results["problems"]:
        log("FAILED: " + "; ".join(results["problems"]))
        return 1
    log("passed: 1 -> 3 under the load, back to 1 after it, every 2xx counted once")
    return 0


def _stop(signum, _frame):
    raise SystemExit(128 + signum)   # unwinds through the finally blocks: the node comes down


def render():
    """hpa.md again from hpa.json (after a change of its wording, without a new run)."""
    (DOCS / "hpa.md").write_text(markdown(json.loads((DOCS / "hpa.json").read_text())))
    log(f"rewrote {DOCS}/hpa.md from hpa.json")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--render"]:
        sys.exit(render())
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        sys.exit(main())
    except SetupError as e:
        log(f"FAILED to set up: {e}")
        sys.exit(1)
