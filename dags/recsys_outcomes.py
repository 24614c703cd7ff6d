"""Did the recommendations sell? Report what shoppers did with an export, per experiment arm.

report_outcomes: the export published ``outcomes.window_days`` days before the end of the data
interval, and the events landed since, give each arm's hit rate, conversion, click-through and
more with 95% intervals, the challenger-minus-champion differences with Holm-adjusted p-values,
and a verdict; written to ``outcomes/dataset=<d>/dt=<export date>/report.json`` and MLflow.

One call into ``recsys_lib.pipelines``; XCom carries only the URI and the verdict.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from recsys_lib.params import param_specs

#: The knobs of the trigger form besides ``export_dt``; each Param comes from its config field.
PARAMS = ("dataset", "source", "outcome_window_days", "primary_metric", "alpha", "min_days", "promote_on")


@dag(
    dag_id="recsys_outcomes",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["recsys"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "execution_timeout": timedelta(hours=2)},
    params={
        **{name: Param(**spec) for name, spec in param_specs(PARAMS).items()},
        "export_dt": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Export date",
            description="The published export to report on; empty: the one outcomes.window_days before "
            "the end of the data interval.",
        ),
    },
    doc_md=__doc__,
)
def recsys_outcomes() -> None:
    @task
    def report_outcomes() -> dict[str, Any]:
        from recsys_lib.errors import ExportNotFoundError
        from recsys_lib.export.pseudonym import airflow_connection_key
        from recsys_lib.pipelines import outcomes

        ctx = get_current_context()
        logical = ctx.get("logical_date") or ctx["dag_run"].run_after
        end = ctx.get("data_interval_end") or ctx["dag_run"].run_after
        params = dict(ctx["params"])
        export_dt = params.pop("export_dt", None)
        try:
            return outcomes.run(
                params,
                logical.strftime("%Y-%m-%d"),
                export_dt=export_dt,
                interval_end=end.isoformat(),
                pseudonym=airflow_connection_key(),
            )
        except ExportNotFoundError as exc:  # nothing was published that day: retrying will not help
            raise AirflowFailException(str(exc)) from exc

    report_outcomes()


recsys_outcomes()
