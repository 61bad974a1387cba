#!/usr/bin/env node
// A client of demo.GRPCDemo on @connectrpc/connect-node that checks what the server
// answers against demo-server's replies (demo_service.mjs), one case at a time.
//
//   node client.mjs --url http://127.0.0.1:PORT --protocol connect|connect-json|grpc-web|grpc
//                   --http 1.1|2 --case NAME[,NAME...]|all
//                   [--server-id 1] [--server-name Rust] [--list]
//
// Prints one JSON line per case: {"case", "protocol", "http", "result": "pass"|"fail", "ms",
// and what was seen: "replies", "code", "message", "details", "request_encoding",
// "response_encoding", or "error" naming the mismatch}. Exits 0 when every case passed, 1
// when one failed, 2 on bad arguments (a case the protocol cannot do over that HTTP version
// included: --list prints the cases it can). Texts are "<server-name> server ...": Rust for
// h2grpc's demo-server, Node for server.mjs.

import { parseArgs } from "node:util";

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

import { GRPCDemo } from "./gen/demo_pb.js";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb.js";
import {
  ERROR_DESCRIPTION,
  ERROR_FIELD,
  ERROR_MESSAGE,
  ERROR_REQUEST,
  SLEEP_PREFIX,
  STREAM_REPLIES,
  texts,
} from "./demo_service.mjs";

const PROTOCOLS = ["connect", "connect-json", "grpc-web", "grpc"];
const HTTP_VERSIONS = ["1.1", "2"];
const CLIENT_ID = 1n; // the data_transmission client's CLIENT_ID
/** No case may take longer than this, whatever the server does. */
const CASE_GUARD_MS = 20_000;

// ---- the cases, and which protocol / HTTP version can run each

/**
 * Why `protocol` over HTTP/`httpVersion` cannot run `name`, or null when it can.
 * Found with connect-node 2.1.2 against its own server (server.mjs), see README.md.
 */
function limit(name, protocol, httpVersion) {
  if (protocol === "grpc" && httpVersion !== "2") {
    return "gRPC needs HTTP/2 (connect-node's gRPC transport has no HTTP/1.1)";
  }
  const needsFullDuplex = ["bidi", "deadline_bidi"].includes(name);
  if (needsFullDuplex && httpVersion !== "2") {
    return "a bidirectional stream needs HTTP/2";
  }
  if (name === "bidi_http1" && httpVersion !== "1.1") {
    return "checks how a server refuses a bidirectional stream over HTTP/1.1";
  }
  return null;
}

const CASES = {
  unary,
  server_streaming: serverStreaming,
  client_streaming: clientStreaming,
  bidi,
  bidi_http1: bidiHttp1,
  error_details: errorDetails,
  unimplemented,
  deadline_ok: deadlineOk,
  deadline_exceeded: deadlineExceeded,
  deadline_bidi: deadlineBidi,
  compression_unary: compressionUnary,
  compression_server_streaming: compressionServerStreaming,
  compression_client_streaming: compressionClientStreaming,
};

// ---- arguments

function usage(message) {
  console.error(`client.mjs: ${message}`);
  console.error(
    "usage: node client.mjs --url URL --protocol connect|connect-json|grpc-web|grpc --http 1.1|2 --case NAME[,NAME...]|all [--server-id N] [--server-name Rust] [--list]",
  );
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: "string" },
      protocol: { type: "string" },
      http: { type: "string", default: "2" },
      case: { type: "string" },
      "server-id": { type: "string", default: "1" },
      "server-name": { type: "string", default: "Rust" },
      list: { type: "boolean", default: false },
    },
    strict: true,
  }));
} catch (e) {
  usage(e.message);
}
if (!PROTOCOLS.includes(args.protocol)) usage(`--protocol must be one of ${PROTOCOLS.join(", ")}`);
if (!HTTP_VERSIONS.includes(args.http)) usage(`--http must be 1.1 or 2`);
const runnable = Object.keys(CASES).filter((c) => limit(c, args.protocol, args.http) === null);
if (args.list) {
  console.log(runnable.join("\n"));
  process.exit(0);
}
if (args.url === undefined) usage("--url is required");
if (args.case === undefined) usage("--case is required");
const wanted = args.case === "all" ? runnable : args.case.split(",");
for (const name of wanted) {
  if (!(name in CASES)) usage(`unknown case ${name}; cases: ${Object.keys(CASES).join(", ")}`);
  const why = limit(name, args.protocol, args.http);
  if (why !== null) usage(`case ${name} cannot run with ${args.protocol} over HTTP/${args.http}: ${why}`);
}
const serverId = BigInt(args["server-id"]);
const say = texts(args["server-name"]);

