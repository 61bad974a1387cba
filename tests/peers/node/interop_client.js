#!/usr/bin/env node
'use strict';

// gRPC interop client on @grpc/grpc-js, following tests/peers/CONVENTIONS.md and
// grpc/grpc doc/interop-test-descriptions.md.
//
//   node interop_client.js --server_host H --server_port N [--server_host_override X]
//       [--use_tls=false] [--use_test_ca=false] [--ca_file F]
//       [--tls_client_cert_file F --tls_client_key_file F] --test_case CASES
//
// TLS (grpc-go's flag names): --use_tls=true connects over TLS. The server's certificate is
// verified against the PEM CA certificates of --ca_file (--use_test_ca=true says to use a
// test CA; this peer ships none, so it needs --ca_file), or against Node's roots when
// neither is given. --server_host_override X is the name the certificate must carry
// (channel option grpc.ssl_target_name_override) and the calls' :authority
// (grpc.default_authority). --tls_client_cert_file/--tls_client_key_file present a client
// certificate (mutual TLS).
//
// Prints `PASS <case>` or `FAIL <case>: <reason>` per case, in order; exits 0 when all
// passed, 1 otherwise, 2 on a usage error.
//
// How compression is done with grpc-js, and what is checked:
// - grpc-js compresses requests only per channel, with the channel option
//   `grpc.default_compression_algorithm` (1 = deflate, 2 = gzip); there is no per-call
//   setting. Per message, a write flag (WriteFlags.NoCompress = 2, passed where Node's
//   Writable.write takes its encoding) sends one message uncompressed on such a channel;
//   unary calls cannot take write flags. So the "uncompressed" unary calls of
//   client_compressed_unary go through a second channel without the option, where the
//   description has one channel and per-call settings.
// - The compressed flag of received messages (server_compressed_*) and whether a request
//   really went out compressed (grpc-js silently falls back to identity when the server's
//   grpc-accept-encoding lacks gzip) are invisible through grpc-js's public API; common.js
//   taps the internal CompressionFilter to read them (installClientCompressionTap). If the
//   tap cannot be installed, those flag checks are skipped (stderr says so) and the cases
//   check only what the public API shows: statuses, sizes and contents.

const fs = require('fs');
const grpc = require('@grpc/grpc-js');
const {UsageError, loadTestingPackage, parseArgs, installClientCompressionTap} = require('./common');

const {tap, error: tapError} = installClientCompressionTap();
const {testing} = loadTestingPackage();

const CASES = [
  'empty_unary',
  'large_unary',
  'client_compressed_unary',
  'server_compressed_unary',
  'client_streaming',
  'client_compressed_streaming',
  'server_streaming',
  'server_compressed_streaming',
  'ping_pong',
  'empty_stream',
  'cancel_after_begin',
  'cancel_after_first_response',
  'timeout_on_sleeping_server',
  'custom_metadata',
  'status_code_and_message',
  'special_status_message',
  'unimplemented_method',
  'unimplemented_service',
];

/** Each case gets this long; a case still running then fails (and its calls are abandoned). */
const CASE_TIMEOUT_MS = 30000;

const GZIP = 2; // grpc.compressionAlgorithms.gzip
const NO_COMPRESS = 2; // WriteFlags.NoCompress (a const enum in grpc-js, not exported)

const ECHO_INITIAL = 'x-grpc-test-echo-initial';
const ECHO_INITIAL_VALUE = 'test_initial_metadata_value';
const ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin';
const ECHO_TRAILING_VALUE = Buffer.from([0xab, 0xab, 0xab]);

const SPECIAL_MESSAGE = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n';

const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

class CheckFailed extends Error {}

function check(condition, reason) {
  if (!condition) {
    throw new CheckFailed(reason);
  }
}

function zeros(n) {
  return Buffer.alloc(n);
}

function describeStatus(status) {
  if (!status) {
    return 'no status';
  }
  const name = STATUS_NAMES[status.code] || 'code';
  return `${name}(${status.code}) ${JSON.stringify(status.details)}`;
}

// --- calls --------------------------------------------------------------------------------

