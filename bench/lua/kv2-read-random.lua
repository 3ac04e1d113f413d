-- KV v2 read of a 1 KiB secret, a uniformly random one of BENCH_KEYS keys per request (the
-- scale workloads: a store far larger than any cache, or keys with many versions).
-- BENCH_PATH is e.g. /v1/bench-kv-scale/data/key-%d; BENCH_TOKEN is read-only on it.
local bench = require("common")
bench.random("GET", bench.env("BENCH_PATH"), tonumber(bench.env("BENCH_KEYS")))
