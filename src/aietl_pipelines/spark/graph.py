"""Connected components in Spark DataFrames, without GraphFrames (its jar comes only from Maven).

Alternating Large-Star / Small-Star (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014):
O(log^2 n) rounds even on long chains, where min-label propagation needs as many rounds as the graph's
diameter. Each round is two aggregations and a join; the lineage is cut every round (local checkpoint).
"""

from __future__ import annotations

from typing import Any


def _large_star(edges: Any) -> Any:
    """For each node u: link every larger neighbour v to the smallest node of u's neighbourhood (u included)."""
    from pyspark.sql import functions as F

    both = edges.unionByName(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    smallest = both.groupBy("src").agg(F.least(F.min("dst"), F.col("src")).alias("m"))
    return (both.join(smallest, "src").where(F.col("dst") > F.col("src"))
                .select(F.col("dst").alias("src"), F.col("m").alias("dst")).distinct())


def _small_star(edges: Any) -> Any:
    """Edges oriented large → small; for each node u: link u and its smaller neighbours to the smallest of them."""
    from pyspark.sql import functions as F

    oriented = edges.select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst"))
    smallest = oriented.groupBy("src").agg(F.min("dst").alias("m"))
    linked = oriented.join(smallest, "src")
    neighbours = linked.where(F.col("dst") != F.col("m")).select(F.col("dst").alias("src"), F.col("m").alias("dst"))
    centres = smallest.select("src", F.col("m").alias("dst"))
    return neighbours.unionByName(centres).distinct()


def connected_components(edges: Any, src: str = "src", dst: str = "dst", max_rounds: int = 100) -> Any:
    """(node, component) for every node that has an edge; the component is the smallest node id in it.

    Args:
        edges: Spark DataFrame of undirected edges between integer node ids.
        src, dst: The two endpoint columns.
        max_rounds: Safety bound (convergence takes O(log^2 n) rounds).
    """
    from pyspark.sql import functions as F

    current = (edges.select(F.col(src).cast("long").alias("src"), F.col(dst).cast("long").alias("dst"))
               .where(F.col("src") != F.col("dst"))
               .select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst")).distinct()
               .localCheckpoint())
    size = current.count()
    for _ in range(max_rounds):
        nxt = _small_star(_large_star(current)).localCheckpoint()
        # both are sets (distinct edges): equal when they have the same size and one holds the other; the size
        # is read from the checkpointed blocks, so only one shuffle per round checks convergence
        nxt_size = nxt.count()
        changed = nxt_size != size or nxt.exceptAll(current).limit(1).count() > 0
        current, size = nxt, nxt_size
        if not changed:
            break
    else:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
    # converged: a star per component, every node linked to the component's smallest node
    roots = current.select(F.col("dst").alias("node"), F.col("dst").alias("component")).distinct()
    leaves = current.select(F.col("src").alias("node"), F.col("dst").alias("component"))
    return leaves.unionByName(roots).groupBy("node").agg(F.min("component").alias("component"))