/** A unary call; resolves with {response, error, headers, status} once it has ended. */
function unary(client, method, request, {metadata, deadline} = {}) {
  return new Promise((resolve) => {
    const result = {response: null, error: null, headers: null, status: null};
    let pending = 2;
    const settle = () => {
      if (--pending === 0) {
        resolve(result);
      }
    };
    const call = client[method](request, metadata || new grpc.Metadata(), deadline ? {deadline} : {}, (err, resp) => {
      result.error = err;
      result.response = resp;
      settle();
    });
    call.on('metadata', (md) => {
      result.headers = md;
    });
    call.on('status', (status) => {
      result.status = status;
      settle();
    });
  });
}

/** A client-streaming call; `done` resolves like unary()'s promise. */
function clientStream(client, method, {metadata, deadline} = {}) {
  let call;
  const done = new Promise((resolve) => {
    const result = {response: null, error: null, headers: null, status: null};
    let pending = 2;
    const settle = () => {
      if (--pending === 0) {
        resolve(result);
      }
    };
    call = client[method](metadata || new grpc.Metadata(), deadline ? {deadline} : {}, (err, resp) => {
      result.error = err;
      result.response = resp;
      settle();
    });
    call.on('metadata', (md) => {
      result.headers = md;
    });
    call.on('status', (status) => {
      result.status = status;
      settle();
    });
    call.on('error', () => {});
  });
  return {call, done};
}

/** Follows a call that streams responses: messages as they come, headers, status. */
class Reader {
  constructor(call) {
    this.call = call;
    this.messages = [];
    this.headers = null;
    this.status = null;
    this.error = null;
    this.ended = false;
    this.waiters = [];
    call.on('metadata', (md) => {
      this.headers = md;
    });
    call.on('data', (m) => {
      this.messages.push(m);
      this.wake();
    });
    call.on('end', () => {
      this.ended = true;
      this.wake();
    });
    call.on('error', (e) => {
      if (!this.error) {
        this.error = e;
      }
      this.wake();
    });
    call.on('status', (s) => {
      this.status = s;
      this.wake();
    });
  }

  wake() {
    for (const w of this.waiters.splice(0)) {
      w();
    }
  }

  until(predicate) {
    return new Promise((resolve) => {
      const test = () => (predicate() ? resolve() : this.waiters.push(test));
      test();
    });
  }

  /** All of the call seen: its status, and every message before it. */
  finished() {
    return this.status !== null && (this.ended || this.error !== null);
  }

  /** Waits for message number `index` (0-based); false if the call ended first. */
  async message(index) {
    await this.until(() => this.messages.length > index || this.finished());
    return this.messages.length > index;
  }

  async finish() {
    await this.until(() => this.finished());
    return this;
  }
}

function expectOk(result, what) {
  const status = result.status;
  check(status && status.code === grpc.status.OK, `${what}: expected OK, got ${describeStatus(status)}`);
}

function expectCode(result, code, what) {
  const status = result.status;
  check(
    status && status.code === code,
    `${what}: expected ${STATUS_NAMES[code]}(${code}), got ${describeStatus(status)}`,
  );
}

function checkPayload(payload, size, what) {
  check(payload, `${what}: response has no payload`);
  check(payload.type === 'COMPRESSABLE', `${what}: payload type ${payload.type}, expected COMPRESSABLE`);
  const body = payload.body;
  check(Buffer.isBuffer(body), `${what}: payload body is not bytes`);
  check(body.length === size, `${what}: payload body is ${body.length} bytes, expected ${size}`);
  check(body.equals(zeros(size)), `${what}: payload body of ${size} bytes is not all zeros`);
}

function checkStreamPayloads(messages, sizes, what) {
  check(
    messages.length === sizes.length,
    `${what}: got ${messages.length} responses (sizes ${JSON.stringify(messages.map((m) => m.payload && m.payload.body.length))}), expected ${sizes.length} (sizes ${JSON.stringify(sizes)})`,
  );
  sizes.forEach((size, i) => checkPayload(messages[i].payload, size, `${what}: response ${i + 1}`));
}

// --- compression tap ----------------------------------------------------------------------

let tapWarned = false;

/** Runs `body` recording the compression events of its calls; null events if no tap. */
async function tapped(body) {
  if (tapError) {
    if (!tapWarned) {
      tapWarned = true;
      process.stderr.write(
        `interop_client.js: cannot observe compressed flags (${tapError}); those checks are skipped\n`,
      );
    }
    return {result: await body(), events: null};
  }
  tap.events = [];
  tap.recording = true;
  try {
    const result = await body();
    return {result, events: tap.events.slice()};
  } finally {
    tap.recording = false;
  }
}

