"""The measurements behind the dedupe design choices (docs/dedupe.md, docs/vector_search.md, architecture.md).

1. Embedding throughput of customer records: every field vs the `embed_kinds` fields (tokens per record,
   records/s) vs each distinct `embed_kinds` field value once (`embed_field_values`, the dedupe default).
2. One query text: the float32 model vs the bfloat16 query model (`embed_query`), p50/p95 and the cosine
   between the two vectors.
3. All-pairs kNN (k = 10) on 100K clustered unit vectors (dim 384): float32 vs bfloat16 products
   (`knn_search`), seconds and the share of the float32 top-10 the bf16 search keeps; against a Qdrant Edge
   HNSW index built on the same vectors and queried once per vector; against the partitioned (inverted-file)
   search `partitioned_knn` at three settings: share of the exact top-10 and of the pairs above the 0.6 cut kept.

`python -m aietl_pipelines.benchmarks.dedupe_components [--points 100000]`; `--knn-sizes 100000,300000,1000000`
measures only the kNN stage at growing N (docs/benchmarks/dedupe_knn_scaling.md).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import yaml

from aietl_pipelines.benchmarks._common import write_report
from aietl_pipelines.benchmarks.dedupe_scale import PARAMS


def _texts(n: int) -> tuple[list[str], list[str]]:
    from aietl_pipelines.datagen.customers import generate_customers
    from aietl_pipelines.dedupe.engine import DedupeConfig, prepare_records

    records = generate_customers(n_entities=n, seed=5).iloc[:n]
    params = yaml.safe_load(PARAMS.read_text())["dedupe"]
    every = DedupeConfig.from_params({**params, "embed_kinds": []})  # no kind matches → every field
    chosen = DedupeConfig.from_params(params)
    return prepare_records(records, every)["__text"].tolist(), prepare_records(records, chosen)["__text"].tolist()


def embedding_rows(n: int) -> list[dict]:
    from aietl_pipelines.embeddings import embed_texts, get_model

    tokenizer = get_model().tokenizer
    rows = []
    for label, texts in zip(("every field", "embed_kinds fields (default)"), _texts(n), strict=True):
        embed_texts(texts[:64])  # warm up
        t0 = time.perf_counter()
        embed_texts(texts)
        seconds = time.perf_counter() - t0
        tokens = float(np.mean([len(tokenizer(t)["input_ids"]) for t in texts]))
        rows.append({"measure": f"embed {n:,} customer records: {label}", "value": len(texts) / seconds,
                     "unit": "records/s", "detail": f"{tokens:.1f} tokens per record"})
    rows.append(_field_values_row(n))
    return rows


def _field_values_row(n: int) -> dict:
    """The dedupe default (`prepare.embed`): the words of each distinct embed_kinds field value once, summed."""
    from aietl_pipelines.datagen.customers import generate_customers
    from aietl_pipelines.dedupe.engine import DedupeConfig, prepare_records
    from aietl_pipelines.dedupe.prepare import embed, embedded_values

    records = generate_customers(n_entities=n, seed=5).iloc[:n]
    config = DedupeConfig.from_params({**yaml.safe_load(PARAMS.read_text())["dedupe"], "cache_dir": None})
    prepared = prepare_records(records, config)
    distinct = len(set(embedded_values(prepared, config)[1]))
    t0 = time.perf_counter()
    embed(prepared, config)
    seconds = time.perf_counter() - t0
    return {"measure": f"embed {n:,} customer records: words of distinct embed_kinds field values, summed (dedupe default)",
            "value": n / seconds, "unit": "records/s", "detail": f"{distinct:,} distinct values embedded"}


def query_rows(repeats: int = 300) -> list[dict]:
    from aietl_pipelines.embeddings import embed_query, embed_texts

    text = "Jon Doe, 123 Main Street, Springfield IL, john@example.com"
    rows = []
    for label, fn in (("float32 model (embed_texts)", lambda: embed_texts([text], precision="float32")[0]),
                      ("query model (embed_query)", lambda: embed_query(text))):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        rows.append({"measure": f"embed one query text: {label}", "value": float(np.percentile(times, 95)),
                     "unit": "ms p95", "detail": f"p50 {np.percentile(times, 50):.2f} ms"})
    cosine = float(embed_texts([text], precision="float32")[0] @ embed_query(text))
    rows[-1]["detail"] += f"; cosine to the float32 vector {cosine:.4f}"
    return rows


def query_batch_rows(n_texts: int = 400, rounds: int = 3) -> list[dict]:
    """CPU per query text of the three ways to embed query batches on the CPU (one torch thread), and the cosine
    of each to the float32 SentenceTransformer, on FEBRL 1's free-text renderings (data this project did not
    write)."""
    import torch

    from aietl_pipelines.dedupe.febrl import load_febrl, render_free_text
    from aietl_pipelines.embeddings import QueryEncoder, get_model, get_query_model

    torch.set_num_threads(1)
    records = load_febrl(1)
    texts = render_free_text(records, seed=1).tolist()[:n_texts]
    model = get_model("cpu")

    def encode_with(m: object) -> object:
        def run(batch: list[str]) -> np.ndarray:
            with torch.inference_mode():
                out = m.encode(batch, convert_to_tensor=True, normalize_embeddings=True).float().numpy()
            return out / np.linalg.norm(out, axis=1, keepdims=True)
        return run

    ways = {"SentenceTransformer float32": encode_with(model), "SentenceTransformer bf16 copy":
            encode_with(get_query_model("cpu")), "QueryEncoder (API default on CPU)": QueryEncoder(model)}
    reference = ways["SentenceTransformer float32"](texts)
    rows = []
    for batch in (5, 10):
        cpu = {name: 0.0 for name in ways}
        for _ in range(rounds):  # interleaved, so that a busy moment hits every way alike
            for name, fn in ways.items():
                fn(texts[:batch])  # warm
                t0 = time.process_time()
                for start in range(0, len(texts), batch):
                    fn(texts[start:start + batch])
                cpu[name] += time.process_time() - t0
        for name, fn in ways.items():
            cosine = np.sum(fn(texts) * reference, axis=1) if batch == 5 else None
            rows.append({"measure": f"query batches of {batch}: {name}",
                         "value": cpu[name] / rounds / len(texts) * 1000, "unit": "ms CPU per text",
                         "detail": "" if cosine is None else f"cosine to float32: min {cosine.min():.5f}"})
    return rows


def clustered_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(n // 5, 1), dim)).astype(np.float32)
    vectors = centers[rng.integers(0, len(centers), n)] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _pair_recall(exact, found, cut: float) -> float:
    """Share of the exact search's (query, neighbour) pairs with cosine >= cut that `found` also has."""
    from aietl_pipelines.dedupe.candidates import neighbour_pairs

    truth = {tuple(p) for p in neighbour_pairs(exact, cut)[0].tolist()}
    return len(truth & {tuple(p) for p in neighbour_pairs(found, cut)[0].tolist()}) / max(1, len(truth))