// ---- transports

/**
 * A transport for the chosen protocol and HTTP version; `seen` records the encodings of
 * the last call's request and response headers (an interceptor reads them).
 */
function transport({ gzip = false, seen = {} } = {}) {
  const observe = (next) => async (req) => {
    const res = await next(req);
    // The transport sets the request's encoding header while sending: read it afterwards.
    seen.request = encodingOf(req.header);
    seen.response = encodingOf(res.header);
    return res;
  };
  const options = {
    baseUrl: args.url,
    httpVersion: args.http,
    interceptors: [observe],
    ...(gzip
      ? { sendCompression: compressionGzip, acceptCompression: [compressionGzip], compressMinBytes: 0 }
      : { acceptCompression: [] }),
  };
  switch (args.protocol) {
    case "connect":
      return createConnectTransport({ ...options, useBinaryFormat: true });
    case "connect-json":
      return createConnectTransport({ ...options, useBinaryFormat: false });
    case "grpc-web":
      return createGrpcWebTransport({ ...options, useBinaryFormat: true });
    case "grpc": {
      const { httpVersion: _, ...grpcOptions } = options;
      return createGrpcTransport(grpcOptions);
    }
  }
  throw new Error(`no transport for ${args.protocol}`);
}

/** The message encoding a header set names (Connect unary, Connect streaming, gRPC). */
function encodingOf(header) {
  for (const name of ["content-encoding", "connect-content-encoding", "grpc-encoding"]) {
    const value = header.get(name);
    if (value !== null) return value;
  }
  return "identity";
}

const demoClient = (opts) => createClient(GRPCDemo, transport(opts));
const request = (data) => ({ clientId: CLIENT_ID, requestData: data });
const callOptions = (extra = {}) => ({ signal: AbortSignal.timeout(CASE_GUARD_MS), ...extra });

// ---- expectations

class Mismatch extends Error {}

function expect(condition, what) {
  if (!condition) throw new Mismatch(what);
}

function expectReply(got, text, what) {
  expect(got.serverId === serverId, `${what}: server_id ${got.serverId}, expected ${serverId}`);
  expect(
    got.responseData === text,
    `${what}: response_data ${JSON.stringify(got.responseData)}, expected ${JSON.stringify(text)}`,
  );
}

function expectReplies(got, textOf, what) {
  expect(got.length === STREAM_REPLIES, `${what}: ${got.length} replies, expected ${STREAM_REPLIES}`);
  got.forEach((r, i) => expectReply(r, textOf(i), `${what} reply ${i}`));
}

/** Runs `call`, which must fail: returns the ConnectError. */
async function expectError(call) {
  try {
    const got = await call();
    throw new Mismatch(`the call succeeded (${JSON.stringify(plain(got))}), expected an error`);
  } catch (e) {
    if (e instanceof Mismatch) throw e;
    return ConnectError.from(e);
  }
}

function expectCode(err, code) {
  expect(
    err.code === code,
    `status ${Code[err.code]} (${JSON.stringify(err.rawMessage)}), expected ${Code[code]}`,
  );
}

async function collect(iterable) {
  const out = [];
  for await (const m of iterable) out.push(m);
  return out;
}

/** Requests "0".."4" from client 1, then the end of the stream (or none, with hold). */
async function* requests(count = STREAM_REPLIES, { hold = null, size = 0 } = {}) {
  for (let i = 0; i < count; i++) yield request(size > 0 ? `${i}`.padEnd(size, "x") : `${i}`);
  if (hold !== null) await hold;
}

