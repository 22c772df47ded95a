"""Tables (Markdown) and plots (PNG) from the CSV files of report.py, and the splice of each
table into docs/informe.md between `<!-- BEGIN report/NAME.md -->` and `<!-- END ... -->`.
Nothing here measures: every number comes from a CSV file, which says which command made it."""
import csv
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PARTS = ["api", "bridge", "writers", "consumer", "valkey", "kafka"]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(v, digits=0):
    x = num(v)
    if x is None:
        return "—" if v in (None, "") else str(v)
    return f"{x:,.{digits}f}".replace(",", " ")


def pct(value, ref):
    """`value` against `ref` as a signed percentage, e.g. "+12 %"."""
    v, r = num(value), num(ref)
    if v is None or not r:
        return "—"
    return f"{100 * (v - r) / r:+.0f} %"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def provenance(out, name):
    meta = json.loads((out / f"{name}.json").read_text())
    return (f"*Medido con `{meta['command']}` el {meta['date']} (commit `{meta['commit']}`), "
            f"{meta['machine']}; carga media (1, 5, 15 min) antes {meta['loadavg_before']}, "
            f"después {meta['loadavg_after']}; {meta['seconds_per_run']} s por corrida de wrk; "
            f"{meta['wall_seconds']} s en total. wrk y otros trabajos comparten los mismos "
            f"núcleos.*\n\n"), meta


def by(rows, key):
    out = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out