function flags(events, kind) {
  return events.filter((e) => e.kind === kind).map((e) => e.compressed);
}

/**
 * Checks the compressed flags of the request messages sent (skipped without the tap);
 * `status` (how the call ended) goes into the reason, since a server checking
 * expect_compressed answers a wrongly sent message with INVALID_ARGUMENT.
 */
function checkSentFlags(events, expected, status, what) {
  if (!events) {
    return;
  }
  const sent = flags(events, 'sent');
  check(
    JSON.stringify(sent) === JSON.stringify(expected),
    `${what}: request messages went out with compressed flags ${JSON.stringify(sent)}, meant ${JSON.stringify(expected)}` +
      (expected.includes(true) ? ' (grpc-js sends identity when the server\'s grpc-accept-encoding lacks gzip)' : '') +
      `; the call ended with ${describeStatus(status)}`,
  );
}

/** Checks the compressed flags of the response messages received (skipped without the tap). */
function checkReceivedFlags(events, expected, what) {
  if (!events) {
    return;
  }
  const received = flags(events, 'received');
  const encodings = events.filter((e) => e.kind === 'headers').map((e) => e.encoding);
  check(
    JSON.stringify(received) === JSON.stringify(expected),
    `${what}: response messages had compressed flags ${JSON.stringify(received)}, expected ${JSON.stringify(expected)} ` +
      `(response grpc-encoding: ${JSON.stringify(encodings)})`,
  );
}

// --- cases --------------------------------------------------------------------------------

function largeRequest(extra) {
  return Object.assign(
    {response_type: 'COMPRESSABLE', response_size: 314159, payload: {body: zeros(271828)}},
    extra,
  );
}

