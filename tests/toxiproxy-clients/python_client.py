"""Drives a Toxiproxy server with the PyPI client `toxiproxy-python` (module `toxiproxy`).

Usage: python_client.py API_HOST API_PORT UPSTREAM LATENCY_MS

Creates a proxy to UPSTREAM (an echo server), times round trips through it before, with and
after a latency toxic, destroys it, populates two proxies, and prints what it saw as one JSON
object on stdout. The caller (delegate/tests/it/toxiproxy_server.rs) judges the numbers.
"""
import json
import socket
import statistics
import sys
import time

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer

api_host, api_port, upstream, latency = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
seen = {}

server = Toxiproxy()
server.update_api_consumer(api_host, api_port)
seen["running"] = server.running()
seen["version"] = server.version().decode() if isinstance(server.version(), bytes) else server.version()

proxy = server.create(upstream=upstream, name="py", listen="127.0.0.1:0")
seen["listen"] = proxy.listen
host, port = proxy.listen.rsplit(":", 1)
conn = socket.create_connection((host, int(port)), timeout=5)


def round_trips(n=5):
    """Milliseconds of n 64-byte echo round trips on the same connection."""
    out = []
    for _ in range(n):
        start = time.monotonic()
        conn.sendall(b"x" * 64)
        got = b""
        while len(got) < 64:
            chunk = conn.recv(64 - len(got))
            if not chunk:
                raise SystemExit("the proxy closed the connection")
            got += chunk
        out.append((time.monotonic() - start) * 1000)
    return out


seen["before_ms"] = round_trips()
proxy.add_toxic(type="latency", attributes={"latency": latency})
seen["toxics_while"] = sorted(proxy.toxics())
seen["toxic_latency"] = proxy.get_toxic("latency_downstream").attributes["latency"]
seen["with_toxic_ms"] = round_trips()
proxy.destroy_toxic("latency_downstream")
seen["toxics_after"] = sorted(proxy.toxics())
seen["after_ms"] = round_trips()
conn.close()
proxy.destroy()
seen["proxies_after_destroy"] = sorted(server.proxies())

# The client's populate (create or replace, client side), then the server's POST /populate.
created = server.populate([
    {"name": "py-pop-a", "listen": "127.0.0.1:0", "upstream": upstream},
    {"name": "py-pop-b", "listen": "127.0.0.1:0", "upstream": upstream, "enabled": False},
])
seen["client_populated"] = sorted(p.name for p in created)
kept = server.get_proxy("py-pop-a")
resp = APIConsumer.post("/populate", json=[
    {"name": "py-pop-a", "listen": kept.listen, "upstream": upstream},
    {"name": "py-pop-c", "listen": "127.0.0.1:0", "upstream": upstream},
])
seen["populate_status"] = resp.status_code
seen["populate_answer"] = sorted(p["name"] for p in resp.json()["proxies"])
seen["populate_kept_listen"] = server.get_proxy("py-pop-a").listen == kept.listen
seen["proxies_after_populate"] = {
    name: {"enabled": p.enabled, "listen": p.listen} for name, p in server.proxies().items()
}
seen["median_before_ms"] = statistics.median(seen["before_ms"])
seen["median_with_toxic_ms"] = statistics.median(seen["with_toxic_ms"])
seen["median_after_ms"] = statistics.median(seen["after_ms"])
print(json.dumps(seen))
