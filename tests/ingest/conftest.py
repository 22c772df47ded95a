"""Fixtures for the ingest path: a STOCK grpcio ProductSaleService server (code generated at test
time from proto/ with grpc_tools.protoc into a temporary folder, never committed), and our api
and bridge started in front of it."""
import sys

import pytest

from harness import ROOT, free_port
from ingest_util import BatchServer, StockServer, generate_pb

# The writer area's helper that starts a writer is used as it is, not copied.
sys.path.insert(0, str(ROOT / "tests" / "writer"))
from writer_util import generate_stubs, start_writer  # noqa: E402


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    return generate_pb(tmp_path_factory.mktemp("grpc_gen"))


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """The writer area's generated modules, with intake_pb2 (the api -> bridge batches)."""
    return generate_stubs(tmp_path_factory.mktemp("ingest-stubs"))


@pytest.fixture
def stock(pb):
    """Starts stock servers: stock(mode="ok", delay=0.0, workers=64, port=0). All are stopped
    after the test."""
    servers = []

    def start(mode="ok", delay=0.0, workers=64, port=0):
        s = StockServer(pb, mode, delay, workers, port)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def batch_server(stubs):
    """Starts servers of our SaleBatchService: batch_server(answer, delay=0.0) (BatchServer). All
    are stopped after the test."""
    servers = []

    def start(answer, delay=0.0):
        s = BatchServer(stubs, answer, delay)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def bridge(workers):
    """Starts our bridge in front of a writer target: bridge(target, *extra_args, port=None)."""
    def start(target, *args, ready=True, port=None):
        port = port or free_port()
        w = workers("bridge", ["--port", str(port), "--writer-target", target, *args],
                    http_port=port)
        return w.wait_ready() if ready else w
    return start


@pytest.fixture
def api(workers):
    """Starts our api in front of a bridge: api(bridge_worker_or_url, *extra_args, port=None)."""
    def start(bridge, *args, ready=True, port=None):
        port = port or free_port()
        url = bridge if isinstance(bridge, str) else bridge.url("/ventas")
        w = workers("api", ["--port", str(port), "--bridge-url", url, *args], http_port=port)
        return w.wait_ready() if ready else w
    return start


@pytest.fixture
def chain(stock, bridge, api):
    """stock server <- bridge <- api, all ready. Returns (api, bridge, server)."""
    def start(mode="ok", delay=0.0, api_args=(), bridge_args=()):
        server = stock(mode, delay)
        b = bridge(f"ipv4:{server.address}", *bridge_args)
        a = api(b, *api_args)
        return a, b, server
    return start


@pytest.fixture
def pipeline(workers, bridge, api):
    """writer (on `bootstrap`, `topic`) <- bridge <- api, all ready. Returns (api, bridge, writer).
    `api_args` / `bridge_args` / `writer_args` are extra flags for each."""
    def start(bootstrap, topic, writer_args=(), api_args=(), bridge_args=()):
        w = start_writer(workers, bootstrap, topic, *writer_args)
        b = bridge(f"ipv4:{w.target}", *bridge_args)
        return api(b, *api_args), b, w
    return start
