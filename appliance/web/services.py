"""The objects one running appliance shares between its web handlers and its worker."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.accounts import users as accounts
from appliance.app import privacy
from appliance.app.assistant import Assistant
from appliance.app.directory_sign_in import DirectorySignIn
from appliance.app.intake import UploadIntake
from appliance.app.link_import import LinkImport
from appliance.app.oidc_sign_in import OidcSignIn
from appliance.app.video_renders import VideoRenders
from appliance.app.webhook_sender import WebhookSender
from appliance.app.worker import Worker
from appliance.cluster import nodes as cluster_nodes
from appliance.cluster.client import Cluster, write_status
from appliance.cluster.protocol import ClusterStatus
from appliance.core import migrations
from appliance.core.config import Settings
from appliance.core.db import Databases
from appliance.core.egress_broker import Connector, Destination, DirectConnector
from appliance.core.metrics import Metrics, NodeGauge, gpu_memory
from appliance.core.notify import JobNotifier
from appliance.integrations import media_links
from appliance.integrations.media_links import MediaConnector
from appliance.licensing import store as license_store
from appliance.transcription import admission, jobs
from appliance.transcription.asr import ModelRegistry, Recognizer, WhisperEngine, device_count
from appliance.transcription.capacity import for_settings
from appliance.transcription.diarization.engines import DiarizationEngines
from appliance.transcription.partials import PartialTexts
from appliance.web.auth import RateLimiter
from appliance.web.middleware import RequestLogWriter

log = logging.getLogger(__name__)


CLUSTER_SYNC_SECONDS = 3.0


@dataclass
class Services:
    settings: Settings
    databases: Databases
    vault: jobs.AudioVault
    registry: ModelRegistry
    worker: Worker
    notifier: JobNotifier
    engines: DiarizationEngines
    limiter: RateLimiter
    licenses: license_store.LicenseStore
    secret: bytes  # signs share-link password grants; kept in the data dir
    metrics: Metrics
    partials: PartialTexts  # text so far of jobs being streamed (the worker's own buffer)
    devices: int = 1
    # Failed password guesses (sign-in, setup code, share passwords) per client address.
    address_limiter: RateLimiter | None = None
    gate: admission.JobGate | None = None  # jobs in flight per user and key, and the queue cap
    uploads: UploadIntake | None = None  # the upload use case (appliance/app/intake.py), made with the gate
    links: LinkImport | None = None  # importing from an intranet media link (appliance/app/link_import.py)
    setup_code: str | None = None  # while no user exists: the code the first-run page asks for
    request_log: RequestLogWriter | None = None  # the request log's rows, written off the event loop
    webhooks: WebhookSender | None = None  # deliveries to the workspaces' intranet receivers
    assistant: Assistant = field(default=None)  # type: ignore[assignment]  # local AI (summaries, questions); set by build()
    directory: DirectorySignIn | None = None  # LDAP / Active Directory sign-in, when configured
    oidc: OidcSignIn | None = None  # single sign-on with an OpenID provider, when configured
    videos: VideoRenders | None = None  # subtitles on a video sent again (appliance/app/video_renders.py)
    cluster_status: ClusterStatus | None = None  # cluster mode: the nodes as last seen (a few seconds old)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Run from a thread at start-up (never on the event loop)."""
        with self.databases.borrowed() as db:
            self._prepare(db)
        if self.request_log is not None:
            self.request_log.start()
        if self.webhooks is not None:
            self.webhooks.start()
        state = self.licenses.state()
        log.info("licence: %s. %s", state.state, state.message)
        # Licensed limits cap the devices and worker threads used; nothing else reads them.
        devices = min(self.devices, state.limits.get("max_gpus") or self.devices)
        if self.worker.cluster is not None:
            self.sync_cluster()
            threading.Thread(target=self._cluster_sync_loop, name="cluster-sync", daemon=True).start()
        self.worker.start(devices, max_threads=state.limits.get("max_concurrent_jobs"))
        threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True).start()
        ldap = self.settings.ldap
        if self.directory is not None and self.directory.enabled and ldap.bind_dn and ldap.sync_minutes:
            threading.Thread(target=self._directory_sync, name="directory-sync", daemon=True).start()

    def _prepare(self, db: Any) -> None:
        migrations.apply(db)
        # Audio is never kept on disk, so jobs from a previous run cannot resume.
        jobs.fail_interrupted(db)
        if accounts.count(db) == 0:
            self.setup_code = secrets.token_hex(4)
            log.warning(
                "No account exists yet. Open /setup and enter the setup code %s to create the administrator "
                "(or run: appliance users create-admin --email E --password-stdin).",
                self.setup_code,
            )

    def stop(self) -> None:
        self._stop.set()
        self.worker.stop()
        if self.assistant is not None:
            self.assistant.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        if self.request_log is not None:
            self.request_log.stop()
        self.databases.close()

    def sync_cluster(self) -> None:
        """The issued nodes (`appliance cluster add-node`, drain, remove) and the licence's GPU limit, to
        the dispatcher: the CLI changes the table while the server runs, so it is read again every few seconds."""
        assert self.worker.cluster is not None
        issued = {node.name: node.drained for node in cluster_nodes.all_nodes(self.databases.get())}
        self.worker.cluster.configure(issued, self.licenses.state().limits.get("max_gpus"))
        status = self.worker.cluster.status()
        if status is not None:
            self.cluster_status = status
            write_status(self.settings, status)

    def node_gauges(self) -> list[NodeGauge]:
        status = self.cluster_status
        if status is None:
            return []
        return [
            NodeGauge(
                n.name,
                n.state in ("ready", "starting"),
                n.replicas,
                n.busy,
                tuple((g.index, g.used, g.total) for g in n.gpu_memory),
            )
            for n in status.nodes
        ]

    def _cluster_sync_loop(self) -> None:
        while not self._stop.wait(CLUSTER_SYNC_SECONDS):
            try:
                self.sync_cluster()
            except Exception:
                log.exception("could not update the cluster's nodes")

    def _directory_sync(self) -> None:
        """Directory accounts disabled or removed there are signed out here within sync_minutes."""
        assert self.directory is not None
        while not self._stop.wait(self.settings.ldap.sync_minutes * 60):
            try:
                self.directory.sync(self.databases.get())
            except Exception:
                log.exception("directory sync failed")

    def _housekeeping(self) -> None:
        """Retention, at start and then hourly."""
        while True:
            try:
                r = self.settings.retention
                privacy.apply_retention(
                    self.databases.get(),
                    request_log_days=r.request_log_days,
                    transcript_days=r.transcript_days,
                    audit_pseudonymise_days=r.audit_pseudonymise_days,
                )
            except Exception:
                log.exception("retention run failed")
            if self._stop.wait(3600):
                return


