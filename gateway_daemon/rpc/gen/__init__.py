"""Generated from protos/gateway/v1 by gateway_daemon.rpc.protogen: do not edit."""
