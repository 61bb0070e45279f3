"""Runners' registry and dispatch over the shared store (etcd).

directory.py the runners' directory: a runner's Announcer (its entry under a lease) and a server's RunnerDirectory (a live view)
intake.py    a runner's side of a run: accept or refuse a prepared job, execute it with the local executor, report
dispatch.py  a server's side (core's Executor port): choose a runner, hand the job over, follow it
owners.py    servers watch each other's runs: a dead server's runs end as interrupted
keycheck.py  every server and runner of a cluster holds the same secrets key
"""
