"""gRPC interop test client on grpcio.

Follows tests/peers/CONVENTIONS.md:

    python interop_client.py --server_host H --server_port N [--server_host_override X]
        [--use_tls=false] [--use_test_ca=false] [--ca_file F]
        [--tls_client_cert_file F --tls_client_key_file F] --test_case CASES

CASES is one case, a comma list, or `all`. For each case, in order, prints one line
`PASS <case>` or `FAIL <case>: <reason>`; exits 0 when all passed, 1 otherwise.

Needs the stubs that tests/support/python.rs generates (`generate_interop_stubs`) on
PYTHONPATH: the protos are compiled under the top-level package `grpc_gen` instead of `grpc`,
so that they do not shadow grpcio's own `grpc` package.

The cases follow grpc/grpc doc/interop-test-descriptions.md (and, where it is silent, the
C++ reference client). What grpcio cannot do, each case says in a comment; in short:

- A received message's compressed flag is invisible to a grpcio client (core decompresses
  before the message reaches Python, and strips `grpc-encoding` from the initial metadata
  it hands up), so server_compressed_unary and server_compressed_streaming check everything
  but the flag.
- grpcio's public client API compresses per call only; client_compressed_streaming's
  uncompressed second message on a compressed call needs the per-message
  GRPC_WRITE_NO_COMPRESS flag, which this client sets through grpcio's internal cygrpc
  layer (pinned grpcio 1.76.0) in `_stream_unary_with_write_flags`.

TLS (grpc-go's flag names): `--use_tls=true` connects over TLS. The server's certificate is
verified against the PEM CA certificates of `--ca_file` (`--use_test_ca=true` says to use a
test CA; this peer ships none, so it needs `--ca_file`), or against the system's roots when
neither is given. `--server_host_override X` is the name the certificate must carry
(channel option grpc.ssl_target_name_override) and the calls' :authority
(grpc.default_authority). `--tls_client_cert_file`/`--tls_client_key_file` present a client
certificate (mutual TLS).
"""

import argparse
import sys
import threading
import time

import grpc
from grpc import _compression  # only for client_compressed_streaming, see above
from grpc._cython import cygrpc  # likewise

try:
    from grpc_gen.testing import empty_pb2, messages_pb2, test_pb2_grpc
except ImportError as _error:
    sys.exit(
        "cannot import the grpc.testing stubs (%s): put the directory that "
        "tests/support/python.rs generate_interop_stubs() makes on PYTHONPATH "
        "(see tests/peers/python/README.md)" % _error
    )

ALL_CASES = (
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
)

# Every call but timeout_on_sleeping_server's gets this deadline, so that a server that never
# answers fails the case instead of hanging the client.
CALL_TIMEOUT = 10.0

LARGE_REQUEST_SIZE = 271828
LARGE_RESPONSE_SIZE = 314159
REQUEST_STREAM_SIZES = (27182, 8, 1828, 45904)
RESPONSE_STREAM_SIZES = (31415, 9, 2653, 58979)

ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_INITIAL_VALUE = "test_initial_metadata_value"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
ECHO_TRAILING_VALUE = b"\xab\xab\xab"

TEST_STATUS_MESSAGE = "test status message"
SPECIAL_STATUS_MESSAGE = (
    "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
)


class CaseFailure(Exception):
    """A case's assertion did not hold; the message names the mismatch."""


def _bool_flag(text):
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, got %r" % text)


def _zeros(size):
    return b"\x00" * size


def _payload(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=_zeros(size))


def _bool_value(value):
    return messages_pb2.BoolValue(value=value)


def _expect(condition, reason):
    if not condition:
        raise CaseFailure(reason)


