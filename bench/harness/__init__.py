"""The benchmark harness behind bench/run: OpenBao and Tresor, same machine, same run.

Modules, in the order a run uses them:
- procs: the child processes the harness starts (servers, wrk) and their cleanup.
- api: a small keep-alive Vault HTTP client for setup requests.
- servers: starting OpenBao and Tresor with matching storage, and what each side's durability is.
- workloads: each workload's setup through the Vault HTTP API and the env its Lua script reads.
- measure: one wrk run (warm-up excluded) with CPU-noise accounting from /proc.
- report: medians, ratios, the markdown table, and rewriting BENCHMARKS.md.
- cli: argument parsing and the run itself.
"""
