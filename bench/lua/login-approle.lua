-- AppRole login: POST {"role_id", "secret_id"} to BENCH_PATH (e.g. /v1/auth/bench-approle/login).
-- Unauthenticated; every request creates a new service token (a storage write on both servers).
local bench = require("common")
bench.static("POST", bench.env("BENCH_PATH"), bench.env("BENCH_BODY"))
