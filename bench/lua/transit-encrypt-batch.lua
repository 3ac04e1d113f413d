-- Transit encrypt with batch_input: POST {"batch_input": [100 × {"plaintext": base64(1 KiB)}]} to
-- BENCH_PATH. bench/run reports requests/s; bytes of plaintext per second = requests/s × 100 KiB.
local bench = require("common")
bench.static("POST", bench.env("BENCH_PATH"), bench.env("BENCH_BODY"))