def build(
    settings: Settings,
    recognizer: Recognizer | None = None,
    registry: ModelRegistry | None = None,
    licenses: license_store.LicenseStore | None = None,
    connector: Connector | None = None,
    cluster: Cluster | None = None,
) -> Services:
    """`connector` opens the administrator's named egress exceptions: the broker `serve` forks before the
    egress lock; where no lock is loaded (tests, egress_lock = "off"), the same checks in this process."""
    registry = registry or ModelRegistry(settings.models.models_dir)
    devices = device_count(settings.models)
    capacity = for_settings(settings)
    log.info(
        "transcribing up to %d job(s) at once per device (%d device(s)), %s CPU thread(s) each",
        capacity.workers_per_device,
        devices,
        capacity.cpu_threads or "default",
    )
    recognizer = recognizer or WhisperEngine(
        settings.models, num_workers=capacity.workers_per_device, cpu_threads=capacity.cpu_threads
    )
    databases = Databases(settings.storage.database_path)
    vault = jobs.AudioVault(settings.server.max_audio_memory_bytes, settings.server.max_upload_bytes)
    notifier = JobNotifier()
    engines = DiarizationEngines(settings)
    gauges: list[Callable[[], list[NodeGauge]]] = []  # filled once Services exists (its last status)
    metrics = Metrics(
        lambda: jobs.count_by_state(databases.get()),
        lambda: vault.used,
        gpu_memory,
        lambda: gauges[0]() if gauges else [],
    )
    partials = PartialTexts(notifier.changed)
    worker = Worker(
        settings,
        databases,
        vault,
        recognizer,
        registry,
        engines=engines,
        on_change=notifier.changed,
        metrics=metrics,
        partials=partials,
        workers_per_device=capacity.workers_per_device,
        cluster=cluster,
    )
    limiter = RateLimiter(settings.quotas.requests_per_minute)
    licenses = licenses or license_store.for_settings(
        settings, lambda: license_store.newest_job_time(databases.get()), db=databases.get
    )
    allowed = settings.security.egress_allow
    # Media links go through the broker's media path when there is a broker; here otherwise, with the
    # administrator's list read at each connection.
    media_connector: MediaConnector = (
        connector  # type: ignore[assignment]
        if connector is not None and hasattr(connector, "connect_media")
        else DirectConnector((), lambda: media_links.host_names(databases.get()))
    )
    connector = connector or DirectConnector(map(Destination.parse, allowed))
    sender = WebhookSender(databases, connector, allowed)
    directory = DirectorySignIn(settings, connector, lambda: licenses.state().features)
    oidc = OidcSignIn(settings, connector, lambda: licenses.state().features)
    notifier.listen(sender.job_changed)

    def transcription_busy() -> bool:
        return jobs.transcription_pending(databases.get())

    assistant = Assistant(settings, databases, connector, transcription_busy)
    notifier.listen(assistant.job_changed)
    gate = admission.JobGate(
        admission.Limits(settings.quotas.concurrent_jobs, settings.quotas.concurrent_jobs, settings.worker.max_queued_jobs)
    )
    uploads = UploadIntake(settings, databases, vault, registry, engines, licenses, gate, worker.notify)
    services = Services(
        settings,
        databases,
        vault,
        registry,
        worker,
        notifier,
        engines,
        limiter,
        licenses,
        server_secret(settings.storage.data_dir),
        metrics,
        partials,
        devices,
        RateLimiter(settings.security.address_attempts_per_minute),
        gate,
        uploads=uploads,
        links=LinkImport(uploads, vault, media_links.Fetcher(media_connector, settings.server.link_seconds)),
        request_log=RequestLogWriter(databases),
        webhooks=sender,
        assistant=assistant,
        directory=directory,
        oidc=oidc,
        videos=VideoRenders(vault, settings.server.max_video_renders, settings.server.video_result_minutes * 60),
    )
    gauges.append(services.node_gauges)
    return services


def server_secret(data_dir: Path) -> bytes:
    """A random key made once per appliance (0600 in the data dir)."""
    import os

    path = data_dir / "secret.key"
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()
