"""What reaches the driver in a Spark dedupe run: the `Steps` adapters (`engine.run_steps`) vs `engine.run`, which
takes the table run (`Steps.whole_run` = `dedupe_tables.engine_run`) for the Spark engine.

`python -m aietl_pipelines.spark.driver_collects --entities 2000` generates the sample customers
(`generate_customers(n, seed=11)`, as `kedro run` does), runs both on `local[2]` with the `dedupe` parameters of
`--env spark`, counts every `toPandas` / `collect` (rows and columns) and prints wall time, rows collected, the
largest collections, pairwise F1 and whether the two give the same clusters; for `engine.run` also what reading
`result.pairs` afterwards collects. A diagnostic, not a benchmark: the second run profits from a warm JVM and
Python workers.
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> None:
    from kedro.config import OmegaConfigLoader

    from aietl_pipelines.datagen.customers import generate_customers
    from aietl_pipelines.dedupe import engine
    from aietl_pipelines.dedupe.config import DedupeConfig, project_root
    from aietl_pipelines.dedupe.evaluate import pairwise_scores
    from aietl_pipelines.settings import CONFIG_LOADER_ARGS
    from aietl_pipelines.spark.session import get_spark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--cache-dir", default="data/02_intermediate/embedding_cache")
    args = parser.parse_args(argv)

    spark = get_spark({"spark.master": "local[2]", "spark.sql.shuffle.partitions": "4",
                       "spark.ui.showConsoleProgress": "false"})
    frame_class = type(spark.range(1))
    log: list[tuple[tuple[str, ...], int]] = []
    for name in ("toPandas", "collect"):
        def counted(self, *a, _method=getattr(frame_class, name), **k):
            out = _method(self, *a, **k)
            log.append((tuple(self.columns), len(out)))
            return out
        setattr(frame_class, name, counted)

    loader = OmegaConfigLoader(conf_source=str(project_root() / "conf"),
                               **{**CONFIG_LOADER_ARGS, "default_run_env": "spark"})
    params = {**loader["parameters"]["dedupe"], "cache_dir": args.cache_dir, "truth_column": "true_cluster_id"}
    config = DedupeConfig.from_params(params)
    records = generate_customers(n_entities=args.entities, seed=11)
    truth = records.set_index("record_id")["true_cluster_id"]
    steps = engine.steps_for(config)
    steps.embed(steps.prepare(records, config), config)  # fill the embedding cache first
    found = {}
    for label, run in (("steps (engine.run_steps)", lambda: engine.run_steps(records, config)),
                       ("tables (engine.run)", lambda: engine.run(records, config))):
        log.clear()
        start = time.perf_counter()
        result = run()
        wall = time.perf_counter() - start
        during = list(log)
        table = getattr(result, "pair_table", None)
        n_pairs = table.count() if table is not None else len(result.pairs)
        clusters = result.clusters
        f1 = pairwise_scores(clusters["cluster_id"].to_numpy(), clusters["record_id"].map(truth).to_numpy())["f1"]
        largest = sorted(during, key=lambda x: -x[1])[:3]
        print(f"{label}: {wall:.1f} s; {len(result.prepared)} records, {n_pairs} candidate pairs; {len(during)} "
              f"collects, {sum(r for _, r in during)} rows; largest: "
              + "; ".join(f"{r} rows of ({', '.join(c[:4])}{', ...' if len(c) > 4 else ''})" for c, r in largest)
              + f"; pairwise F1 {f1:.4f}", flush=True)
        if table is not None:
            log.clear()
            read = len(result.pairs)
            print(f"  reading result.pairs afterwards: {len(log)} collect(s), {sum(r for _, r in log)} rows "
                  f"({read} pairs)", flush=True)
        found[label] = clusters
    first, second = found.values()
    print("same clusters:", first.equals(second))


if __name__ == "__main__":
    main()