def knn_rows(n: int, k: int = 10) -> list[dict]:
    from aietl_pipelines.dedupe.candidates import knn_search, partitioned_knn
    from aietl_pipelines.vectorstores.edge import EdgeVectorStore

    vectors = clustered_vectors(n)
    results, rows = {}, []
    for precision in ("float32", "bfloat16"):
        t0 = time.perf_counter()
        results[precision] = knn_search(vectors, vectors, k, precision=precision, self_offset=0).indices
        rows.append({"measure": f"all-pairs kNN, {n:,} vectors, {precision} products", "value": time.perf_counter() - t0,
                     "unit": "s", "detail": ""})
    kept = np.mean([len(set(a) & set(b)) / k for a, b in zip(results["float32"], results["bfloat16"], strict=True)])
    rows[-1]["detail"] = f"keeps {kept:.3f} of the float32 top-{k}"
    exact = knn_search(vectors, vectors, k, precision="float32", self_offset=0)
    for list_size, probes in ((1000, 4), (1000, 8), (2000, 8)):
        t0 = time.perf_counter()
        found = partitioned_knn(vectors, k, list_size=list_size, probes=probes)
        seconds = time.perf_counter() - t0
        top = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact.indices, found.indices, strict=True)])
        rows.append({"measure": f"partitioned kNN (inverted file), {n:,} vectors, lists of {list_size}, "
                                f"{probes} probes", "value": seconds, "unit": "s",
                     "detail": f"keeps {top:.3f} of the top-{k}, {_pair_recall(exact, found, 0.6):.4f} of the "
                               "pairs with cosine >= 0.6"})
    store = EdgeVectorStore()
    store.create_collection("bench", vectors.shape[1])
    ids = [str(i) for i in range(n)]
    t0 = time.perf_counter()
    store.upsert("bench", ids, vectors)  # builds the HNSW index past the indexing threshold
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = store.query_batch("bench", vectors, limit=k + 1)
    query = time.perf_counter() - t0
    found = [[int(h.record_id) for h in row if int(h.record_id) != i][:k] for i, row in enumerate(hits)]
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(results["float32"], found, strict=True)])
    store.close()
    rows.append({"measure": f"Qdrant Edge HNSW, {n:,} vectors: load + index build", "value": build, "unit": "s",
                 "detail": ""})
    rows.append({"measure": f"Qdrant Edge HNSW, {n:,} vectors: one query per vector", "value": query, "unit": "s",
                 "detail": f"keeps {recall:.3f} of the float32 top-{k}"})
    return rows


