"""Rich error details (google.rpc.Status in grpc-status-details-bin) with grpcio-status.

    details_peer.py server --port N   serves demo.GRPCDemo: SimpleMethod aborts at once
                                      (Trailers-Only), ServerStreamingMethod sends two
                                      messages first (trailers); both with rpc_status.to_status
                                      of the status below. Prints `listening on port N`.
    details_peer.py client --port N [--method SimpleMethod|ServerStreamingMethod]
                                      calls 127.0.0.1:N, reads the error with
                                      rpc_status.from_call and checks every field against
                                      the status below. Prints `PASS <method>` and exits 0,
                                      or `FAIL <method>: <why>` and exits 1.

The status is the same one tests/details.rs builds (`expected_details`): INVALID_ARGUMENT,
one detail of each standard type of google/rpc/error_details.proto, then a
google.protobuf.StringValue that neither side knows as a detail. Methods are served and
called with raw bytes, so no stubs are needed; the request is ignored.
"""

import argparse
import signal
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

SERVICE = "demo.GRPCDemo"
CODE = code_pb2.INVALID_ARGUMENT
MESSAGE = "the request is not valid: \u263a 100%"


def expected_details():
    """The details, in order, as messages."""
    return [
        error_details_pb2.ErrorInfo(
            reason="NAME_INVALID",
            domain="h2grpc.test",
            metadata={"field": "name", "limit": "10"},
        ),
        error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=1, nanos=500000000)
        ),
        error_details_pb2.DebugInfo(
            stack_entries=["frame one", "frame two"], detail="debug detail"
        ),
        error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject="project:demo", description="daily limit"
                )
            ]
        ),
        error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="TOS",
                    subject="h2grpc.test/terms",
                    description="terms not accepted",
                )
            ]
        ),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="name", description="too long"
                ),
                error_details_pb2.BadRequest.FieldViolation(
                    field="age", description="negative"
                ),
            ]
        ),
        error_details_pb2.RequestInfo(request_id="req-42", serving_data="shard 7"),
        error_details_pb2.ResourceInfo(
            resource_type="book",
            resource_name="shelves/1/books/2",
            owner="user:alice",
            description="not found",
        ),
        error_details_pb2.Help(
            links=[
                error_details_pb2.Help.Link(
                    description="the docs", url="https://example.com/help"
                )
            ]
        ),
        error_details_pb2.LocalizedMessage(
            locale="fr-FR", message="la requ\u00eate n'est pas valide"
        ),
        wrappers_pb2.StringValue(value="custom"),
    ]


def expected_status():
    status = status_pb2.Status(code=CODE, message=MESSAGE)
    for detail in expected_details():
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status


def serve(port):
    def simple(request, context):
        context.abort_with_status(rpc_status.to_status(expected_status()))

    def server_streaming(request, context):
        # Two messages (empty demo.Response), then the status in trailers.
        yield b""
        yield b""
        context.abort_with_status(rpc_status.to_status(expected_status()))

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "SimpleMethod": grpc.unary_unary_rpc_method_handler(simple),
            "ServerStreamingMethod": grpc.unary_stream_rpc_method_handler(
                server_streaming
            ),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("listening on port %d" % bound, flush=True)
    stop.wait()
    server.stop(0)
    return 0


def check(method, port):
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    path = "/%s/%s" % (SERVICE, method)
    try:
        if method == "ServerStreamingMethod":
            replies = list(channel.unary_stream(path)(b"", timeout=20))
            return "the call succeeded with %d replies" % len(replies)
        channel.unary_unary(path)(b"", timeout=20)
        return "the call succeeded"
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
            return "code %s, want INVALID_ARGUMENT (%r)" % (error.code(), error.details())
        if error.details() != MESSAGE:
            return "details %r, want %r" % (error.details(), MESSAGE)
        # from_call raises if the google.rpc.Status code or message disagree with the call's.
        status = rpc_status.from_call(error)
    finally:
        channel.close()
    if status is None:
        return "no grpc-status-details-bin in the trailers"
    if status.code != CODE or status.message != MESSAGE:
        return "google.rpc.Status %d %r" % (status.code, status.message)
    want = expected_details()
    if len(status.details) != len(want):
        return "%d details, want %d" % (len(status.details), len(want))
    for i, (packed, expected) in enumerate(zip(status.details, want)):
        if not packed.Is(expected.DESCRIPTOR):
            return "detail %d is %s, want %s" % (
                i,
                packed.type_url,
                expected.DESCRIPTOR.full_name,
            )
        if packed.type_url != "type.googleapis.com/" + expected.DESCRIPTOR.full_name:
            return "detail %d has type URL %s" % (i, packed.type_url)
        got = type(expected)()
        packed.Unpack(got)
        if got != expected:
            return "detail %d is %s, want %s" % (i, got, expected)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["server", "client"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--method", default="SimpleMethod")
    args = parser.parse_args(argv)
    if args.mode == "server":
        return serve(args.port)
    failure = check(args.method, args.port)
    if failure:
        print("FAIL %s: %s" % (args.method, failure), flush=True)
        return 1
    print("PASS %s" % args.method, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
