import pandas as pd

from aietl_pipelines.datagen.customers import SOURCES, generate_customers


def test_customers_are_deterministic_with_known_clusters():
    df = generate_customers(n_entities=300, seed=5)
    pd.testing.assert_frame_equal(df, generate_customers(n_entities=300, seed=5))
    assert df["record_id"].is_unique
    assert df["true_cluster_id"].nunique() == 300
    sizes = df.groupby("true_cluster_id").size()
    assert sizes.min() == 1 and sizes.max() <= 4 and (sizes > 1).sum() > 100
    assert set(df["source"]) <= set(SOURCES)
    assert df["full_text"].str.len().min() > 10
    assert str(df["updated_at"].dtype) == "datetime64[ns, UTC]"


def test_duplicates_differ_like_real_sources():
    df = generate_customers(n_entities=500, seed=2)
    dup = df[df.duplicated("true_cluster_id", keep=False)]
    # copies of one person are not identical: formats, typos, nicknames and gaps differ
    assert dup.groupby("true_cluster_id")["full_text"].nunique().gt(1).mean() > 0.95
    assert df[["phone", "email", "date_of_birth"]].isna().any().all()
    abbreviated = df["street"].dropna().str.contains(r"\b(?:St|Ave|Rd|Blvd|Dr|Ln|Ct|Pl|Ter)\b")
    assert 0.05 < abbreviated.mean() < 0.6
