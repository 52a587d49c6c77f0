"""Small HTML builders for the report; every text that goes through them is escaped."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

from medlens.evaluation._report_css import CSS


def esc(value: Any) -> str:
    """``value`` as text that is safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def figure(png: bytes, caption: str) -> str:
    return f"<figure>{img(png, caption)}<figcaption>{esc(caption)}</figcaption></figure>"


def definition_list(items: Mapping[str, Any]) -> str:
    """A definition list; nested mappings and lists become pills."""
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{_value(v)}</dd>" for k, v in items.items())
    return f"<dl class='facts'>{rows}</dl>" if rows else ""


def is_count_table(value: Any) -> bool:
    """True for ``{row: {column: int}}``, such as counts per split and class."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(row, Mapping) and row for row in value.values())
        and all(_is_int(n) for row in value.values() for n in row.values())
    )


def count_table(
    title: str,
    table: Mapping[str, Mapping[str, int]],
    extra: tuple[str, Mapping[str, Any]] | None = None,
) -> str:
    """Counts with row and column totals; ``extra`` adds a ``(name, {row: value})`` column."""
    columns = list(dict.fromkeys(c for row in table.values() for c in row))
    extra_name, extra_values = extra if extra else ("", {})
    head = "".join(f"<th class='num'>{esc(c)}</th>" for c in [*columns, "total"])
    head += f"<th class='num'>{esc(extra_name)}</th>" if extra else ""
    body = []
    for name, row in {**table, "total": _column_sums(table, columns)}.items():
        cells = [row.get(c, 0) for c in columns] + [sum(row.values())]
        if extra:
            value = extra_values.get(name, "")
            cells.append(sum(extra_values.values()) if name == "total" else value)
        tds = "".join(f"<td class='num'>{esc(v)}</td>" for v in cells)
        css = " class='total'" if name == "total" else ""
        body.append(f"<tr{css}><td>{esc(name)}</td>{tds}</tr>")
    return (
        f"<h3>{esc(title)}</h3><table><thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _column_sums(table: Mapping[str, Mapping[str, int]], columns: list[str]) -> dict[str, int]:
    return {c: sum(row.get(c, 0) for row in table.values()) for c in columns}


def _value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "".join(
            f"<span class='pill'>{esc(k)}: {esc(plain(v))}</span>" for k, v in value.items()
        )
    if isinstance(value, list | tuple) and not all(isinstance(v, int | float) for v in value):
        return "".join(f"<span class='pill'>{esc(plain(v))}</span>" for v in value)
    return esc(plain(value))


def plain(value: Any, limit: int = 90) -> str:
    """Compact text for a JSON-like value: ``a: 1, b: [2, 3]``, floats to 4 digits."""
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(plain(v) for v in value) + "]"
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def page(title: str, sections: Sequence[str]) -> str:
    """A whole self-contained HTML document: the report stylesheet and the non-empty sections."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(part for part in sections if part)
        + "\n</body>\n</html>\n"
    )
