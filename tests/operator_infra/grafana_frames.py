"""What Grafana does with a panel's query: the Redis data source's data frames, then the
panel's transformations.

Frames follow the Redis data source plugin (github.com/RedisGrafana/grafana-redis-datasource,
v2.2.0, Apache-2.0), read from its source: its Go module is not served by the Go module proxy
(403 "not available"), so its code cannot run here. Each builder below names the function it
follows and takes the real reply of a real Valkey. Transformations follow @grafana/data
(Apache-2.0), for the ones our dashboards use.

A frame is {"name": str, "fields": [Field]}; a Field is {"name", "type", "values"} with type
"number", "string" or "time" (time values in unix milliseconds)."""
import re

GO_FLOAT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)",
                      re.IGNORECASE)


def go_parse_float(text):
    """strconv.ParseFloat(text, 64) for decimal text: a float, or None when Go refuses it."""
    return float(text) if GO_FLOAT.fullmatch(text) else None


def field(name, values, kind=None):
    return {"name": name, "type": kind or infer(values), "values": list(values)}


def infer(values):
    return "number" if values and all(isinstance(v, float) for v in values) else "string"


def flat_pairs(reply):
    """RunFlatCmd(&[]string): a flat reply of name, value, name, value..."""
    return list(zip(reply[::2], reply[1::2]))


def pair_fields(reply):
    """One row, a column per pair; a value becomes a number when ParseFloat takes it."""
    out = []
    for name, value in flat_pairs(reply):
        number = go_parse_float(value)
        out.append(field(name, [number] if number is not None else [value]))
    return out


def hgetall_frame(reply):
    """pkg/redis-hash.go queryHGetAll: frame named "hgetall", one field per hash field."""
    return {"name": "hgetall", "fields": pair_fields(reply)}


def zrange_frame(reply):
    """pkg/redis-zset.go queryZRange (WITHSCORES): frame "zrange", one field per member."""
    return {"name": "zrange", "fields": pair_fields(reply)}


def get_frame(key, value):
    """pkg/query.go queryKeyCommand -> pkg/data-frame.go createFrameValue(key, value, "Value")."""
    number = go_parse_float(value)
    return {"name": key, "fields": [field("Value", [number] if number is not None else [value])]}


def xrange_frame(reply):
    """pkg/redis-stream.go createFrameFromRangeResponse: $streamId, $time (from the id's
    milliseconds), then a field per entry field in the order first seen, typed by its first
    value (a number when ParseFloat takes it); an entry without it gets 0 or ""."""
    ids, times, fields, order = [], [], {}, []
    for row, (entry_id, flat) in enumerate(reply):
        ids.append(entry_id)
        times.append(int(entry_id.split("-")[0]))
        seen = set()
        for name, value in flat_pairs(flat):
            number = go_parse_float(value)
            if name not in fields:
                kind = "number" if number is not None else "string"
                fields[name] = {"name": name, "type": kind,
                                "values": [0.0 if kind == "number" else ""] * row}
                order.append(name)
            f = fields[name]
            f["values"].append(number if f["type"] == "number" else value)
            seen.add(name)
        for name in order:
            if name not in seen:
                f = fields[name]
                f["values"].append(0.0 if f["type"] == "number" else "")
    return {"name": "xrange", "fields": [field("$streamId", ids, "string"),
                                         field("$time", times, "time")] +
            [fields[n] for n in order]}


def custom_frame(reply):
    """pkg/redis-custom.go queryCustomCommand (a variable's query): an array reply becomes one
    field "Value" of strings; an empty one the single value "(empty array)"."""
    values = [str(v) for v in reply] if reply else ["(empty array)"]
    return {"name": "", "fields": [field("Value", values, "string")]}


# ---------------------------------------------------------------- transformations

def last_not_null(values):
    for v in reversed(values):
        if v is not None:
            return v
    return None


def reduce_series_to_rows(frames, options):
    """reduce, mode seriesToRows (reduceSeriesToRows): a row per non-time field of every frame,
    "Field" = its name, then a column per reducer named as Grafana names it."""
    names = {"lastNotNull": "Last *", "last": "Last", "max": "Max", "min": "Min"}
    reducers = options["reducers"]
    assert set(reducers) <= {"lastNotNull"}, f"reducers this model lacks: {reducers}"
    rows = [(f["name"], last_not_null(f["values"])) for fr in frames for f in fr["fields"]
            if f["type"] != "time"]
    return [{"name": "", "fields": [field("Field", [r[0] for r in rows], "string"),
                                    field(names["lastNotNull"], [r[1] for r in rows])]}]


def convert_field_type(frames, options):
    """convertFieldType: a number of unix milliseconds (or a number-like string) to time, or a
    string to number."""
    out = []
    for fr in frames:
        fields = []
        for f in fr["fields"]:
            for c in options["conversions"]:
                if c["targetField"] != f["name"]:
                    continue
                to = c["destinationType"]
                if to == "time":
                    f = field(f["name"], [int(float(v)) for v in f["values"]], "time")
                elif to == "number":
                    f = field(f["name"], [go_parse_float(str(v)) for v in f["values"]], "number")
                else:
                    raise AssertionError(f"a conversion this model lacks: {to}")
            fields.append(f)
        out.append({"name": fr["name"], "fields": fields})
    return out


def organize(frames, options):
    """organize: excludeByName drops fields (renames and order are not used by our panels)."""
    assert set(options) <= {"excludeByName"}, options
    drop = {k for k, v in options.get("excludeByName", {}).items() if v}
    return [{"name": fr["name"], "fields": [f for f in fr["fields"] if f["name"] not in drop]}
            for fr in frames]


def sort_by(frames, options):
    """sortBy: rows ordered by one field (ascending unless desc)."""
    (spec,) = options["sort"]
    out = []
    for fr in frames:
        key = next(f for f in fr["fields"] if f["name"] == spec["field"])
        order = sorted(range(len(key["values"])), key=lambda i: key["values"][i],
                       reverse=bool(spec.get("desc")))
        out.append({"name": fr["name"], "fields": [
            {**f, "values": [f["values"][i] for i in order]} for f in fr["fields"]]})
    return out


TRANSFORMATIONS = {"reduce": lambda frames, o: reduce_series_to_rows(frames, o)
                   if o.get("mode") == "seriesToRows" else _unsupported("reduce", o),
                   "convertFieldType": convert_field_type, "organize": organize,
                   "sortBy": sort_by}


def _unsupported(name, options):
    raise AssertionError(f"transformation {name} {options}: not modelled")


def transform(panel, frames):
    """The panel's transformations, in order, on the data source's frames."""
    for t in panel.get("transformations", []):
        assert t["id"] in TRANSFORMATIONS, f"{panel['title']}: {t['id']} is not modelled"
        frames = TRANSFORMATIONS[t["id"]](frames, t.get("options", {}))
    return frames


def fields_by_name(frame):
    return {f["name"]: f for f in frame["fields"]}
