// Drives a Toxiproxy server with the npm client `toxiproxy-node-client`.
//
// Usage: node node_client.mjs API_URL UPSTREAM LATENCY_MS
//
// Creates a proxy to UPSTREAM (an echo server), adds a latency toxic, lists proxies and toxics,
// times round trips through the proxy with and without the toxic, removes toxic and proxy,
// populates, and prints what it saw as one JSON object on stdout. The caller
// (delegate/tests/it/toxiproxy_server.rs) judges the numbers.
import net from "node:net";
import { Toxiproxy } from "toxiproxy-node-client";

const [apiUrl, upstream, latencyArg] = process.argv.slice(2);
const latency = Number(latencyArg);
const seen = {};
const toxiproxy = new Toxiproxy(apiUrl);

seen.version = await toxiproxy.getVersion();
const proxy = await toxiproxy.createProxy({ name: "node", listen: "127.0.0.1:0", upstream });
seen.listen = proxy.listen;

const [host, port] = [proxy.listen.slice(0, proxy.listen.lastIndexOf(":")), Number(proxy.listen.slice(proxy.listen.lastIndexOf(":") + 1))];
const sock = net.connect({ host, port, noDelay: true });
await new Promise((resolve, reject) => { sock.once("connect", resolve); sock.once("error", reject); });
let pending = null;
let got = 0;
sock.on("data", (chunk) => {
  got += chunk.length;
  if (pending && got >= 64) { got -= 64; const done = pending; pending = null; done(); }
});
sock.on("error", (e) => { console.error(`connection through the proxy failed: ${e}`); process.exit(1); });

// Milliseconds of n 64-byte echo round trips on the same connection.
async function roundTrips(n = 5) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await new Promise((resolve) => { pending = resolve; sock.write(Buffer.alloc(64, 120)); });
    out.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return out;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

seen.before_ms = await roundTrips();
const toxic = await proxy.addToxic({ name: "node-latency", type: "latency", stream: "downstream", toxicity: 1, attributes: { latency, jitter: 0 } });
seen.toxic = toxic.toJson();
seen.listed_proxies = Object.keys(await toxiproxy.getAll()).sort();
seen.listed_toxic_latency = (await proxy.getToxic("node-latency")).attributes.latency;
seen.with_toxic_ms = await roundTrips();
await toxic.remove();
seen.toxics_after_remove = (await toxiproxy.getApi().get(`${apiUrl}/proxies/node/toxics`)).data;
seen.after_ms = await roundTrips();
sock.destroy();
await proxy.remove();
seen.proxies_after_remove = Object.keys(await toxiproxy.getAll()).sort();

const populated = await toxiproxy.populate([
  { name: "node-pop-a", listen: "127.0.0.1:0", upstream, enabled: true },
  { name: "node-pop-b", listen: "127.0.0.1:0", upstream, enabled: false },
]);
seen.populated = Object.fromEntries(Object.entries(populated).map(([n, p]) => [n, p.enabled]));

seen.median_before_ms = median(seen.before_ms);
seen.median_with_toxic_ms = median(seen.with_toxic_ms);
seen.median_after_ms = median(seen.after_ms);
console.log(JSON.stringify(seen));
