// The demo page: SimpleMethod and ServerStreamingMethod of demo.GRPCDemo over the Connect
// protocol (JSON or binary) with @connectrpc/connect-web, against the page's own origin or
// the server named by ?server=. Each section's data-state (idle, running, ok, error) and
// the elements #simple-result / #stream-results (with data-server-id and
// data-response-data) are what tests read.

import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

import { GRPCDemo } from "./gen/demo_pb.js";

const $ = (id) => document.getElementById(id);
const server = new URLSearchParams(location.search).get("server") ?? location.origin;
$("server").textContent = server;

function client() {
  const transport = createConnectTransport({
    baseUrl: server,
    useBinaryFormat: $("format").value === "binary",
  });
  return createClient(GRPCDemo, transport);
}

function request() {
  return { clientId: BigInt($("client-id").value || "0"), requestData: $("request-data").value };
}

/** One reply as an element carrying its fields. */
function replyElement(tag, reply) {
  const el = document.createElement(tag);
  el.className = "reply";
  el.dataset.serverId = reply.serverId.toString();
  el.dataset.responseData = reply.responseData;
  el.textContent = `server ${reply.serverId}: ${reply.responseData}`;
  return el;
}

function describe(err) {
  const e = ConnectError.from(err);
  return `error: ${e.message}`;
}

/** Runs `call` for the section `name`, showing its state and outcome. */
async function run(name, call) {
  const section = $(name);
  const status = $(`${name}-status`);
  const button = $(`${name}-run`);
  button.disabled = true;
  section.dataset.state = "running";
  status.textContent = "calling…";
  const format = $("format").value;
  try {
    const summary = await call();
    section.dataset.state = "ok";
    section.dataset.format = format;
    status.textContent = `${summary} (${format})`;
  } catch (err) {
    section.dataset.state = "error";
    status.textContent = describe(err);
  } finally {
    button.disabled = false;
  }
}

$("simple-run").addEventListener("click", () =>
  run("simple", async () => {
    const result = $("simple-result");
    result.replaceChildren();
    const reply = await client().simpleMethod(request());
    result.replaceChildren(replyElement("span", reply));
    result.dataset.serverId = reply.serverId.toString();
    result.dataset.responseData = reply.responseData;
    return "ok";
  }),
);

$("stream-run").addEventListener("click", () =>
  run("stream", async () => {
    const list = $("stream-results");
    list.replaceChildren();
    let count = 0;
    for await (const reply of client().serverStreamingMethod(request())) {
      list.append(replyElement("li", reply));
      count++;
    }
    list.dataset.count = String(count);
    return `done, ${count} replies`;
  }),
);
