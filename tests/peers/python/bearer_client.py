"""grpcio client of demo.GRPCDemo with call credentials: a bearer token sent by grpcio's
own `access_token_call_credentials` (the `authorization: Bearer <token>` header),
composed with channel credentials. grpcio sends call credentials only on a channel it
deems secure, so:

    python bearer_client.py --target HOST:PORT --channel tls --ca_file F [--token T]
    python bearer_client.py --target HOST:PORT --channel local [--token T]

`tls` is `ssl_channel_credentials` (server certificate verified against F, name
`localhost`); `local` is `local_channel_credentials(LOCAL_TCP)`, plaintext over
loopback, which grpcio treats as secure enough for call credentials. Without --token
the calls carry no credentials.

Makes a unary call and a server-streaming call and prints, for each, one line:
`<Method> OK <response_data of the first reply>` or `<Method> <CODE> <details>`.
Exits 0 whatever the calls answered (the test reads the lines); 2 on bad arguments.

Needs demo_pb2 / demo_pb2_grpc (generated from proto/demo.proto) on PYTHONPATH.
"""

import argparse
import sys

import grpc

import demo_pb2
import demo_pb2_grpc

TIMEOUT_SECONDS = 10


def channel_credentials(args):
    if args.channel == "tls":
        if not args.ca_file:
            sys.exit("--channel tls needs --ca_file")
        with open(args.ca_file, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    else:
        creds = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    if args.token is not None:
        creds = grpc.composite_channel_credentials(
            creds, grpc.access_token_call_credentials(args.token)
        )
    return creds


def report(method, call):
    try:
        print(f"{method} OK {call()}", flush=True)
    except grpc.RpcError as e:
        print(f"{method} {e.code().name} {e.details()}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--channel", choices=["tls", "local"], required=True)
    parser.add_argument("--ca_file")
    parser.add_argument("--token")
    args = parser.parse_args()
    options = []
    if args.channel == "tls":
        options.append(("grpc.ssl_target_name_override", "localhost"))
    with grpc.secure_channel(args.target, channel_credentials(args), options) as channel:
        stub = demo_pb2_grpc.GRPCDemoStub(channel)
        request = demo_pb2.Request(client_id=7, request_data="called by grpcio")
        report(
            "SimpleMethod",
            lambda: stub.SimpleMethod(request, timeout=TIMEOUT_SECONDS).response_data,
        )
        report(
            "ServerStreamingMethod",
            lambda: next(
                iter(stub.ServerStreamingMethod(request, timeout=TIMEOUT_SECONDS))
            ).response_data,
        )


if __name__ == "__main__":
    main()
