"""create_app(settings): the only place the HTTP application is assembled."""

from __future__ import annotations

import logging

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from appliance import __version__, egress
from appliance.asr import ModelRegistry, Recognizer
from appliance.config import Settings
from appliance.web import api
from appliance.web.services import Services, build

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, recognizer: Recognizer | None = None, registry: ModelRegistry | None = None) -> Litestar:
    """Build the appliance's web app; the worker starts and stops with it."""
    egress.install()
    services = build(settings, recognizer=recognizer, registry=registry)

    def on_startup() -> None:
        services.start()
        log.info("appliance ready: data in %s, models in %s", settings.storage.data_dir, settings.models.models_dir)

    def on_shutdown() -> None:
        services.stop()

    return Litestar(
        route_handlers=api.ROUTES,
        state=State({"services": services}),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        openapi_config=OpenAPIConfig(title="Sotto appliance API", version=__version__, path="/schema"),
        debug=False,
    )


def services_of(app: Litestar) -> Services:
    return app.state.services
