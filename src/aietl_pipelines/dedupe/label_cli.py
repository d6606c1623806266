"""`kedro dedupe-label` / `python -m aietl_pipelines.dedupe.label_cli`: label dedupe pairs in the terminal.

Shows the pairs the model is least sure about, one at a time, and asks y (same entity), n (different) or
u (unsure); q stops early. The answers are written to a labels JSON file that later runs use:
`kedro run --pipeline dedupe --params dedupe.labels_path=<file>` or `deduplicate_customers(..., labels=<file>)`.
"""

from __future__ import annotations

from typing import Any

import click


class _Stop(Exception):
    pass


def _ask(left: dict[str, Any], right: dict[str, Any], echo: Any = click.echo, prompt: Any = click.prompt
         ) -> bool | None:
    width = max(len(str(k)) for k in left) if left else 0
    echo("")
    for key in left:
        echo(f"  {str(key):<{width}} | {left[key]!s:<40} | {right.get(key)!s}")
    answer = prompt("Same entity? [y]es / [n]o / [u]nsure / [q]uit", type=click.Choice(["y", "n", "u", "q"]),
                    show_choices=False)
    if answer == "q":
        raise _Stop
    return {"y": True, "n": False, "u": None}[answer]


@click.command("dedupe-label")
@click.option("--input", "input_path", required=True, help="Records to label (.csv, .parquet, .json, .jsonl).")
@click.option("--id-column", required=True, help="Unique id column.")
@click.option("--fields", default=None, help="Structured mode: column:kind,... (e.g. name:name,addr:street).")
@click.option("--text-column", default=None, help="Free-text mode: the column holding the whole record.")
@click.option("--out", "out_path", required=True, help="Labels JSON to write (extended when it exists).")
@click.option("--max-labels", default=20, show_default=True, help="Definite answers to collect.")
def dedupe_label(input_path: str, id_column: str, fields: str | None, text_column: str | None, out_path: str,
                 max_labels: int) -> None:
    """Label dedupe pairs chosen by active learning (y/n/u in the terminal) and save them for later runs."""
    from pathlib import Path

    from aietl_pipelines.datasets import TableDataset
    from aietl_pipelines.dedupe.labels import load_labels, save_labels
    from aietl_pipelines.errors import AietlInputError
    from aietl_pipelines.services import train_dedupe_with_labels

    kinds = None
    if fields:
        try:
            kinds = dict(item.split(":", 1) for item in fields.split(","))
        except ValueError:
            raise AietlInputError(f"--fields {fields!r}: write column:kind pairs separated by commas.") from None
    records = TableDataset(input_path).load()
    earlier = load_labels(out_path) if Path(out_path).exists() else []
    answered: list[dict[str, Any]] = []

    def labeler(left: dict[str, Any], right: dict[str, Any]) -> bool | None:
        answer = _ask(left, right)
        answered.append({"left_id": str(left[id_column]), "right_id": str(right[id_column]), "match": answer,
                         "left": left, "right": right})
        return answer

    try:
        labels = train_dedupe_with_labels(records, labeler, id_column=id_column, fields=kinds, text_column=text_column,
                                          max_labels=max_labels, labels=earlier)
    except _Stop:  # keep what was answered before `q`
        labels = [*earlier, *answered]
    save_labels(labels, out_path)
    new = len(labels) - len(earlier)
    click.echo(f"{new} answer(s) saved to {out_path} ({len(labels)} labels in all); use them with "
               f"`kedro run --pipeline dedupe --params dedupe.labels_path={out_path}`")


if __name__ == "__main__":
    dedupe_label()
