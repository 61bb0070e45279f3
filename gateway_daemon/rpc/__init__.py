"""gRPC: the generated code (gen/), the server's and the runner's servicers, the client (RemoteGateway),
the server -> runner client, and every protobuf <-> domain conversion (convert.py)."""
