"""``silentgate central report``: a day's funnel as CSV and as one HTML page with plots.

The page is self-contained (inline SVG and CSS, no script, nothing fetched) so it can be mailed
or opened from a share. Per store: the day's funnel per zone as bars with the conversion
between stages, visits per hour per zone, and the distribution of dwell times per zone.
"""

from __future__ import annotations

import csv
import html
import itertools
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Final

from central.funnel import DWELL_BUCKETS_S, Funnel, FunnelRow

STAGES: Final = (
    ("passed", "passed"),
    ("dwelled", "dwelled"),
    ("offered", "shown an offer"),
    ("picked_up", "picked up"),
)
COLUMNS: Final = (
    "store", "zone", "hour", "visits", "passed", "dwelled", "offered", "picked_up",
    "picked_up_offered", "dwell_rate", "offer_rate", "pickup_rate", "offer_pickup_rate",
)  # fmt: skip
COLOURS: Final = ("#2b6cb0", "#2f855a", "#b7791f", "#c53030", "#6b46c1", "#319795")
BAR_W: Final = 520


def write(funnel: Funnel, out: Path, day: date) -> list[Path]:
    """funnel.csv, dwell.csv and funnel.html in ``out`` (created); their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "funnel.csv", out / "dwell.csv", out / "funnel.html"]
    _write_funnel_csv(funnel.rows, paths[0])
    _write_dwell_csv(funnel, paths[1])
    paths[2].write_text(page(funnel, day), encoding="utf-8")
    return paths


def _write_funnel_csv(rows: Sequence[FunnelRow], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for r in rows:
            rates = [_csv_rate(v) for v in r.conversions.values()]
            writer.writerow([
                r.store, r.zone, r.hour.strftime("%Y-%m-%dT%H:00Z"), r.visits, r.passed,
                r.dwelled, r.offered, r.picked_up, r.picked_up_offered, *rates,
            ])  # fmt: skip


def _write_dwell_csv(funnel: Funnel, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["store", "zone", "dwell_s", "visits"])
        for (store, zone), bins in sorted(funnel.dwell_histograms.items()):
            for label, count in zip(_bucket_labels(), bins, strict=True):
                writer.writerow([store, zone, label, count])


def page(funnel: Funnel, day: date) -> str:
    stores = sorted({r.store for r in funnel.rows})
    body = [f"<h1>Customer funnel, {day.isoformat()}</h1>"]
    if not stores:
        body.append("<p>No customer visits on this day.</p>")
    totals = funnel.totals()
    for store in stores:
        zones = sorted(z for s, z in totals if s == store)
        body.append(f"<h2>{_e(store)}</h2>")
        for zone in zones:
            body.append(f"<h3>{_e(zone)}</h3>{_funnel_svg(totals[store, zone])}")
        rows = [r for r in funnel.rows if r.store == store]
        body.append("<h3>Visits per hour</h3>" + _hours_svg(rows, zones))
        body.append("<h3>Dwell time</h3>")
        for zone in zones:
            bins = funnel.dwell_histograms.get((store, zone), [])
            body.append(f"<h4>{_e(zone)}</h4>{_histogram_svg(bins)}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Customer funnel {day.isoformat()}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _funnel_svg(total: FunnelRow) -> str:
    values = [getattr(total, name) for name, _ in STAGES]
    top = max(values[0], 1)
    rows = []
    for i, ((_, label), value) in enumerate(zip(STAGES, values, strict=True)):
        width = BAR_W * value / top
        share = "" if i == 0 else f" ({_percent(value, values[1 if i > 1 else 0])})"
        y = 8 + i * 34
        rows.append(
            f'<text x="0" y="{y + 17}">{label}</text>'
            f'<rect x="130" y="{y}" width="{width:.1f}" height="24" fill="{COLOURS[i]}"/>'
            f'<text x="{136 + width:.1f}" y="{y + 17}">{value}{share}</text>'
        )
    height = 16 + 34 * len(STAGES)
    note = "(offers and pickups as a share of those who dwelled)"
    return f'{_svg(BAR_W + 260, height, "".join(rows))}<p class="note">{note}</p>'


def _hours_svg(rows: Sequence[FunnelRow], zones: Sequence[str]) -> str:
    hours = sorted({r.hour for r in rows})
    if not hours:
        return ""
    visits = {(r.zone, r.hour): r.visits for r in rows}
    top = max(visits.values(), default=1) or 1
    group_w = max(24, 10 * len(zones) + 6)
    plot_h = 160
    parts = []
    for h, hour in enumerate(hours):
        x0 = 40 + h * group_w
        for z, zone in enumerate(zones):
            value = visits.get((zone, hour), 0)
            height = plot_h * value / top
            parts.append(
                f'<rect x="{x0 + z * 10}" y="{20 + plot_h - height:.1f}" width="9" '
                f'height="{height:.1f}" fill="{COLOURS[z % len(COLOURS)]}">'
                f"<title>{_e(zone)} {hour:%H}:00 {value} visits</title></rect>"
            )
        parts.append(f'<text x="{x0}" y="{plot_h + 36}">{hour:%H}</text>')
    parts.append(f'<text x="0" y="26">{top}</text><text x="0" y="{plot_h + 20}">0</text>')
    legend = "".join(
        f'<span class="key" style="background:{COLOURS[z % len(COLOURS)]}"></span>{_e(zone)} '
        for z, zone in enumerate(zones)
    )
    return _svg(60 + len(hours) * group_w, plot_h + 48, "".join(parts)) + f"<p>{legend}</p>"


def _histogram_svg(bins: Sequence[int]) -> str:
    top = max(bins, default=0) or 1
    labels = _bucket_labels()
    parts = []
    for i, (label, count) in enumerate(zip(labels, bins, strict=False)):
        height = 100 * count / top
        x = 10 + i * 72
        parts.append(
            f'<rect x="{x}" y="{16 + 100 - height:.1f}" width="64" height="{height:.1f}" '
            f'fill="#4a5568"/><text x="{x}" y="{12 + 100 - height:.1f}">{count}</text>'
            f'<text x="{x}" y="134">{label}</text>'
        )
    return _svg(20 + 72 * len(labels), 142, "".join(parts))


def _bucket_labels() -> list[str]:
    edges = [0.0, *DWELL_BUCKETS_S]
    labels = [f"{a:g}-{b:g} s" for a, b in itertools.pairwise(edges)]
    return [*labels, f"{DWELL_BUCKETS_S[-1]:g}+ s"]


def _svg(width: float, height: float, inner: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}">{inner}</svg>'
    )


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "-"


def _csv_rate(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


_CSS: Final = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#1a202c}"
    "svg text{font:12px system-ui,sans-serif;fill:#1a202c}"
    ".note{color:#4a5568;font-size:12px;margin-top:0}"
    ".key{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}"
)
