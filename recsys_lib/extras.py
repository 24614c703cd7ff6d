"""The package's optional parts and the extra that installs each.

``pip install recsys-lib`` brings what the pipeline stages need; a part that needs more checks for
it on first use and, when it is missing, raises :class:`MissingExtraError`, whose one line names
the extra to install (the CLI prints it as ``recsys: error: ...``).
"""

from __future__ import annotations

import importlib.util

from recsys_lib.errors import RecsysError


class MissingExtraError(RecsysError, ImportError):
    """An optional part was used without the extra that installs its dependencies."""


def require_extra(extra: str, *modules: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` unless every top-level module in ``modules`` is installed.

    ``feature`` names what needs them (``"recsys serve"``); ``extra`` is one extra or several joined
    by commas (``"devstack,airflow"``). Nothing is imported: only the installed modules are looked up.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(extra_message(extra, feature, missing))


def extra_message(extra: str, feature: str, missing: list[str]) -> str:
    """``recsys serve needs the serve extra (prometheus_client is not installed): pip install ...``"""
    noun = "extras" if "," in extra else "extra"
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"{feature} needs the {extra.replace(',', ' and ')} {noun} ({', '.join(missing)} {verb} not installed): "
        f"pip install 'recsys-lib[{extra}]'"
    )