def _check_payload(what, payload, size):
    """The payload is `size` zero bytes of type COMPRESSABLE."""
    body = payload.body
    _expect(
        len(body) == size,
        "%s: payload body is %d bytes, expected %d" % (what, len(body), size),
    )
    _expect(body == _zeros(size), "%s: payload body is not all zeros" % what)
    _expect(
        payload.type == messages_pb2.COMPRESSABLE,
        "%s: payload type %d, expected COMPRESSABLE (0)" % (what, payload.type),
    )


def _status_text(code, details):
    return "%s %r" % (code.name if code is not None else None, details)


def _expect_code(what, error, code):
    """`error` (an RpcError or a finished call) ended with `code`."""
    got = error.code()
    _expect(
        got == code,
        "%s: status %s, expected %s" % (what, _status_text(got, error.details()), code.name),
    )


class _Pipe:
    """A request iterator fed by the test: blocks until a request is added or it is
    closed (which half-closes the call)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._values = []
        self._open = True

    def __iter__(self):
        return self

    def __next__(self):
        with self._cond:
            while not self._values and self._open:
                self._cond.wait()
            if self._values:
                return self._values.pop(0)
            raise StopIteration()

    def add(self, value):
        with self._cond:
            self._values.append(value)
            self._cond.notify()

    def close(self):
        with self._cond:
            self._open = False
            self._cond.notify()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _next_response(what, responses):
    """The next message of a response stream; fails the case if the stream ends."""
    try:
        return next(responses)
    except StopIteration:
        raise CaseFailure(
            "%s: response stream ended (status %s) where a response was expected"
            % (what, _status_text(responses.code(), responses.details()))
        )


def _expect_stream_end_ok(what, responses):
    """No further responses, then status OK."""
    extra = 0
    for _ in responses:
        extra += 1
    _expect(extra == 0, "%s: %d more responses than expected" % (what, extra))
    _expect_code(what, responses, grpc.StatusCode.OK)


def _stream_unary_with_write_flags(
    channel, method, requests_and_flags, response_type, timeout, metadata
):
    """A client-streaming call that sends each serialized request with its own write
    flags, then half-closes; returns (response or None, code, details).

    grpcio's public API only compresses per call (`compression=`): every message of the
    call gets compressed. The interop case client_compressed_streaming needs one compressed
    and one uncompressed message on the same call, i.e. core's per-message
    GRPC_WRITE_NO_COMPRESS flag, which grpcio exposes only on the server
    (`disable_next_message_compression`). So this drives the call through grpcio's internal
    cygrpc layer, the way grpc/_channel.py does (checked against the pinned grpcio 1.76.0).
    """
    call = channel._channel.segregated_call(
        cygrpc.PropagationConstants.GRPC_PROPAGATE_DEFAULTS,
        method.encode("ascii"),
        None,
        time.time() + timeout,
        metadata,
        None,
        (
            (
                (
                    cygrpc.SendInitialMetadataOperation(metadata, 0),
                    cygrpc.ReceiveMessageOperation(0),
                    cygrpc.ReceiveStatusOnClientOperation(0),
                ),
                None,
            ),
            ((cygrpc.ReceiveInitialMetadataOperation(0),), None),
        ),
        cygrpc.build_census_context(),
        None,
    )
    state = {"due": {"initial": True, "status": True}, "response": None, "status": None}

    def handle(event):
        for op in event.batch_operations:
            kind = op.type()
            if kind == cygrpc.OperationType.receive_message:
                message = op.message()
                if message is not None:
                    state["response"] = response_type.FromString(message)
            elif kind == cygrpc.OperationType.receive_status_on_client:
                state["status"] = (op.code(), op.details())
                state["due"]["status"] = False
            elif kind == cygrpc.OperationType.receive_initial_metadata:
                state["due"]["initial"] = False
            elif kind == cygrpc.OperationType.send_message:
                state["due"]["send"] = False
            elif kind == cygrpc.OperationType.send_close_from_client:
                state["due"]["close"] = False

    def wait_for(key):
        while state["due"].get(key) and state["status"] is None:
            handle(call.next_event())

    for serialized, flags in requests_and_flags:
        state["due"]["send"] = True
        call.operate((cygrpc.SendMessageOperation(serialized, flags),), None)
        wait_for("send")
        if state["status"] is not None:
            break
    if state["status"] is None:
        state["due"]["close"] = True
        call.operate((cygrpc.SendCloseFromClientOperation(0),), None)
    while any(state["due"].values()):
        handle(call.next_event())
    code, details = state["status"]
    status = {c.value[0]: c for c in grpc.StatusCode}.get(code, grpc.StatusCode.UNKNOWN)
    return state["response"], status, details


class Client:
    def __init__(self, target, host_override, credentials=None):
        """`credentials`: grpc.ChannelCredentials for TLS, None for plaintext."""
        self._target = target
        self._credentials = credentials
        self._options = []
        if host_override:
            self._options.append(("grpc.default_authority", host_override))
            self._options.append(("grpc.ssl_target_name_override", host_override))

    def run(self, case):
        """Runs one case on a fresh channel; None if it passed, else the reason."""
        if self._credentials is None:
            channel = grpc.insecure_channel(self._target, options=self._options)
        else:
            channel = grpc.secure_channel(self._target, self._credentials, options=self._options)
        try:
            getattr(self, case)(channel, test_pb2_grpc.TestServiceStub(channel))
            return None
        except CaseFailure as failure:
            return str(failure)
        except grpc.RpcError as error:
            return "unexpected status %s" % _status_text(error.code(), error.details())
        except Exception as error:  # a bug in the case or in what came back
            return "%s: %s" % (type(error).__name__, error)
        finally:
            channel.close()

    # --- cases -----------------------------------------------------------------------

    def empty_unary(self, channel, stub):
        response = stub.EmptyCall(empty_pb2.Empty(), timeout=CALL_TIMEOUT)
        _expect(
            isinstance(response, empty_pb2.Empty),
            "response is %s, not grpc.testing.Empty" % type(response).__name__,
        )
        _expect(
            response.ByteSize() == 0,
            "response serializes to %d bytes, expected 0" % response.ByteSize(),
        )

    def _large_unary_request(self, **fields):
        return messages_pb2.SimpleRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_size=LARGE_RESPONSE_SIZE,
            payload=_payload(LARGE_REQUEST_SIZE),
            **fields
        )

    def large_unary(self, channel, stub):
        response = stub.UnaryCall(self._large_unary_request(), timeout=CALL_TIMEOUT)
        _check_payload("response", response.payload, LARGE_RESPONSE_SIZE)

    def client_compressed_unary(self, channel, stub):
        # 1. The probe: uncompressed, but claims to be compressed.
        try:
            stub.UnaryCall(
                self._large_unary_request(expect_compressed=_bool_value(True)),
                timeout=CALL_TIMEOUT,
                compression=grpc.Compression.NoCompression,
            )
            raise CaseFailure(
                "probe (uncompressed request with expect_compressed=true) succeeded, "
                "expected INVALID_ARGUMENT: the server does not check CompressedRequest"
            )
        except grpc.RpcError as error:
            _expect_code("probe", error, grpc.StatusCode.INVALID_ARGUMENT)
        # 2. Compressed (per-call gzip), expect_compressed=true.
        response = stub.UnaryCall(
            self._large_unary_request(expect_compressed=_bool_value(True)),
            timeout=CALL_TIMEOUT,
            compression=grpc.Compression.Gzip,
        )
        _check_payload("compressed call's response", response.payload, LARGE_RESPONSE_SIZE)
        # 3. Uncompressed, expect_compressed=false.
        response = stub.UnaryCall(
            self._large_unary_request(expect_compressed=_bool_value(False)),
            timeout=CALL_TIMEOUT,
            compression=grpc.Compression.NoCompression,
        )
        _check_payload("uncompressed call's response", response.payload, LARGE_RESPONSE_SIZE)

    def server_compressed_unary(self, channel, stub):
        for compressed in (True, False):
            what = "response_compressed=%s" % str(compressed).lower()
            response = stub.UnaryCall(
                self._large_unary_request(response_compressed=_bool_value(compressed)),
                timeout=CALL_TIMEOUT,
            )
            # SKIPPED: "the response MUST (NOT) have the compressed message flag set".
            # grpcio decompresses in core and shows neither the message flag nor the
            # response's grpc-encoding header to the application.
            _check_payload(what, response.payload, LARGE_RESPONSE_SIZE)

    def client_streaming(self, channel, stub):
        requests = [
            messages_pb2.StreamingInputCallRequest(payload=_payload(size))
            for size in REQUEST_STREAM_SIZES
        ]
        response = stub.StreamingInputCall(iter(requests), timeout=CALL_TIMEOUT)
        _expect(
            response.aggregated_payload_size == 74922,
            "aggregated_payload_size %d, expected 74922" % response.aggregated_payload_size,
        )

    def client_compressed_streaming(self, channel, stub):
        # 1. The probe: one uncompressed message that claims to be compressed.
        probe = messages_pb2.StreamingInputCallRequest(
            payload=_payload(27182), expect_compressed=_bool_value(True)
        )
        try:
            stub.StreamingInputCall(
                iter([probe]),
                timeout=CALL_TIMEOUT,
                compression=grpc.Compression.NoCompression,
            )
            raise CaseFailure(
                "probe (uncompressed message with expect_compressed=true) succeeded, "
                "expected INVALID_ARGUMENT: the server does not check CompressedRequest"
            )
        except grpc.RpcError as error:
            _expect_code("probe", error, grpc.StatusCode.INVALID_ARGUMENT)
        # 2. One call, gzip per call: a compressed message, then an uncompressed one (per
        # message GRPC_WRITE_NO_COMPRESS, see _stream_unary_with_write_flags), half-close.
        compressed = messages_pb2.StreamingInputCallRequest(
            payload=_payload(27182), expect_compressed=_bool_value(True)
        )
        uncompressed = messages_pb2.StreamingInputCallRequest(
            payload=_payload(45904), expect_compressed=_bool_value(False)
        )
        # What grpcio's own `compression=grpc.Compression.Gzip` adds to the call.
        gzip_metadata = (_compression.compression_algorithm_to_metadata(grpc.Compression.Gzip),)
        response, code, details = _stream_unary_with_write_flags(
            channel,
            "/grpc.testing.TestService/StreamingInputCall",
            (
                (compressed.SerializeToString(), 0),
                (uncompressed.SerializeToString(), cygrpc.WriteFlag.no_compress),
            ),
            messages_pb2.StreamingInputCallResponse,
            CALL_TIMEOUT,
            gzip_metadata,
        )
        _expect(
            code == grpc.StatusCode.OK,
            "compressed call: status %s, expected OK" % _status_text(code, details),
        )
        _expect(response is not None, "compressed call: OK without a response message")
        _expect(
            response.aggregated_payload_size == 73086,
            "aggregated_payload_size %d, expected 73086" % response.aggregated_payload_size,
        )

    def server_streaming(self, channel, stub):
        request = messages_pb2.StreamingOutputCallRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_parameters=[
                messages_pb2.ResponseParameters(size=size) for size in RESPONSE_STREAM_SIZES
            ],
        )
        responses = stub.StreamingOutputCall(request, timeout=CALL_TIMEOUT)
        sizes = []
        for i, response in enumerate(responses):
            if i < len(RESPONSE_STREAM_SIZES):
                _check_payload("response %d" % (i + 1), response.payload, RESPONSE_STREAM_SIZES[i])
            sizes.append(len(response.payload.body))
        _expect(
            len(sizes) == len(RESPONSE_STREAM_SIZES),
            "%d responses (sizes %s), expected 4" % (len(sizes), sizes),
        )
        _expect_code("stream end", responses, grpc.StatusCode.OK)

    def server_compressed_streaming(self, channel, stub):
        expected = ((True, 31415), (False, 92653))
        request = messages_pb2.StreamingOutputCallRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_parameters=[
                messages_pb2.ResponseParameters(size=size, compressed=_bool_value(flag))
                for flag, size in expected
            ],
        )
        responses = stub.StreamingOutputCall(request, timeout=CALL_TIMEOUT)
        count = 0
        for i, response in enumerate(responses):
            count += 1
            if i < len(expected):
                # SKIPPED: the compressed message flag of each response (set for the
                # first, clear for the second). grpcio decompresses in core and shows
                # neither the flag nor grpc-encoding to the application.
                _check_payload("response %d" % (i + 1), response.payload, expected[i][1])
        _expect(count == len(expected), "%d responses, expected 2" % count)
        _expect_code("stream end", responses, grpc.StatusCode.OK)

    def ping_pong(self, channel, stub):
        with _Pipe() as pipe:
            responses = stub.FullDuplexCall(pipe, timeout=CALL_TIMEOUT)
            for i, (response_size, request_size) in enumerate(
                zip(RESPONSE_STREAM_SIZES, REQUEST_STREAM_SIZES)
            ):
                pipe.add(
                    messages_pb2.StreamingOutputCallRequest(
                        response_type=messages_pb2.COMPRESSABLE,
                        response_parameters=[messages_pb2.ResponseParameters(size=response_size)],
                        payload=_payload(request_size),
                    )
                )
                what = "response %d" % (i + 1)
                response = _next_response(what, responses)
                _check_payload(what, response.payload, response_size)
            pipe.close()
            _expect_stream_end_ok("after half-close", responses)

    def empty_stream(self, channel, stub):
        with _Pipe() as pipe:
            responses = stub.FullDuplexCall(pipe, timeout=CALL_TIMEOUT)
            pipe.close()
            _expect_stream_end_ok("empty stream", responses)

    def cancel_after_begin(self, channel, stub):
        with _Pipe() as pipe:
            future = stub.StreamingInputCall.future(pipe, timeout=CALL_TIMEOUT)
            future.cancel()
            _expect(future.cancelled(), "call not cancelled after cancel()")
            _expect_code("cancelled call", future, grpc.StatusCode.CANCELLED)

    def cancel_after_first_response(self, channel, stub):
        with _Pipe() as pipe:
            responses = stub.FullDuplexCall(pipe, timeout=CALL_TIMEOUT)
            pipe.add(
                messages_pb2.StreamingOutputCallRequest(
                    response_type=messages_pb2.COMPRESSABLE,
                    response_parameters=[messages_pb2.ResponseParameters(size=31415)],
                    payload=_payload(27182),
                )
            )
            response = _next_response("first response", responses)
            _check_payload("first response", response.payload, 31415)
            responses.cancel()
            try:
                next(responses)
                raise CaseFailure("a response arrived after cancel()")
            except StopIteration:
                raise CaseFailure(
                    "stream ended normally (status %s) after cancel(), expected CANCELLED"
                    % _status_text(responses.code(), responses.details())
                )
            except grpc.RpcError as error:
                _expect_code("cancelled call", error, grpc.StatusCode.CANCELLED)

    def timeout_on_sleeping_server(self, channel, stub):
        with _Pipe() as pipe:
            responses = stub.FullDuplexCall(pipe, timeout=0.001)
            pipe.add(
                messages_pb2.StreamingOutputCallRequest(
                    response_type=messages_pb2.COMPRESSABLE, payload=_payload(27182)
                )
            )
            try:
                next(responses)
                raise CaseFailure("a response arrived, expected DEADLINE_EXCEEDED")
            except StopIteration:
                raise CaseFailure(
                    "stream ended (status %s), expected DEADLINE_EXCEEDED"
                    % _status_text(responses.code(), responses.details())
                )
            except grpc.RpcError as error:
                _expect_code("call with a 1 ms deadline", error, grpc.StatusCode.DEADLINE_EXCEEDED)

    def _check_echoed_metadata(self, what, call):
        initial = [v for k, v in call.initial_metadata() or () if k == ECHO_INITIAL_KEY]
        _expect(
            initial == [ECHO_INITIAL_VALUE],
            "%s: initial metadata %s = %r, expected [%r]"
            % (what, ECHO_INITIAL_KEY, initial, ECHO_INITIAL_VALUE),
        )
        trailing = [v for k, v in call.trailing_metadata() or () if k == ECHO_TRAILING_KEY]
        _expect(
            trailing == [ECHO_TRAILING_VALUE],
            "%s: trailing metadata %s = %r, expected [%r]"
            % (what, ECHO_TRAILING_KEY, trailing, ECHO_TRAILING_VALUE),
        )

    def custom_metadata(self, channel, stub):
        metadata = ((ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE), (ECHO_TRAILING_KEY, ECHO_TRAILING_VALUE))
        # 1. UnaryCall.
        response, call = stub.UnaryCall.with_call(
            self._large_unary_request(), timeout=CALL_TIMEOUT, metadata=metadata
        )
        _check_payload("UnaryCall response", response.payload, LARGE_RESPONSE_SIZE)
        self._check_echoed_metadata("UnaryCall", call)
        # 2. FullDuplexCall, one request, then half-close.
        with _Pipe() as pipe:
            responses = stub.FullDuplexCall(pipe, timeout=CALL_TIMEOUT, metadata=metadata)
            pipe.add(
                messages_pb2.StreamingOutputCallRequest(
                    response_type=messages_pb2.COMPRESSABLE,
                    response_parameters=[
                        messages_pb2.ResponseParameters(size=LARGE_RESPONSE_SIZE)
                    ],
                    payload=_payload(LARGE_REQUEST_SIZE),
                )
            )
            pipe.close()
            response = _next_response("FullDuplexCall response", responses)
            _check_payload("FullDuplexCall response", response.payload, LARGE_RESPONSE_SIZE)
            _expect_stream_end_ok("FullDuplexCall", responses)
            self._check_echoed_metadata("FullDuplexCall", responses)

    def _expect_echoed_status(self, what, call_or_error, message):
        _expect_code(what, call_or_error, grpc.StatusCode.UNKNOWN)
        details = call_or_error.details()
        _expect(
            details == message,
            "%s: status message %r, expected %r" % (what, details, message),
        )

    def status_code_and_message(self, channel, stub):
        echo = messages_pb2.EchoStatus(code=2, message=TEST_STATUS_MESSAGE)
        # 1. UnaryCall.
        try:
            stub.UnaryCall(messages_pb2.SimpleRequest(response_status=echo), timeout=CALL_TIMEOUT)
            raise CaseFailure("UnaryCall succeeded, expected UNKNOWN")
        except grpc.RpcError as error:
            self._expect_echoed_status("UnaryCall", error, TEST_STATUS_MESSAGE)
        # 2. FullDuplexCall, then half-close.
        with _Pipe() as pipe:
            responses = stub.FullDuplexCall(pipe, timeout=CALL_TIMEOUT)
            pipe.add(messages_pb2.StreamingOutputCallRequest(response_status=echo))
            pipe.close()
            try:
                for _ in responses:
                    pass
                raise CaseFailure(
                    "FullDuplexCall ended with %s, expected UNKNOWN"
                    % _status_text(responses.code(), responses.details())
                )
            except grpc.RpcError as error:
                self._expect_echoed_status("FullDuplexCall", error, TEST_STATUS_MESSAGE)

    def special_status_message(self, channel, stub):
        echo = messages_pb2.EchoStatus(code=2, message=SPECIAL_STATUS_MESSAGE)
        try:
            stub.UnaryCall(messages_pb2.SimpleRequest(response_status=echo), timeout=CALL_TIMEOUT)
            raise CaseFailure("UnaryCall succeeded, expected UNKNOWN")
        except grpc.RpcError as error:
            self._expect_echoed_status("UnaryCall", error, SPECIAL_STATUS_MESSAGE)

    def unimplemented_method(self, channel, stub):
        try:
            stub.UnimplementedCall(empty_pb2.Empty(), timeout=CALL_TIMEOUT)
            raise CaseFailure("TestService/UnimplementedCall succeeded, expected UNIMPLEMENTED")
        except grpc.RpcError as error:
            _expect_code("TestService/UnimplementedCall", error, grpc.StatusCode.UNIMPLEMENTED)

    def unimplemented_service(self, channel, stub):
        other = test_pb2_grpc.UnimplementedServiceStub(channel)
        try:
            other.UnimplementedCall(empty_pb2.Empty(), timeout=CALL_TIMEOUT)
            raise CaseFailure(
                "UnimplementedService/UnimplementedCall succeeded, expected UNIMPLEMENTED"
            )
        except grpc.RpcError as error:
            _expect_code(
                "UnimplementedService/UnimplementedCall", error, grpc.StatusCode.UNIMPLEMENTED
            )


def _one_line(text):
    return " ".join(str(text).split("\n")).replace("\r", " ")


def _read(parser, flag, path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        parser.error("%s %s: %s" % (flag, path, error))


def _channel_credentials(parser, args):
    """TLS channel credentials: roots from --ca_file (the system's when absent), and the
    client certificate of --tls_client_cert_file/--tls_client_key_file if given."""
    if args.use_test_ca and not args.ca_file:
        parser.error("--use_test_ca=true needs --ca_file: this peer ships no test CA")
    if bool(args.tls_client_cert_file) != bool(args.tls_client_key_file):
        parser.error("--tls_client_cert_file and --tls_client_key_file go together")
    roots = _read(parser, "--ca_file", args.ca_file) if args.ca_file else None
    key = chain = None
    if args.tls_client_cert_file:
        chain = _read(parser, "--tls_client_cert_file", args.tls_client_cert_file)
        key = _read(parser, "--tls_client_key_file", args.tls_client_key_file)
    return grpc.ssl_channel_credentials(
        root_certificates=roots, private_key=key, certificate_chain=chain
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description="gRPC interop client (grpcio)")
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--server_host_override", default=None)
    parser.add_argument("--use_tls", type=_bool_flag, default=False)
    parser.add_argument("--use_test_ca", type=_bool_flag, default=False)
    parser.add_argument("--ca_file", default=None)
    parser.add_argument("--tls_client_cert_file", default=None)
    parser.add_argument("--tls_client_key_file", default=None)
    parser.add_argument("--test_case", required=True)
    args = parser.parse_args(argv)
    credentials = None
    if args.use_tls:
        credentials = _channel_credentials(parser, args)
    elif args.use_test_ca or args.ca_file or args.tls_client_cert_file or args.tls_client_key_file:
        parser.error(
            "--use_test_ca, --ca_file, --tls_client_cert_file and --tls_client_key_file "
            "need --use_tls=true"
        )

    if args.test_case.strip() == "all":
        cases = list(ALL_CASES)
    else:
        cases = [c.strip() for c in args.test_case.split(",") if c.strip()]
    if not cases:
        parser.error("--test_case names no case")

    host = args.server_host
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    client = Client("%s:%d" % (host, args.server_port), args.server_host_override, credentials)

    failed = 0
    for case in cases:
        if case not in ALL_CASES:
            reason = "unknown test case (known: %s)" % ", ".join(ALL_CASES)
        else:
            reason = client.run(case)
        if reason is None:
            print("PASS %s" % case, flush=True)
        else:
            failed += 1
            print("FAIL %s: %s" % (case, _one_line(reason)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
