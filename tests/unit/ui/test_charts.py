"""The inline SVG chart: well-formed, one line per series, every interval drawn, and safe text."""

import xml.etree.ElementTree as ET

import pytest

from recsys_lib.ui.charts import Point, _ticks, bar_chart, interval_chart

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def _tooltips(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}title")][1:]  # the first is the chart's own


SERIES = {
    "champion": [Point("2026-01-01", 0.10, 0.08, 0.12), Point("2026-01-02", 0.11, 0.09, 0.13)],
    "challenger": [Point("2026-01-01", 0.13, 0.11, 0.15), Point("2026-01-02", 0.12, 0.10, 0.14)],
}


def test_one_polyline_per_series_through_its_points_and_a_legend() -> None:
    root = _parse(interval_chart("Hit rate", SERIES))
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 2
    assert all(len(line.get("points", "").split()) == 2 for line in lines)
    assert lines[0].get("stroke") != lines[1].get("stroke")  # two colours
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"Hit rate", "champion", "challenger", "2026-01-01", "2026-01-02"} <= set(texts)
    assert any(t and t.endswith("%") for t in texts)  # y ticks are percentages


def test_each_point_draws_its_interval_and_tooltip_with_the_exact_values() -> None:
    root = _parse(interval_chart("Hit rate", SERIES))
    assert len(list(root.iter(f"{SVG}circle"))) == 4
    assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "interval"]) == 4
    assert "champion · 2026-01-01: 10.00% [8.00%, 12.00%]" in _tooltips(root)


def test_the_interval_bar_spans_low_to_high_on_the_y_axis() -> None:
    root = _parse(interval_chart("t", {"a": [Point("d", 0.5, 0.4, 0.6)]}))
    [bar] = [p for p in root.iter(f"{SVG}path") if p.get("class") == "interval"]
    [dot] = list(root.iter(f"{SVG}circle"))
    d = bar.get("d", "")  # "Mx,topVbottom..." then the two caps
    y_top, y_bottom = float(d.split(",")[1].split("V")[0]), float(d.split("V")[1].split("M")[0])
    tick_y = {t.text: float(t.get("y", "")) - 4 for t in root.iter(f"{SVG}text") if (t.text or "").endswith("%")}
    assert (y_top, float(dot.get("cy", "")), y_bottom) == pytest.approx((tick_y["60%"], tick_y["50%"], tick_y["40%"]))


def test_a_single_date_still_renders() -> None:
    root = _parse(interval_chart("t", {"champion": [Point("2026-01-01", 0.2, 0.15, 0.25)]}))
    assert len(list(root.iter(f"{SVG}circle"))) == 1 and len(list(root.iter(f"{SVG}polyline"))) == 1


def test_a_constant_value_without_interval_still_has_a_y_range() -> None:
    root = _parse(interval_chart("t", {"a": [Point("d1", 0.0), Point("d2", 0.0)]}))
    assert not [p for p in root.iter(f"{SVG}path") if p.get("class") == "interval"]
    assert _tooltips(root) == ["a · d1: 0.00%", "a · d2: 0.00%"]
    assert "-" not in "".join(t.text or "" for t in root.iter(f"{SVG}text"))  # no negative rate ticks


def test_null_values_are_skipped_but_their_dates_stay_on_the_axis() -> None:
    series = {"a": [Point("d1", 0.1, 0.05, 0.15), Point("d2", None), Point("d3", float("nan")), Point("d4", 0.2)]}
    root = _parse(interval_chart("t", series))
    [line] = list(root.iter(f"{SVG}polyline"))
    assert len(line.get("points", "").split()) == 2 and len(list(root.iter(f"{SVG}circle"))) == 2
    assert {"d1", "d2", "d3", "d4"} <= {t.text for t in root.iter(f"{SVG}text")}


def test_nothing_measurable_says_so() -> None:
    root = _parse(interval_chart("t", {"a": [Point("d1", None)]}))
    assert not list(root.iter(f"{SVG}polyline"))
    assert "no measurable value" in [t.text for t in root.iter(f"{SVG}text")]


def test_text_is_escaped() -> None:
    svg = interval_chart("<script>x</script> & co", {"a&<b>": [Point("<d>", 0.1, 0.0, 0.2, note='"q"')]})
    assert "<script>" not in svg and "<b>" not in svg and "<d>" not in svg
    root = _parse(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<script>x</script> & co" in texts and "a&<b>" in texts and "<d>" in texts
    assert _tooltips(root) == ['a&<b> · <d>: 10.00% [0.00%, 20.00%] ("q")']


@pytest.mark.parametrize(
    ("low", "high", "want"),
    [(0.08, 0.16, [0.08, 0.1, 0.12, 0.14, 0.16]), (0.0, 1.0, [0.0, 0.5, 1.0]), (0.013, 0.021, None)],
)
def test_ticks_are_round_and_cover_the_range(low: float, high: float, want: list[float] | None) -> None:
    ticks = _ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 7
    if want is not None:
        assert ticks == pytest.approx(want)


def test_bar_chart_draws_one_bar_per_label_in_order_proportional_to_its_count() -> None:
    root = _parse(bar_chart("Shoppers per segment", {"champions": 30, "loyal": 60, "browsers": 10}))
    bars = list(root.iter(f"{SVG}rect"))
    assert len(bars) == 3
    widths = [float(r.get("width", "")) for r in bars]
    assert widths[1] == max(widths) and widths == pytest.approx([widths[1] / 2, widths[1], widths[1] / 6])
    assert [float(r.get("y", "")) for r in bars] == sorted(float(r.get("y", "")) for r in bars)  # top to bottom
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[0] == "Shoppers per segment"
    assert texts[1:] == ["champions", "30 (30.0%)", "loyal", "60 (60.0%)", "browsers", "10 (10.0%)"]
    assert _tooltips(root) == ["champions: 30 (30.0%)", "loyal: 60 (60.0%)", "browsers: 10 (10.0%)"]


def test_bar_chart_of_nothing_or_zeros_still_renders_and_escapes_text() -> None:
    empty = _parse(bar_chart("t", {}))
    assert not list(empty.iter(f"{SVG}rect")) and "no data" in [t.text for t in empty.iter(f"{SVG}text")]
    zeros = _parse(bar_chart("<t>", {"a&<b>": 0}))
    assert [float(r.get("width", "")) for r in zeros.iter(f"{SVG}rect")] == [0.0]
    assert "a&<b>" in [t.text for t in zeros.iter(f"{SVG}text")]
    with pytest.raises(ValueError, match="negative for \\['x'\\]"):
        bar_chart("t", {"x": -1})
