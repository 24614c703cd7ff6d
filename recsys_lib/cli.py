"""``recsys``: the pipeline from a shell, without Airflow.

Each command parses its flags, calls one function in recsys_lib, and prints a short result;
errors from the library come out as one clear line and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from recsys_lib import __version__
from recsys_lib.config import SourceName
from recsys_lib.errors import EndpointError, RecsysError


def _params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` flags to a params dict; values parsed as JSON when they look like JSON."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise RecsysError(f"--set expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_demo(args: argparse.Namespace) -> None:
    """``recsys demo``: the whole product on local services, from nothing
    (:func:`~recsys_lib.devstack.demo.run_demo`)."""
    from recsys_lib.devstack.demo import run_demo

    run_demo(Path(args.state_dir), keep=args.keep, n_users=args.users, epochs=args.epochs)


def cmd_stack(args: argparse.Namespace) -> None:
    """``recsys stack up|down``: start local S3 + MLflow and print their ``export`` lines (stdout,
    for ``eval``), or stop the services recorded in ``<state-dir>/stack.json``."""
    from recsys_lib.devstack.services import Stack, start_stack, stop_stack

    state = Path(args.state_dir)
    if args.action == "up":
        stack = start_stack(state, bucket=args.bucket)
        for key, value in stack.client_env().items():
            print(f"export {key}={value}")
        print(f"# MLflow UI: {stack.mlflow.url}   stop with: recsys stack down --state-dir {state}", file=sys.stderr)
    else:
        stop_stack(Stack.load(state))
        print(f"stopped the services recorded in {state / 'stack.json'}")


def cmd_upload_raw(args: argparse.Namespace) -> None:
    """``recsys upload-raw``: copy local files to ``raw/<dataset>/`` (or the daily partition
    ``dt=DAY`` of ``--table``), keeping each file's name; an existing key is overwritten."""
    from recsys_lib.config import load_config
    from recsys_lib.storage import ObjectStore, layout

    config = load_config(overrides={"dataset": args.dataset})
    store = ObjectStore.from_config(config.storage)
    if args.day:
        folder = layout.raw_partition_prefix(config.data.dataset, args.table, args.day)
    else:
        folder = layout.raw_prefix(config.data.dataset)
    for path in map(Path, args.files):
        key = folder + path.name
        store.put_bytes(key, path.read_bytes())
        print(f"uploaded {path} ({path.stat().st_size:,} bytes) to {store.uri(key)}")


def cmd_generate(args: argparse.Namespace) -> None:
    """``recsys generate``: write a seeded synthetic shop to ``raw/<dataset>/`` (flat files, or
    daily partitions with ``--partitioned``); ``--end`` is the first day not generated."""
    from recsys_lib.config import load_config
    from recsys_lib.sources import write_synthetic_shop
    from recsys_lib.storage import ObjectStore, layout

    config = load_config(overrides={"dataset": args.dataset})
    store = ObjectStore.from_config(config.storage)
    end = datetime.combine(datetime.fromisoformat(args.end).date(), datetime.min.time(), tzinfo=UTC)
    events, items = write_synthetic_shop(
        store,
        config.data.dataset,
        end=end,
        partitioned=args.partitioned,
        n_users=args.users,
        n_items=args.items,
        days=args.days,
        seed=args.seed,
    )
    layout_name = "daily landings events/dt=<day>/ and a catalogue snapshot" if args.partitioned else "flat files"
    where = store.uri(layout.raw_prefix(config.data.dataset))
    print(f"{len(events):,} events, {len(items):,} items as {layout_name} under {where}")


def cmd_simulate(args: argparse.Namespace) -> None:
    """``recsys simulate``: land the next ``--days`` of simulated shopper responses to the latest
    export and print their counts."""
    from recsys_lib.pipelines.simulate import run

    out = run({"dataset": args.dataset}, days=args.days, seed=args.seed, start=args.start)
    print(
        f"simulated {out['days'][0]}..{out['days'][-1]} after the export of {out['export_dt']}: {out['events']:,} "
        f"events ({out['impressions']:,} impressions, {out['clicks']:,} clicks, {out['purchases']:,} purchases) "
        f"under {out['events_uri']}"
    )


