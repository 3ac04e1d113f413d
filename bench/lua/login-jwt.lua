-- JWT login: POST {"role", "jwt"} to BENCH_PATH (e.g. /v1/auth/bench-jwt/login). Unauthenticated;
-- the server verifies an RS256 signature and the role's bound claims, then creates a service
-- token (a storage write on both servers).
local bench = require("common")
bench.static("POST", bench.env("BENCH_PATH"), bench.env("BENCH_BODY"))
