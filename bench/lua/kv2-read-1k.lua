-- KV v2 read of a 1 KiB secret (8 fields x 120 B), round-robin over BENCH_KEYS keys.
-- BENCH_PATH is e.g. /v1/bench-kv/data/key-%d; BENCH_TOKEN is read-only on it (or root).
local bench = require("common")
bench.rotate("GET", bench.env("BENCH_PATH"), tonumber(bench.env("BENCH_KEYS")))
