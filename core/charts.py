"""The geometry of a stacked horizontal bar chart, drawn by a template as SVG shapes.

Computed here, not in the template, so the template only places rectangles and text; and here,
at the bottom, because it knows nothing of what is counted (the migration dashboard gives its
statuses, their colours and labels).
"""

CHART_WIDTH = 420
CHART_LABEL_WIDTH = 95
CHART_BAR_HEIGHT = 24
CHART_GAP = 10
# Text is drawn without measuring it: a generous width per character of the 13px font.
CHART_CHAR_WIDTH = 7.5
CHART_LEGEND_ROW = 18


def stacked_bar_chart(
    counts_by_bar: dict[str, dict[str, int]],
    *,
    colors: dict[str, str],
    labels: dict[str, str],
) -> dict:
    """One horizontal bar per key of `counts_by_bar`, split into one segment per category
    (in the order of `colors`), as rectangles with their coordinates, and a legend."""
    biggest = max((sum(counts.values()) for counts in counts_by_bar.values()), default=0)
    # Room on the right of the longest bar for its total.
    scale = (CHART_WIDTH - CHART_LABEL_WIDTH - 45) / biggest if biggest else 0
    bars = []
    for index, (name, counts) in enumerate(counts_by_bar.items()):
        y = index * (CHART_BAR_HEIGHT + CHART_GAP)
        x = CHART_LABEL_WIDTH
        segments = []
        for category, color in colors.items():
            count = counts.get(category, 0)
            if not count:
                continue
            width = max(count * scale, 1)
            segments.append(
                {
                    "x": round(x, 1),
                    "width": round(width, 1),
                    "color": color,
                    "label": f"{labels[category]}: {count}",
                }
            )
            x += width
        bars.append(
            {
                "source": name,
                "y": y,
                "text_y": y + CHART_BAR_HEIGHT * 0.7,
                "total": sum(counts.values()),
                "total_x": round(x + 6, 1),
                "segments": segments,
            }
        )
    height = max(len(bars) * (CHART_BAR_HEIGHT + CHART_GAP), CHART_BAR_HEIGHT + CHART_GAP)
    legend, x, y = [], 0.0, height + 10
    for category, color in colors.items():
        label = labels[category]
        item_width = 16 + len(label) * CHART_CHAR_WIDTH + 14
        if x and x + item_width > CHART_WIDTH:
            x, y = 0.0, y + CHART_LEGEND_ROW
        legend.append(
            {"x": x, "text_x": x + 16, "y": y, "text_y": y + 11, "color": color, "label": label}
        )
        x += item_width
    return {
        "width": CHART_WIDTH,
        "height": y + CHART_LEGEND_ROW,
        "bar_height": CHART_BAR_HEIGHT,
        "bars": bars,
        "legend": legend,
    }
