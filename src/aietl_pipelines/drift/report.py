"""Self-contained HTML drift report: the summary's numbers plus a distribution plot per column."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_CATEGORIES = 30


def _numeric_bins(reference: pd.Series, current: pd.Series, bins: int = 40) -> tuple[np.ndarray, list, list]:
    ref = reference.to_numpy(dtype="float64", na_value=np.nan)
    cur = current.to_numpy(dtype="float64", na_value=np.nan)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    both = np.concatenate([ref, cur])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    if lo == hi:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    shares = [np.histogram(x, bins=bins, range=(lo, hi))[0] / max(len(x), 1) for x in (ref, cur)]
    return centers, shares[0].tolist(), shares[1].tolist()


def _histograms(reference: pd.DataFrame, current: pd.DataFrame, table: pd.DataFrame) -> go.Figure:
    """Distribution of each column, reference vs current, binned here (the page stays small at any size)."""
    columns = table["column"].tolist()
    rows = max(1, (len(columns) + 1) // 2)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=columns or ["no columns"])
    for i, col in enumerate(columns):
        r, c = i // 2 + 1, i % 2 + 1
        if table.iloc[i]["column_type"] == "num":
            x, ref_y, cur_y = _numeric_bins(reference[col], current[col])
        else:
            ref_f = reference[col].value_counts(normalize=True)
            cur_f = current[col].value_counts(normalize=True)
            ref_f.index, cur_f.index = ref_f.index.astype(str), cur_f.index.astype(str)
            keys = ref_f.index.union(cur_f.index)[:MAX_CATEGORIES]
            x, ref_y, cur_y = keys.tolist(), ref_f.reindex(keys, fill_value=0).tolist(), cur_f.reindex(keys, fill_value=0).tolist()
        for label, y, color in (("reference", ref_y, "#636efa"), ("current", cur_y, "#ef553b")):
            fig.add_trace(go.Bar(x=x, y=y, name=label, marker_color=color, opacity=0.6, showlegend=i == 0,
                                 legendgroup=label), row=r, col=c)
    fig.update_layout(barmode="overlay", bargap=0, height=280 * rows, margin={"t": 40, "b": 20})
    return fig


def render_html_report(
    summary: Mapping[str, Any], reference: pd.DataFrame, current: pd.DataFrame, title: str = "Data drift report"
) -> str:
    """HTML page: headline, per-column table (test, score, threshold, verdict, PSI) and distribution plots."""
    table = pd.DataFrame(summary.get("per_column", []))
    status = "ALERT" if summary.get("alert_triggered") else "OK"
    rows = "".join(
        f"<tr class={'drift' if r['drifted'] else 'ok'}><td>{html.escape(str(r['column']))}</td>"
        f"<td>{r['column_type']}</td><td>{r['test']}</td><td>{r['score']:.6g}</td><td>{r['threshold']:.3g}</td>"
        f"<td>{'drift' if r['drifted'] else 'no drift'}</td><td>{r['psi']:.4f} ({r['psi_band']})</td></tr>"
        for r in summary.get("per_column", [])
    )
    skipped = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in summary.get("skipped_columns", {}).items()
    )
    recommendation = summary.get("retraining_recommendation") or {}
    plots = _histograms(reference, current, table).to_html(full_html=False, include_plotlyjs=True) if len(table) else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px}}tr.drift{{background:#fde2e1}}.ALERT{{color:#c00}}.OK{{color:#070}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="{status}"><b>{status}</b>: drift share {summary.get('drift_share', 0):.3f}
({summary.get('n_drifted', 0)} of {summary.get('n_columns', 0)} columns drifted; alert when &gt;
{summary.get('alert_threshold', 0.3)})</p>
<p>Retraining: <b>{'yes' if recommendation.get('should_retrain') else 'no'}</b>
— {html.escape(str(recommendation.get('reason', 'n/a')))}</p>
<p>Reference rows: {len(reference)}, current rows: {len(current)}. Generated {summary.get('generated_at', '')}.</p>
<table><tr><th>column</th><th>type</th><th>test</th><th>score</th><th>threshold</th><th>verdict</th><th>PSI</th></tr>
{rows}</table>
{'<h3>Skipped columns</h3><ul>' + skipped + '</ul>' if skipped else ''}
<h2>Distributions</h2>{plots}</body></html>"""


def render_evidently_report(reference: pd.DataFrame, current: pd.DataFrame) -> str:
    """Evidently's own DataDriftPreset report as HTML (slower: see docs/benchmarks.md)."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    return snapshot.get_html_str(as_iframe=False)
