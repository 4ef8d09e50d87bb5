"""The objects one running appliance shares between its web handlers and its worker."""

from __future__ import annotations

from dataclasses import dataclass

from appliance import jobs, migrations
from appliance.asr import ModelRegistry, Recognizer, WhisperEngine, device_count
from appliance.config import Settings
from appliance.db import Databases
from appliance.diarization.engines import DiarizationEngines
from appliance.notify import JobNotifier
from appliance.worker import Worker


@dataclass
class Services:
    settings: Settings
    databases: Databases
    vault: jobs.AudioVault
    registry: ModelRegistry
    worker: Worker
    notifier: JobNotifier
    engines: DiarizationEngines
    devices: int = 1

    def start(self) -> None:
        db = self.databases.get()
        migrations.apply(db)
        # Audio is never kept on disk, so jobs from a previous run cannot resume.
        jobs.fail_interrupted(db)
        self.worker.start(self.devices)

    def stop(self) -> None:
        self.worker.stop()
        self.databases.close()


def build(settings: Settings, recognizer: Recognizer | None = None, registry: ModelRegistry | None = None) -> Services:
    registry = registry or ModelRegistry(settings.models.models_dir)
    devices = device_count(settings.models)
    recognizer = recognizer or WhisperEngine(settings.models, num_workers=settings.worker.workers_per_device)
    databases = Databases(settings.storage.database_path)
    vault = jobs.AudioVault(settings.server.max_audio_memory_bytes, settings.server.max_upload_bytes)
    notifier = JobNotifier()
    engines = DiarizationEngines(settings)
    worker = Worker(settings, databases, vault, recognizer, registry, engines=engines, on_change=notifier.changed)
    return Services(settings, databases, vault, registry, worker, notifier, engines, devices)
