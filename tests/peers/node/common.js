'use strict';

// Shared by interop_server.js and interop_client.js: command-line parsing in the style of
// tests/peers/CONVENTIONS.md, loading of the grpc.testing protos, two read-only taps on
// @grpc/grpc-js internals that expose the per-message "compressed" flag, which the public
// grpc-js API hides from applications (see installServerCompressionTap and
// installClientCompressionTap), and hooks that let the grpc-js server compress responses,
// which grpc-js cannot do by itself (see installServerResponseCompression).

const path = require('path');
const zlib = require('zlib');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const PROTO_DIR = path.join(REPO_ROOT, 'interop', 'proto');

/** Loads grpc/testing/test.proto (and its imports) from interop/proto. */
function loadTestingPackage() {
  const definition = protoLoader.loadSync('grpc/testing/test.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    // Scalars come back with their zero values; absent message fields come back as null,
    // so `req.response_status` is null unless the peer set it.
    defaults: true,
    oneofs: true,
  });
  return {definition, testing: grpc.loadPackageDefinition(definition).grpc.testing};
}

class UsageError extends Error {}

/**
 * Parses `--flag=value` and `--flag value`. `spec` maps each known flag name to 'string',
 * 'int' or 'bool'. A bool flag given with no value (end of args, or another `--flag` next)
 * means true; otherwise it takes `true` or `false`. Throws UsageError on anything else.
 */
function parseArgs(argv, spec) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    }
    let name = arg.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const kind = spec[name];
    if (kind === undefined) {
      throw new UsageError(`unknown flag --${name}`);
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (kind === 'bool') {
        if (next === 'true' || next === 'false') {
          value = next;
          i++;
        } else {
          value = 'true';
        }
      } else {
        if (next === undefined) {
          throw new UsageError(`--${name} needs a value`);
        }
        value = next;
        i++;
      }
    }
    if (kind === 'bool') {
      if (value !== 'true' && value !== 'false') {
        throw new UsageError(`--${name} takes true or false, not ${JSON.stringify(value)}`);
      }
      out[name] = value === 'true';
    } else if (kind === 'int') {
      if (!/^\d+$/.test(value)) {
        throw new UsageError(`--${name} takes a non-negative integer, not ${JSON.stringify(value)}`);
      }
      out[name] = Number(value);
    } else {
      out[name] = value;
    }
  }
  return out;
}

const TAPPED = Symbol('h2grpc.wireCompressed');

/** The per-message compressed flag recorded by the server tap, or undefined if unknown. */
function wasCompressed(value) {
  return value == null ? undefined : value[TAPPED];
}

/**
 * Server side. grpc-js strips `grpc-encoding` from `call.metadata` before handlers see it
 * (server-interceptors.js: `metadata.remove(GRPC_ENCODING_HEADER)`) and decompresses each
 * request message before deserializing it, so no public API tells a handler whether a
 * request message arrived with the compressed flag set. This wraps the internal
 * BaseServerInterceptingCall.prototype.decompressMessage(framedMessage, encoding), which
 * grpc-js calls once per received message with the whole 5-byte-prefixed frame and hands
 * its result straight to the method's request deserializer: the result Buffer gets the
 * frame's flag byte attached, and `wrapDeserializers` moves it onto the deserialized
 * object, where `wasCompressed(request)` reads it. Nothing on the wire changes.
 *
 * Returns null when installed, else a reason (grpc-js internals moved: the package.json
 * pin keeps them where this expects them).
 */
function installServerCompressionTap() {
  let proto;
  try {
    proto = require('@grpc/grpc-js/build/src/server-interceptors').BaseServerInterceptingCall
      .prototype;
  } catch (e) {
    return `cannot load grpc-js server-interceptors: ${e.message}`;
  }
  const original = proto.decompressMessage;
  if (typeof original !== 'function' || original.length !== 2) {
    return 'BaseServerInterceptingCall.prototype.decompressMessage(message, encoding) not found';
  }
  proto.decompressMessage = function tappedDecompressMessage(message, encoding) {
    const compressed = Buffer.isBuffer(message) && message.length >= 5 && message[0] === 1;
    const mark = (buf) => {
      if (Buffer.isBuffer(buf)) {
        buf[TAPPED] = compressed;
      }
      return buf;
    };
    const result = original.call(this, message, encoding);
    return result && typeof result.then === 'function' ? result.then(mark) : mark(result);
  };
  return null;
}