def cmd_retrain(args: argparse.Namespace) -> None:
    """``recsys retrain``: every stage in this process; one line per stage (seconds and its small
    outputs) on stdout, a progress bar on stderr."""
    from tqdm import tqdm

    from recsys_lib.pipelines.runner import STAGES, retrain

    params = {"dataset": args.dataset, "source": args.source, **_params(args.set)}
    bar = tqdm(total=len(STAGES), desc="retrain", unit="stage", file=sys.stderr, disable=None)

    def report(stage: str, out: dict[str, Any], seconds: float) -> None:
        small = {k: v for k, v in out.items() if not isinstance(v, dict | list)}
        bar.write(f"{stage:<22} {seconds:8.1f}s  {json.dumps(small, default=str)}", file=sys.stdout)
        bar.update(1)

    try:
        results = retrain(params, args.ds, on_stage=report)
    finally:
        bar.close()
    total = sum(r["seconds"] for r in results.values())
    print(f"{'total':<22} {total:8.1f}s")


def cmd_stage(args: argparse.Namespace) -> None:
    """``recsys <stage>``: one pipeline stage; its result dict as JSON is the only thing on stdout
    (library output goes to stderr), so a script can read the ``run_id`` or ``plan_uri`` the next
    stage needs."""
    from tqdm import tqdm

    from recsys_lib.pipelines.runner import run_stage

    params = {"dataset": args.dataset, "source": args.source, **_params(args.set)}
    bar: Any = None

    def on_shard(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, desc="export shards", unit="shard", file=sys.stderr, disable=None)
        bar.update(1)

    try:
        with contextlib.redirect_stdout(sys.stderr):  # libraries' chatter; stdout holds only the JSON result
            out = run_stage(
                args.command,
                params,
                args.ds,
                run_id=getattr(args, "run_id", None),
                plan_uri=getattr(args, "plan_uri", None),
                on_shard=on_shard,
            )
    finally:
        if bar is not None:
            bar.close()
    print(json.dumps(out, indent=2, default=str))


def cmd_recommend(args: argparse.Namespace) -> None:
    """``recsys recommend``: one user's rows of the published ``user_topk`` (latest, or ``--ds``); a
    user not in the export raises RecsysError."""
    from recsys_lib.config import load_config
    from recsys_lib.export import read_recommendations
    from recsys_lib.storage import ObjectStore

    config = load_config(overrides={"dataset": args.dataset})
    store = ObjectStore.from_config(config.storage)
    user = _exported_id(args.user, args.pseudonymized)
    recs = read_recommendations(store, config.data.dataset, args.ds, user_ids=[user])
    if recs.empty:
        raise RecsysError(f"user {args.user!r} is not in the published export of dataset {config.data.dataset!r}")
    print(recs.to_string(index=False))


def _exported_id(user: str, pseudonymized: bool) -> str:
    """``user`` as the user tables spell it: its keyed hash under ``$RECSYS_PSEUDONYM_KEY`` if
    ``pseudonymized``."""
    if not pseudonymized:
        return user
    import numpy as np

    from recsys_lib.export.pseudonym import pseudonym_key, pseudonymize

    return str(pseudonymize(np.array([user]), pseudonym_key())[0])


def cmd_profile(args: argparse.Namespace) -> None:
    """``recsys profile``: one user's ``user_profiles`` row as aligned ``column  value`` lines; a
    user without a profile raises RecsysError."""
    from recsys_lib import schema
    from recsys_lib.config import load_config
    from recsys_lib.export import read_recommendations
    from recsys_lib.storage import ObjectStore

    config = load_config(overrides={"dataset": args.dataset})
    store = ObjectStore.from_config(config.storage)
    user = _exported_id(args.user, args.pseudonymized)
    table = schema.ExportTable.USER_PROFILES
    rows = read_recommendations(store, config.data.dataset, args.ds, table=table, user_ids=[user])
    if rows.empty:
        raise RecsysError(f"user {args.user!r} has no profile in the published export of {config.data.dataset!r}")
    print("\n".join(profile_lines(rows.iloc[0].to_dict())))


