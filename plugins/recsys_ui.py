"""Airflow plugin: the "Recommendations" page in the Airflow UI navigation.

The page is recsys_lib.ui's FastAPI app, mounted on the API server at ``/recsys`` and shown in the
UI as an external view (an iframe under the nav entry). Airflow does not authenticate plugin
apps, so every route depends on Airflow's ``get_user``: the session cookie of a logged-in user
or a bearer token, as the core API requires.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin

from recsys_lib.ui.app import create_app


class RecsysUIPlugin(AirflowPlugin):
    name = "recsys_ui"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(dependencies=[get_user]), "url_prefix": "/recsys", "name": "Recommendations"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Recommendations",
            "href": "recsys/",
            "destination": "nav",
            "url_route": "recommendations",
            "category": "browse",
        }
    ]
