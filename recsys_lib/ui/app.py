"""The Recommendations page as a FastAPI app (mounted by the Airflow plugin at ``/recsys``).

Routes, all relative so the page works behind Airflow's prefix and a reverse proxy:

- ``GET /?dataset=shop``: the HTML page (champion and challenger, the experiment's outcomes, latest
  export, shoppers per RFM segment, latest validation, the training leaderboard);
- ``GET /api/overview?dataset=shop``: the same data as JSON;
- ``GET /manifest?dataset=shop``: the latest published ``user_topk`` manifest;
- ``GET /data-docs/<dataset>/<ds>/<path>``: the Great Expectations Data Docs stored with that
  day's validation, served from S3.

``create_app(dependencies=...)`` takes FastAPI dependencies applied to every route; the Airflow
plugin passes Airflow's ``get_user`` so only logged-in users see the page.
"""

from __future__ import annotations

import html
import mimetypes
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from recsys_lib.config import load_config
from recsys_lib.errors import ExportNotFoundError, ObjectNotFoundError, StorageError
from recsys_lib.storage import layout
from recsys_lib.ui.outcomes import render_outcomes
from recsys_lib.ui.overview import ALIASES, LEADERBOARD_METRICS, Overview, Section, gather, page_store
from recsys_lib.ui.profiles import render_profiles

MAX_RUNS = 200


def create_app(dependencies: Sequence[Any] = ()) -> Any:
    """The Recommendations page's FastAPI app (routes in the module docstring), with
    ``dependencies`` applied to every route. The default dataset and the MLflow UI address come
    from the config when the app is built; each request loads its dataset's config and reads MLflow
    and S3 afresh."""
    from fastapi import Depends, FastAPI, HTTPException, Query
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    app = FastAPI(title="recsys: Recommendations", dependencies=[Depends(d) for d in dependencies])
    deployment = load_config()
    default_dataset = deployment.data.dataset  # RECSYS_DATASET, else the config's
    mlflow_ui = deployment.registry.ui_url

    def overview(dataset: str) -> Overview:
        try:
            layout.check_dataset(dataset)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        config = load_config(None, overrides={"dataset": dataset})
        return gather(
            dataset,
            page_store(),
            model_name=config.registered_model_name,
            experiment=config.experiment_name,
            max_runs=MAX_RUNS,
        )

    @app.get("/", response_class=HTMLResponse)
    def page(dataset: str = Query(default_dataset, max_length=63)) -> str:
        return render(overview(dataset), mlflow_ui=mlflow_ui)

    @app.get("/api/overview")
    def api(dataset: str = Query(default_dataset, max_length=63)) -> JSONResponse:
        return JSONResponse(asdict(overview(dataset)))

    @app.get("/manifest")
    def manifest(dataset: str = Query(default_dataset, max_length=63)) -> JSONResponse:
        from recsys_lib.export import read_manifest

        try:
            return JSONResponse(read_manifest(page_store(), layout.check_dataset(dataset)))
        except ExportNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    @app.get("/data-docs/{dataset}/{ds}/{path:path}")
    def data_docs(dataset: str, ds: str, path: str) -> Response:
        store = page_store()
        try:
            key = layout.data_docs_prefix(dataset, ds) + (path or "index.html")
            body = store.get_bytes(key)
        except ObjectNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        except (StorageError, ValueError) as exc:  # a bad dataset, date or a path that leaves the prefix
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        kind = mimetypes.guess_type(key)[0] or "application/octet-stream"
        return Response(body, media_type=kind)

    return app


