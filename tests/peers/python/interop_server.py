"""gRPC interop test server (grpc.testing.TestService) on grpcio.

Follows tests/peers/CONVENTIONS.md:

    python interop_server.py --port N [--host H]
        [--use_tls=false] [--tls_cert_file F --tls_key_file F] [--tls_client_ca_file F]

prints `listening on port N` once listening (N is the bound port, so `--port 0` picks a free
one) and exits 0 on SIGTERM/SIGINT.

TLS (grpc-go's flag names): `--use_tls=true` serves TLS with the PEM certificate chain
`--tls_cert_file` and key `--tls_key_file` (both required then: this peer ships no test
certificate). `--tls_client_ca_file F` also requires every client to present a certificate
that the CA certificates in F verify (mutual TLS); a client without one, or with one from
another CA, fails the handshake.

Needs the stubs that tests/support/python.rs generates (`generate_interop_stubs`) on
PYTHONPATH: the protos are compiled under the top-level package `grpc_gen` instead of `grpc`,
so that they do not shadow grpcio's own `grpc` package.

Server features (grpc/grpc doc/interop-test-descriptions.md): EmptyCall, UnaryCall,
CacheableUnaryCall, StreamingOutputCall, StreamingInputCall, FullDuplexCall, HalfDuplexCall,
CompressedResponse, Echo Status, Echo Metadata, interval_us. UnimplementedCall answers
UNIMPLEMENTED (the generated base class does that) and grpc.testing.UnimplementedService is
not registered.

NOT implemented: CompressedRequest (`expect_compressed`). grpcio gives a servicer no way to
learn whether a request message arrived compressed: core strips `grpc-encoding` (and
`grpc-accept-encoding`) from the metadata it hands up, so neither
`context.invocation_metadata()` nor a ServerInterceptor's `invocation_metadata` nor the
grpc.aio context shows it, and the per-message compressed flag is consumed by core's
decompression. `expect_compressed` is therefore accepted without a check (requests with it
succeed whether or not they were compressed); clients that probe for the feature (an
uncompressed request with `expect_compressed: true` must fail with INVALID_ARGUMENT) see the
probe succeed.
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

try:
    from grpc_gen.testing import empty_pb2, messages_pb2, test_pb2_grpc
except ImportError as _error:
    sys.exit(
        "cannot import the grpc.testing stubs (%s): put the directory that "
        "tests/support/python.rs generate_interop_stubs() makes on PYTHONPATH "
        "(see tests/peers/python/README.md)" % _error
    )

ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"

_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _bool_flag(text):
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, got %r" % text)


def _payload(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\x00" * size)


def _echo_metadata(context, extra_initial=()):
    """Echo Metadata: `x-grpc-test-echo-initial` back in the initial metadata,
    `x-grpc-test-echo-trailing-bin` back in the trailing metadata. Sends the initial
    metadata now (with `extra_initial`) when there is any to send."""
    initial = list(extra_initial)
    trailing = []
    for key, value in context.invocation_metadata():
        if key == ECHO_INITIAL_KEY:
            initial.append((key, value))
        elif key == ECHO_TRAILING_KEY:
            trailing.append((key, value))
    if initial:
        context.send_initial_metadata(tuple(initial))
    if trailing:
        context.set_trailing_metadata(tuple(trailing))


def _end_with_status(context, echo_status):
    """Echo Status: ends the call with the code and message the request asked for (raises
    unless the code is OK)."""
    code = _CODES.get(echo_status.code)
    message = echo_status.message
    if code is None:
        # grpcio cannot send a code outside 0..16; say so rather than invent one.
        code = grpc.StatusCode.UNKNOWN
        message = "requested status code %d is not sendable by grpcio: %s" % (
            echo_status.code,
            echo_status.message,
        )
    if code is grpc.StatusCode.OK:
        context.set_code(code)
        context.set_details(message)
        return
    context.abort(code, message)


def _check_response_type(request, context):
    if request.response_type != messages_pb2.COMPRESSABLE:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            "unsupported response_type %d" % request.response_type,
        )


def _sleep_us(interval_us):
    if interval_us > 0:
        time.sleep(interval_us / 1e6)


class TestService(test_pb2_grpc.TestServiceServicer):
    # UnimplementedCall is left to the generated base class: UNIMPLEMENTED.

    def EmptyCall(self, request, context):
        _echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        if request.HasField("response_compressed"):
            context.set_compression(
                grpc.Compression.Gzip
                if request.response_compressed.value
                else grpc.Compression.NoCompression
            )
        _echo_metadata(context)
        # expect_compressed: not checkable with grpcio (see the module docstring).
        _check_response_type(request, context)
        response = messages_pb2.SimpleResponse(payload=_payload(request.response_size))
        if request.HasField("response_status"):
            _end_with_status(context, request.response_status)
        return response

    def CacheableUnaryCall(self, request, context):
        _echo_metadata(context, extra_initial=(("cache-control", "max-age=60, public"),))
        body = str(time.time_ns()).encode("ascii")
        return messages_pb2.SimpleResponse(
            payload=messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=body)
        )

    def StreamingOutputCall(self, request, context):
        params = list(request.response_parameters)
        # CompressedResponse, per message: compress the call, and opt out every message
        # that did not ask for compression. Must be decided before the first message (the
        # algorithm travels in the initial metadata).
        if any(p.HasField("compressed") and p.compressed.value for p in params):
            context.set_compression(grpc.Compression.Gzip)
        _echo_metadata(context)
        _check_response_type(request, context)
        for p in params:
            _sleep_us(p.interval_us)
            if not (p.HasField("compressed") and p.compressed.value):
                context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(payload=_payload(p.size))
        if request.HasField("response_status"):
            _end_with_status(context, request.response_status)

    def StreamingInputCall(self, request_iterator, context):
        _echo_metadata(context)
        total = 0
        for request in request_iterator:
            # expect_compressed: not checkable with grpcio (see the module docstring).
            total += len(request.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        for request in request_iterator:
            if request.HasField("response_status"):
                # Echo Status: end the call now; later requests are not processed.
                _end_with_status(context, request.response_status)
                return
            _check_response_type(request, context)
            for p in request.response_parameters:
                _sleep_us(p.interval_us)
                yield messages_pb2.StreamingOutputCallResponse(payload=_payload(p.size))

    def HalfDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        requests = []
        for request in request_iterator:
            if request.HasField("response_status"):
                _end_with_status(context, request.response_status)
                return
            _check_response_type(request, context)
            requests.append(request)
        for request in requests:
            for p in request.response_parameters:
                _sleep_us(p.interval_us)
                yield messages_pb2.StreamingOutputCallResponse(payload=_payload(p.size))


def _address(host, port):
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "%s:%d" % (host, port)


def _read(parser, flag, path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        parser.error("%s %s: %s" % (flag, path, error))


def _server_credentials(parser, args):
    """TLS server credentials from --tls_cert_file/--tls_key_file; with
    --tls_client_ca_file, client certificates are required and verified against it."""
    if not args.tls_cert_file or not args.tls_key_file:
        parser.error(
            "--use_tls=true needs --tls_cert_file and --tls_key_file (this peer ships no "
            "test certificate)"
        )
    key = _read(parser, "--tls_key_file", args.tls_key_file)
    chain = _read(parser, "--tls_cert_file", args.tls_cert_file)
    client_ca = None
    if args.tls_client_ca_file:
        client_ca = _read(parser, "--tls_client_ca_file", args.tls_client_ca_file)
    return grpc.ssl_server_credentials(
        [(key, chain)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description="gRPC interop server (grpcio)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--use_tls", type=_bool_flag, default=False)
    parser.add_argument("--tls_cert_file", default=None)
    parser.add_argument("--tls_key_file", default=None)
    parser.add_argument("--tls_client_ca_file", default=None)
    args = parser.parse_args(argv)
    credentials = None
    if args.use_tls:
        credentials = _server_credentials(parser, args)
    elif args.tls_cert_file or args.tls_key_file or args.tls_client_ca_file:
        parser.error("--tls_cert_file, --tls_key_file and --tls_client_ca_file need --use_tls=true")

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64),
        options=(("grpc.so_reuseport", 0),),
    )
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    try:
        if credentials is None:
            port = server.add_insecure_port(_address(args.host, args.port))
        else:
            port = server.add_secure_port(_address(args.host, args.port), credentials)
    except RuntimeError as error:
        port, reason = 0, error
    else:
        reason = "no address bound"
    if port == 0:
        print("cannot listen on %s: %s" % (_address(args.host, args.port), reason), file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()
    print("listening on port %d" % port, flush=True)
    while not stop.wait(0.2):
        pass
    server.stop(grace=1).wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
