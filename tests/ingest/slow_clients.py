"""Slow HTTP clients against our REST intake: many connections that send part of a request and
then hold it, or trickle it a byte at a time (slowloris), from chosen loopback source addresses.

Every socket is non-blocking and driven by one selector thread, so 10,000 of them cost one
thread. For each connection we record when the server closed it (EOF or reset) and the status
line it answered with, if any."""
import errno
import resource
import selectors
import socket
import threading
import time

HEADERS = (b"POST /ventas HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
           b"Content-Length: 100\r\n\r\n")
HALF_BODY = b'{"categoria":"Electronica","producto_id":"slow",'   # 48 of the 100 bytes promised
HEADER_START = b"POST /ventas HTTP/1.1\r\nHost: slow\r\n"

# What each kind of client sends at once, and what it trickles afterwards (one byte at a time).
KINDS = {
    "half-body": (HEADERS + HALF_BODY, b""),                        # then silence
    "trickle-headers": (HEADER_START, b"X-Slow: " + b"a" * 100000),  # never ends its headers
    "trickle-body": (HEADERS, b" " * 100000),                       # a body byte at a time
}


def raise_fd_limit(need):
    """Raises this process's RLIMIT_NOFILE soft limit to the hard one; returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    assert soft >= need, f"RLIMIT_NOFILE {soft} < {need}: raise the hard limit (ulimit -Hn)"
    return soft


class Conn:
    __slots__ = ("sock", "kind", "rest", "opened", "closed", "answer", "source")

    def __init__(self, sock, kind, rest, source):
        self.sock, self.kind, self.rest, self.source = sock, kind, rest, source
        self.opened = self.closed = None
        self.answer = b""


class SlowClients:
    """`counts` maps a kind of KINDS to how many connections of it to open; `sources` are the
    local addresses the connections come from, used in turn. `trickle_s` is the pause between
    two trickled bytes of one connection (keep it under the server's idle timeout: that is the
    point of a trickle)."""

    def __init__(self, port, counts, sources=("127.0.0.1",), trickle_s=1.0, host="127.0.0.1"):
        self.addr = (host, port)
        self.counts = counts
        self.sources = sources
        self.trickle_s = trickle_s
        self.conns = []
        self.sel = selectors.DefaultSelector()
        self.stop_flag = threading.Event()
        self.thread = None
        self.lock = threading.Lock()

    # --- opening ---

    def open(self, batch=500, timeout=60.0):
        """Connects every client (in batches, so the server's accept queue is not overrun) and
        sends each its first bytes. Returns the seconds it took."""
        t0 = time.monotonic()
        plan = [k for k, n in self.counts.items() for _ in range(n)]
        for start in range(0, len(plan), batch):
            pending = {}
            for i, kind in enumerate(plan[start:start + batch], start):
                src = self.sources[i % len(self.sources)]
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((src, 0))
                s.setblocking(False)
                rc = s.connect_ex(self.addr)
                assert rc in (0, errno.EINPROGRESS), f"connect: {errno.errorcode.get(rc, rc)}"
                first, rest = KINDS[kind]
                pending[s.fileno()] = (Conn(s, kind, rest, src), first)
            waiter = selectors.DefaultSelector()
            for c, _ in pending.values():
                waiter.register(c.sock, selectors.EVENT_WRITE)
            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                for key, _ in waiter.select(1.0):
                    c, first = pending.pop(key.fd)
                    waiter.unregister(c.sock)
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    assert err == 0, f"connect from {c.source}: {errno.errorcode.get(err, err)}"
                    c.sock.send(first)
                    c.opened = time.monotonic()
                    self.conns.append(c)
            waiter.close()
            assert not pending, f"{len(pending)} connections did not connect in {timeout}s"
        with self.lock:
            for c in self.conns:
                self.sel.register(c.sock, selectors.EVENT_READ, c)
        return time.monotonic() - t0

    # --- holding ---

    def start(self):
        self.thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self.thread.start()
        return self

    def _run(self):
        next_trickle = time.monotonic() + self.trickle_s
        while not self.stop_flag.is_set():
            with self.lock:
                events = self.sel.select(0.05) if self.sel.get_map() else []
                for key, _ in events:
                    self._readable(key.data)
                if time.monotonic() >= next_trickle:
                    next_trickle += self.trickle_s
                    for c in self.conns:
                        if c.closed is None and c.rest:
                            self._send(c, c.rest[:1])
                            c.rest = c.rest[1:]
            if not events:
                time.sleep(0.01)

    def _send(self, c, data):
        try:
            c.sock.send(data)
        except OSError:
            self._close(c)

    def _readable(self, c):
        try:
            data = c.sock.recv(4096)
        except OSError:
            data = b""
        if data:
            c.answer += data
            return
        self._close(c)

    def _close(self, c):
        if c.closed is None:
            c.closed = time.monotonic()
            self.sel.unregister(c.sock)

    # --- results ---

    def open_count(self):
        with self.lock:
            return sum(1 for c in self.conns if c.closed is None)

    def statuses(self):
        """Status codes answered (first line of each answer), as {code or None: count}."""
        out = {}
        with self.lock:
            for c in self.conns:
                code = int(c.answer.split(b" ", 2)[1]) if c.answer.startswith(b"HTTP/") else None
                out[code] = out.get(code, 0) + 1
        return out

    def close(self):
        self.stop_flag.set()
        if self.thread:
            self.thread.join(10)
        with self.lock:
            for c in self.conns:
                c.sock.close()
            self.sel.close()


class Prober:
    """Normal sales on their own keep-alive connection(s) while something else goes on: records
    each one's latency and status. `post_fn()` sends one sale and returns its status code."""

    def __init__(self, post_fn, threads=2, pause_s=0.02):
        self.post_fn = post_fn
        self.pause_s = pause_s
        self.results = []   # (latency s, status or exception name)
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        while not self.stop_flag.is_set():
            t = time.monotonic()
            try:
                status = self.post_fn()
            except Exception as e:  # a timeout is a result here
                status = type(e).__name__
            with self.lock:
                self.results.append((time.monotonic() - t, status))
            self.stop_flag.wait(self.pause_s)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)
        return self.results


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")