/**
 * A copy of a grpc-js service definition whose request deserializers carry the flag that
 * installServerCompressionTap attached to the bytes over to the message object.
 */
function wrapDeserializers(service) {
  const wrapped = {};
  for (const [name, method] of Object.entries(service)) {
    const deserialize = method.requestDeserialize;
    wrapped[name] = Object.assign({}, method, {
      requestDeserialize(bytes) {
        const value = deserialize(bytes);
        if (bytes && bytes[TAPPED] !== undefined && value && typeof value === 'object') {
          Object.defineProperty(value, TAPPED, {value: bytes[TAPPED], enumerable: false});
        }
        return value;
      },
    });
  }
  return wrapped;
}

/**
 * Client side. grpc-js applies `grpc-encoding` and the compressed flag in its internal
 * CompressionFilter, below the interceptors, and removes `grpc-encoding` from the response
 * metadata the application sees; so neither the flag of a received message nor whether a
 * sent message really went out compressed (grpc-js silently falls back to identity when
 * the server's grpc-accept-encoding lacks the algorithm) is visible through the public
 * API. This wraps CompressionFilter.prototype.{sendMessage, receiveMetadata,
 * receiveMessage}, read-only, and records what they see into `tap.events` while
 * `tap.recording` is set. Calls are made one at a time by the client, so the events of a
 * recording belong to the call being checked.
 *
 * Returns {tap, error}: error is null when installed, else a reason.
 */
function installClientCompressionTap() {
  const tap = {recording: false, events: []};
  const record = (event) => {
    if (tap.recording) {
      tap.events.push(event);
    }
  };
  let proto;
  try {
    proto = require('@grpc/grpc-js/build/src/compression-filter').CompressionFilter.prototype;
  } catch (e) {
    return {tap, error: `cannot load grpc-js compression-filter: ${e.message}`};
  }
  const {sendMessage, receiveMetadata, receiveMessage} = proto;
  if (![sendMessage, receiveMetadata, receiveMessage].every((f) => typeof f === 'function')) {
    return {tap, error: 'CompressionFilter.prototype.{sendMessage,receiveMetadata,receiveMessage} not found'};
  }
  proto.sendMessage = async function tappedSendMessage(message) {
    const framed = await sendMessage.call(this, message);
    if (framed && Buffer.isBuffer(framed.message) && framed.message.length >= 5) {
      record({kind: 'sent', compressed: framed.message[0] === 1, encoding: this.currentCompressionAlgorithm});
    }
    return framed;
  };
  proto.receiveMetadata = function tappedReceiveMetadata(metadata) {
    const values = metadata && typeof metadata.get === 'function' ? metadata.get('grpc-encoding') : [];
    record({kind: 'headers', encoding: values.length > 0 ? String(values[0]) : null});
    return receiveMetadata.call(this, metadata);
  };
  proto.receiveMessage = async function tappedReceiveMessage(message) {
    const framed = await message;
    if (Buffer.isBuffer(framed) && framed.length >= 5) {
      record({kind: 'received', compressed: framed[0] === 1});
    }
    return receiveMessage.call(this, framed);
  };
  return {tap, error: null};
}

// --- response compression --------------------------------------------------------------

const RESPONSE_ENCODING = 'gzip';
const COMPRESS = Symbol('h2grpc.compressResponse');
const OUTCOME = Symbol('h2grpc.responseCompressionOutcome');

/**
 * Marks a response message (the plain object given to a unary callback or `call.write`) as
 * one to send compressed; returns it. Whether it really goes out compressed is decided by
 * the hooks of installServerResponseCompression and can be read back, once the message has
 * been sent, with responseCompressionOutcome.
 */
function compressedResponse(message) {
  Object.defineProperty(message, COMPRESS, {value: true, enumerable: false});
  return message;
}

