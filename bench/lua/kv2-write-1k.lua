-- KV v2 write of a 1 KiB secret to the same keys the read workload uses: POST BENCH_BODY
-- ({"data": {8 fields x 120 B}}) to BENCH_PATH, round-robin over BENCH_KEYS keys.
local bench = require("common")
bench.rotate("POST", bench.env("BENCH_PATH"), tonumber(bench.env("BENCH_KEYS")), bench.env("BENCH_BODY"))