const plain = (v) =>
  JSON.parse(JSON.stringify(v ?? null, (_, x) => (typeof x === "bigint" ? x.toString() : x)));
const replies = (list) => list.map((r) => ({ serverId: r.serverId.toString(), responseData: r.responseData }));

// ---- the cases: each returns what it saw (printed in its line) or throws Mismatch

async function unary() {
  const got = await demoClient().simpleMethod(request("hello from client.mjs"), callOptions());
  expectReply(got, say.simple, "SimpleMethod");
  return { replies: replies([got]) };
}

async function serverStreaming() {
  const got = await collect(demoClient().serverStreamingMethod(request("stream please"), callOptions()));
  expectReplies(got, say.serverStreaming, "ServerStreamingMethod");
  return { replies: replies(got) };
}

async function clientStreaming() {
  const got = await demoClient().clientStreamingMethod(requests(), callOptions());
  expectReply(got, say.clientStreaming, "ClientStreamingMethod");
  return { replies: replies([got]) };
}

async function bidi() {
  const got = await collect(demoClient().bidirectionalStreamingMethod(requests(), callOptions()));
  expectReplies(got, say.bidi, "BidirectionalStreamingMethod");
  return { replies: replies(got) };
}

async function bidiHttp1() {
  // HTTP/1.1 carries a bidirectional stream half-duplex: every request, then the replies.
  // h2grpc's server answers it that way (the conformance suite's
  // supportsHalfDuplexBidiOverHttp1); connect-node's server refuses it with HTTP 505. Either
  // way it must end soon, not hang.
  const start = Date.now();
  if (args["server-name"] === "Node") {
    const err = await expectError(() => collect(demoClient().bidirectionalStreamingMethod(requests(), callOptions({ timeoutMs: 5_000 }))));
    expect(err.code !== Code.DeadlineExceeded, `the call hung until its 5 s deadline, expected a refusal`);
    return { code: Code[err.code], message: err.rawMessage, elapsed_ms: Date.now() - start };
  }
  const got = await collect(demoClient().bidirectionalStreamingMethod(requests(), callOptions({ timeoutMs: 5_000 })));
  expectReplies(got, say.bidi, "BidirectionalStreamingMethod");
  return { replies: replies(got), elapsed_ms: Date.now() - start };
}

async function errorDetails() {
  const err = await expectError(() => demoClient().simpleMethod(request(ERROR_REQUEST), callOptions()));
  expectCode(err, Code.InvalidArgument);
  expect(
    err.rawMessage === ERROR_MESSAGE,
    `message ${JSON.stringify(err.rawMessage)}, expected ${JSON.stringify(ERROR_MESSAGE)}`,
  );
  const found = err.findDetails(BadRequestSchema);
  const types = err.details.map((d) => ("desc" in d ? d.desc.typeName : d.type));
  expect(found.length === 1, `${found.length} google.rpc.BadRequest details (details: ${types.join(", ") || "none"}), expected 1`);
  const violations = found[0].fieldViolations.map((v) => ({ field: v.field, description: v.description }));
  expect(
    violations.length === 1 &&
      violations[0].field === ERROR_FIELD &&
      violations[0].description === ERROR_DESCRIPTION,
    `BadRequest field_violations ${JSON.stringify(violations)}, expected [{"field":${JSON.stringify(ERROR_FIELD)},"description":${JSON.stringify(ERROR_DESCRIPTION)}}]`,
  );
  return { code: Code[err.code], message: err.rawMessage, details: [{ type: "google.rpc.BadRequest", fieldViolations: violations }] };
}

async function unimplemented() {
  // The real SimpleMethod descriptor under a name the service does not have.
  const method = { ...GRPCDemo.method.simpleMethod, name: "NoSuchMethod", localName: "noSuchMethod" };
  const t = transport();
  const err = await expectError(() =>
    t.unary(method, AbortSignal.timeout(CASE_GUARD_MS), undefined, undefined, request("anyone there?")),
  );
  expectCode(err, Code.Unimplemented);
  return { code: Code[err.code], message: err.rawMessage };
}

