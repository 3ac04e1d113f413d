-- GET /v1/sys/seal-status: unauthenticated status endpoint.
local bench = require("common")
bench.static("GET", "/v1/sys/seal-status")