def knn_scaling_rows(sizes: list[int], k: int = 10) -> list[dict]:
    """The kNN stage alone at growing N: the partitioned search at every size, the exact bf16 search at the
    smallest (its N^2 cost is then extrapolated), CPU seconds beside wall seconds (steadier on a shared machine),
    recall against the exact search at the smallest size, and the fitted growth exponent."""
    import resource

    from aietl_pipelines.benchmarks.dedupe_scale import growth_exponent
    from aietl_pipelines.dedupe.candidates import knn_search, partitioned_knn

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    rows, walls, cpus = [], [], []
    for i, n in enumerate(sizes):
        vectors = clustered_vectors(n)
        t0, c0 = time.perf_counter(), cpu()
        found = partitioned_knn(vectors, k)
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
        detail = f"CPU {cpus[-1]:.1f} s"
        if i == 0:
            t0, c0 = time.perf_counter(), cpu()
            exact = knn_search(vectors, vectors, k, self_offset=0)
            exact_wall, exact_cpu = time.perf_counter() - t0, cpu() - c0
            top = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact.indices, found.indices, strict=True)])
            detail += f"; keeps {top:.3f} of the exact top-{k}, {_pair_recall(exact, found, 0.6):.4f} of the pairs >= 0.6"
            rows.append({"measure": f"exact kNN (bf16 where native), {n:,} vectors", "value": exact_wall, "unit": "s",
                         "detail": f"CPU {exact_cpu:.1f} s; N^2: {exact_wall * (sizes[-1] / n) ** 2:,.0f} s at "
                                   f"{sizes[-1]:,} (extrapolated)"})
        rows.append({"measure": f"partitioned kNN (default: lists of 1,000, 8 probes), {n:,} vectors", "value": walls[-1],
                     "unit": "s", "detail": detail})
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    rows.append({"measure": "partitioned kNN: growth exponent b (time ~ N^b)", "value": growth_exponent(sizes, walls),
                 "unit": "", "detail": f"on CPU time: {growth_exponent(sizes, cpus):.2f}"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000, help="vectors for the kNN comparison")
    parser.add_argument("--records", type=int, default=2_000, help="customer records for the throughput test")
    parser.add_argument("--knn-sizes", help="only the kNN stage at these sizes, e.g. 100000,300000,1000000")
    parser.add_argument("--query-batches", action="store_true",
                        help="only the query embedding paths (CPU per text, cosine to float32) on FEBRL 1's texts")
    args = parser.parse_args()
    if args.query_batches:
        write_report("dedupe_query_batches", "python -m aietl_pipelines.benchmarks.dedupe_components --query-batches",
                     pd.DataFrame(query_batch_rows()), "One torch thread, 400 free-text renderings of FEBRL 1, "
                     "three interleaved rounds; CPU time of this process.")
        return
    if args.knn_sizes:
        sizes = [int(x) for x in args.knn_sizes.split(",")]
        write_report("dedupe_knn_scaling", f"python -m aietl_pipelines.benchmarks.dedupe_components --knn-sizes "
                     f"{args.knn_sizes}", pd.DataFrame(knn_scaling_rows(sizes)),
                     "Synthetic clustered unit vectors (dim 384, clusters of about five), so that no embedding is "
                     "needed; wall and CPU time of this process.")
        return
    rows = []
    for part in (lambda: embedding_rows(args.records), query_rows, lambda: knn_rows(args.points)):
        rows.extend(part())
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    command = "python -m aietl_pipelines.benchmarks.dedupe_components"
    if args.points != 100_000 or args.records != 2_000:
        command += f" --points {args.points} --records {args.records}"
    write_report("dedupe_components", command, pd.DataFrame(rows),
                 "The kNN vectors are synthetic (clusters of about five near neighbours), so that 100K vectors need "
                 "no embedding; the bfloat16 search recomputes the cosine of what it keeps in float32.")


if __name__ == "__main__":
    main()
