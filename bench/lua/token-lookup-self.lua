-- GET /v1/auth/token/lookup-self with BENCH_TOKEN (a policy-bound service token when the server
-- can create one): token lookup plus ACL check plus a ~0.5 KiB JSON response.
local bench = require("common")
bench.static("GET", "/v1/auth/token/lookup-self")
