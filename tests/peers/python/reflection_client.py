"""grpcio-reflection's ProtoReflectionDescriptorDatabase against a server's reflection.

    reflection_client.py --port N --version v1|v1alpha --symbol S [--missing X]

Prints, in order:
    service NAME          for each service the server lists
    file NAME             the file holding S, then each file it imports, transitively,
                          as a DescriptorPool over the database loads them
    symbol S: KIND        what S is (service with its methods, or message)
    method NAME           for a service S, each of its methods
    missing X: not found  when looking X up raises KeyError (NOT_FOUND)

grpcio-reflection 1.76.0 ships only the v1alpha stub; for v1 the database's stub is given
the method `/grpc.reflection.v1.ServerReflection/ServerReflectionInfo` (the messages of the
two versions are the same on the wire). Exits 1 on any other failure.
"""

import argparse
import sys

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

DEADLINE_S = 20


class _V1Stub:
    """The v1 method, with the (wire-identical) v1alpha messages."""

    def __init__(self, channel):
        self.ServerReflectionInfo = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", choices=["v1", "v1alpha"], required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--missing")
    args = parser.parse_args()

    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=DEADLINE_S)
        db = ProtoReflectionDescriptorDatabase(channel)
        if args.version == "v1":
            db._stub = _V1Stub(channel)
        for service in db.get_services():
            print(f"service {service}", flush=True)

        holder = db.FindFileContainingSymbol(args.symbol)
        print(f"file {holder.name}", flush=True)
        # The pool resolves every import through the database, which already holds the
        # files sent with the answer above (their transitive dependencies).
        pool = descriptor_pool.DescriptorPool(db)
        seen, queue = {holder.name}, list(pool.FindFileByName(holder.name).dependencies)
        while queue:
            file = queue.pop(0)
            if file.name not in seen:
                seen.add(file.name)
                print(f"file {file.name}", flush=True)
                queue.extend(file.dependencies)
        try:
            service = pool.FindServiceByName(args.symbol)
            print(f"symbol {args.symbol}: service", flush=True)
            for method in service.methods:
                print(
                    f"method {method.name} {method.input_type.full_name} "
                    f"{method.output_type.full_name}",
                    flush=True,
                )
        except KeyError:
            message = pool.FindMessageTypeByName(args.symbol)
            print(f"symbol {args.symbol}: message {len(message.fields)} fields", flush=True)

        if args.missing:
            try:
                db.FindFileContainingSymbol(args.missing)
                print(f"missing {args.missing}: found", flush=True)
            except KeyError:
                print(f"missing {args.missing}: not found", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