async function deadlineOk() {
  const start = Date.now();
  const got = await demoClient().simpleMethod(request(`${SLEEP_PREFIX}100`), callOptions({ timeoutMs: 10_000 }));
  expectReply(got, say.simple, "SimpleMethod with a 10 s deadline, sleeping 100 ms");
  return { replies: replies([got]), elapsed_ms: Date.now() - start };
}

async function deadlineExceeded() {
  const start = Date.now();
  const err = await expectError(() =>
    demoClient().simpleMethod(request(`${SLEEP_PREFIX}5000`), callOptions({ timeoutMs: 300 })),
  );
  const elapsed = Date.now() - start;
  expectCode(err, Code.DeadlineExceeded);
  expect(elapsed < 4000, `DEADLINE_EXCEEDED after ${elapsed} ms, expected soon after the 300 ms deadline`);
  return { code: Code[err.code], message: err.rawMessage, elapsed_ms: elapsed };
}

async function deadlineBidi() {
  // The client sends its requests and never ends its stream; the server sends its 5
  // replies and waits for that end: the 500 ms deadline ends the call.
  const got = [];
  const start = Date.now();
  const never = new Promise(() => {});
  const err = await expectError(async () => {
    for await (const r of demoClient().bidirectionalStreamingMethod(requests(STREAM_REPLIES, { hold: never }), callOptions({ timeoutMs: 500 }))) {
      got.push(r);
    }
  });
  const elapsed = Date.now() - start;
  expectCode(err, Code.DeadlineExceeded);
  expectReplies(got, say.bidi, "BidirectionalStreamingMethod before its deadline");
  return { code: Code[err.code], replies: replies(got), elapsed_ms: elapsed };
}

/** gzip both ways: requests compressed whatever their size, gzip accepted in replies. */
function compressed() {
  const seen = {};
  return { client: demoClient({ gzip: true, seen }), seen };
}

function expectGzipRequest(seen) {
  expect(seen.request === "gzip", `request encoding ${seen.request}, expected gzip`);
}

async function compressionUnary() {
  const { client, seen } = compressed();
  const got = await client.simpleMethod(request("compress me ".repeat(200)), callOptions());
  expectReply(got, say.simple, "SimpleMethod (gzip)");
  expectGzipRequest(seen);
  return { replies: replies([got]), request_encoding: seen.request, response_encoding: seen.response };
}

async function compressionServerStreaming() {
  const { client, seen } = compressed();
  const got = await collect(client.serverStreamingMethod(request("compress me ".repeat(200)), callOptions()));
  expectReplies(got, say.serverStreaming, "ServerStreamingMethod (gzip)");
  expectGzipRequest(seen);
  return { replies: replies(got), request_encoding: seen.request, response_encoding: seen.response };
}

async function compressionClientStreaming() {
  const { client, seen } = compressed();
  const got = await client.clientStreamingMethod(requests(STREAM_REPLIES, { size: 2000 }), callOptions());
  expectReply(got, say.clientStreaming, "ClientStreamingMethod (gzip)");
  expectGzipRequest(seen);
  return { replies: replies([got]), request_encoding: seen.request, response_encoding: seen.response };
}

// ---- run

let failed = 0;
for (const name of wanted) {
  const line = { case: name, protocol: args.protocol, http: args.http };
  const start = Date.now();
  try {
    const seen = await CASES[name]();
    Object.assign(line, { result: "pass", ms: Date.now() - start }, plain(seen));
  } catch (e) {
    failed++;
    const error =
      e instanceof Mismatch
        ? e.message
        : e instanceof ConnectError
          ? `unexpected status ${Code[e.code]}: ${e.rawMessage}${e.cause ? ` (cause: ${e.cause})` : ""}`
          : String(e?.stack ?? e);
    Object.assign(line, { result: "fail", ms: Date.now() - start, error });
  }
  console.log(JSON.stringify(line));
}
process.exit(failed === 0 ? 0 : 1);