const CASE_FUNCTIONS = {
  async empty_unary(ctx) {
    const r = await unary(ctx.client(), 'EmptyCall', {});
    expectOk(r, 'EmptyCall');
    check(r.response !== null && r.response !== undefined, 'EmptyCall: response is null');
    check(Object.keys(r.response).length === 0, `EmptyCall: response has fields ${JSON.stringify(Object.keys(r.response))}`);
  },

  async large_unary(ctx) {
    const r = await unary(ctx.client(), 'UnaryCall', largeRequest());
    expectOk(r, 'UnaryCall');
    checkPayload(r.response.payload, 314159, 'UnaryCall');
  },

  async client_compressed_unary(ctx) {
    const plain = ctx.client();
    const gzip = ctx.client({compression: GZIP});
    const steps = [
      {client: plain, expect: true, sent: false, ok: false, what: 'probe (uncompressed request, expect_compressed=true)'},
      {client: gzip, expect: true, sent: true, ok: true, what: 'compressed request, expect_compressed=true'},
      {client: plain, expect: false, sent: false, ok: true, what: 'uncompressed request, expect_compressed=false'},
    ];
    for (const step of steps) {
      const {result: r, events} = await tapped(() =>
        unary(step.client, 'UnaryCall', largeRequest({expect_compressed: {value: step.expect}})),
      );
      checkSentFlags(events, [step.sent], r.status, step.what);
      if (step.ok) {
        expectOk(r, step.what);
        checkPayload(r.response.payload, 314159, step.what);
      } else {
        expectCode(r, grpc.status.INVALID_ARGUMENT, step.what);
      }
    }
  },

  async server_compressed_unary(ctx) {
    const client = ctx.client();
    for (const compressed of [true, false]) {
      const what = `response_compressed=${compressed}`;
      const {result: r, events} = await tapped(() =>
        unary(client, 'UnaryCall', largeRequest({response_compressed: {value: compressed}})),
      );
      expectOk(r, what);
      checkPayload(r.response.payload, 314159, what);
      checkReceivedFlags(events, [compressed], what);
    }
  },

  async client_streaming(ctx) {
    const {call, done} = clientStream(ctx.client(), 'StreamingInputCall');
    for (const size of [27182, 8, 1828, 45904]) {
      call.write({payload: {body: zeros(size)}});
    }
    call.end();
    const r = await done;
    expectOk(r, 'StreamingInputCall');
    check(
      r.response.aggregated_payload_size === 74922,
      `aggregated_payload_size ${r.response.aggregated_payload_size}, expected 74922`,
    );
  },

  async client_compressed_streaming(ctx) {
    {
      const what = 'probe (uncompressed request, expect_compressed=true)';
      const {result: r, events} = await tapped(() => {
        const {call, done} = clientStream(ctx.client(), 'StreamingInputCall');
        call.write({expect_compressed: {value: true}, payload: {body: zeros(27182)}});
        call.end();
        return done;
      });
      checkSentFlags(events, [false], r.status, what);
      expectCode(r, grpc.status.INVALID_ARGUMENT, what);
    }
    {
      const what = 'compressed then uncompressed request';
      const {result: r, events} = await tapped(() => {
        const {call, done} = clientStream(ctx.client({compression: GZIP}), 'StreamingInputCall');
        call.write({expect_compressed: {value: true}, payload: {body: zeros(27182)}});
        call.write({expect_compressed: {value: false}, payload: {body: zeros(45904)}}, NO_COMPRESS);
        call.end();
        return done;
      });
      checkSentFlags(events, [true, false], r.status, what);
      expectOk(r, what);
      check(
        r.response.aggregated_payload_size === 73086,
        `${what}: aggregated_payload_size ${r.response.aggregated_payload_size}, expected 73086`,
      );
    }
  },

  async server_streaming(ctx) {
    const sizes = [31415, 9, 2653, 58979];
    const reader = new Reader(
      ctx.client().StreamingOutputCall({
        response_type: 'COMPRESSABLE',
        response_parameters: sizes.map((size) => ({size})),
      }),
    );
    await reader.finish();
    expectOk(reader, 'StreamingOutputCall');
    checkStreamPayloads(reader.messages, sizes, 'StreamingOutputCall');
  },

  async server_compressed_streaming(ctx) {
    const sizes = [31415, 92653];
    const {result: reader, events} = await tapped(() =>
      new Reader(
        ctx.client().StreamingOutputCall({
          response_type: 'COMPRESSABLE',
          response_parameters: [
            {compressed: {value: true}, size: sizes[0]},
            {compressed: {value: false}, size: sizes[1]},
          ],
        }),
      ).finish(),
    );
    expectOk(reader, 'StreamingOutputCall');
    checkStreamPayloads(reader.messages, sizes, 'StreamingOutputCall');
    checkReceivedFlags(events, [true, false], 'StreamingOutputCall');
  },

  async ping_pong(ctx) {
    const requestSizes = [27182, 8, 1828, 45904];
    const responseSizes = [31415, 9, 2653, 58979];
    const call = ctx.client().FullDuplexCall();
    const reader = new Reader(call);
    for (let i = 0; i < 4; i++) {
      call.write({
        response_type: 'COMPRESSABLE',
        response_parameters: [{size: responseSizes[i]}],
        payload: {body: zeros(requestSizes[i])},
      });
      const got = await reader.message(i);
      check(got, `call ended after ${i} responses (of 4), with ${describeStatus(reader.status)}`);
      checkPayload(reader.messages[i].payload, responseSizes[i], `response ${i + 1}`);
    }
    call.end();
    await reader.finish();
    expectOk(reader, 'FullDuplexCall');
    check(reader.messages.length === 4, `got ${reader.messages.length} responses, expected exactly 4`);
  },

  async empty_stream(ctx) {
    const call = ctx.client().FullDuplexCall();
    const reader = new Reader(call);
    call.end();
    await reader.finish();
    expectOk(reader, 'FullDuplexCall');
    check(reader.messages.length === 0, `got ${reader.messages.length} responses, expected none`);
  },

  async cancel_after_begin(ctx) {
    const {call, done} = clientStream(ctx.client(), 'StreamingInputCall');
    call.cancel();
    const r = await done;
    expectCode(r, grpc.status.CANCELLED, 'StreamingInputCall');
  },

  async cancel_after_first_response(ctx) {
    const call = ctx.client().FullDuplexCall();
    const reader = new Reader(call);
    call.write({
      response_type: 'COMPRESSABLE',
      response_parameters: [{size: 31415}],
      payload: {body: zeros(27182)},
    });
    const got = await reader.message(0);
    check(got, `call ended before its first response, with ${describeStatus(reader.status)}`);
    checkPayload(reader.messages[0].payload, 31415, 'first response');
    call.cancel();
    await reader.finish();
    expectCode(reader, grpc.status.CANCELLED, 'FullDuplexCall');
  },

  async timeout_on_sleeping_server(ctx) {
    const call = ctx.client().FullDuplexCall({deadline: new Date(Date.now() + 1)});
    const reader = new Reader(call);
    call.write({payload: {body: zeros(27182)}});
    await reader.finish();
    expectCode(reader, grpc.status.DEADLINE_EXCEEDED, 'FullDuplexCall with a 1ms deadline');
  },

  async custom_metadata(ctx) {
    const client = ctx.client();
    const metadata = () => {
      const md = new grpc.Metadata();
      md.set(ECHO_INITIAL, ECHO_INITIAL_VALUE);
      md.set(ECHO_TRAILING, Buffer.from(ECHO_TRAILING_VALUE));
      return md;
    };
    const checkEchoes = (headers, trailers, what) => {
      const initial = headers ? headers.get(ECHO_INITIAL) : [];
      check(
        initial.length === 1 && initial[0] === ECHO_INITIAL_VALUE,
        `${what}: initial metadata ${ECHO_INITIAL} is ${JSON.stringify(initial)}, expected ["${ECHO_INITIAL_VALUE}"]`,
      );
      const trailing = trailers ? trailers.get(ECHO_TRAILING) : [];
      check(
        trailing.length === 1 && Buffer.isBuffer(trailing[0]) && trailing[0].equals(ECHO_TRAILING_VALUE),
        `${what}: trailing metadata ${ECHO_TRAILING} is ${JSON.stringify(trailing.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v)))} (hex), expected ["ababab"]`,
      );
    };

    const r = await unary(client, 'UnaryCall', largeRequest(), {metadata: metadata()});
    expectOk(r, 'UnaryCall');
    checkPayload(r.response.payload, 314159, 'UnaryCall');
    checkEchoes(r.headers, r.status.metadata, 'UnaryCall');

    const call = client.FullDuplexCall(metadata());
    const reader = new Reader(call);
    call.write({
      response_type: 'COMPRESSABLE',
      response_parameters: [{size: 314159}],
      payload: {body: zeros(271828)},
    });
    call.end();
    await reader.finish();
    expectOk(reader, 'FullDuplexCall');
    checkStreamPayloads(reader.messages, [314159], 'FullDuplexCall');
    checkEchoes(reader.headers, reader.status.metadata, 'FullDuplexCall');
  },

  async status_code_and_message(ctx) {
    const client = ctx.client();
    const request = {response_status: {code: 2, message: 'test status message'}};
    const expectStatus = (status, what) =>
      check(
        status && status.code === 2 && status.details === 'test status message',
        `${what}: expected UNKNOWN(2) "test status message", got ${describeStatus(status)}`,
      );

    const r = await unary(client, 'UnaryCall', request);
    expectStatus(r.status, 'UnaryCall');

    const call = client.FullDuplexCall();
    const reader = new Reader(call);
    call.write(request);
    call.end();
    await reader.finish();
    expectStatus(reader.status, 'FullDuplexCall');
  },

  async special_status_message(ctx) {
    const r = await unary(ctx.client(), 'UnaryCall', {response_status: {code: 2, message: SPECIAL_MESSAGE}});
    check(
      r.status && r.status.code === 2 && r.status.details === SPECIAL_MESSAGE,
      `UnaryCall: expected UNKNOWN(2) ${JSON.stringify(SPECIAL_MESSAGE)}, got ${describeStatus(r.status)}`,
    );
  },

  async unimplemented_method(ctx) {
    const r = await unary(ctx.client(), 'UnimplementedCall', {});
    expectCode(r, grpc.status.UNIMPLEMENTED, 'grpc.testing.TestService/UnimplementedCall');
  },

  async unimplemented_service(ctx) {
    const r = await unary(ctx.client({service: testing.UnimplementedService}), 'UnimplementedCall', {});
    expectCode(r, grpc.status.UNIMPLEMENTED, 'grpc.testing.UnimplementedService/UnimplementedCall');
  },
};

