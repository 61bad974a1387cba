// What demo.GRPCDemo answers, shared by server.mjs (which serves it) and client.mjs (which
// checks it): the replies of h2grpc's demo-server (demo/src/bin/demo-server.rs, itself
// modelled on the data_transmission example's server.py), with the implementation's name
// in the texts ("Rust" for demo-server, "Node" for server.mjs), and the two request values
// that make SimpleMethod fail or wait.

/** server_id in every reply: demo-server's --server-id default (server.py's SERVER_ID). */
export const DEFAULT_SERVER_ID = 1n;

/** How many replies ServerStreamingMethod and BidirectionalStreamingMethod send. */
export const STREAM_REPLIES = 5;

export const texts = (name) => ({
  simple: `${name} server SimpleMethod Ok!!!!`,
  clientStreaming: `${name} server ClientStreamingMethod ok`,
  // Note the spaces: "message=0" for server streaming, "message= 0" for bidi, as in
  // server.py and demo-server.
  serverStreaming: (i) => `send by ${name} server, message=${i}`,
  bidi: (i) => `send by ${name} server, message= ${i}`,
});

/**
 * request_data that makes SimpleMethod fail with INVALID_ARGUMENT, this message and one
 * google.rpc.BadRequest detail (one field violation: ERROR_FIELD, ERROR_DESCRIPTION).
 */
export const ERROR_REQUEST = "error";
export const ERROR_MESSAGE = 'request_data "error" makes SimpleMethod fail';
export const ERROR_FIELD = "request_data";
export const ERROR_DESCRIPTION = 'the value "error" asks for an error';

/**
 * request_data "sleep:N": SimpleMethod waits N milliseconds (at most SLEEP_MAX_MS) before
 * it answers as usual, or until the call's deadline or cancellation.
 */
export const SLEEP_PREFIX = "sleep:";
export const SLEEP_MAX_MS = 10_000;

/** The milliseconds a "sleep:N" request asks for, or null. */
export function sleepMs(requestData) {
  if (!requestData.startsWith(SLEEP_PREFIX)) return null;
  const n = Number(requestData.slice(SLEEP_PREFIX.length));
  return Number.isInteger(n) && n >= 0 ? Math.min(n, SLEEP_MAX_MS) : null;
}
