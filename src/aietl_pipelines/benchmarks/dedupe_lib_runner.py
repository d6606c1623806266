"""Run the `dedupe` library (3.0.3) with N labels from its own active learning; runs in `.venv-dedupe`.

Called by `benchmarks/dedupe_labels.py` as a subprocess (the library's pins clash with the project's):
`.venv-dedupe/bin/python dedupe_lib_runner.py IN.json OUT.json`. IN holds `records` ({id: {field: value}}),
`fields` ({field: kind}), `truth` ({id: true cluster}), `labels` (how many) and `seed`. The labeler is the ground
truth (an oracle), asked exactly as the library's own console labeler asks a person: `uncertain_pairs()` then
`mark_pairs()`, one pair at a time. OUT gets {id: cluster} for every record, the labels used and the seconds.
Only the standard library and dedupe are imported here.
"""

from __future__ import annotations

import json
import random
import sys
import time

SHORT = {"phone", "postcode", "id", "number", "date", "email", "state"}


def variables(fields: dict[str, str]) -> list:
    import dedupe

    out = []
    for field, kind in fields.items():
        if kind in SHORT:
            out.append(dedupe.variables.ShortString(field, has_missing=True))
        elif kind in ("list", "tokens", "text"):
            out.append(dedupe.variables.Text(field, has_missing=True))
        else:
            out.append(dedupe.variables.String(field, has_missing=True))
    return out


def main(in_path: str, out_path: str) -> None:
    import dedupe

    spec = json.loads(open(in_path, encoding="utf-8").read())
    random.seed(spec.get("seed", 0))
    import numpy as np

    np.random.seed(spec.get("seed", 0))
    data = {k: {f: (v[f] if v.get(f) not in ("", None) else None) for f in spec["fields"]}
            for k, v in spec["records"].items()}
    truth = spec["truth"]
    started = time.perf_counter()
    deduper = dedupe.Dedupe(variables(spec["fields"]), num_cores=0)
    deduper.prepare_training(data, sample_size=spec.get("sample_size", 1500))
    ids = {json.dumps(v, sort_keys=True): k for k, v in data.items()}  # the library hands back record dicts
    labelled = {"match": 0, "distinct": 0}
    asked = 0
    while labelled["match"] + labelled["distinct"] < spec["labels"] and asked < 10 * spec["labels"]:
        asked += 1
        pairs = deduper.uncertain_pairs()
        if not pairs:
            break
        left, right = pairs[0]
        a, b = ids.get(json.dumps(left, sort_keys=True)), ids.get(json.dumps(right, sort_keys=True))
        same = a is not None and b is not None and truth[a] == truth[b]
        key = "match" if same else "distinct"
        deduper.mark_pairs({"match": [(left, right)] if same else [], "distinct": [] if same else [(left, right)]})
        labelled[key] += 1
    deduper.train()
    clusters = deduper.partition(data, threshold=0.5)
    assignment = {}
    for c, (members, _scores) in enumerate(clusters):
        for m in members:
            assignment[m] = f"c{c}"
    for k in data:
        assignment.setdefault(k, f"s{k}")
    json.dump({"clusters": assignment, "labels": labelled, "seconds": time.perf_counter() - started},
              open(out_path, "w", encoding="utf-8"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