// --- running --------------------------------------------------------------------------------

/** Makes the clients (one channel each) a case asks for, and closes them after it. */
class Context {
  constructor(args) {
    this.args = args;
    this.clients = [];
  }

  client({compression, service} = {}) {
    const {args} = this;
    const host = args.server_host.includes(':') && !args.server_host.startsWith('[')
      ? `[${args.server_host}]`
      : args.server_host;
    const options = {};
    if (args.server_host_override) {
      options['grpc.default_authority'] = args.server_host_override;
      options['grpc.ssl_target_name_override'] = args.server_host_override;
    }
    if (compression !== undefined) {
      options['grpc.default_compression_algorithm'] = compression;
    }
    const credentials = args.credentials || grpc.credentials.createInsecure();
    const Service = service || testing.TestService;
    const client = new Service(`${host}:${args.server_port}`, credentials, options);
    this.clients.push(client);
    return client;
  }

  close() {
    for (const client of this.clients) {
      client.close();
    }
  }
}

async function runCase(name, args) {
  const fn = Object.prototype.hasOwnProperty.call(CASE_FUNCTIONS, name) ? CASE_FUNCTIONS[name] : null;
  if (!fn) {
    return `unknown test case (known: ${CASES.join(', ')})`;
  }
  const ctx = new Context(args);
  let timer;
  try {
    await Promise.race([
      fn(ctx),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new CheckFailed(`timed out after ${CASE_TIMEOUT_MS}ms`)), CASE_TIMEOUT_MS);
      }),
    ]);
    return null;
  } catch (e) {
    return e instanceof CheckFailed ? e.message : `unexpected error: ${e && e.stack ? e.stack : e}`;
  } finally {
    clearTimeout(timer);
    ctx.close();
  }
}

