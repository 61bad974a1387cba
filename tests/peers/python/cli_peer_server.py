"""A grpcio server for the `h2grpc` command-line tool's tests (cli/tests/python_peer.rs).

    python cli_peer_server.py --port N [--host H] [--reflection v1alpha|both|none] [--no-health]

Serves demo.GRPCDemo (proto/demo.proto), grpcio-reflection's server reflection and
grpcio-health-checking's Health servicer; prints `listening on port N` once listening
(tests/peers/CONVENTIONS.md) and exits 0 on SIGTERM/SIGINT.

Reflection: grpcio-reflection 1.76 serves `grpc.reflection.v1alpha.ServerReflection` only.
`--reflection both` (the default) also answers `grpc.reflection.v1.ServerReflection` with the
same servicer (the two protos are the same on the wire), so a client can be tested on either
version; `--reflection v1alpha` leaves v1 UNIMPLEMENTED, which a client must fall back from;
`--reflection none` serves neither.

Health: "" and "demo.GRPCDemo" are SERVING, "demo.Stopped" is NOT_SERVING; any other name
is NOT_FOUND (the servicer's answer for an unknown service). `--no-health` serves no Health
service at all (its calls UNIMPLEMENTED).

demo.GRPCDemo here:
- SimpleMethod answers `python: <request_data>` with server_id 99. It sends the request's
  custom metadata back as initial metadata, each key prefixed `echo-` (`-bin` values as the
  bytes received), and the trailer `x-trailer: done`. request_data `sleep` waits 3 s first;
  `fail` aborts with FAILED_PRECONDITION "asked to fail".
- ClientStreamingMethod answers `python got N: a,b,...` (the request_data of each request).
- ServerStreamingMethod answers 3 messages `python stream i`.
- BidirectionalStreamingMethod answers each request with `python echo: <request_data>`.

Needs the stubs of proto/demo.proto (demo_pb2, demo_pb2_grpc) on PYTHONPATH, as
tests/support/src/python.rs `generate_proto_stubs` makes them.
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

try:
    import demo_pb2
    import demo_pb2_grpc
except ImportError as _error:
    sys.exit("cannot import the demo stubs (%s): put generate_proto_stubs' output on PYTHONPATH" % _error)

V1_SERVICE = "grpc.reflection.v1.ServerReflection"


class Demo(demo_pb2_grpc.GRPCDemoServicer):
    def SimpleMethod(self, request, context):
        echoed = [
            ("echo-" + key, value)
            for key, value in context.invocation_metadata()
            if not key.startswith("grpc-") and key not in ("user-agent", "te", "content-type")
        ]
        context.send_initial_metadata(echoed)
        context.set_trailing_metadata([("x-trailer", "done")])
        if request.request_data == "sleep":
            time.sleep(3)
        if request.request_data == "fail":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "asked to fail")
        return demo_pb2.Response(server_id=99, response_data="python: " + request.request_data)

    def ClientStreamingMethod(self, request_iterator, context):
        seen = [r.request_data for r in request_iterator]
        return demo_pb2.Response(
            server_id=99, response_data="python got %d: %s" % (len(seen), ",".join(seen))
        )

    def ServerStreamingMethod(self, request, context):
        for i in range(3):
            yield demo_pb2.Response(server_id=99, response_data="python stream %d" % i)

    def BidirectionalStreamingMethod(self, request_iterator, context):
        for r in request_iterator:
            yield demo_pb2.Response(server_id=99, response_data="python echo: " + r.request_data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--reflection", choices=["v1alpha", "both", "none"], default="both")
    parser.add_argument("--no-health", action="store_true")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    demo_pb2_grpc.add_GRPCDemoServicer_to_server(Demo(), server)

    if not args.no_health:
        health_servicer = health.HealthServicer()
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_servicer.set("demo.GRPCDemo", health_pb2.HealthCheckResponse.SERVING)
        health_servicer.set("demo.Stopped", health_pb2.HealthCheckResponse.NOT_SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    names = [
        demo_pb2.DESCRIPTOR.services_by_name["GRPCDemo"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    ]
    if args.reflection != "none":
        # Only v1alpha is listed: the v1 name below has no descriptors in the pool.
        names.append(reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    if args.reflection == "both":
        # The v1alpha servicer behind the v1 name: the messages are the same on the wire.
        servicer = reflection.ReflectionServicer(names)
        handler = grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": handler}),)
        )

    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    server.start()
    print("listening on port %d" % port, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
