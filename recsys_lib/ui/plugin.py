"""The Airflow plugin: the "Recommendations" page in the Airflow UI navigation.

Registered through the ``airflow.plugins`` entry point (pyproject.toml), so an Airflow with this
package installed (``pip install 'recsys-lib[airflow]'``) loads it without a plugins folder.
The page is :func:`recsys_lib.ui.app.create_app`'s FastAPI app, mounted on the API server at
``/recsys`` and shown in the UI as an external view (an iframe under the nav entry). Airflow does
not authenticate plugin apps, so every route depends on Airflow's ``get_user``: the session cookie
of a logged-in user or a bearer token, as the core API requires.

Only Airflow imports this module (it needs Airflow); nothing else in the package does.
"""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin

from recsys_lib.ui.app import create_app


class RecsysUIPlugin(AirflowPlugin):
    """Mounts the Recommendations page at ``/recsys`` and lists it under Browse."""

    # Plain class attributes, as AirflowPlugin declares them (a ClassVar here would not type-check)
    name = "recsys_ui"
    fastapi_apps = [  # noqa: RUF012
        {"app": create_app(dependencies=[get_user]), "url_prefix": "/recsys", "name": "Recommendations"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Recommendations",
            "href": "recsys/",
            "destination": "nav",
            "url_route": "recommendations",
            "category": "browse",
        }
    ]
