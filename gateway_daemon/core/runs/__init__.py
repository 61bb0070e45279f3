"""The life of a run: queued, admitted, prepared into a job, executed, recorded, kept or pruned.

`records` is the run record and its output lines; `lifecycle` starts runs and keeps their records;
`active` is a run this process keeps; `jobs` is what an executor receives (the port execution/ and
cluster/ implement); `outputs` writes output to the store; `keepers` tells who keeps a record and
whether it still lives; `retention` decides what the store keeps of finished runs.  The inputs a run
accepts are checked by `options`, `playbook_variables` and `tofu_state` (opentofu-plan states).
"""
