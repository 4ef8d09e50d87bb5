"""create_app(settings): the only place the HTTP application is assembled."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from appliance import __version__
from appliance.cluster.client import Cluster
from appliance.core import egress, memory
from appliance.core.config import Settings
from appliance.core.egress_broker import Connector
from appliance.licensing.store import LicenseStore
from appliance.transcription.asr import ModelRegistry, Recognizer
from appliance.web import (
    accounts_api,
    api,
    assist_api,
    cluster_api,
    directory_api,
    editor_api,
    factors_api,
    i18n,
    integrations_api,
    license_api,
    media_links_api,
    oidc_api,
    openai_api,
    pages,
    private_api,
    sealed_share_api,
    share_api,
    ui,
    video_api,
    voices_api,
)
from appliance.web.auth import EXCEPTION_HANDLERS, authorize
from appliance.web.middleware import request_log, security_headers
from appliance.web.services import build

HERE = Path(__file__).parent

log = logging.getLogger(__name__)


HANDLER_THREADS = 32


def create_app(
    settings: Settings,
    *,
    recognizer: Recognizer | None = None,
    registry: ModelRegistry | None = None,
    licenses: LicenseStore | None = None,
    connector: Connector | None = None,
    cluster: Cluster | None = None,
) -> Litestar:
    """Build the appliance's web app; the worker starts and stops with it. `licenses` lets tests
    supply a store that trusts the test signing key (production trusts only the built-in keys)."""
    egress.install()
    memory.limit_arenas()  # before the worker and handler threads exist (see appliance/core/memory.py)
    services = build(settings, recognizer=recognizer, registry=registry, licenses=licenses, connector=connector, cluster=cluster)

    async def on_startup() -> None:
        # Handlers run in these threads (web/offload.py); asyncio's default of cores + 4 would let a few
        # slow exports or password hashes queue every other request behind them.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=HANDLER_THREADS, thread_name_prefix="handler")
        )
        await asyncio.to_thread(services.start)  # migrations and start-up queries: not on the event loop
        log.info("appliance ready: data in %s, models in %s", settings.storage.data_dir, settings.models.models_dir)

    async def on_shutdown() -> None:
        await asyncio.to_thread(services.stop)

    catalogs = i18n.Catalogs(pseudo_locale=settings.ui.pseudo_locale)
    static = create_static_files_router(
        path="/static", directories=[HERE / "static"], opt={"public": True}, include_in_schema=False
    )
    return Litestar(
        route_handlers=[
            *api.ROUTES,
            *accounts_api.ROUTES,
            *factors_api.ROUTES,
            *directory_api.ROUTES,
            *oidc_api.ROUTES,
            *license_api.ROUTES,
            *share_api.ROUTES,
            *integrations_api.ROUTES,
            *media_links_api.ROUTES,
            *cluster_api.ROUTES,
            *editor_api.ROUTES,
            *private_api.ROUTES,
            *sealed_share_api.ROUTES,
            *voices_api.ROUTES,
            *video_api.ROUTES,
            *assist_api.ROUTES,
            *pages.ROUTES,
            *ui.ROUTES,
            openai_api.router,
            static,
        ],
        state=State({"services": services, "i18n": catalogs}),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        guards=[authorize],  # every route: authentication, CSRF, scope, rate limit
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[security_headers, request_log],
        template_config=TemplateConfig(
            directory=HERE / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=lambda engine: i18n.install(engine.engine),
        ),
        openapi_config=OpenAPIConfig(
            title="Sotto appliance API",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="An API key: sotto_<prefix>_<secret>"),
                }
            ),
            security=[{"bearer": []}],
        ),
        debug=False,
    )
