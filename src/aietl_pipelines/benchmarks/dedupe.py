"""Dedupe accuracy and speed on FEBRL 1/2/3, side by side in one run:

- this project, structured fields (unsupervised Fellegi-Sunter EM, blocking + MiniLM kNN candidates);
- this project, free text (each record rendered as one line, field order and formatting varied);
- the guide's recipe: MiniLM cosine >= 0.90 between record texts (10 nearest neighbours);
- Splink 5.0, unsupervised EM on DuckDB (structured only: Splink needs parsed fields).

`python -m aietl_pipelines.benchmarks.dedupe [--quick]` (quick = FEBRL 1 only).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd

from aietl_pipelines.benchmarks._common import peak_rss_mb, splink_dedupe, write_report
from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.candidates import knn_pairs
from aietl_pipelines.dedupe.cluster import cluster_records
from aietl_pipelines.dedupe.evaluate import candidate_quality, pairwise_scores
from aietl_pipelines.dedupe.febrl import FEBRL_BLOCKING, FEBRL_FIELDS, load_febrl, render_free_text
from aietl_pipelines.embeddings import embed_texts


def _row(dataset: str, method: str, labels: np.ndarray, truth: np.ndarray, seconds: float, extra: dict | None = None) -> dict:
    s = pairwise_scores(labels, truth)
    return {"dataset": dataset, "method": method, "f1": s["f1"], "precision": s["precision"], "recall": s["recall"],
            "seconds": seconds, **(extra or {})}


def run_ours(df: pd.DataFrame, truth: np.ndarray, name: str, cache: str, text: bool) -> dict:
    config = (engine.DedupeConfig(id_column="rec_id", text_column="full_text", cache_dir=cache)
              if text else engine.DedupeConfig(id_column="rec_id", fields=FEBRL_FIELDS, blocking=FEBRL_BLOCKING,
                                                cache_dir=cache))
    t0 = time.perf_counter()
    result = engine.run(df, config)
    seconds = time.perf_counter() - t0
    q = candidate_quality(result.pairs["left"].to_numpy(), result.pairs["right"].to_numpy(), truth)
    return _row(name, f"aietl {'free text' if text else 'structured'} (cold embeddings)",
                result.clusters["cluster_id"].to_numpy(), truth, seconds,
                {"pair_completeness": q["pair_completeness"], "reduction_ratio": q["reduction_ratio"]})


def run_guide_recipe(df: pd.DataFrame, truth: np.ndarray, name: str, column: str, cache: str) -> dict:
    t0 = time.perf_counter()
    vectors = embed_texts(df[column].tolist(), cache_dir=cache)
    pairs, sims = knn_pairs(vectors, k=10, min_cosine=0.90)
    labels = cluster_records(len(df), pairs[:, 0], pairs[:, 1], sims, 0.90, max_cluster_size=len(df))
    return _row(name, f"guide recipe: MiniLM cosine >= 0.90 ({'free text' if column == 'full_text' else 'record text'})",
                labels, truth, time.perf_counter() - t0)


def run_splink(df: pd.DataFrame, truth: np.ndarray, name: str) -> dict:
    import splink.comparison_library as cl

    frame = df.drop(columns=["true_cluster_id", "full_text", "record_text"], errors="ignore").rename(columns={"rec_id": "unique_id"})
    comparisons = [
        cl.NameComparison("given_name"), cl.NameComparison("surname"),
        cl.LevenshteinAtThresholds("date_of_birth", [1, 2]), cl.LevenshteinAtThresholds("soc_sec_id", [1, 2]),
        cl.ExactMatch("street_number"), cl.JaroWinklerAtThresholds("address_1", [0.9, 0.8]),
        cl.JaroWinklerAtThresholds("suburb", [0.9, 0.8]), cl.LevenshteinAtThresholds("postcode", [1]),
        cl.ExactMatch("state"),
    ]
    labels, seconds = splink_dedupe(frame, comparisons, FEBRL_BLOCKING,
                                    [["given_name", "surname", "date_of_birth"], ["soc_sec_id"]],
                                    [["date_of_birth"], ["postcode"]])
    return _row(name, "Splink 5.0 (unsupervised EM, DuckDB)", labels.to_numpy(), truth, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="FEBRL 1 only")
    args = parser.parse_args()
    rows = []
    for number in (1,) if args.quick else (1, 2, 3):
        df = load_febrl(number)
        df["full_text"] = render_free_text(df, seed=number)
        df["record_text"] = df[list(FEBRL_FIELDS)].fillna("").astype(str).agg(" ".join, axis=1)
        truth = df["true_cluster_id"].to_numpy()
        name = f"FEBRL{number} ({len(df)} records)"
        with tempfile.TemporaryDirectory() as cache:  # cold: nothing embedded before
            rows.append(run_ours(df, truth, name, cache, text=False))
            rows.append(run_ours(df, truth, name, cache + "/text", text=True))
            rows.append(run_guide_recipe(df, truth, name, "record_text", cache + "/recipe"))
            rows.append(run_guide_recipe(df, truth, name, "full_text", cache + "/recipe_text"))
        rows.append(run_splink(df, truth, name))
        print(pd.DataFrame(rows[-5:]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(f"peak RSS of the benchmark process: {peak_rss_mb():.0f} MB")
    write_report("dedupe", "python -m aietl_pipelines.benchmarks.dedupe" + (" --quick" if args.quick else ""), table,
                 f"Peak RSS of the whole benchmark process: {peak_rss_mb():.0f} MB. Time includes embedding the "
                 "records from a cold cache (each method embeds into its own empty cache).")


if __name__ == "__main__":
    main()
