"""Runners' registry and dispatch over the shared store (etcd).

registry.py  the registry: a runner's Announcer (its entry under a lease) and a server's Registry (a live view)
executor.py  a runner's side of a run: accept or refuse, execute with the same code as local runs, report
dispatch.py  a server's side: choose a runner, hand the run over gRPC, follow it into the run record
"""
