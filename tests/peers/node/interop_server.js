#!/usr/bin/env node
'use strict';

// gRPC interop server (grpc.testing.TestService) on @grpc/grpc-js, following
// tests/peers/CONVENTIONS.md and grpc/grpc doc/interop-test-descriptions.md.
//
//   node interop_server.js --port N [--host 127.0.0.1]
//       [--use_tls=false] [--tls_cert_file F --tls_key_file F] [--tls_client_ca_file F]
//
// TLS (grpc-go's flag names): --use_tls=true serves TLS with the PEM certificate chain
// --tls_cert_file and key --tls_key_file (both required then: this peer ships no test
// certificate). --tls_client_ca_file F also requires every client to present a certificate
// that the CA certificates in F verify (mutual TLS).
//
// What grpc-js cannot do, and what this server does instead:
// - Response compression (CompressedResponse: `response_compressed` on SimpleRequest,
//   `compressed` on ResponseParameters). The grpc-js server never compresses: it always
//   answers `grpc-encoding: identity` and writes every message with the compressed flag 0
//   (server-interceptors.js serializeMessage), and it has no server option, per-call or
//   per-message setting to change that (`grpc.default_compression_algorithm` is read only
//   by the client-side CompressionFilter). common.js hooks grpc-js internals to do it (see
//   installServerResponseCompression): a call that may compress asks for `grpc-encoding:
//   gzip` in its response headers (kept only if the client's grpc-accept-encoding lists
//   gzip, else `identity` goes out), and each message asked to be compressed is sent gzip
//   with flag 1 when the headers said gzip, else uncompressed with a note on stderr.
//   Messages not asked to be compressed always go out with flag 0. Should the hooks be
//   unavailable or misbehave, stderr says so and such calls end with INTERNAL.
// - Request compression checks (CompressedRequest: `expect_compressed`). The public API
//   hides both `grpc-encoding` and the per-message flag from handlers; common.js taps an
//   internal function to recover the flag (see installServerCompressionTap). Should the
//   tap be unavailable, expect_compressed is not checked and stderr says so at start-up.

const fs = require('fs');
const grpc = require('@grpc/grpc-js');
const {
  UsageError,
  loadTestingPackage,
  parseArgs,
  wasCompressed,
  installServerCompressionTap,
  wrapDeserializers,
  installServerResponseCompression,
  requestResponseCompression,
  compressedResponse,
  responseCompressionOutcome,
} = require('./common');

const ECHO_INITIAL = 'x-grpc-test-echo-initial';
const ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin';

const tapError = installServerCompressionTap();
const compressionError = installServerResponseCompression();

function note(text) {
  process.stderr.write(`interop_server.js: ${text}\n`);
}

function statusError(code, details, metadata) {
  return {code, details, metadata: metadata || new grpc.Metadata()};
}

/** Initial metadata to send back: the echoed x-grpc-test-echo-initial, if any. */
function echoInitial(call) {
  const md = new grpc.Metadata();
  for (const value of call.metadata.get(ECHO_INITIAL)) {
    md.add(ECHO_INITIAL, value);
  }
  return md;
}

/** Trailing metadata to send back: the echoed x-grpc-test-echo-trailing-bin, if any. */
function echoTrailing(call) {
  const md = new grpc.Metadata();
  for (const value of call.metadata.get(ECHO_TRAILING)) {
    md.add(ECHO_TRAILING, value);
  }
  return md;
}

/**
 * Sends the initial metadata; `compress` asks for `grpc-encoding: gzip` (dropped by the
 * common.js hook when the client did not advertise gzip).
 */
function sendInitial(call, extra, compress) {
  const md = echoInitial(call);
  if (extra) {
    md.merge(extra);
  }
  if (compress && !compressionError) {
    requestResponseCompression(md);
  }
  call.sendMetadata(md);
}

/** The status a request's `response_status` asks for, or null for none (or code 0). */
function requestedStatus(call, responseStatus) {
  if (!responseStatus || !responseStatus.code) {
    return null;
  }
  return statusError(responseStatus.code, responseStatus.message, echoTrailing(call));
}

/** INVALID_ARGUMENT for a response type other than COMPRESSABLE, else null. */
function checkResponseType(type) {
  if (type === 'COMPRESSABLE' || type === 0) {
    return null;
  }
  return statusError(grpc.status.INVALID_ARGUMENT, `unsupported response_type ${type}`);
}

/**
 * INVALID_ARGUMENT when `expect_compressed` (a BoolValue, null when absent) disagrees with
 * the compressed flag of the message `request` arrived in; null when it agrees or cannot
 * be known.
 */
function checkExpectCompressed(request, expectCompressed) {
  if (!expectCompressed) {
    return null;
  }
  const expected = Boolean(expectCompressed.value);
  const actual = wasCompressed(request);
  if (actual === undefined || actual === expected) {
    return null;
  }
  return statusError(
    grpc.status.INVALID_ARGUMENT,
    expected
      ? 'expect_compressed is true but the request message was not compressed'
      : 'expect_compressed is false but the request message was compressed',
  );
}