def profile_lines(profile: dict[str, Any]) -> list[str]:
    """``column  value`` lines of one ``user_profiles`` row; top categories and brands with their
    shares in % (``shoes 50%, bags 25%``), money with 2 decimals, nulls as ``-``."""
    from recsys_lib import schema

    shown = dict(profile)
    for names, shares in ((schema.TOP_CATEGORIES, schema.CATEGORY_SHARES), (schema.TOP_BRANDS, schema.BRAND_SHARES)):
        top, share_of = shown.pop(names, None), shown.pop(shares, None)  # arrays or lists
        pairs = zip([] if top is None else list(top), [] if share_of is None else list(share_of), strict=True)
        shown[names] = ", ".join(f"{name} {share:.0%}" for name, share in pairs)
    if isinstance(shown.get(schema.MONETARY), float):
        shown[schema.MONETARY] = f"{shown[schema.MONETARY]:.2f}"
    order = [c for c in schema.USER_PROFILES_DTYPES if c in shown]
    width = max(map(len, order), default=0)
    return [f"{c:<{width}}  {'-' if _missing(shown[c]) else shown[c]}" for c in order]


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value == "" or (not isinstance(value, list | tuple) and bool(pd.isna(value)))


def cmd_outcomes(args: argparse.Namespace) -> None:
    """``recsys outcomes``: build the outcome report of ``--export-dt`` as of ``--ds``, print each
    arm's metrics and the verdict, and where the report was written."""
    from recsys_lib.outcomes.summary import summary
    from recsys_lib.pipelines import outcomes

    params = {"dataset": args.dataset, "source": args.source, **_params(args.set)}
    report, uri = outcomes.report(params, args.ds, export_dt=args.export_dt, log_to_mlflow=not args.no_mlflow)
    print(summary(report))
    print(f"report: {uri}")


def cmd_similar(args: argparse.Namespace) -> None:
    """``recsys similar``: an item's rows of the published ``similar_items``; an item without
    neighbours raises RecsysError."""
    from recsys_lib import schema
    from recsys_lib.config import load_config
    from recsys_lib.export import read_recommendations
    from recsys_lib.storage import ObjectStore

    config = load_config(overrides={"dataset": args.dataset})
    store = ObjectStore.from_config(config.storage)
    rows = read_recommendations(store, config.data.dataset, args.ds, table=schema.ExportTable.SIMILAR_ITEMS)
    rows = rows[rows[schema.ITEM_ID] == str(args.item)]
    if rows.empty:
        raise RecsysError(f"item {args.item!r} has no similar items in the published export of {config.data.dataset!r}")
    print(rows.to_string(index=False))


def cmd_serve(args: argparse.Namespace) -> None:
    """``recsys serve``: validate the service config once here, hand it to uvicorn's workers through
    ``$RECSYS_SERVE_SPEC`` and serve until interrupted; needs the ``serve`` extra."""
    from recsys_lib.extras import require_extra

    require_extra("serve", "fastapi", "uvicorn", "prometheus_client", feature="recsys serve")
    import uvicorn

    from recsys_lib.live.app import SPEC_VARIABLE, service_config

    overrides = {"dataset": args.dataset, **_params(args.set)}
    for flag in ("host", "port", "workers"):
        if getattr(args, flag) is not None:
            overrides[f"serve.{flag}"] = getattr(args, flag)
    spec = {"overrides": overrides, "bundle": args.bundle}
    config = service_config(spec)  # a bad setting fails here, once, not in every worker
    os.environ[SPEC_VARIABLE] = json.dumps(spec)  # each worker process builds its app from it
    what = f"the bundle in {args.bundle}" if args.bundle else f"the champion of {config.registered_model_name}"
    serve = config.serve
    print(f"serving {what} on http://{serve.host}:{serve.port} ({serve.workers} worker(s))", flush=True)
    uvicorn.run(
        "recsys_lib.live.app:app_from_environment",
        factory=True,
        host=serve.host,
        port=serve.port,
        workers=serve.workers,
        log_level="warning",
        access_log=False,
    )


