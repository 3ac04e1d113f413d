-- Transit encrypt with batch_input: POST {"batch_input": [100 × {"plaintext": base64(1 KiB)}]} to
-- BENCH_PATH. The body (about 140 KB) is too large for an environment variable, so bench/run
-- writes it to the file BENCH_BODY_FILE. bench/run reports requests/s; bytes of plaintext per
-- second = requests/s × 100 KiB.
local bench = require("common")
local file = assert(io.open(bench.env("BENCH_BODY_FILE"), "rb"))
local body = file:read("*a")
file:close()
bench.static("POST", bench.env("BENCH_PATH"), body)