/** INTERNAL for a compressed response when the common.js hooks could not be installed. */
function cannotCompress(what) {
  note(`${what} asks for a compressed response, which cannot be sent: ${compressionError}`);
  return statusError(grpc.status.INTERNAL, `interop_server.js cannot compress responses: ${compressionError}`);
}

/**
 * After `message` (marked by compressedResponse) was sent: null when it went out gzip, or
 * uncompressed because the client did not advertise gzip (noted on stderr); otherwise the
 * grpc-js internals did not behave as the hooks expect, which is noted on stderr and
 * returned as an INTERNAL status.
 */
function checkCompressed(call, message, what) {
  const outcome = responseCompressionOutcome(message);
  if (outcome && !outcome.fault) {
    if (outcome.encoding !== 'gzip') {
      note(`${what}: sending the compressed response uncompressed: ${outcome.reason}`);
    }
    return null;
  }
  if (call.cancelled) {
    return null;
  }
  const reason = outcome ? outcome.reason : 'the serializeMessage hook never saw the message';
  note(`${what}: a response asked to be compressed went out UNCOMPRESSED (grpc-js internals differ): ${reason}`);
  return statusError(grpc.status.INTERNAL, `interop_server.js could not compress the response: ${reason}`);
}

function payload(size) {
  return {type: 'COMPRESSABLE', body: Buffer.alloc(size)};
}

function sleepUs(us) {
  return us > 0 ? new Promise((resolve) => setTimeout(resolve, us / 1000)) : Promise.resolve();
}

// --- handlers ---------------------------------------------------------------------------

function emptyCall(call, callback) {
  sendInitial(call);
  callback(null, {}, echoTrailing(call));
}

function unaryCall(call, callback) {
  const req = call.request;
  const compress = Boolean(req.response_compressed && req.response_compressed.value);
  sendInitial(call, null, compress);
  const failure =
    checkExpectCompressed(req, req.expect_compressed) ||
    requestedStatus(call, req.response_status) ||
    checkResponseType(req.response_type) ||
    (compress && compressionError ? cannotCompress('UnaryCall') : null);
  if (failure) {
    failure.metadata = echoTrailing(call);
    callback(failure);
    return;
  }
  const response = {payload: payload(req.response_size)};
  callback(null, compress ? compressedResponse(response) : response, echoTrailing(call));
  // grpc-js serializes the response synchronously inside callback(), so the outcome is
  // known here; the response (and the OK status) are already on their way, so a fault can
  // only be reported on stderr, and the client sees the flag 0.
  if (compress) {
    checkCompressed(call, response, 'UnaryCall');
  }
}

function cacheableUnaryCall(call, callback) {
  const extra = new grpc.Metadata();
  extra.set('cache-control', 'max-age=60, public');
  sendInitial(call, extra);
  // Nanoseconds since the epoch, as ASCII decimal (ms clock plus a sub-ms hrtime part).
  const now = BigInt(Date.now()) * 1000000n + (process.hrtime.bigint() % 1000000n);
  callback(null, {payload: {type: 'COMPRESSABLE', body: Buffer.from(now.toString())}}, echoTrailing(call));
}

function wantsCompressed(p) {
  return Boolean(p.compressed && p.compressed.value);
}

/**
 * Writes one response per ResponseParameters, sleeping interval_us before each, each
 * compressed or not as its `compressed` says; resolves false if the call went away
 * meanwhile or was failed (a compressed response that cannot be or was not compressed).
 */
async function writeResponses(call, params) {
  for (const p of params) {
    await sleepUs(p.interval_us);
    if (call.cancelled || call.destroyed) {
      return false;
    }
    const compress = wantsCompressed(p);
    if (compress && compressionError) {
      failStream(call, cannotCompress('a ResponseParameters'));
      return false;
    }
    const response = {payload: payload(p.size)};
    await new Promise((resolve) => {
      call.write(compress ? compressedResponse(response) : response, () => resolve());
    });
    const failure = compress ? checkCompressed(call, response, 'a ResponseParameters') : null;
    if (failure) {
      failStream(call, failure);
      return false;
    }
  }
  return true;
}

function failStream(call, failure) {
  failure.metadata = echoTrailing(call);
  call.emit('error', failure);
}

async function streamingOutputCall(call) {
  const req = call.request;
  sendInitial(call, null, req.response_parameters.some(wantsCompressed));
  const failure = requestedStatus(call, req.response_status) || checkResponseType(req.response_type);
  if (failure) {
    failStream(call, failure);
    return;
  }
  if (await writeResponses(call, req.response_parameters)) {
    call.end(echoTrailing(call));
  }
}

