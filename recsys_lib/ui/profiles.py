"""The page's "Shoppers" section: how many shoppers each RFM segment holds in the latest published
``user_profiles``, as an inline-SVG bar chart (:func:`.charts.bar_chart`), and how many are at risk
of churning. Renders :func:`recsys_lib.ui.overview.gather`'s ``profiles`` data (``_profiles`` there).
"""

from __future__ import annotations

from html import escape
from typing import Any

from recsys_lib.ui.charts import bar_chart

HINT = (
    "<p class='muted'>No shopper profiles for this dataset yet: they are published with the next "
    "<code>recsys_retrain</code> export (<code>export.profiles</code>).</p>"
)


def render_profiles(data: dict[str, Any] | None) -> str:
    """The section's HTML for the gathered ``data``, or a hint when no profiles are published."""
    if not data:
        return HINT
    rows, churn = int(data["rows"]), int(data["churn_risk"])
    share = f" ({churn / rows:.1%})" if rows else ""
    chart = bar_chart(f"Shoppers per RFM segment, export of {data['dt']}", data["segments"])
    return (
        f"<div class='charts'>{chart}</div>"
        f"<p>{rows:,} shoppers &middot; {churn:,} at churn risk{share} &middot; "
        f"<code>{escape(str(data['manifest_uri']))}</code></p>"
    )