function oneLine(text) {
  return String(text).replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

function usage(message) {
  process.stderr.write(
    `interop_client.js: ${message}\n` +
      'usage: node interop_client.js --server_host H --server_port N [--server_host_override X]\n' +
      '           [--use_tls=false] [--use_test_ca=false] [--ca_file F]\n' +
      '           [--tls_client_cert_file F --tls_client_key_file F] --test_case CASES\n' +
      `CASES: one case, a comma list, or all (${CASES.join(', ')})\n`,
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

/**
 * TLS channel credentials: roots from --ca_file (Node's when absent), and the client
 * certificate of --tls_client_cert_file/--tls_client_key_file if given.
 */
function channelCredentials(args) {
  if (args.use_test_ca && !args.ca_file) {
    usage('--use_test_ca=true needs --ca_file: this peer ships no test CA');
  }
  if (Boolean(args.tls_client_cert_file) !== Boolean(args.tls_client_key_file)) {
    usage('--tls_client_cert_file and --tls_client_key_file go together');
  }
  const roots = args.ca_file ? readFlagFile('--ca_file', args.ca_file) : null;
  const key = args.tls_client_key_file ? readFlagFile('--tls_client_key_file', args.tls_client_key_file) : null;
  const chain = args.tls_client_cert_file ? readFlagFile('--tls_client_cert_file', args.tls_client_cert_file) : null;
  return grpc.credentials.createSsl(roots, key, chain);
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2), {
      server_host: 'string',
      server_port: 'int',
      server_host_override: 'string',
      use_tls: 'bool',
      use_test_ca: 'bool',
      ca_file: 'string',
      tls_client_cert_file: 'string',
      tls_client_key_file: 'string',
      test_case: 'string',
    });
  } catch (e) {
    if (e instanceof UsageError) {
      usage(e.message);
    }
    throw e;
  }
  args.server_host = args.server_host || '127.0.0.1';
  if (args.server_port === undefined) {
    usage('--server_port is required');
  }
  if (!args.test_case) {
    usage('--test_case is required');
  }
  if (args.use_tls) {
    args.credentials = channelCredentials(args);
  } else if (args.use_test_ca || args.ca_file || args.tls_client_cert_file || args.tls_client_key_file) {
    usage('--use_test_ca, --ca_file, --tls_client_cert_file and --tls_client_key_file need --use_tls=true');
  }
  const names = args.test_case === 'all' ? CASES : args.test_case.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) {
    usage('--test_case names no case');
  }

  let failures = 0;
  for (const name of names) {
    const reason = await runCase(name, args);
    if (reason === null) {
      process.stdout.write(`PASS ${name}\n`);
    } else {
      failures++;
      process.stdout.write(`FAIL ${name}: ${oneLine(reason)}\n`);
    }
  }
  const code = failures === 0 ? 0 : 1;
  // Abandoned calls of timed-out cases may hold the event loop open: exit explicitly, once
  // stdout has taken everything.
  process.stdout.write('', () => process.exit(code));
}

main().catch((e) => {
  process.stderr.write(`interop_client.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