# --- HTML ----------------------------------------------------------------------------------------
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2933;background:#fff}
h1{font-size:1.4rem;margin:0 0 1rem} h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;font-size:.9rem}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e4e7eb;text-align:left}
th{background:#f5f7fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #cbd2d9;border-radius:6px;padding:.8rem 1rem;min-width:16rem}
.ok{color:#0b7a3e;font-weight:600} .bad{color:#b42318;font-weight:600} .warn{color:#9a6700}
.error{background:#fff4e5;border:1px solid #f5a623;padding:.6rem .8rem;border-radius:6px}
tr.champion td{background:#ecfdf3} .muted{color:#7b8794} code{font-size:.85rem}
.charts{display:flex;gap:1rem;flex-wrap:wrap;margin:.5rem 0 1rem}
.charts svg{border:1px solid #e4e7eb;border-radius:6px;background:#fff;max-width:100%;height:auto}
caption{caption-side:bottom;text-align:left;font-size:.8rem;padding-top:.3rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "&ndash;"


def _mlflow_run_link(base: str, experiment_id: str, run_id: str, text: str) -> str:
    if not base.startswith(("http://", "https://")):
        return _e(text)
    href = f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f'<a href="{_e(href)}" target="_blank">{_e(text)}</a>'


def _error(section: Section) -> str:
    return f'<p class="error">{_e(section.error)}</p>'


def render(view: Overview, *, mlflow_ui: str | None = None) -> str:
    """The page for ``view`` (every value escaped); run names link into the MLflow UI at
    ``mlflow_ui`` (default: the tracking URI)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Recommendations</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Recommendations &middot; dataset <code>{_e(view.dataset)}</code></h1>",
        "<form method='get' action=''>Dataset <input name='dataset' "
        f"value='{_e(view.dataset)}' size='16'> <button>Show</button></form>",
        "<h2>Models</h2>",
        _models(view),
        "<h2>Experiment outcomes</h2>",
        _error(view.outcomes) if view.outcomes.error else render_outcomes(view.outcomes.data),
        "<h2>Latest published export</h2>",
        _export(view.export),
        "<h2>Shoppers</h2>",
        _error(view.profiles) if view.profiles.error else render_profiles(view.profiles.data),
        "<h2>Latest validation</h2>",
        _validation(view),
        f"<h2>Training runs (newest {MAX_RUNS})</h2>",
        _runs(view, mlflow_ui or view.tracking_uri),
        f"<p class='muted'>MLflow: <code>{_e(view.tracking_uri)}</code></p></body></html>",
    ]
    return "".join(parts)


def _models(view: Overview) -> str:
    if view.models.error:
        return _error(view.models)
    if not view.models.data:
        return "<p class='muted'>No registered model yet: trigger <code>recsys_retrain</code>.</p>"
    cards = []
    for alias in ALIASES:
        model = view.models.data.get(alias)
        if not model:
            cards.append(f"<div class='card'><b>{alias}</b><p class='muted'>none</p></div>")
            continue
        rows = "".join(
            f"<tr><td>{_e(m.removeprefix('test_'))}</td><td class='num'>{_num(v)}</td></tr>"
            for m, v in model["metrics"].items()
        )
        cards.append(
            f"<div class='card'><b>{alias}</b>: version {_e(model['version'])} &middot; {_e(model['model'])} "
            f"&middot; {_e(model['logical_date'])}<table>{rows}"
            f"<tr><td>popularity ndcg_at_10</td><td class='num'>{_num(model['baseline_ndcg_at_10'])}</td></tr>"
            "</table></div>"
        )
    return f"<div class='cards'>{''.join(cards)}</div>"


def _export(section: Section) -> str:
    if section.error:
        return _error(section)
    m = section.data
    model = m.get("model", {})
    return (
        "<table>"
        f"<tr><th>date</th><td>{_e(m['dt'])}</td></tr>"
        f"<tr><th>rows</th><td class='num'>{int(m['rows']):,}</td></tr>"
        f"<tr><th>model</th><td>{_e(model.get('name'))} version {_e(model.get('version'))}</td></tr>"
        f"<tr><th>files</th><td class='num'>{len(m.get('files', []))}</td></tr>"
        f"<tr><th>created</th><td>{_e(m.get('created_at'))}</td></tr>"
        f"<tr><th>manifest</th><td><a href='manifest?dataset={_e(m.get('dataset', ''))}'>"
        f"{_e(m['manifest_uri'])}</a></td></tr>"
        "</table>"
    )


def _validation(view: Overview) -> str:
    section = view.validation
    if section.error:
        return _error(section)
    v = section.data
    if not v:
        return "<p class='muted'>No validation has run for this dataset yet.</p>"
    state = "<span class='ok'>passed</span>" if v["success"] else "<span class='bad'>FAILED</span>"
    broken = "".join(
        f"<li class='{'warn' if o.get('severity') == 'warn' else 'bad'}'>{_e(o.get('check') or o['rule'])}: "
        f"{_e(o['table'])}.{_e(o.get('column') or '')} {_e(o.get('detail') or '')} "
        f"{_e(o.get('examples') or '')}</li>"
        for o in v["broken"]
    )
    docs = f"<a href='data-docs/{_e(view.dataset)}/{_e(v['dt'])}/index.html'>Data Docs</a>"
    counts = ", ".join(f"{_e(t)} {int(n):,}" for t, n in v["row_counts"].items())
    return (
        f"<p>{_e(v['dt'])}: {state} &middot; {counts} rows &middot; {int(v['quarantined']):,} quarantined "
        f"&middot; {docs} &middot; <code>{_e(v['report_uri'])}</code></p>" + (f"<ul>{broken}</ul>" if broken else "")
    )


def _runs(view: Overview, mlflow_ui: str) -> str:
    if view.runs.error:
        return _error(view.runs)
    runs = view.runs.data or []
    if not runs:
        return "<p class='muted'>No training runs yet.</p>"
    head = "".join(f"<th>{_e(m.removeprefix('test_'))}</th>" for m in LEADERBOARD_METRICS)
    rows = []
    for r in runs:
        cls = " class='champion'" if "champion" in r["aliases"] else ""
        cells = "".join(f"<td class='num'>{_num(r['metrics'][m])}</td>" for m in LEADERBOARD_METRICS)
        version = f"v{_e(r['version'])} {' '.join(map(_e, r['aliases']))}" if r["version"] else ""
        link = _mlflow_run_link(mlflow_ui, r["experiment_id"], r["run_id"], r["name"])
        rows.append(
            f"<tr{cls}><td>{link}</td><td>{_e(r['model'])}</td><td>{_e(r['logical_date'])}</td>"
            f"<td>{_e(r['status'])}</td><td>{version}</td>{cells}</tr>"
        )
    return (
        "<table><tr><th>run</th><th>model</th><th>date</th><th>status</th><th>version</th>"
        f"{head}</tr>{''.join(rows)}</table>"
    )
