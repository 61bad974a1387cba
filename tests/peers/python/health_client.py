"""grpcio-health-checking's client against a server's grpc.health.v1.Health.

    health_client.py --port N check NAME...   one line per name: `check NAME: STATUS` or
                                             `check NAME: error CODE`
    health_client.py --port N watch NAME K    `watch NAME: STATUS` for each of the first K
                                             messages of a Watch, printed as they arrive

An empty NAME is written "" on the command line and printed as "". Every call has a
deadline; a Watch that gets fewer than K messages in time prints `watch NAME: error CODE`.
Exits 0 unless the arguments are wrong. (grpcio-health-checking 1.76.0 has no List: the
Rust tests call that one.)
"""

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEADLINE_S = 20


def status_name(status):
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def shown(name):
    return name if name else '""'


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("action", choices=["check", "watch"])
    parser.add_argument("args", nargs="*")
    args = parser.parse_args()
    names = ["" if a == '""' else a for a in args.args]

    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        if args.action == "check":
            for name in names:
                try:
                    reply = stub.Check(
                        health_pb2.HealthCheckRequest(service=name), timeout=DEADLINE_S
                    )
                    print(f"check {shown(name)}: {status_name(reply.status)}", flush=True)
                except grpc.RpcError as e:
                    print(f"check {shown(name)}: error {e.code().name}", flush=True)
        else:
            name, count = names[0], int(names[1])
            call = stub.Watch(health_pb2.HealthCheckRequest(service=name), timeout=DEADLINE_S)
            try:
                for i, reply in enumerate(call):
                    print(f"watch {shown(name)}: {status_name(reply.status)}", flush=True)
                    if i + 1 == count:
                        call.cancel()
                        break
            except grpc.RpcError as e:
                print(f"watch {shown(name)}: error {e.code().name}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
