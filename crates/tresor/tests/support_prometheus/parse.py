"""Parses Prometheus text exposition from stdin with the reference Python parser
(prometheus_client.parser) and prints the samples as JSON:
{"families": {name: type}, "samples": [[sample name, {labels}, value], ...]}.
A parse error exits non-zero with the parser's message."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = family.type
    for s in family.samples:
        value = s.value
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            value = str(value)
        samples.append([s.name, s.labels, value])
print(json.dumps({"families": families, "samples": samples}))
