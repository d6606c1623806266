"""Self-contained HTML drift report: the summary's numbers plus a distribution plot per column."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_PLOT_POINTS = 50_000


def _histograms(reference: pd.DataFrame, current: pd.DataFrame, table: pd.DataFrame) -> go.Figure:
    columns = table["column"].tolist()
    rows = max(1, (len(columns) + 1) // 2)
    fig = make_subplots(rows=rows, cols=2, subplot_titles=columns or ["no columns"])
    for i, col in enumerate(columns):
        r, c = i // 2 + 1, i % 2 + 1
        for label, frame, color in (("reference", reference, "#636efa"), ("current", current, "#ef553b")):
            series = frame[col]
            if len(series) > MAX_PLOT_POINTS:  # plot a sample; the statistics use every row
                series = series.sample(MAX_PLOT_POINTS, random_state=0)
            if table.iloc[i]["column_type"] == "num":
                values = series.to_numpy(dtype="float64", na_value=np.nan)
                values = values[np.isfinite(values)]
                trace = go.Histogram(x=values, histnorm="probability", name=label, marker_color=color,
                                     opacity=0.6, showlegend=i == 0, legendgroup=label)
            else:
                freq = series.astype(str).value_counts(normalize=True)
                trace = go.Bar(x=freq.index.tolist(), y=freq.to_numpy(), name=label, marker_color=color,
                               opacity=0.6, showlegend=i == 0, legendgroup=label)
            fig.add_trace(trace, row=r, col=c)
    fig.update_layout(barmode="overlay", height=280 * rows, margin={"t": 40, "b": 20})
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