def _user_lookup(p: argparse.ArgumentParser) -> None:
    """The flags of a command that reads one user's rows of a published export."""
    p.add_argument("--user", required=True)
    p.add_argument("--dataset", default="shop")
    p.add_argument("--ds", default=None, help="a published date (default: latest)")
    p.add_argument(
        "--pseudonymized",
        action="store_true",
        help="the export holds keyed hashes of user ids: hash --user with $RECSYS_PSEUDONYM_KEY first",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``recsys`` argument parser; each sub-command sets ``func``, the ``cmd_*`` that runs it."""
    parser = argparse.ArgumentParser(
        prog="recsys",
        description="recsys: the recommendation pipeline from a shell, without Airflow.",
        epilog="The whole pipeline: recsys retrain --dataset shop --ds 2026-11-23. One step at a time: "
        "ingest, validate, features, train, register --run-id ID, export, publish --plan-uri URI. "
        "Reading what was published: recommend --user ID, similar --item ID, profile --user ID. Live requests: serve. "
        "S3 and MLflow come from AWS_* and MLFLOW_TRACKING_URI (recsys stack up prints a local set).",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log library progress at INFO level; on an error, its traceback"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="start local S3 + MLflow, generate a shop, run the DAG, print where to look")
    p.add_argument("--state-dir", default=".demo", help="folder for the services' state and logs (wiped first)")
    p.add_argument("--keep", action="store_true", help="leave the services running at the end")
    p.add_argument("--users", type=int, default=2000, help="synthetic shoppers")
    p.add_argument("--epochs", type=int, default=20, help="training epochs")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("stack", help="start or stop the local S3 (moto) and MLflow servers")
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--state-dir", default=".demo/services")
    p.add_argument("--bucket", default="recsys")
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("upload-raw", help="copy local raw files to raw/<dataset>/ in the bucket")
    p.add_argument("files", nargs="+")
    p.add_argument("--dataset", required=True)
    p.add_argument("--day", default=None, help="land the files as the daily partition dt=DAY (YYYY-MM-DD)")
    p.add_argument("--table", default="events", choices=["events", "items"], help="the table landed with --day")
    p.set_defaults(func=cmd_upload_raw)

    p = sub.add_parser("generate", help="write a seeded synthetic shop to raw/<dataset>/")
    p.add_argument("--dataset", default="shop")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--items", type=int, default=600)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--end", default=datetime.now(UTC).date().isoformat(), help="last day (exclusive), YYYY-MM-DD")
    p.add_argument("--partitioned", action="store_true", help="land daily partitions events/dt=<day>/ (and items)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "simulate",
        help="shoppers of a generated shop respond to the latest export: land the next days' events",
        description="Impressions, clicks, carts and purchases of the days after the latest published export "
        "(or from --start), driven by the generator's planted preferences, landed as events/dt=<day>/.",
    )
    p.add_argument("--dataset", default="shop")
    p.add_argument("--days", type=int, default=7, help="days to simulate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", default=None, help="first day YYYY-MM-DD (default: the day after the export)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("retrain", help="run every pipeline stage in this process, with per-stage timings")
    p.add_argument("--dataset", required=True)
    p.add_argument("--source", default="canonical", choices=list(get_args(SourceName)))
    p.add_argument("--ds", required=True, help="logical date YYYY-MM-DD")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="parameter override, e.g. --set epochs=5 --set model=popularity",
    )
    p.set_defaults(func=cmd_retrain)

    stage_help = {
        "ingest": "read raw/<dataset>/ into canonical tables under ingested/ (step 1 of the DAG)",
        "validate": "Great Expectations on the ingested tables; quarantine, snapshot, report, Data Docs (step 2)",
        "features": "encoders, weights, split and sequences from the snapshot (step 3)",
        "train": "train the configured model; prints the MLflow run id register needs (step 4)",
        "register": "evaluate against popularity and the champion, register, move the alias (step 5)",
        "export": "plan, every user shard and the item tables, staged; prints the plan publish needs (step 6)",
        "publish": "check every shard, publish the tables and move the _latest.json pointers (step 7)",
    }
    for stage, text in stage_help.items():
        p = sub.add_parser(
            stage,
            help=text,
            description=text + ". Inputs are read where the earlier steps wrote them for --dataset and --ds.",
        )
        p.add_argument("--dataset", required=True)
        p.add_argument("--ds", required=True, help="logical date YYYY-MM-DD")
        p.add_argument("--source", default="canonical", choices=list(get_args(SourceName)))
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="parameter override")
        if stage == "register":
            p.add_argument("--run-id", required=True, help="the MLflow run id printed by `recsys train`")
        if stage == "publish":
            p.add_argument("--plan-uri", required=True, help="the plan_uri printed by `recsys export`")
        p.set_defaults(func=cmd_stage)

    p = sub.add_parser("recommend", help="a user's recommendations from the published export")
    _user_lookup(p)
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser(
        "profile",
        help="a shopper's profile from the published export: top categories, RFM segment, churn risk",
        description="Reads the user_profiles export (latest, or --ds): top categories and brands with their "
        "shares, price band, recency / frequency / monetary, the RFM segment and the churn-risk flag.",
    )
    _user_lookup(p)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser(
        "serve",
        help="answer live requests (recommend, rerank, similar) with the champion over HTTP",
        description="The champion of --dataset behind an HTTP API (OpenAPI page at /docs); a new champion "
        "is picked up when the alias moves. Limits and polling: serve.* config.",
    )
    p.add_argument("--dataset", default="shop")
    p.add_argument("--host", default=None, help="interface (default serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default serve.port, 8000)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default serve.workers, 1)")
    p.add_argument(
        "--bundle",
        default=None,
        help="serve a saved bundle folder (or a local MLflow model folder) instead of the registry's champion",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set serve.max_k=50")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("similar", help="an item's most similar items from the published export")
    p.add_argument("--item", required=True)
    p.add_argument("--dataset", default="shop")
    p.add_argument("--ds", default=None, help="a published date (default: latest)")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser(
        "outcomes",
        help="what shoppers did with a published export, per experiment arm, with intervals and a verdict",
        description="Reads the export of --export-dt and the events landed in the outcomes.window_days after "
        "it (up to --ds), writes outcomes/dataset=<d>/dt=<export-dt>/report.json and an MLflow run, and prints "
        "each arm's metrics and the verdict.",
    )
    p.add_argument("--dataset", default="shop")
    p.add_argument("--ds", default=datetime.now(UTC).date().isoformat(), help="report as of this day (default today)")
    p.add_argument("--export-dt", default=None, help="the export date (default: --ds minus outcomes.window_days)")
    p.add_argument("--source", default="canonical", choices=list(get_args(SourceName)))
    p.add_argument("--no-mlflow", action="store_true", help="write the report to S3 only, no MLflow run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set outcomes.window_days=3")
    p.set_defaults(func=cmd_outcomes)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``recsys`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status: 0 on
    success, 1 for an error the user can act on (one line on stderr, the traceback only with
    ``-v``), 130 on Ctrl-C. Any other exception is a bug and propagates with its traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    if not args.verbose:  # HTTP clients' "Retrying ..." warnings: the error line says what failed, -v shows them
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    if args.command in ("retrain", "ingest", "validate", "features", "train", "register", "export", "publish"):
        logging.getLogger("recsys_lib").setLevel(logging.INFO)  # epochs, shards and rows as they happen
    try:
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        error = _as_recsys_error(exc, f"running `recsys {args.command}`")
        if error is None:
            raise  # a bug, not a setting to fix: the traceback is the report
        if args.verbose:
            traceback.print_exception(exc)
        print(f"recsys: error: {_error_line(error)}", file=sys.stderr)
        return 1
    return 0


def _as_recsys_error(exc: Exception, action: str) -> RecsysError | None:
    """``exc`` as an error the user can act on: itself if the library raised it, an MLflow failure
    that escaped the registry (unreachable server, refused credentials) classified, else None."""
    if isinstance(exc, RecsysError):
        return exc
    from recsys_lib.registry.connection import registry_error

    return registry_error(exc, action)


def _error_line(error: RecsysError) -> str:
    """The message; for an endpoint error on one line, naming the setting to check."""
    if not isinstance(error, EndpointError):
        return str(error)
    line = " ".join(str(error).split())
    return line if not error.setting or error.setting in line else f"{line}; check {error.setting}"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
