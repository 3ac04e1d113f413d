-- Transit encrypt of 1 KiB with an aes256-gcm96 key: POST {"plaintext": base64(1 KiB)} to
-- BENCH_PATH (e.g. /v1/bench-transit/encrypt/bench).
local bench = require("common")
bench.static("POST", bench.env("BENCH_PATH"), bench.env("BENCH_BODY"))
