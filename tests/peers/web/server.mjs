#!/usr/bin/env node
// demo.GRPCDemo on @connectrpc/connect-node, answering like h2grpc's demo-server (with
// "Node" for "Rust" in the texts, see demo_service.mjs): Connect (proto and JSON), gRPC-Web
// (binary) and gRPC, over HTTP/1.1 and h2c on one port (the first bytes of each connection
// pick the protocol: the HTTP/2 preface or an HTTP/1.1 request line), with CORS for every
// origin, and optionally the demo page's files.
//
//   node server.mjs [--port 0] [--host 127.0.0.1] [--server-id 1] [--server-name Node]
//                   [--http both|1.1|2] [--static ../../../demo/web/dist] [--no-cors]
//                   [--verbose]
//
// Prints `listening on port N` once it listens (N is the OS's choice for --port 0) and
// exits 0 on SIGTERM/SIGINT. gRPC needs HTTP/2; gRPC-Web and Connect work on both.

import * as fs from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as path from "node:path";
import { Duplex } from "node:stream";
import { parseArgs } from "node:util";

import { Code, ConnectError, cors } from "@connectrpc/connect";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";

import { GRPCDemo } from "./gen/demo_pb.js";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb.js";
import {
  ERROR_DESCRIPTION,
  ERROR_FIELD,
  ERROR_MESSAGE,
  ERROR_REQUEST,
  STREAM_REPLIES,
  sleepMs,
  texts,
} from "./demo_service.mjs";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    "server-id": { type: "string", default: "1" },
    "server-name": { type: "string", default: "Node" },
    http: { type: "string", default: "both" },
    static: { type: "string" },
    "no-cors": { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
  },
  strict: true,
});
if (!["both", "1.1", "2"].includes(args.http)) {
  console.error(`server.mjs: --http must be both, 1.1 or 2, not ${args.http}`);
  process.exit(2);
}
const serverId = BigInt(args["server-id"]);
const say = texts(args["server-name"]);
const log = args.verbose ? (...a) => console.error(...a) : () => {};
const reply = (text) => ({ serverId, responseData: text });

/** Resolves after `ms`, or rejects with the call's abort reason (deadline, cancel). */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

const demo = {
  async simpleMethod(req, ctx) {
    log(`SimpleMethod called by client(${req.clientId}) the message: ${req.requestData}`);
    if (req.requestData === ERROR_REQUEST) {
      throw new ConnectError(ERROR_MESSAGE, Code.InvalidArgument, undefined, [
        {
          desc: BadRequestSchema,
          value: { fieldViolations: [{ field: ERROR_FIELD, description: ERROR_DESCRIPTION }] },
        },
      ]);
    }
    const ms = sleepMs(req.requestData);
    if (ms !== null) await sleep(ms, ctx.signal);
    return reply(say.simple);
  },

  async clientStreamingMethod(requests) {
    log("ClientStreamingMethod called by client...");
    for await (const r of requests) {
      log(`recv from client(${r.clientId}), message= ${r.requestData}`);
    }
    return reply(say.clientStreaming);
  },

  async *serverStreamingMethod(req) {
    log(`ServerStreamingMethod called by client(${req.clientId}), message= ${req.requestData}`);
    for (let i = 0; i < STREAM_REPLIES; i++) yield reply(say.serverStreaming(i));
  },

  async *bidirectionalStreamingMethod(requests) {
    log("BidirectionalStreamingMethod called by client...");
    // Read the requests on the side, as server.py does with a thread ...
    const reader = (async () => {
      for await (const r of requests) {
        log(`recv from client(${r.clientId}), message= ${r.requestData}`);
      }
    })();
    for (let i = 0; i < STREAM_REPLIES; i++) yield reply(say.bidi(i));
    // ... and end the call once the client has finished sending, like its join.
    await reader;
  },
};

// The page's files, for `/` (and `/index.html`) and `/app.js`.
const pageFiles = new Map();
if (args.static !== undefined) {
  for (const [route, file, type] of [
    ["/", "index.html", "text/html; charset=utf-8"],
    ["/index.html", "index.html", "text/html; charset=utf-8"],
    ["/app.js", "app.js", "text/javascript; charset=utf-8"],
  ]) {
    pageFiles.set(route, { body: fs.readFileSync(path.join(args.static, file)), type });
  }
}