def savefig(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cpu_cells(r):
    return [fmt(r.get(f"cpu_us_{p}"), 0) for p in PARTS] + [fmt(r.get("cpu_us_machine"), 0)]


CPU_HEADER = ["api", "bridge", "writers", "consumer", "valkey", "kafka", "máquina"]


# ----------------------------------------------------------------------------------- Kafka

def kafka(out):
    rows = read_csv(out / "kafka.csv")
    head, meta = provenance(out, "kafka")
    md = [head, "Rendimiento de la cadena completa (wrk → api → bridge → writers → Kafka → "
          "consumer → Valkey) y lo que recibió el broker. CPU en µs por venta aceptada.\n\n"]
    md.append(table(["configuración", "conex.", "ventas/s", "p50 ms", "p99 ms", *CPU_HEADER,
                     "registros/lote", "bytes/lote", "lotes de 1 registro", "máquina ocupada",
                     "no-2xx", "más CPU"],
                    [[r["config"], r["connections"], fmt(r["sales_per_s"]), fmt(r["p50_ms"], 1),
                      fmt(r["p99_ms"], 1), *cpu_cells(r), fmt(r["records_per_batch"], 2),
                      fmt(r["bytes_per_batch"]), fmt(r["single_record_batches_pct"], 1) + " %",
                      fmt(r["machine_busy_pct"]) + " %", r["non2xx"], r["top_part"]] for r in rows]))
    note = meta.get("notes", {})
    if note:
        md.append(f"\n`acks=1` con `enable.idempotence=true`: el writer sale con código "
                  f"{note.get('acks1_idempotence_exit')} y dice: ``{note.get('acks1_idempotence_message')}``\n")
    top = max(int(r["connections"]) for r in rows)
    peak = [r for r in rows if int(r["connections"]) == top]
    base = peak[0]
    best = max(peak, key=lambda r: num(r["sales_per_s"]) or 0)
    cheap = min(peak, key=lambda r: num(r["cpu_us_kafka"]) or 1e9)
    md.append(f"\nCon {top} conexiones: la base dio {fmt(base['sales_per_s'])} ventas/s con lotes "
              f"de {fmt(base['records_per_batch'], 2)} registros y {fmt(base['cpu_us_kafka'])} µs "
              f"de CPU del broker por venta; la configuración más rápida fue «{best['config']}» "
              f"({fmt(best['sales_per_s'])} ventas/s, lotes de {fmt(best['records_per_batch'], 2)}); "
              f"la de broker más barato por venta, «{cheap['config']}» ({fmt(cheap['cpu_us_kafka'])} µs, "
              f"lotes de {fmt(cheap['records_per_batch'], 2)}).\n")
    named = {r["config"]: r for r in peak}
    pairs = [(k, named[k]) for k in named if k != base["config"]]
    md.append(f"\nCon {top} conexiones, frente a la base ({fmt(base['sales_per_s'])} ventas/s, p99 "
              f"{fmt(base['p99_ms'], 1)} ms, broker {fmt(base['cpu_us_kafka'])} µs/venta): "
              + "; ".join(f"«{k}» {fmt(r['sales_per_s'])} ventas/s ({pct(r['sales_per_s'], base['sales_per_s'])}), "
                          f"p99 {fmt(r['p99_ms'], 1)} ms, broker {fmt(r['cpu_us_kafka'])} µs/venta "
                          f"({pct(r['cpu_us_kafka'], base['cpu_us_kafka'])})" for k, r in pairs) + ".\n")

    by_key = [r for r in rows if (num(r.get("sticky_ms")) == 0 and r.get("partitions") == base.get("partitions"))]
    if by_key:
        sticky = {r["connections"]: r for r in rows if r["config"] == base["config"]}
        md.append("\nParticionador (los writers, `KAFKA_STICKY_MS`): pegajoso de "
                  f"{fmt(base.get('sticky_ms'))} ms frente a por clave (`producto_id`), con "
                  + "; ".join(f"{k['connections']} {'conexión' if k['connections'] == '1' else 'conexiones'}: "
                              f"{fmt(sticky[k['connections']]['records_per_batch'], 2)} "
                              f"frente a {fmt(k['records_per_batch'], 2)} registros por lote "
                              f"({fmt(sticky[k['connections']]['bytes_per_batch'])} frente a {fmt(k['bytes_per_batch'])} B), "
                              f"{fmt(sticky[k['connections']]['sales_per_s'])} frente a {fmt(k['sales_per_s'])} ventas/s, "
                              f"broker {fmt(sticky[k['connections']]['cpu_us_kafka'])} frente a "
                              f"{fmt(k['cpu_us_kafka'])} µs/venta"
                              for k in by_key if k["connections"] in sticky) + ".\n")

    configs = list(by(rows, "config"))
    loads = sorted({int(r["connections"]) for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(loads)
    for j, c in enumerate(loads):
        vals = [num(next((r["sales_per_s"] for r in rows if r["config"] == k and int(r["connections"]) == c), 0)) or 0
                for k in configs]
        axes[0].bar([i + j * width for i in range(len(configs))], vals, width, label=f"{c} conexiones")
        p99 = [num(next((r["p99_ms"] for r in rows if r["config"] == k and int(r["connections"]) == c), 0)) or 0
               for k in configs]
        axes[1].bar([i + j * width for i in range(len(configs))], p99, width, label=f"{c} conexiones")
    for ax, title in ((axes[0], "ventas aceptadas por segundo"), (axes[1], "latencia p99 (ms), wrk")):
        ax.set_xticks([i + width * (len(loads) - 1) / 2 for i in range(len(configs))])
        ax.set_xticklabels(configs, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
    savefig(fig, out / "kafka-rate.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, rs in by(rows, "config").items():
        xs = [num(r["records_per_batch"]) for r in rs]
        ys = [num(r["cpu_us_kafka"]) for r in rs]
        ax.plot(xs, ys, "o-", label=k)
        for r, x, y in zip(rs, xs, ys):
            ax.annotate(r["connections"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("registros por lote que guardó el broker (DumpLogSegments)")
    ax.set_ylabel("CPU del broker, µs por venta")
    ax.set_title("Kafka: el costo es por lote (número = conexiones de wrk)")
    ax.legend(fontsize=7)
    savefig(fig, out / "kafka-batches.png")
    return "".join(md)


# ----------------------------------------------------------------------------------- Valkey

def valkey(out):
    rows = read_csv(out / "valkey.csv")
    drains = read_csv(out / "valkey-drain.csv")
    crashes = read_csv(out / "valkey-crash.csv")
    head, _ = provenance(out, "valkey")
    md = [head, "**Bajo carga** (la cadena completa; el consumer escribe en Valkey en lotes, un "
          "script Lua por lote). CPU en µs por venta aceptada; el lote del consumer incluye el "
          "`WAIT` cuando está activo.\n\n"]
    md.append(table(["configuración", "conex.", "ventas/s", "p99 ms (wrk)", "consumer µs", "primario µs",
                     "réplica µs", "ventas/lote", "ms por lote (media)", "ms por lote (p99 est.)",
                     "lag máx. (registros)"],
                    [[r["setting"], r["connections"], fmt(r["sales_per_s"]), fmt(r["p99_ms"], 1),
                      fmt(r["cpu_us_consumer"], 1), fmt(r.get("cpu_us_valkey-primary"), 1),
                      fmt(r.get("cpu_us_valkey-replica"), 1) if r.get("cpu_us_valkey-replica") else "—",
                      fmt(r["sales_per_batch"], 1), fmt(r["batch_ms_mean"], 2), fmt(r["batch_ms_p99"], 2),
                      fmt(r["consumer_lag_max"])] for r in rows]))
    md.append("\n**Vaciado de un atraso**: el ritmo máximo del consumer en cada configuración, "
              "con `tests/consume/bench_consumer.py` (el de `make bench`): un topic lleno de antemano, "
              "lotes de 500, el `WAIT` de la configuración; Valkey vaciado antes.\n\n")
    md.append(table(["configuración", "registros", "segundos", "registros/s", "consumer µs/registro",
                     "primario µs/registro", "RSS máx. consumer MB"],
                    [[d["setting"], fmt(d["drain_records"]), fmt(d["drain_seconds"], 2),
                      fmt(d["drain_records_per_s"]), fmt(d["drain_cpu_us_consumer"], 2),
                      fmt(d["drain_cpu_us_valkey_primary"], 2), fmt(d["drain_consumer_peak_rss_mb"], 1)]
                     for d in drains]))
    md.append("\n**kill -9 del primario con carga** (wrk con 16 conexiones; el primario se reinicia con "
              "la misma línea de comandos y sus datos mientras el consumer está detenido, para leer qué "
              "conservó antes de que el consumer vuelva a escribir). «Confirmadas» = ventas que el "
              "consumer contaba como aplicadas (`sp_consumer_sales_applied_total`) al morir el "
              "primario; las demás columnas cuentan registros por los offsets guardados en Valkey "
              "(`sp:offsets`). wrk no cuenta las respuestas de las peticiones que siguen en vuelo "
              "cuando termina (a lo sumo una por conexión), por eso Kafka puede tener hasta 16 "
              "registros más que sus 2xx. «s hasta alcanzar a Kafka»: desde que el consumer sigue "
              "hasta que Valkey tiene todo lo que Kafka tenía en ese momento.\n\n")
    md.append(table(["configuración", "confirmadas al kill", "réplica al kill", "primario reiniciado",
                     "perdidas por el primario", "faltan en la réplica", "rebobinados", "2xx de wrk",
                     "registros en Kafka", "total final del dashboard", "s hasta alcanzar a Kafka"],
                    [[c["setting"], fmt(c["acknowledged_at_kill"]),
                      fmt(c.get("replica_at_kill")) if c.get("replica_at_kill") else "—",
                      fmt(c["restarted_primary"]), fmt(c["lost_by_primary"]),
                      fmt(c.get("missing_on_replica")) if c.get("missing_on_replica") not in (None, "") else "—",
                      fmt(c["rewinds"]), fmt(c["accepted_2xx"]), fmt(c["kafka_records"]),
                      fmt(c["dashboard_total"]), fmt(c["caught_up_seconds"], 2)] for c in crashes]))
    exact = all(c["dashboard_total"] == c["kafka_records"] for c in crashes)
    lost = [c for c in crashes if (num(c["lost_by_primary"]) or 0) > 0]
    kept = [c for c in crashes if (num(c["lost_by_primary"]) or 0) == 0]
    short = [c for c in crashes if (num(c.get("missing_on_replica")) or 0) > 0]
    with_replica = [c for c in crashes if c.get("replica_at_kill")]
    md.append("\nResumen de esta corrida: el primario reiniciado "
              + ("perdió ventas confirmadas en " + ", ".join(f"«{c['setting']}» ({fmt(c['lost_by_primary'])} de "
                                                               f"{fmt(c['acknowledged_at_kill'])})" for c in lost)
                 if lost else "no perdió ninguna venta confirmada")
              + (("; no perdió ninguna en " + ", ".join(f"«{c['setting']}»" for c in kept)) if lost and kept else "")
              + ". "
              + (("A la réplica le faltaban ventas confirmadas en " + ", ".join(
                  f"«{c['setting']}» ({fmt(c['missing_on_replica'])})" for c in short) + ". ") if short else
                 ("La réplica tenía todas las ventas confirmadas en " + ", ".join(
                     f"«{c['setting']}»" for c in with_replica) + ". ") if with_replica else "")
              + f"En {'todas' if exact else 'no todas'} las configuraciones el total final del dashboard "
              f"es igual al número de registros en Kafka.\n")
    top = max(int(r["connections"]) for r in rows)
    md.append(f"\nTiempo medio por lote del consumer con {top} conexiones: "
              + "; ".join(f"«{r['setting']}» {fmt(r['batch_ms_mean'], 2)} ms ({fmt(r['sales_per_batch'], 1)} "
                          f"ventas/lote)" for r in rows if int(r["connections"]) == top)
              + ". Ritmo al vaciar un atraso: "
              + "; ".join(f"«{d['setting']}» {fmt(d['drain_records_per_s'])} registros/s" for d in drains) + ".\n")

    fig, ax = plt.subplots(figsize=(11, 4.5))
    names = [c["setting"] for c in crashes]
    series = [("confirmadas al kill", "acknowledged_at_kill"), ("réplica al kill", "replica_at_kill"),
              ("primario reiniciado", "restarted_primary"), ("dashboard al final", "dashboard_total"),
              ("registros en Kafka", "kafka_records")]
    w = 0.16
    for j, (label, key) in enumerate(series):
        ax.bar([i + j * w for i in range(len(names))], [num(c.get(key)) or 0 for c in crashes], w, label=label)
    ax.set_xticks([i + 2 * w for i in range(len(names))])
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylabel("ventas / registros")
    ax.set_title("Valkey: kill -9 del primario con carga (lo perdido y lo que queda al final)")
    ax.legend(fontsize=8)
    savefig(fig, out / "valkey-crash.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [d["setting"] for d in drains]
    axes[0].bar(names, [num(d["drain_records_per_s"]) or 0 for d in drains], color="tab:green")
    axes[0].set_title("consumer: registros/s al vaciar un atraso")
    cons = [num(d["drain_cpu_us_consumer"]) or 0 for d in drains]
    prim = [num(d["drain_cpu_us_valkey_primary"]) or 0 for d in drains]
    axes[1].bar(names, cons, label="consumer")
    axes[1].bar(names, prim, bottom=cons, label="Valkey primario")
    axes[1].set_title("CPU por registro (µs) al vaciar")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=25, labelsize=8)
    savefig(fig, out / "valkey-drain.png")
    return "".join(md)


# ------------------------------------------------------------------------------ REST vs gRPC

def batched(r):
    """A run through the api that sends the bridge batches (BRIDGE_BATCH_MAX > 1)."""
    return (num(r.get("bridge_batch_max")) or 0) > 1


def hops(out):
    runs = read_csv(out / "hops.csv")
    bytes_rows = read_csv(out / "hops-bytes.csv")
    cpu_rows = read_csv(out / "hops-cpu.csv")
    head, _ = provenance(out, "hops")
    layouts = list(by(runs, "layout"))
    per_sale = layouts[0]
    batch_layout = next((k for k in layouts if batched(by(runs, "layout")[k][0])), None)
    md = [head, "**Corridas.** Un solo writer (`SP_WRITER_GROUPS=writer-a`). Tres recorridos: el api "
          "con una venta por `POST /ventas` en JSON (`BRIDGE_BATCH_MAX=1`, `BRIDGE_CONNECTIONS=64`: "
          "tantas conexiones al bridge como la carga mayor de wrk, para que ninguna venta espere una "
          "libre y el salto REST tenga la misma concurrencia que el salto gRPC detrás de él); el api "
          "como corre por omisión, con lotes de hasta 60 ventas por `POST /ventas/lote` en protobuf "
          "sobre 8 conexiones (`BRIDGE_BATCH_MAX=60`, `BRIDGE_CONNECTIONS=8`, proto/intake.proto); y "
          "wrk directo al bridge. Latencias por capa: media exacta (suma/cuenta del histograma de cada "
          "proceso) y p99 estimado de sus cubetas. «Salto REST» = media del api − media del bridge (el "
          "api y su llamada HTTP al bridge); «salto gRPC» = media del bridge − media del writer (el "
          "bridge y su llamada gRPC). Con lotes, el bridge manda cada lote al writer como una sola llamada "
          "`ProcesarLote`, y los histogramas del bridge y del writer miden lotes enteros (el salto gRPC "
          "es entonces el de un lote); el salto REST incluye la espera de la venta a que salga su lote. "
          "CPU en µs por venta aceptada.\n\n"]
    rows = []
    for r in runs:
        api, br, wr = num(r["api_ms_mean"]), num(r["bridge_ms_mean"]), num(r["writer_ms_mean"])
        rows.append([r["layout"], r["connections"], fmt(r["sales_per_s"]), fmt(r["p50_ms"], 2),
                     fmt(r["p99_ms"], 1), fmt(api, 2), fmt(br, 2), fmt(wr, 2),
                     fmt(api - br, 2) if api is not None and br is not None else "—",
                     fmt(br - wr, 2) if br is not None and wr is not None else "—",
                     fmt(r.get("sales_per_bridge_request"), 1),
                     fmt(r["cpu_us_api"], 0), fmt(r["cpu_us_bridge"], 0), fmt(r["cpu_us_writers"], 0),
                     fmt(r["cpu_us_kafka"], 0), fmt(r["cpu_us_machine"], 0)])
    md.append(table(["recorrido", "conex.", "ventas/s", "p50 ms", "p99 ms", "api ms", "bridge ms", "writer ms",
                     "salto REST ms", "salto gRPC ms", "ventas por petición al bridge", "api µs", "bridge µs",
                     "writer µs", "kafka µs", "máquina µs"], rows))
    md.append("\n**Bytes por llamada en cada salto**, de una captura de paquetes (tcpdump en loopback, "
              "sólo cabeceras, los puertos de los saltos) durante una corrida de wrk aparte con la "
              "misma concurrencia, leída de nuevo con tcpdump. Llamadas = peticiones que contó el servidor "
              "de cada salto (su histograma de duración: un lote es una llamada); ventas = las que contestó "
              "con 2xx (cada venta de un lote por su cuenta). «Carga útil» = bytes TCP de petición y de "
              "respuesta; «en el cable» = tramas completas de ambos sentidos (en loopback: 14 de Ethernet "
              "+ 20 de IPv4 + 32 de TCP con timestamps por paquete), ACKs incluidos. El puerto del bridge "
              "lleva además la consulta de `/readyz` que el api hace una vez por segundo.\n\n")
    md.append(table(["recorrido", "conex.", "salto", "protocolo", "llamadas", "ventas/llamada",
                     "petición B/llamada", "respuesta B/llamada", "en el cable B/llamada",
                     "en el cable B/venta", "paquetes/venta", "paquetes perdidos por la captura"],
                    [[b["layout"], b["connections"], b["hop"], b["protocol"], fmt(b["calls"]),
                      fmt(b.get("sales_per_call"), 1), fmt(b["request_bytes_per_call"], 1),
                      fmt(b["response_bytes_per_call"], 1), fmt(b["wire_bytes_per_call"], 1),
                      fmt(b.get("wire_bytes_per_sale"), 1), fmt(b.get("packets_per_sale"), 2),
                      b["packets_dropped"]] for b in bytes_rows]))
    md.append("\n**CPU por venta según el hilo** (µs), de `/proc/PID/task/*/schedstat` (ns en CPU de "
              "cada hilo vivo; «hilos terminados» es el resto hasta el total del proceso, que "
              "`/proc/PID/stat` cuenta en ticks de 10 ms): cada proceso partido por el papel de sus hilos. "
              "El intake REST es el mismo código (common/rest.c) en api y bridge; el api llama al bridge "
              "con libcurl, el bridge al writer con gRPC. Columnas: una venta por petición, y con lotes.\n\n")
    shown = [k for k in (per_sale, batch_layout) if k]
    loads = sorted({int(c["connections"]) for c in cpu_rows if c["layout"] == per_sale})
    keys = []
    for c in cpu_rows:
        if c["layout"] in shown and (c["part"], c["threads"]) not in keys:
            keys.append((c["part"], c["threads"]))
    cell = {(c["layout"], c["part"], c["threads"], int(c["connections"])): c["cpu_us_per_sale"] for c in cpu_rows}
    cols = [(k, c) for k in shown for c in loads]
    md.append(table(["proceso", "hilos", *[f"{c} conex.{', lotes' if k == batch_layout else ''}" for k, c in cols]],
                    [[p, t, *[fmt(cell.get((k, p, t, c)), 1) for k, c in cols]] for p, t in keys]))

    top = max(loads)
    at_top = lambda layout: next((r for r in runs if r["layout"] == layout and int(r["connections"]) == top), None)  # noqa: E731
    b = {x["hop"]: x for x in bytes_rows if x["layout"] == per_sale and int(x["connections"]) == top}
    via_api = at_top(per_sale)
    direct = next((at_top(k) for k in layouts if k not in shown), None)
    lines = [f"\nResumen con {top} conexiones, una venta por llamada:"]
    if "api→bridge" in b and "bridge→writer" in b:
        rest, grpc = b["api→bridge"], b["bridge→writer"]
        lines.append(f"el salto REST llevó {fmt(rest['request_bytes_per_call'])} B de petición y "
                     f"{fmt(rest['response_bytes_per_call'])} B de respuesta por llamada "
                     f"({fmt(rest['wire_bytes_per_call'])} B en el cable, "
                     f"{fmt(num(rest['packets_in_per_call']) + num(rest['packets_out_per_call']), 2)} paquetes); "
                     f"el salto gRPC {fmt(grpc['request_bytes_per_call'])} B y "
                     f"{fmt(grpc['response_bytes_per_call'])} B ({fmt(grpc['wire_bytes_per_call'])} B en el "
                     f"cable, {fmt(num(grpc['packets_in_per_call']) + num(grpc['packets_out_per_call']), 2)} "
                     f"paquetes).")
    api, br, wr = (num(via_api[k]) for k in ("api_ms_mean", "bridge_ms_mean", "writer_ms_mean"))
    if None not in (api, br, wr):
        lines.append(f"Latencia media añadida: salto REST (api − bridge) {fmt(api - br, 2)} ms, salto gRPC "
                     f"(bridge − writer) {fmt(br - wr, 2)} ms, writer con Kafka {fmt(wr, 2)} ms.")
    clients = {(c["part"], c["threads"]): num(c["cpu_us_per_sale"]) for c in cpu_rows
               if c["layout"] == per_sale and int(c["connections"]) == top}
    rest_client = clients.get(("api", "cliente libcurl + main"))
    grpc_client = sum(v for (p, t), v in clients.items() if p == "bridge" and t in ("hilos de gRPC", "hilo CQ gRPC + main"))
    if rest_client is not None:
        lines.append(f"CPU por llamada de los hilos cliente: libcurl (api) {fmt(rest_client, 1)} µs, gRPC "
                     f"(bridge: hilos de gRPC + CQ) {fmt(grpc_client, 1)} µs; el servidor REST "
                     f"(libmicrohttpd) {fmt(clients.get(('api', 'intake REST (libmicrohttpd)')), 1)} µs en el api y "
                     f"{fmt(clients.get(('bridge', 'intake REST (libmicrohttpd)')), 1)} µs en el bridge (éste incluye "
                     f"el trabajo de gRPC que su librería hace en el hilo que inicia la llamada).")
    lot = at_top(batch_layout) if batch_layout else None
    if lot:
        lb = next((x for x in bytes_rows if x["layout"] == batch_layout and int(x["connections"]) == top
                   and x["hop"] == "api→bridge"), None)
        lines.append(f"Con lotes (hasta 60 ventas por petición, {fmt(lot.get('sales_per_bridge_request'), 1)} de "
                     f"media): {fmt(lot['sales_per_s'])} ventas/s frente a {fmt(via_api['sales_per_s'])} "
                     f"({pct(lot['sales_per_s'], via_api['sales_per_s'])}), p99 {fmt(lot['p99_ms'], 1)} frente a "
                     f"{fmt(via_api['p99_ms'], 1)} ms, CPU por venta del api {fmt(lot['cpu_us_api'])} frente a "
                     f"{fmt(via_api['cpu_us_api'])} µs y del bridge {fmt(lot['cpu_us_bridge'])} frente a "
                     f"{fmt(via_api['cpu_us_bridge'])} µs, de la máquina {fmt(lot['cpu_us_machine'])} frente a "
                     f"{fmt(via_api['cpu_us_machine'])} µs"
                     + (f"; el salto api → bridge, {fmt(lb['wire_bytes_per_sale'])} B en el cable y "
                        f"{fmt(lb['packets_per_sale'], 2)} paquetes por venta frente a "
                        f"{fmt(b['api→bridge']['wire_bytes_per_sale'])} B y "
                        f"{fmt(b['api→bridge']['packets_per_sale'], 2)}" if lb and "api→bridge" in b else "")
                     + ".")
    if direct:
        lines.append(f"Sin el api (wrk directo al bridge): {fmt(direct['sales_per_s'])} ventas/s frente a "
                     f"{fmt(via_api['sales_per_s'])} ({pct(direct['sales_per_s'], via_api['sales_per_s'])}), "
                     f"p99 {fmt(direct['p99_ms'], 1)} frente a {fmt(via_api['p99_ms'], 1)} ms, CPU de la máquina "
                     f"{fmt(direct['cpu_us_machine'])} frente a {fmt(via_api['cpu_us_machine'])} µs por venta.")
    md.append(" ".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    full_bytes = [b for b in bytes_rows if b["layout"] == per_sale]
    labels = [f"{b['hop']}\n{b['connections']} conex." for b in full_bytes]
    req = [num(b["request_bytes_per_call"]) for b in full_bytes]
    resp = [num(b["response_bytes_per_call"]) for b in full_bytes]
    colors = ["tab:orange" if "gRPC" in b["protocol"] else "tab:blue" for b in full_bytes]
    axes[0].bar(labels, req, color=colors, label="petición")
    axes[0].bar(labels, resp, bottom=req, color=colors, alpha=0.45, label="respuesta")
    axes[0].set_title("bytes TCP por llamada, una venta por llamada\n(azul REST, naranja gRPC)")
    axes[0].tick_params(axis="x", labelsize=7, labelrotation=45)
    axes[0].legend(fontsize=8)
    full_runs = [r for r in runs if r["layout"] == per_sale]
    x = [r["connections"] for r in full_runs]
    api = [num(r["api_ms_mean"]) or 0 for r in full_runs]
    br = [num(r["bridge_ms_mean"]) or 0 for r in full_runs]
    wr = [num(r["writer_ms_mean"]) or 0 for r in full_runs]
    axes[1].bar(x, wr, label="writer (Kafka)")
    axes[1].bar(x, [b - w for b, w in zip(br, wr)], bottom=wr, label="salto gRPC (bridge → writer)")
    axes[1].bar(x, [a - b for a, b in zip(api, br)], bottom=br, label="salto REST (api → bridge)")
    axes[1].set_xlabel("conexiones de wrk")
    axes[1].set_ylabel("ms (media)")
    axes[1].set_title("latencia media por capa, una venta por llamada")
    axes[1].legend(fontsize=8)
    savefig(fig, out / "hops.png")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for layout, rs in by(runs, "layout").items():
        xs = [int(r["connections"]) for r in rs]
        ax.plot(xs, [num(r["sales_per_s"]) for r in rs], "o-", label=f"{layout}: ventas/s")
    ax2 = ax.twinx()
    for layout, rs in by(runs, "layout").items():
        xs = [int(r["connections"]) for r in rs]
        ax2.plot(xs, [num(r["cpu_us_machine"]) for r in rs], "s--", label=f"{layout}: µs máquina/venta")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("conexiones de wrk")
    ax.set_ylabel("ventas/s")
    ax2.set_ylabel("CPU de la máquina por venta (µs)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper left")
    ax.set_title("El costo del salto REST: una venta por petición, lotes, sin el api")
    savefig(fig, out / "hops-api.png")
    return "".join(md)


# ----------------------------------------------------------------------------------- writers

def writers(out):
    rows = read_csv(out / "writers.csv")
    timeline = read_csv(out / "writers-crash-timeline.csv")
    crashes = read_csv(out / "writers-crash.csv")
    head, _ = provenance(out, "writers")
    md = [head, "**Bajo carga.** El bridge llama a un solo grupo de writers: `writer-a` (1 réplica) o "
          "`writer-b` (2 réplicas, round robin). «Reparto» = llamadas OK de cada writer "
          "(`sp_writer_requests_total` de su /metrics).\n\n"]
    md.append(table(["writers", "conex.", "ventas/s", "p50 ms", "p99 ms", *CPU_HEADER, "máquina ocupada",
                     "reparto", "no-2xx", "más CPU"],
                    [[r["config"], r["connections"], fmt(r["sales_per_s"]), fmt(r["p50_ms"], 1),
                      fmt(r["p99_ms"], 1), *cpu_cells(r), fmt(r["machine_busy_pct"]) + " %", r["spread"],
                      r["non2xx"], r["top_part"]] for r in rows]))
    md.append("\n**kill -9 de un writer con carga** (wrk, 16 conexiones), reiniciado en seguida por "
              "`local.sh up` como lo haría su Deployment. «Proceso nuevo»: cuándo arrancó el writer de "
              "reemplazo (antes, `local.sh up` comprueba el topic con una herramienta de Kafka en Java, "
              "lo que en Kubernetes haría el kubelet al instante); «listo de nuevo»: cuando `local.sh` vio "
              "su `/readyz`; «recibe llamadas de nuevo»: su primer OK en `/metrics` después de eso.\n\n")
    def since_kill(c, key):
        t, k = num(c.get(key)), num(c["kill_at_s"])
        return fmt(t - k, 2) if t is not None and k is not None else "—"
    md.append(table(["writers", "matado", "kill en s", "proceso nuevo (s tras el kill)", "listo de nuevo (s tras el kill)",
                     "recibe llamadas de nuevo (s tras el kill)", "peticiones", "2xx",
                     "errores vistos por el cliente", "5xx del api", "último error (s tras el kill)"],
                    [[c["config"], c["killed"], fmt(c["kill_at_s"], 2), since_kill(c, "restarted_at_s"),
                      since_kill(c, "restarted_ready_at_s"),
                      since_kill(c, "victim_serving_again_at_s"), fmt(c["requests"]), fmt(c["accepted"]),
                      fmt(c["client_errors"]), fmt(c["api_5xx"]), since_kill(c, "errors_until_s")]
                     for c in crashes]))

    top = max(int(r["connections"]) for r in rows)
    one, two = [next(r for r in rows if r["config"] == k and int(r["connections"]) == top)
                for k in list(by(rows, "config"))[:2]]
    c1, c2 = crashes[0], crashes[1]
    md.append(f"\nResumen: con {top} conexiones, {two['config']} dio {fmt(two['sales_per_s'])} ventas/s "
              f"({pct(two['sales_per_s'], one['sales_per_s'])} frente a {fmt(one['sales_per_s'])} con "
              f"{one['config']}), p99 {fmt(two['p99_ms'], 1)} frente a {fmt(one['p99_ms'], 1)} ms; reparto "
              f"{two['spread']}. Con el kill -9: {c1['config']} vio {fmt(c1['client_errors'])} errores "
              f"(de {fmt(c1['requests'])} peticiones), el último {since_kill(c1, 'errors_until_s')} s después del "
              f"kill; {c2['config']} vio {fmt(c2['client_errors'])} (de {fmt(c2['requests'])})"
              + (f", el último {since_kill(c2, 'errors_until_s')} s después del kill" if c2.get("errors_until_s") else "")
              + ".\n")

    configs = list(by(rows, "config"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k in configs:
        rs = by(rows, "config")[k]
        xs = [int(r["connections"]) for r in rs]
        axes[0].plot(xs, [num(r["sales_per_s"]) for r in rs], "o-", label=k)
        axes[1].plot(xs, [num(r["p99_ms"]) for r in rs], "o-", label=k)
    for ax, t in ((axes[0], "ventas/s"), (axes[1], "p99 ms (wrk)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("conexiones de wrk")
        ax.set_title(t)
        ax.legend(fontsize=8)
    savefig(fig, out / "writers.png")

    fig, axes = plt.subplots(len(configs), 1, figsize=(10, 3.2 * len(configs)), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], configs):
        ts = [r for r in timeline if r["config"] == k]
        t = [num(r["t_s"]) for r in ts]
        ax.plot(t, [num(r["ok_per_s"]) for r in ts], label="2xx/s (api)")
        ax.plot(t, [num(r["errors_per_s"]) for r in ts], label="5xx/s (api)", color="tab:red")
        for col in [c for c in ts[0] if c.startswith("ok_per_s_")] if ts else []:
            ax.plot(t, [num(r[col]) for r in ts], ":", label=f"OK/s {col[9:]}")
        c = next(c for c in crashes if c["config"] == k)
        ax.axvline(num(c["kill_at_s"]), color="k", ls="--", lw=0.8)
        ax.text(num(c["kill_at_s"]), ax.get_ylim()[1] * 0.9, " kill -9", fontsize=8)
        ax.set_title(k)
        ax.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("segundos desde el inicio de wrk")
    savefig(fig, out / "writers-crash.png")
    return "".join(md)


# ------------------------------------------------------------------------------------- HPA

def hpa(out):
    """The HPA recording: hpa.md as `make hpa-demo` (issue 12, tests/e2e/hpa_demo.py) wrote it,
    or, until there is one, a note saying so. Never written here: the demo owns it."""
    if (out / "hpa.md").exists():
        return (out / "hpa.md").read_text()
    return ("**Pendiente:** esta sección citará la grabación de `make hpa-demo` (issue 12), que escribe "
            "`docs/report/hpa.md`, `hpa.csv`, `hpa_pods.csv` y `hpa.png`. Aún no está en el repositorio: "
            "no hay números que citar todavía.\n")


# ------------------------------------------------------------------------------------- VPA

# The VPA recommender's defaults (kubernetes/autoscaler, vertical-pod-autoscaler/docs/flags.md):
# the target is the 90th percentile of the CPU usage and of the memory peaks it observed, plus
# a 15 % safety margin, with floors of 25 millicores and 250 MiB per pod.
VPA_MARGIN, VPA_MIN_MCPU, VPA_MIN_MIB, VPA_PERCENTILE = 0.15, 25, 250, 0.9


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def vpa_cells(mcpu, mib):
    return [fmt(max(VPA_MIN_MCPU, mcpu * (1 + VPA_MARGIN)), 0), fmt(max(VPA_MIN_MIB, mib * (1 + VPA_MARGIN)), 0)]


def vpa(out):
    """What a VPA would recommend from the measured CPU and memory of each worker: on this
    machine (hops.csv: the chain through the api as it runs by default, with batches, one
    writer, at its highest load) and, when `make hpa-demo` recorded them, per pod in Kubernetes
    (hpa_pods.csv, from metrics-server, over the whole demo)."""
    api_runs = [r for r in read_csv(out / "hops.csv") if r["layout"].startswith("wrk → api")]
    runs = [r for r in api_runs if batched(r)] or api_runs
    top = max(runs, key=lambda r: int(r["connections"]))
    rate = num(top["sales_per_s"]) or 0
    rows = []
    for part in ("api", "bridge", "writer-a", "consumer"):
        us = num(top.get(f"cpu_us_{part}"))
        rss = num(top.get(f"peak_rss_mb_{part}"))
        if us is None or rss is None:
            continue
        mcpu, mib = us * rate / 1000, rss  # VmHWM kB / 1024: MiB
        rows.append([part, fmt(mcpu, 0), fmt(mib, 1), *vpa_cells(mcpu, mib)])
    head, _ = provenance(out, "hops")
    md = [head + f"**En esta máquina**, recorrido «{top['layout']}» con {top['connections']} conexiones "
          f"({fmt(rate)} ventas/s, a saturación): CPU = µs por venta × ventas/s; memoria = pico de RSS "
          "(VmHWM). Recomendación = uso × 1,15, con los pisos por pod del recommender (25 m de CPU, "
          "250 MiB de memoria).\n\n",
          table(["worker", "CPU usada (milinúcleos)", "RSS pico (MiB)", "VPA: CPU (m)", "VPA: memoria (MiB)"], rows)]
    pods_csv = out / "hpa_pods.csv"
    if pods_csv.exists():
        pods = read_csv(pods_csv)
        # While Locust ran (hpa.json's load_s, seconds from the load's start, as t_s).
        run = json.loads((out / "hpa.json").read_text()) if (out / "hpa.json").exists() else {}
        start, end = run.get("load_s", [float("-inf"), float("inf")])
        pods = [r for r in pods if start <= (num(r.get("t_s")) or 0) <= end]
        with open(pods_csv) as f:
            comments = [line[1:].strip() for line in f if line.startswith("#")]
        krows = []
        for comp, rs in by(pods, "component").items():
            cpu = [num(r["cpu_m"]) for r in rs if num(r["cpu_m"]) is not None]
            mem = [num(r["mem_mib"]) for r in rs if num(r["mem_mib"]) is not None]
            if not cpu or not mem:
                continue
            c90, m90 = percentile(cpu, VPA_PERCENTILE), percentile(mem, VPA_PERCENTILE)
            krows.append([comp, len({r["pod"] for r in rs}), len(rs), fmt(c90, 0), fmt(max(cpu), 0),
                          fmt(m90, 1), fmt(max(mem), 1), *vpa_cells(c90, m90)])
        md.append("\n**En Kubernetes**, de `make hpa-demo` (sección 4.5; `docs/report/hpa_pods.csv`: CPU y "
                  "memoria de cada pod según metrics-server, las muestras mientras corría Locust). Recomendación = "
                  "percentil 90 de las muestras × 1,15, con los mismos pisos."
                  + (" " + "; ".join(comments[:3]) + "." if comments else "") + "\n\n")
        md.append(table(["componente", "pods", "muestras", "CPU p90 (m)", "CPU máx. (m)", "memoria p90 (MiB)",
                         "memoria máx. (MiB)", "VPA: CPU (m)", "VPA: memoria (MiB)"], krows))
    return "".join(md)


RENDERERS = {"kafka": ("kafka.csv", kafka), "valkey": ("valkey-crash.csv", valkey),
             "hops": ("hops.csv", hops), "writers": ("writers.csv", writers)}


def splice(informe, name, text):
    src = informe.read_text()
    pattern = re.compile(rf"(<!-- BEGIN report/{re.escape(name)} -->\n).*?(<!-- END report/{re.escape(name)} -->)",
                         re.S)
    if not pattern.search(src):
        return False
    informe.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), src))
    return True


# scenario -> (title, its CSV files, its plots). report.py writes a scenario's tables into these
# CSV files, in this order (scenarios.py returns them so).
SCENARIO_FILES = {
    "kafka": ("Kafka: particiones, linger.ms, acks e idempotencia, particionador", ["kafka.csv"], ["kafka-rate.png", "kafka-batches.png"]),
    "valkey": ("Valkey: réplica, WAIT, AOF; kill -9 del primario", ["valkey.csv", "valkey-drain.csv", "valkey-crash.csv"],
               ["valkey-crash.png", "valkey-drain.png"]),
    "hops": ("REST frente a gRPC en un salto; lotes del api; con y sin el api", ["hops.csv", "hops-bytes.csv", "hops-cpu.csv"],
             ["hops.png", "hops-api.png"]),
    "writers": ("Writers con 1 y 2 réplicas; kill -9 de un writer",
                ["writers.csv", "writers-crash.csv", "writers-crash-timeline.csv"], ["writers.png", "writers-crash.png"]),
}


def index(out):
    """docs/report/README.md: every file, with the run that made it."""
    lines = ["# docs/report: las mediciones de docs/informe.md\n",
             "Las escribe `make report` (`scripts/report.sh [escenario]`); no se editan a mano. Cada CSV "
             "empieza con líneas `#` que dicen el comando, la fecha, el commit, la máquina y la carga media. "
             "Las tablas `*.md` se copian en `docs/informe.md` entre sus marcadores.\n"]
    lines.append(table(["escenario", "comando", "fecha", "commit", "máquina", "carga media antes / después",
                        "duración", "archivos"],
                       [[title, f"`{m['command']}`", m["date"], f"`{m['commit']}`", m["machine"],
                         f"{m['loadavg_before']} / {m['loadavg_after']}", f"{m['wall_seconds']} s",
                         ", ".join(f"[{f}]({f})" for f in csvs + pngs + [f"{name}.md"])]
                        for name, (title, csvs, pngs) in SCENARIO_FILES.items()
                        if (out / f"{name}.json").exists()
                        for m in [json.loads((out / f"{name}.json").read_text())]]))
    lines.append("\n`vpa.md` sale de `hops.csv` (y de `hpa_pods.csv` cuando existe); `hpa.md`, `hpa.csv`, "
                 "`hpa_pods.csv`, `hpa.png` y `hpa.json` los escribe `make hpa-demo` (tests/e2e/hpa_demo.py).\n")
    (out / "README.md").write_text("\n".join(lines))


def render_all(out, informe=None):
    made = {}
    for name, (marker_file, fn) in RENDERERS.items():
        if (out / marker_file).exists() and (out / f"{name}.json").exists():
            made[f"{name}.md"] = fn(out)
    if (out / "hops.csv").exists() and (out / "hops.json").exists():
        made["vpa.md"] = vpa(out)
    index(out)
    for fname, text in made.items():
        (out / fname).write_text(text)
    made["hpa.md"] = hpa(out)  # spliced, never written: make hpa-demo owns the file
    if informe is not None and informe.exists():
        for fname, text in made.items():
            splice(informe, fname, text)
    return made
