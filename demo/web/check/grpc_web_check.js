// Not part of the page: the gRPC-Web check that tests/peers/web/browser.mjs injects into
// the page, on the official gRPC-Web runtime (the npm package grpc-web, its
// GrpcWebClientBase and MethodDescriptor; messages by @bufbuild/protobuf). It covers what
// connect-es cannot: gRPC-Web text (application/grpc-web-text), from a real browser.
// build.sh bundles it into tests/peers/web/gen/grpc_web_check.js.
//
// window.grpcWebCheck(baseUrl, expected, formats) runs SimpleMethod, ServerStreamingMethod
// and SimpleMethod with request_data "error" in each format ("text": grpc-web-text,
// "binary": grpc-web+proto) and resolves to one {check, ok, ...seen} per call.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { GrpcWebClientBase, MethodDescriptor, MethodType } from "grpc-web";

import { RequestSchema, ResponseSchema } from "../src/gen/demo_pb.js";

const SERVICE = "demo.GRPCDemo";

// The runtime wants message classes; with protobuf-es messages only the (de)serializers
// matter.
class Message {}

function method(name, kind) {
  return new MethodDescriptor(
    `/${SERVICE}/${name}`,
    kind,
    Message,
    Message,
    (req) => toBinary(RequestSchema, create(RequestSchema, req)),
    (bytes) => fromBinary(ResponseSchema, bytes),
  );
}

const simple = method("SimpleMethod", MethodType.UNARY);
const serverStreaming = method("ServerStreamingMethod", MethodType.SERVER_STREAMING);
const plain = (r) => ({ serverId: r.serverId.toString(), responseData: r.responseData });
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function collect(stream) {
  return new Promise((resolve) => {
    const replies = [];
    stream.on("data", (r) => replies.push(plain(r)));
    stream.on("error", (e) => resolve({ replies, error: { code: e.code, message: e.message } }));
    stream.on("end", () => resolve({ replies }));
  });
}

async function check(name, run) {
  try {
    return { check: name, ...(await run()) };
  } catch (e) {
    return { check: name, ok: false, error: String(e?.message ?? e), code: e?.code };
  }
}

window.grpcWebCheck = async (baseUrl, expected, formats = ["text", "binary"]) => {
  const results = [];
  const request = { clientId: 1n, requestData: "hello from grpc-web" };
  for (const format of formats) {
    const client = new GrpcWebClientBase({ format });

    results.push(
      await check(`grpc_web_${format}_unary`, async () => {
        const reply = plain(await client.unaryCall(`${baseUrl}/${SERVICE}/SimpleMethod`, request, {}, simple));
        return { ok: same(reply, expected.simple), reply };
      }),
    );

    results.push(
      await check(`grpc_web_${format}_server_streaming`, async () => {
        const got = await collect(
          client.serverStreaming(`${baseUrl}/${SERVICE}/ServerStreamingMethod`, request, {}, serverStreaming),
        );
        return { ok: got.error === undefined && same(got.replies, expected.serverStreaming), ...got };
      }),
    );

    results.push(
      await check(`grpc_web_${format}_error`, async () => {
        try {
          const reply = await client.unaryCall(
            `${baseUrl}/${SERVICE}/SimpleMethod`,
            { clientId: 1n, requestData: "error" },
            {},
            simple,
          );
          return { ok: false, error: "the call succeeded", reply: plain(reply) };
        } catch (e) {
          const seen = { code: e.code, message: e.message, hasDetails: "grpc-status-details-bin" in (e.metadata ?? {}) };
          return { ok: e.code === 3 && e.message === expected.errorMessage && seen.hasDetails, ...seen };
        }
      }),
    );
  }
  return results;
};