/**
 * What the hooks did with a message marked by compressedResponse, once it was sent:
 * {encoding: 'gzip'} (flag 1, gzip), {encoding: 'identity', reason, fault} (flag 0; `fault`
 * false when that is correct behaviour, i.e. the client did not advertise gzip, true when
 * the grpc-js internals did not behave as the hooks expect), or undefined when the hooks
 * never saw the message (grpc-js internals moved, or the call was cancelled first).
 */
function responseCompressionOutcome(message) {
  return message == null ? undefined : message[OUTCOME];
}

/**
 * Adds to `metadata` (the response's initial metadata) the wish to compress this call's
 * responses with gzip. The sendMetadata hook of installServerResponseCompression keeps the
 * resulting `grpc-encoding: gzip` response header only if the client advertised gzip in its
 * grpc-accept-encoding, and otherwise drops it, so grpc-js's default `identity` goes out.
 * Only call this when installServerResponseCompression succeeded: grpc-js itself would send
 * the header unchecked.
 */
function requestResponseCompression(metadata) {
  metadata.set('grpc-encoding', RESPONSE_ENCODING);
  return metadata;
}

function parseAcceptEncoding(value) {
  const set = new Set();
  for (const item of [].concat(value === undefined ? [] : value)) {
    for (const part of String(item).split(',')) {
      const name = part.trim().toLowerCase();
      if (name) {
        set.add(name);
      }
    }
  }
  return set;
}

/**
 * Server side, response compression. grpc-js's server never compresses: every response
 * carries `grpc-encoding: identity` (server-interceptors.js defaultCompressionHeaders) and
 * BaseServerInterceptingCall.prototype.serializeMessage(value) always frames with the
 * compressed flag 0; there is no server, call or message option for it. It also strips
 * grpc-accept-encoding from the metadata handlers see. Three hooks fill the gap:
 *
 * - getServerInterceptingCall(interceptors, stream, headers, ...) (module export, called
 *   by server.js through the module object for every call, with the raw request headers):
 *   records the client's grpc-accept-encoding, keyed by the http2 stream.
 * - BaseServerInterceptingCall.prototype.sendMetadata(metadata): grpc-js builds the
 *   response headers as {defaults, grpc-encoding: identity, ...custom metadata}, so a
 *   `grpc-encoding` put in the metadata by requestResponseCompression overrides the
 *   default. The hook removes it (a copy of the metadata is sent) unless the client
 *   advertised that encoding, then records the encoding that actually went out, read from
 *   the stream's sentHeaders (Node's public http2 API).
 * - BaseServerInterceptingCall.prototype.serializeMessage(value) (called synchronously by
 *   sendMessage with the application's message, whose result is written as one framed
 *   message): for a message marked by compressedResponse on a call whose response headers
 *   said gzip, serializes with the method's serializer, gzips, and frames with flag 1.
 *   Every other message goes through grpc-js unchanged (flag 0).
 *
 * Everything that does not go as expected at run time is recorded as a fault in the
 * message's outcome (see responseCompressionOutcome) for the server to report.
 *
 * Returns null when installed, else a reason (nothing is patched then).
 */