function streamingInputCall(call, callback) {
  sendInitial(call);
  let total = 0;
  let done = false;
  call.on('data', (req) => {
    if (done) {
      return;
    }
    const failure = checkExpectCompressed(req, req.expect_compressed);
    if (failure) {
      done = true;
      failure.metadata = echoTrailing(call);
      callback(failure);
      return;
    }
    total += req.payload ? req.payload.body.length : 0;
  });
  call.on('end', () => {
    if (!done) {
      done = true;
      callback(null, {aggregated_payload_size: total}, echoTrailing(call));
    }
  });
  call.on('error', () => {});
}

/**
 * FullDuplexCall (respond as requests arrive) and HalfDuplexCall (buffer the requests and
 * respond after the client half-closes): one response per ResponseParameters of each
 * request, in order; a request with response_status ends the call with that status and
 * nothing after it is processed.
 */
function duplexHandler(halfDuplex) {
  return (call) => {
    // The headers go out before any request is read, so whether a response will ask to be
    // compressed is not known yet: ask for gzip for the whole call whenever the client
    // accepts it (as the C++ interop server enables compression for the call and turns it
    // off per message); responses not asked to be compressed still go out with flag 0.
    sendInitial(call, null, true);
    let chain = Promise.resolve(true);
    let finished = false;
    const buffered = [];
    const handle = (req) => {
      chain = chain.then(async (ok) => {
        if (!ok || finished) {
          return false;
        }
        const failure = requestedStatus(call, req.response_status) || checkResponseType(req.response_type);
        if (failure) {
          finished = true;
          failStream(call, failure);
          return false;
        }
        return writeResponses(call, req.response_parameters);
      });
    };
    call.on('data', (req) => {
      if (halfDuplex) {
        buffered.push(req);
      } else {
        handle(req);
      }
    });
    call.on('end', () => {
      buffered.splice(0).forEach(handle);
      chain = chain.then((ok) => {
        if (ok && !finished) {
          finished = true;
          call.end(echoTrailing(call));
        }
        return false;
      });
    });
    call.on('error', () => {});
  };
}

// --- main -------------------------------------------------------------------------------

function usage(message) {
  process.stderr.write(
    `interop_server.js: ${message}\n` +
      'usage: node interop_server.js --port N [--host H (default 127.0.0.1)]\n' +
      '           [--use_tls=false] [--tls_cert_file F --tls_key_file F] [--tls_client_ca_file F]\n',
  );
  process.exit(2);
}

/** The contents of the file a flag names; a usage error if it cannot be read. */
function readFlagFile(flag, path) {
  try {
    return fs.readFileSync(path);
  } catch (e) {
    return usage(`${flag} ${path}: ${e.message}`);
  }
}

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2), {
      port: 'int',
      host: 'string',
      use_tls: 'bool',
      tls_cert_file: 'string',
      tls_key_file: 'string',
      tls_client_ca_file: 'string',
    });
  } catch (e) {
    if (e instanceof UsageError) {
      usage(e.message);
    }
    throw e;
  }
  if (args.port === undefined) {
    usage('--port is required');
  }
  let credentials;
  if (args.use_tls) {
    if (!args.tls_cert_file || !args.tls_key_file) {
      usage('--use_tls=true needs --tls_cert_file and --tls_key_file (this peer ships no test certificate)');
    }
    const clientCa = args.tls_client_ca_file ? readFlagFile('--tls_client_ca_file', args.tls_client_ca_file) : null;
    credentials = grpc.ServerCredentials.createSsl(
      clientCa,
      [
        {
          private_key: readFlagFile('--tls_key_file', args.tls_key_file),
          cert_chain: readFlagFile('--tls_cert_file', args.tls_cert_file),
        },
      ],
      clientCa !== null,
    );
  } else if (args.tls_cert_file || args.tls_key_file || args.tls_client_ca_file) {
    usage('--tls_cert_file, --tls_key_file and --tls_client_ca_file need --use_tls=true');
  } else {
    credentials = grpc.ServerCredentials.createInsecure();
  }
  const host = args.host || '127.0.0.1';
  if (tapError) {
    note(`cannot observe request compression (${tapError}); expect_compressed is NOT checked`);
  }
  if (compressionError) {
    note(`cannot compress responses (${compressionError}); calls asking for compressed responses end with INTERNAL`);
  }

  const {testing} = loadTestingPackage();
  const server = new grpc.Server();
  // UnimplementedCall is left out on purpose: grpc-js answers methods without a handler
  // with UNIMPLEMENTED. UnimplementedService is not registered at all.
  server.addService(wrapDeserializers(testing.TestService.service), {
    EmptyCall: emptyCall,
    UnaryCall: unaryCall,
    CacheableUnaryCall: cacheableUnaryCall,
    StreamingOutputCall: streamingOutputCall,
    StreamingInputCall: streamingInputCall,
    FullDuplexCall: duplexHandler(false),
    HalfDuplexCall: duplexHandler(true),
  });

  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${args.port}` : `${host}:${args.port}`;
  server.bindAsync(address, credentials, (err, port) => {
    if (err) {
      process.stderr.write(`interop_server.js: cannot listen on ${address}: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`listening on port ${port}\n`);
  });

  const stop = () => {
    server.forceShutdown();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
