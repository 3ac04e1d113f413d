-- Transit decrypt of a 1 KiB plaintext's ciphertext (made by the same key during setup):
-- POST {"ciphertext": "vault:v1:..."} to BENCH_PATH (e.g. /v1/bench-transit/decrypt/bench).
local bench = require("common")
bench.static("POST", bench.env("BENCH_PATH"), bench.env("BENCH_BODY"))