function installServerResponseCompression() {
  let interceptors;
  try {
    interceptors = require('@grpc/grpc-js/build/src/server-interceptors');
  } catch (e) {
    return `cannot load grpc-js server-interceptors: ${e.message}`;
  }
  const proto = interceptors.BaseServerInterceptingCall && interceptors.BaseServerInterceptingCall.prototype;
  const getCall = interceptors.getServerInterceptingCall;
  if (typeof getCall !== 'function' || getCall.length !== 6) {
    return 'getServerInterceptingCall(interceptors, stream, headers, tracker, handler, options) not found';
  }
  if (!proto || typeof proto.sendMetadata !== 'function' || proto.sendMetadata.length !== 1) {
    return 'BaseServerInterceptingCall.prototype.sendMetadata(metadata) not found';
  }
  if (typeof proto.serializeMessage !== 'function' || proto.serializeMessage.length !== 1) {
    return 'BaseServerInterceptingCall.prototype.serializeMessage(value) not found';
  }
  const descriptor = Object.getOwnPropertyDescriptor(interceptors, 'getServerInterceptingCall');
  if (!descriptor || !descriptor.writable) {
    return 'getServerInterceptingCall is not a writable export';
  }

  const accepted = new WeakMap(); // http2 stream -> Set of grpc-accept-encoding names
  const sentEncoding = new WeakMap(); // BaseServerInterceptingCall -> {encoding, reason, fault}
  const {sendMetadata, serializeMessage} = proto;

  interceptors.getServerInterceptingCall = function hookedGetServerInterceptingCall(
    interceptorList, stream, headers, ...rest
  ) {
    if (stream && typeof stream === 'object' && headers) {
      accepted.set(stream, parseAcceptEncoding(headers['grpc-accept-encoding']));
    }
    return getCall.call(this, interceptorList, stream, headers, ...rest);
  };

  proto.sendMetadata = function hookedSendMetadata(metadata) {
    const wasSent = this.metadataSent;
    let wanted = null;
    let reason = null;
    let fault = false;
    if (!wasSent && metadata && typeof metadata.get === 'function') {
      const values = metadata.get('grpc-encoding');
      if (values.length > 0) {
        wanted = String(values[0]);
        const peer = accepted.get(this.stream);
        if (peer === undefined) {
          reason = 'the request headers were never seen (getServerInterceptingCall hook not called)';
          fault = true;
        } else if (!peer.has(wanted)) {
          reason = `the client's grpc-accept-encoding does not list ${wanted}`;
        } else if (wanted !== RESPONSE_ENCODING) {
          reason = `this hook compresses only with ${RESPONSE_ENCODING}, not ${wanted}`;
          fault = true;
        }
        if (reason) {
          metadata = metadata.clone();
          metadata.remove('grpc-encoding');
        }
      }
    }
    const result = sendMetadata.call(this, metadata);
    if (!wasSent && this.metadataSent) {
      const sent = this.stream && this.stream.sentHeaders;
      const onWire = sent && sent['grpc-encoding'] !== undefined ? String(sent['grpc-encoding']) : undefined;
      if (wanted && !reason && onWire !== wanted) {
        reason = `asked for grpc-encoding ${wanted} but the response headers said ${JSON.stringify(onWire)}`;
        fault = true;
      }
      if (!wanted) {
        reason = 'the response headers did not ask for compression (no requestResponseCompression)';
        fault = true;
      }
      sentEncoding.set(this, reason ? {encoding: 'identity', reason, fault} : {encoding: onWire});
    }
    return result;
  };

  proto.serializeMessage = function hookedSerializeMessage(value) {
    if (!value || typeof value !== 'object' || !value[COMPRESS]) {
      return serializeMessage.call(this, value);
    }
    const outgoing = sentEncoding.get(this) || {
      encoding: 'identity',
      reason: 'the response headers were not sent before the message',
      fault: true,
    };
    const serialize = this.handler && this.handler.serialize;
    if (outgoing.encoding !== RESPONSE_ENCODING || typeof serialize !== 'function') {
      const framed = serializeMessage.call(this, value);
      Object.defineProperty(value, OUTCOME, {
        value: typeof serialize === 'function' ? outgoing : {
          encoding: 'identity', reason: 'BaseServerInterceptingCall.handler.serialize not found', fault: true,
        },
        configurable: true,
      });
      return framed;
    }
    const compressed = zlib.gzipSync(serialize(value));
    const output = Buffer.allocUnsafe(compressed.length + 5);
    output.writeUInt8(1, 0);
    output.writeUInt32BE(compressed.length, 1);
    compressed.copy(output, 5);
    Object.defineProperty(value, OUTCOME, {value: {encoding: RESPONSE_ENCODING}, configurable: true});
    return output;
  };
  return null;
}

module.exports = {
  REPO_ROOT,
  PROTO_DIR,
  UsageError,
  loadTestingPackage,
  parseArgs,
  wasCompressed,
  installServerCompressionTap,
  wrapDeserializers,
  installClientCompressionTap,
  installServerResponseCompression,
  requestResponseCompression,
  compressedResponse,
  responseCompressionOutcome,
};