function fallback(req, res) {
  const route = (req.url ?? "/").split("?")[0];
  const file = pageFiles.get(route);
  if (file !== undefined && (req.method === "GET" || req.method === "HEAD")) {
    res.writeHead(200, { "content-type": file.type, "content-length": file.body.length });
    res.end(req.method === "HEAD" ? undefined : file.body);
    return;
  }
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end("not found\n");
}

const connectHandler = connectNodeAdapter({
  routes: (router) => router.service(GRPCDemo, demo),
  fallback,
  acceptCompression: [compressionGzip],
});

// CORS, as Connect's documentation asks of a server that browsers call from other origins:
// any origin may call (the page opened elsewhere with ?server=), unless --no-cors.
const ALLOW_HEADERS = cors.allowedHeaders.join(", ");
const EXPOSE_HEADERS = cors.exposedHeaders.join(", ");
function handler(req, res) {
  const origin = req.headers.origin;
  if (origin !== undefined && !args["no-cors"]) {
    res.setHeader("access-control-allow-origin", origin);
    res.setHeader("vary", "origin");
    res.setHeader("access-control-expose-headers", EXPOSE_HEADERS);
    if (req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined) {
      res.writeHead(204, {
        "access-control-allow-methods": cors.allowedMethods.join(", "),
        "access-control-allow-headers": ALLOW_HEADERS,
        "access-control-max-age": "7200",
      });
      res.end();
      return;
    }
  }
  connectHandler(req, res);
}

const h1 = http.createServer(handler);
const h2 = http2.createServer({}, handler);

// One TCP port for both: HTTP/2 prior knowledge starts with "PRI * HTTP/2.0"; no HTTP/1.1
// method is called PRI. The bytes read are put back before the chosen server reads.
/** A duplex stream that yields what was read from `socket` (put back with unshift) and
 *  all that follows, and writes to `socket`. */
function replaying(socket) {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, encoding, done) {
      socket.write(chunk, encoding, done);
    },
    final(done) {
      socket.end(done);
    },
    destroy(err, done) {
      socket.destroy(err ?? undefined);
      done(err);
    },
  });
  socket.on("data", (chunk) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on("end", () => stream.push(null));
  socket.on("close", () => stream.destroy());
  socket.on("error", (e) => stream.destroy(e));
  // What http2 asks of its socket beyond the stream.
  for (const key of ["remoteAddress", "remotePort", "remoteFamily", "localAddress", "localPort"]) {
    Object.defineProperty(stream, key, { get: () => socket[key] });
  }
  stream.setNoDelay = (...a) => socket.setNoDelay(...a);
  stream.setKeepAlive = (...a) => socket.setKeepAlive(...a);
  stream.setTimeout = (...a) => (socket.setTimeout(...a), stream);
  stream.ref = () => socket.ref();
  stream.unref = () => socket.unref();
  return stream;
}

const tcp = net.createServer((socket) => {
  let head = Buffer.alloc(0);
  const onData = (chunk) => {
    head = Buffer.concat([head, chunk]);
    if (head.length < 3) return;
    socket.off("data", onData);
    socket.pause();
    socket.unshift(head);
    const isH2 = head.subarray(0, 3).toString("latin1") === "PRI";
    const wanted = isH2 ? "2" : "1.1";
    if (args.http !== "both" && args.http !== wanted) {
      log(`refusing an HTTP/${wanted} connection (--http ${args.http})`);
      socket.destroy();
      return;
    }
    if (isH2) {
      // Node's HTTP/2 session reads the socket's handle directly and would miss the bytes
      // put back: give it a stream that replays them, then relays the socket.
      h2.emit("connection", replaying(socket));
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.setNoDelay(true);
  socket.on("data", onData);
  socket.on("error", () => {});
});

tcp.listen(Number(args.port), args.host, () => {
  console.log(`listening on port ${tcp.address().port}`);
});

function stop() {
  tcp.close();
  h1.close();
  h1.closeAllConnections?.();
  h2.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
