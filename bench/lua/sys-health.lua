-- GET /v1/sys/health: each server's cheapest endpoint, the same-run baseline every other
-- workload is divided by. Unauthenticated.
local bench = require("common")
bench.static("GET", "/v1/sys/health")
