"""What `find_duplicates` finds, and what its query embedding costs, with each embedding of the vector search
service (`services/vector_search.py`: ``text`` = whole texts, ``pieces`` = pieces + hashed identifiers).

    python -m aietl_pipelines.benchmarks.duplicates_quality [--queries 300] [--only restaurants ...]

Data: generated customer records, FEBRL 1-3 rendered as free text (benchmarks/dedupe.py) and the real labelled sets
of benchmarks/dedupe_real.py rendered as free text (restaurants, organisations, persons, patent inventors): none
of the real ones written by this project. Up to ``--queries`` records that have a true duplicate are taken out
as queries (one per entity), the others indexed in an exact in-process collection (``numpy`` provider, so that only the embedding
differs): each query is a new record, its pieces known only where other records hold them. Per set and
embedding:

- ``recall@10``: the share of the queries' true duplicates among the 10 nearest records;
- ``flagged recall`` / ``flagged precision``: the duplicates at or above the match threshold (the dedupe match
  model's probability, as the API returns them) against the truth;
- ``embed CPU ms/query``: CPU time of the query embedding, queries in batches of 5 (as the API batches concurrent
  requests), after the collection was indexed (with ``pieces``, the pieces of the indexed records are remembered,
  as in a running API process that indexed them);
- ``model share``: the share of the queries' pieces that needed the model (``pieces``; 1.0 for ``text``).

Writes docs/benchmarks/duplicates_quality.md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile

import numpy as np
import pandas as pd

from aietl_pipelines.benchmarks._common import write_report

MODES = ("text", "pieces")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_sets(only: list[str] | None) -> dict[str, pd.DataFrame]:
    """name -> records with `record_id`, `full_text`, `true_cluster_id`."""
    from aietl_pipelines.benchmarks.dedupe_real import LOADERS, render_text
    from aietl_pipelines.datagen.customers import generate_customers
    from aietl_pipelines.dedupe.febrl import load_febrl, render_free_text

    sets: dict[str, pd.DataFrame] = {}
    if not only or "generated" in only:
        gen = generate_customers(n_entities=6000, seed=11)
        sets["generated customers"] = gen[["record_id", "full_text", "true_cluster_id"]]
    for number in (1, 2, 3):
        if not only or f"febrl{number}" in only:
            df = load_febrl(number)
            df["full_text"] = render_free_text(df, seed=number)
            sets[f"FEBRL{number}"] = df.rename(columns={"rec_id": "record_id"})[
                ["record_id", "full_text", "true_cluster_id"]]
    for key, loader in LOADERS.items():
        if not only or key in only:
            data = loader()
            records = data.records.copy()
            records["full_text"] = render_text(records, data.fields, seed=1)
            sets[key] = records[["record_id", "full_text", "true_cluster_id"]]
    return sets


def evaluate(records: pd.DataFrame, mode: str, n_queries: int, cache: str) -> dict:
    """One set, one embedding: recall@10, flagged precision/recall, query embedding CPU."""
    from aietl_pipelines.services.vector_search import VectorSearchService

    records = records.assign(record_id=records["record_id"].astype(str)).reset_index(drop=True)
    sizes = records.groupby("true_cluster_id")["record_id"].transform("size")
    rng = np.random.default_rng(0)
    # one record of an entity with several: the others stay in the collection to be found
    shuffled = records[sizes.to_numpy() > 1].sample(frac=1.0, random_state=0)
    candidates = shuffled.drop_duplicates("true_cluster_id").index.to_numpy()
    chosen = rng.choice(candidates, size=min(n_queries, len(candidates)), replace=False)
    queries, collection = records.loc[chosen], records.drop(index=chosen)
    service = VectorSearchService("numpy", cache_dir=cache, embedding=mode)
    service.create_collection_sync("bench", recreate=True)
    service.batch_index_sync("bench", collection.rename(columns={"full_text": "text"})[["record_id", "text"]],
                             text_field="text", id_field="record_id")
    texts = queries["full_text"].tolist()
    hits0, misses0 = service.pieces.hits, service.pieces.misses
    start = _cpu()
    vectors = np.vstack([service.embed_query_texts(texts[i:i + 5]) for i in range(0, len(texts), 5)])
    embed_ms = (_cpu() - start) * 1000 / max(len(texts), 1)
    hits, misses = service.pieces.hits - hits0, service.pieces.misses - misses0
    members = collection.groupby("true_cluster_id")["record_id"].agg(set)
    found = total = flagged_true = flagged = 0
    for cluster, text, vector in zip(queries["true_cluster_id"].tolist(), texts, vectors, strict=True):
        true = members.get(cluster, set())
        answer = service.find_duplicates_sync("bench", text, limit=10, vector=vector)
        total += len(true)
        found += sum(d["record_id"] in true for d in answer)
        flagged += sum(d["is_duplicate"] for d in answer)
        flagged_true += sum(d["is_duplicate"] and d["record_id"] in true for d in answer)
    return {"embedding": mode, "records": len(records), "queries": len(texts), "true duplicates": total,
            "recall@10": found / max(total, 1), "flagged recall": flagged_true / max(total, 1),
            "flagged precision": flagged_true / flagged if flagged else float("nan"),
            "embed CPU ms/query": embed_ms,
            "model share": misses / (hits + misses) if mode == "pieces" and hits + misses else 1.0}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--only", action="append",
                        help="generated, febrl1, febrl2, febrl3, restaurants, inventors, persons, organisations")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the API's query embedding runs one intra-op thread (AIETL_API_TORCH_THREADS)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for name, records in load_sets(args.only).items():
            for mode in MODES:
                row = {"set": name, **evaluate(records, mode, args.queries, f"{cache}/{mode}")}
                rows.append(row)
                print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if not args.no_report:
        write_report("duplicates_quality", "python -m aietl_pipelines.benchmarks.duplicates_quality "
                     + " ".join(argv if argv is not None else sys.argv[1:]), table.round(4),
                     "Exact search (numpy provider): only the embedding differs between the two rows of a set. "
                     "Queries: one record per entity with several, taken out of the collection before it is indexed; "
                     "torch on one thread.")
    return table


if __name__ == "__main__":
    main()
