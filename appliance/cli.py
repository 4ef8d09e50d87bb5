"""The `appliance` command: serve, transcribe offline, list models, check the installation."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import sqlite3
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer

from appliance import __version__
from appliance.core import egress
from appliance.core.config import ConfigError, Settings, load
from appliance.transcription.upload_options import UploadOptions

app = typer.Typer(help="Sotto: the air-gapped transcription appliance.", no_args_is_help=True, add_completion=False)
models_app = typer.Typer(help="Models this appliance can run.", no_args_is_help=True)
app.add_typer(models_app, name="models")
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="apikeys")
license_app = typer.Typer(help="The offline licence: request, install, status.", no_args_is_help=True)
app.add_typer(license_app, name="license")
remote_app = typer.Typer(help="Use an appliance over the network (its API), from any machine.", no_args_is_help=True)
app.add_typer(remote_app, name="remote")
assist_app = typer.Typer(help="Local AI: text models for summaries and questions.", no_args_is_help=True)
app.add_typer(assist_app, name="assist")
cluster_app = typer.Typer(help="Cluster mode: this control node's GPU worker nodes.", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")


@app.callback()
def _private_files() -> None:
    """Every file the appliance creates (database, WAL, licence state, keys) is readable by its own user
    only, on bare-metal installs too (the container's data volume belongs to that user alone)."""
    os.umask(0o077)


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML settings file (default: $APPLIANCE_CONFIG, else built-in defaults).", show_default=False
    ),
]


# The job options every door offers (appliance/transcription/options.py KNOWN): the API's fields, here as
# flags of `transcribe` and `remote transcribe`. JOB_OPTION_FLAGS says which flag carries which field;
# tests/test_cli.py checks that every field has one (priority and private only where a server is used).
# `models` (several at once, to compare) is the web UI's and the API's: the CLI writes one transcript a file.
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name (see `appliance models list`).")]
LanguageOpt = Annotated[str | None, typer.Option("--language", help="Language code, or 'auto' to detect.")]
TaskOpt = Annotated[str, typer.Option("--task", help="transcribe, or translate (to English).")]
PromptOpt = Annotated[
    str | None, typer.Option("--prompt", help="Text the recognition starts from: names and terms to expect, the style to follow.")
]
HotwordsOpt = Annotated[str | None, typer.Option("--hotwords", help="Custom vocabulary: words and names to favour.")]
BeamOpt = Annotated[int | None, typer.Option("--beam-size", min=1, max=20, help="Beam search width (default 5).")]
TemperatureOpt = Annotated[
    float | None, typer.Option("--temperature", min=0.0, max=1.0, help="Sampling temperature (default: fallback).")
]
VadOpt = Annotated[bool | None, typer.Option("--vad/--no-vad", help="Skip silence before recognition (default on).")]
WordsOpt = Annotated[bool | None, typer.Option("--word-timestamps/--no-word-timestamps", help="Time every word (default on).")]
SentencesOpt = Annotated[
    bool | None,
    typer.Option("--sentences/--decoder-segments", help="Sentence-sized segments (default), or the decoder's own."),
]
DiarizeOpt = Annotated[bool, typer.Option("--diarize", help="Label who speaks when.")]
EngineOpt = Annotated[
    str | None, typer.Option("--engine", help="Diarization engine: pyannote, embedded or channel (default: auto).")
]
SpeakersOpt = Annotated[int | None, typer.Option("--speakers", help="Exact number of speakers, if known.")]
MinSpeakersOpt = Annotated[int | None, typer.Option("--min-speakers", help="At least this many speakers.")]
MaxSpeakersOpt = Annotated[int | None, typer.Option("--max-speakers", help="At most this many speakers.")]
ChannelNamesOpt = Annotated[
    str | None,
    typer.Option("--channel-names", help="With --engine channel: who is on each channel, e.g. agent,customer."),
]
JOB_OPTION_FLAGS = {
    "model": "--model",
    "language": "--language",
    "task": "--task",
    "initial_prompt": "--prompt",
    "hotwords": "--hotwords",
    "beam_size": "--beam-size",
    "temperature": "--temperature",
    "vad_filter": "--vad",
    "word_timestamps": "--word-timestamps",
    "sentences": "--sentences",
    "diarize": "--diarize",
    "diarization_engine": "--engine",
    "num_speakers": "--speakers",
    "min_speakers": "--min-speakers",
    "max_speakers": "--max-speakers",
    "channel_names": "--channel-names",
    "priority": "--priority",
    "private": "--private",
}


def _check_format(fmt: str, output: Path | None) -> None:
    """Refuse an unknown export format, or a binary one with nowhere to write it, before any work."""
    from appliance.transcripts import exports

    if fmt not in exports.FORMATS:
        raise _fail(f"unknown format {fmt!r}; choose one of {', '.join(exports.FORMATS)}", 2)
    if fmt not in exports.TEXT_FORMATS and output is None:
        raise _fail(f"--format {fmt} writes a binary file: give --output PATH", 2)


def _job_options(**given: Any) -> UploadOptions:
    """The upload options from the flags that were given (None: not given, so the default holds)."""
    names = {
        "model": "model",
        "language": "language",
        "task": "task",
        "prompt": "initial_prompt",
        "hotwords": "hotwords",
        "beam_size": "beam_size",
        "temperature": "temperature",
        "vad": "vad_filter",
        "word_timestamps": "word_timestamps",
        "sentences": "sentences",
        "priority": "priority",
        "private": "private",
    }
    raw = {names[k]: v for k, v in given.items() if k in names and v is not None}
    if given.get("diarize"):
        raw.update(
            diarize=True,
            diarization_engine=given.get("engine"),
            num_speakers=given.get("speakers"),
            min_speakers=given.get("min_speakers"),
            max_speakers=given.get("max_speakers"),
            channel_names=given.get("channel_names"),
        )
        raw = {k: v for k, v in raw.items() if v is not None}
    elif any(given.get(k) for k in ("engine", "speakers", "min_speakers", "max_speakers", "channel_names")):
        raise _fail("--engine, --channel-names and the speaker counts need --diarize", 2)
    return UploadOptions.of(raw)


def _settings(config: Path | None) -> Settings:
    try:
        return load(config)
    except ConfigError as exc:
        typer.secho(f"configuration error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default from settings: 8000).")] = None,
) -> None:
    """Run the web UI, the API and the transcription workers."""
    settings = _settings(config)
    changes = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if changes:
        try:
            settings = settings.replace("server", **changes)
        except ConfigError as exc:
            raise _fail(f"configuration error: {exc}", 2) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Order matters: the offline environment and the cache paths before any library is imported, the
    # listeners before the egress lock (which forbids new sockets), the lock before the app loads models.
    from appliance.core import confinement

    egress.install()
    try:
        moved = confinement.confine(settings.storage.data_dir)
    except confinement.ConfinementError as exc:
        raise _fail(f"refusing to start: {exc}", 2) from None
    logging.getLogger("appliance").info("home and cache paths inside the data dir: %s", ", ".join(sorted(moved)) or "already")
    from appliance.core import tls
    from appliance.web.server import listen

    server_host, server_port = settings.server.host, settings.server.port
    cert = key = None
    if tls.wanted(settings):
        cert, key = tls.ensure_certificate(settings)
    try:
        listener = listen(server_host, server_port)
        redirect = (
            listen(server_host, settings.security.http_redirect_port) if cert and settings.security.http_redirect_port else None
        )
    except OSError as exc:
        raise _fail(f"cannot listen on {server_host}:{server_port}: {exc.strerror}", 2) from None
    _preload_before_lock()
    # The administrator's named exceptions: a broker forked before the lock, so the lock never binds the
    # one process that may connect out, and that process connects only to the listed hosts (the
    # configuration's security.egress_allow) and to the media hosts (listed at run time, so the broker is
    # always there; it reads that list itself from the database at each media connection).
    from appliance.core.egress_broker import Broker, Destination
    from appliance.integrations.media_links import host_names_in_file

    database = str(settings.storage.database_path)
    broker = Broker(map(Destination.parse, settings.security.egress_allow), lambda: host_names_in_file(database))
    broker.start()
    cluster = None
    if settings.cluster.enabled:
        # The dispatcher (the cluster's only Ray driver) and the head: started before the lock, since
        # Ray opens sockets to the worker nodes as they come; this process still never does.
        from appliance.cluster.client import Cluster, ClusterError

        cluster = Cluster(settings)
        try:
            cluster.start()
        except ClusterError as exc:
            raise _fail(f"refusing to start: {exc}", 2) from None
    _lock_egress(settings)

    import uvicorn

    from appliance.web.app import create_app
    from appliance.web.server import BackgroundServer, server_config

    scheme = "https" if cert else "http"
    uv_config = server_config(
        create_app(settings, connector=broker, cluster=cluster), server_host, server_port, certfile=cert, keyfile=key
    )
    typer.echo(
        f"Sotto appliance {__version__} on {scheme}://{server_host}:{server_port}  (data: {settings.storage.data_dir}"
        + (f", certificate: {cert})" if cert else ")")
    )
    if redirect is not None:
        # Plain HTTP only answers with a redirect to HTTPS; it dies with the main server (daemon thread).
        BackgroundServer(
            tls.redirect_app(server_port, tls.certificate_names(cert) if cert else set()),
            host=server_host,
            port=settings.security.http_redirect_port,
            lifespan="off",
            sock=redirect,
        ).__enter__()
    uvicorn.Server(uv_config).run(sockets=[listener])


def _preload_before_lock() -> None:
    """Modules that open a socket as a side effect of being imported, without sending anything: imported
    before the lock, so that the lock's refusal count stays a signal (0 in normal operation).
    urllib3 (under pyannote's metrics exporter) binds a socket to ::1 at import to learn whether the
    host has IPv6."""
    import importlib

    for name in ("urllib3.util.connection",):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _lock_egress(settings: Settings) -> None:
    from appliance.core import egress_lock

    log = logging.getLogger("appliance")
    if settings.security.egress_lock == "off":
        log.warning(
            'the kernel egress lock is OFF (security.egress_lock = "off"): only the in-process guard '
            "stops outbound connections from Python code; native code is not covered"
        )
        return
    try:
        lock = egress_lock.install(egress_lock.state_path(settings.storage.data_dir))
    except egress_lock.LockError as exc:
        raise _fail(
            f"refusing to start: the kernel egress lock could not be applied: {exc}. Set "
            f'security.egress_lock = "off" only if this host cannot run seccomp filters.',
            2,
        ) from None
    log.info(
        "kernel egress lock active (%s): no thread or child of this process can open a network socket",
        "refusals counted" if lock.mode == "counted" else "refusals not counted on this kernel",
    )


@app.command()
def transcribe(
    files: Annotated[list[Path], typer.Argument(help="Audio or video files.", exists=True, dir_okay=False, readable=True)],
    config: ConfigOption = None,
    model: ModelOpt = None,
    language: LanguageOpt = None,
    task: TaskOpt = "transcribe",
    prompt: PromptOpt = None,
    hotwords: HotwordsOpt = None,
    beam_size: BeamOpt = None,
    temperature: TemperatureOpt = None,
    vad: VadOpt = None,
    word_timestamps: WordsOpt = None,
    sentences: SentencesOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="txt, srt, vtt, json, md, csv, docx or pdf (docx/pdf need --output).")
    ] = "txt",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (a directory when several inputs).")
    ] = None,
    diarize: DiarizeOpt = False,
    engine: EngineOpt = None,
    speakers: SpeakersOpt = None,
    min_speakers: MinSpeakersOpt = None,
    max_speakers: MaxSpeakersOpt = None,
    channel_names: ChannelNamesOpt = None,
    export_option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-O",
            help="Export option KEY=VALUE, e.g. timestamps=false, max_chars_per_line=32, vtt_voice_tags=false (repeatable).",
        ),
    ] = None,
) -> None:
    """Transcribe files offline, with no server; prints the transcript or writes it to --output."""
    from appliance.core.db import connect
    from appliance.core.migrations import apply
    from appliance.transcription import pipeline
    from appliance.transcription.asr import ModelRegistry, WhisperEngine
    from appliance.transcription.audio import AudioError
    from appliance.transcription.diarization import DiarizationError
    from appliance.transcription.diarization.engines import DiarizationEngines
    from appliance.transcription.options import OptionsError, parse
    from appliance.transcripts import exports
    from appliance.transcripts import store as transcripts

    egress.install()
    _check_format(fmt, output)
    try:
        export_options = exports.ExportOptions.parse(dict(o.split("=", 1) for o in export_option or [] if "=" in o))
    except exports.OptionsError as exc:
        raise _fail(f"error: {exc}", 2) from None
    if any("=" not in o for o in export_option or []):
        raise _fail("error: --option takes KEY=VALUE", 2)
    settings = _settings(config)
    registry = ModelRegistry(settings.models.models_dir)
    raw = _job_options(
        model=model,
        language=language,
        task=task,
        prompt=prompt,
        hotwords=hotwords,
        beam_size=beam_size,
        temperature=temperature,
        vad=vad,
        word_timestamps=word_timestamps,
        sentences=sentences,
        diarize=diarize,
        engine=engine,
        speakers=speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        channel_names=channel_names,
    )
    engines = DiarizationEngines(settings)
    try:
        options = parse(raw.fields(), settings, registry, engines)
    except OptionsError as exc:
        raise _fail(f"error: {exc}", 2) from None
    if len(files) > 1 and output is not None and output.exists() and not output.is_dir():
        raise _fail("with several input files, --output must be a directory", 2)
    asr_engine = WhisperEngine(settings.models)
    # The same store/read code as the server, on a database that lives only in memory, so the
    # JSON here is exactly the API's transcript document and nothing is written to disk.
    db = connect(Path(":memory:"))
    apply(db)
    failures = 0
    for path in files:
        data = path.read_bytes()
        try:
            with _progress_bar(path.name) as report:
                outputs = pipeline.run(
                    data, options, asr_engine, report, lambda: False, engines, max_seconds=settings.server.max_audio_seconds
                )
        except (AudioError, OptionsError, DiarizationError) as exc:
            typer.secho(f"{path}: {exc}", err=True, fg=typer.colors.RED)
            failures += 1
            continue
        for out in outputs:
            transcript_id = transcripts.store(
                db,
                out.result,
                job_id=None,
                filename=path.name,
                size_bytes=len(data),
                model=out.model.name,
                options=options.stored(),
                timings=out.timings,
                speakers=out.speakers,
                diarization=out.diarization,
            )
            doc = transcripts.get(db, transcript_id)
            assert doc is not None  # stored a line above, in this process
            export = exports.render(doc, fmt, export_options)
            _emit(export.content, path, fmt, output, several=len(files) > 1)
    if failures:
        raise typer.Exit(1)


def _emit(content: bytes, source: Path, fmt: str, output: Path | None, several: bool) -> None:
    if output is None:
        sys.stdout.write(content.decode("utf-8"))
        sys.stdout.flush()
        return
    target = output / f"{source.stem}.{fmt}" if several or output.is_dir() else output
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    typer.echo(f"wrote {target}", err=True)


class _progress_bar:
    """A progress bar on stderr when it is a terminal; silent otherwise (pipes, CI)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.progress: Any = None

    def __enter__(self) -> Any:
        from appliance.transcription.pipeline import Progress

        if sys.stderr.isatty():
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self.progress = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                transient=True,
            )
            self.progress.start()
            task = self.progress.add_task(self.label, total=1.0)

            def report(p: Progress) -> None:
                self.progress.update(task, completed=p.fraction, description=f"{self.label} ({p.stage})")

            return report
        return lambda p: None

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


@models_app.command("list")
def models_list(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List installed models, and any model directory that is incomplete."""
    from appliance.assist import engine as text_models
    from appliance.transcription.asr import ModelRegistry

    settings = _settings(config)
    models, problems = ModelRegistry(settings.models.models_dir).scan()
    llms, llm_problems = text_models.scan(settings.models.models_dir)
    problems = {**problems, **llm_problems}
    if as_json:
        listed = [m.describe() for m in models.values()] + [m.describe() for m in llms.values()]
        typer.echo(json.dumps({"models": listed, "problems": problems}, indent=2))
        return
    for name, info in models.items():
        marker = "*" if name == settings.models.default_model else " "
        langs = "multilingual" if info.multilingual else "English-only"
        source = f"{info.source} @ {info.revision}" if info.revision else info.source
        typer.echo(f"{marker} {name:<24} {langs:<13} {info.size_bytes / 1e6:>8.1f} MB  {source}")
    for name, llm in llms.items():
        typer.echo(
            f"  {name:<24} {'text (AI)':<13} {llm.size_bytes / 1e6:>8.1f} MB  context {llm.context_length}, {llm.chat_template}"
        )
    for name, problem in problems.items():
        typer.secho(f"! {name}: {problem}", fg=typer.colors.YELLOW)
    if not models:
        raise _fail(f"no usable model found (models directory: {settings.models.models_dir})")


@models_app.command("import")
def models_import(
    pack: Annotated[Path, typer.Argument(help="The model pack (.tar or .tar.zst) from Sotto.", dir_okay=False)],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Verify a signed model pack, unpack it beside the current model, smoke-test it, then switch to it."""
    from appliance.distribution import model_packs, selftest

    settings = _settings(config)
    egress.install()
    try:
        result = model_packs.import_pack(
            settings.models.models_dir, pack, model_packs.trusted_keys(), selftest.smoke_tester(settings)
        )
    except model_packs.PackError as exc:
        raise _fail(f"not imported (the current model is unchanged): {exc}") from None
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    if result.previous == f"{result.name}@{result.revision}":
        typer.echo(f"{result.previous} is already in use (its files were checked again)")
        return
    was = f" (was {result.previous}; `appliance models rollback {result.name}` goes back)" if result.previous else ""
    typer.echo(f"imported {result.name}@{result.revision}: smoke test passed, now in use{was}")


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="The model name, e.g. large-v3.")],
    config: ConfigOption = None,
) -> None:
    """Switch a model back to the version in use before the last import."""
    from appliance.distribution import model_packs

    settings = _settings(config)
    try:
        version = model_packs.rollback(settings.models.models_dir, name)
    except model_packs.PackError as exc:
        raise _fail(f"not rolled back: {exc}") from None
    typer.echo(f"{name} now uses {version}")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def diagnose(settings: Settings) -> dict[str, Any]:
    """What `doctor` reports: device, CUDA, models, versions, data directory."""
    import ctranslate2

    from appliance.transcription.asr import ModelRegistry, resolve_device

    report: dict[str, Any] = {"appliance": __version__, "python": platform.python_version(), "platform": platform.platform()}
    report["versions"] = {
        d: _version(d) for d in ("faster-whisper", "ctranslate2", "av", "litestar", "sqlite-utils", "numpy", "onnxruntime")
    }
    report["versions"]["sqlite"] = sqlite3.sqlite_version
    cuda_devices = ctranslate2.get_cuda_device_count()
    device, compute = resolve_device(settings.models)
    report["device"] = {
        "selected": device,
        "compute_type": compute,
        "cuda_devices": cuda_devices,
        "cuda_compute_types": sorted(ctranslate2.get_supported_compute_types("cuda")) if cuda_devices else [],
        "cudnn": _cudnn_version() if cuda_devices else None,
        "cpu_cores": os.cpu_count(),
    }
    models, problems = ModelRegistry(settings.models.models_dir).scan()
    report["models"] = {
        "dir": str(settings.models.models_dir),
        "found": sorted(models),
        "problems": problems,
        "default": settings.models.default_model,
        "default_available": settings.models.default_model in models,
    }
    from appliance.transcription.diarization.engines import DiarizationEngines

    engines = DiarizationEngines(settings)
    report["diarization"] = {"default": engines.default_name(), "engines": engines.status()}
    data_dir = settings.storage.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
        writable = True
    except OSError:
        writable = False
    report["data_dir"] = {"path": str(data_dir), "writable": writable}
    report["offline"] = {k: os.environ.get(k) for k in egress.OFFLINE_ENV}
    report["egress_lock"] = egress_lock_report(settings)
    from appliance.distribution import sbom
    from appliance.transcription import weights

    # The bill of materials this installation was built with (its digest matches the bundle's manifest),
    # and how each model's weights are vouched for.
    report["sbom"] = sbom.report(Path(os.environ.get("SOTTO_SBOM_DIR") or sbom.SBOM_DIR))
    report["models"]["weights"] = {
        name: "recorded digests"
        if info.source == "embedded"
        else ("signed pack manifest" if weights.is_pack(info.path) else "unverified")
        for name, info in models.items()
    }
    report["assist"] = assist_report(settings)
    report["ok"] = writable and report["models"]["default_available"] and report["egress_lock"]["ok"]
    return report


def _ai_line(ai: dict[str, Any]) -> str:
    """doctor's AI engine line: what summaries and questions would run on, or why they cannot."""
    if not ai["enabled"]:
        return "AI engine: switched off (assist.enabled = false)"
    if ai["server"]:
        where = f"AI engine: on-prem server {ai['server']} configured"
        return where if ai["server_allowed"] else f"{where}, NOT reachable: {ai['detail']}"
    if ai.get("model"):
        return f"AI engine: text model {ai['model']} present (context {ai['context_length']} tokens), runs on this appliance"
    return f"AI engine: no text model or server ({ai['detail']}): summaries and questions are unavailable"


def assist_report(settings: Settings) -> dict[str, Any]:
    """Local AI: which text model (or on-prem server) summaries would use, and whether the egress
    allow-list lets the server be reached (it is the only outbound connection AI may make)."""
    from appliance.assist.engine import EngineError, find_model
    from appliance.core.egress_broker import Destination

    a = settings.assist
    out: dict[str, Any] = {"enabled": a.enabled, "server": a.server_url or None}
    if a.server_url:
        from urllib.parse import urlsplit

        parts = urlsplit(a.server_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        allowed = {Destination.parse(x) for x in settings.security.egress_allow}
        out["server_allowed"] = Destination((parts.hostname or "").lower(), port) in allowed
        out["detail"] = (
            f"summaries use the on-prem server {parts.hostname}:{port}"
            if out["server_allowed"]
            else f"assist.server_url names {parts.hostname}:{port}, which is not in security.egress_allow: add it there"
        )
        return out
    try:
        info = find_model(settings.models.models_dir, a.model)
        out.update(
            model=info.name, context_length=info.context_length, detail=f"summaries run on this appliance with {info.name}"
        )
    except EngineError as exc:
        out.update(model=None, detail=str(exc))
    return out


def egress_lock_report(settings: Settings) -> dict[str, Any]:
    """The running server's egress lock, checked from outside: its record in the data dir, and the
    kernel's own word (/proc/<pid>/status) that a seccomp filter holds that process."""
    from appliance.core import egress_lock

    wanted = settings.security.egress_lock == "on"
    record = egress_lock.read_state_file(egress_lock.state_path(settings.storage.data_dir))
    if record is None:
        return {
            "wanted": wanted,
            "server_running": False,
            "active": None,
            "refused": None,
            "ok": True,
            "detail": "no server has run on this data dir yet",
        }
    pid = int(record.get("server_pid") or 0)
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return {
            "wanted": wanted,
            "server_running": False,
            "active": None,
            "refused": record.get("refused"),
            "ok": True,
            "detail": f"the server (pid {pid}) is not running on this host or in this container",
        }
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    active = fields.get("Seccomp", "").strip() == "2" and int(fields.get("Seccomp_filters", "0").strip() or 0) >= 1
    return {
        "wanted": wanted,
        "server_running": True,
        "server_pid": pid,
        "active": active,
        "mode": record.get("mode"),
        "refused": record.get("refused"),
        "recent": record.get("recent", []),
        "ok": active or not wanted,
        "detail": "kernel seccomp filter in force" if active else "the server runs WITHOUT the egress lock",
    }


def _cudnn_version() -> str | None:
    import ctypes

    for name in ("libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        return str(lib.cudnnGetVersion())
    return None


@app.command()
def doctor(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    selftest: Annotated[
        bool,
        typer.Option(
            "--selftest",
            help="Load every model, transcribe and diarize a bundled "
            "clip, and print a JSON report (versions, hashes, timings, egress log).",
        ),
    ] = False,
) -> None:
    """Check the installation: device, CUDA/cuDNN, models, versions, data directory."""
    egress.install()
    if selftest:
        from appliance.distribution import selftest as checks

        result = checks.run(_settings(config))
        typer.echo(json.dumps(result, indent=2))
        if not result["ok"]:
            raise typer.Exit(1)
        return
    report = diagnose(_settings(config))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        dev = report["device"]
        typer.echo(f"appliance {report['appliance']}  python {report['python']}  {report['platform']}")
        typer.echo(
            f"device: {dev['selected']} ({dev['compute_type']}), CUDA devices: {dev['cuda_devices']}, cuDNN: {dev['cudnn'] or 'n/a'}, CPU cores: {dev['cpu_cores']}"
        )
        typer.echo("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v))
        m = report["models"]
        typer.echo(
            f"models in {m['dir']}: {', '.join(m['found']) or 'none'} (default {m['default']}: {'available' if m['default_available'] else 'MISSING'})"
        )
        for name, problem in m["problems"].items():
            typer.secho(f"  ! {name}: {problem}", fg=typer.colors.YELLOW)
        for name, problem in report["diarization"]["engines"].items():
            typer.echo(f"diarization {name}: {'available' if problem is None else problem}")
        d = report["data_dir"]
        typer.echo(f"data dir {d['path']}: {'writable' if d['writable'] else 'NOT WRITABLE'}")
        lock = report["egress_lock"]
        if lock["server_running"]:
            refused = "not counted on this kernel" if lock["refused"] is None else f"{lock['refused']} refused"
            typer.echo(
                f"egress lock: {'ACTIVE' if lock['active'] else 'NOT ACTIVE'} on server pid {lock['server_pid']} "
                f"({lock['detail']}; {refused})"
            )
        else:
            typer.echo(f"egress lock: {lock['detail']} ({'required' if lock['wanted'] else 'turned off'} at start)")
        typer.echo(_ai_line(report["assist"]))
        s = report["sbom"]
        typer.echo(f"sbom: {s['path']} sha256 {s['sha256']}" if s["present"] else f"sbom: {s['detail']}")
        typer.echo("status: " + ("ok" if report["ok"] else "PROBLEMS FOUND"))
    if not report["ok"]:
        raise typer.Exit(1)


@app.command()
def worker(
    join: Annotated[str, typer.Option(help="The control node's cluster address, HOST:PORT (port: cluster.port, 6379).")],
    keys: Annotated[Path, typer.Option(help="This node's key file, from `appliance cluster add-node` on the control node.")],
    address: Annotated[
        str | None, typer.Option(help="This node's IP address on the cluster network (default: the one in the key file).")
    ] = None,
    slots: Annotated[
        int | None, typer.Option(help="Model replicas on this node (default: one per GPU; on a CPU, by cores).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run this machine as a GPU worker node of a control node's cluster (cluster mode)."""
    from appliance.cluster import worker_node
    from appliance.cluster.keys import ClusterKeyError
    from appliance.cluster.ray_node import NodeError
    from appliance.core import confinement

    settings = _settings(config)
    try:
        confinement.confine(settings.storage.data_dir)
        node = worker_node.prepare(settings, keys, join, address, slots)
    except (confinement.ConfinementError, ClusterKeyError, NodeError, worker_node.JoinError) as exc:
        raise _fail(f"cannot join: {exc}", 2) from None
    typer.echo(f"joining {join} as worker node {node.name} ({node.address}): {node.slots} replica(s), {node.gpus} GPU(s)")
    sys.stdout.flush()
    worker_node.run(node)


@cluster_app.command("add-node")
def cluster_add_node(
    name: Annotated[str, typer.Argument(help="A short name for the node, e.g. gpu-2.")],
    address: Annotated[str, typer.Option(help="The node's IP address on the cluster network.")],
    out: Annotated[Path, typer.Option(help="Where to write the node's key file (a secret: carry it to the node).")],
    config: ConfigOption = None,
) -> None:
    """Issue a worker node's key file (mutual TLS); the node joins with `appliance worker --keys FILE`."""
    import re

    from appliance.accounts import audit
    from appliance.cluster import nodes
    from appliance.cluster.keys import Authority, ClusterKeyError

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", name):
        raise _fail("a node name is 1-41 lower-case letters, digits and hyphens, starting with a letter or digit", 2)
    settings = _settings(config)
    try:
        issued = Authority(settings.storage.data_dir / "cluster").issue(name, address)
    except ClusterKeyError as exc:
        raise _fail(str(exc), 2) from None
    issued.to_file(out)
    db = _database(config)
    nodes.add(db, name, address, issued.fingerprint, issued.expires_at.isoformat())
    audit.record(db, "cluster.node_added", actor="cli", target=name)
    typer.echo(f"wrote {out} for node {name} ({address}); valid until {issued.expires_at:%Y-%m-%d}.")
    typer.echo(
        f"On the node: appliance worker --join {settings.cluster.address or '<control address>'}:{settings.cluster.port} --keys {out.name}"
    )


@cluster_app.command("nodes")
def cluster_nodes(config: ConfigOption = None) -> None:
    """The worker nodes: issued keys, and (while the server runs) their state, replicas, jobs and GPU memory."""
    from appliance.cluster import nodes
    from appliance.cluster.client import read_status

    settings = _settings(config)
    live = read_status(settings)
    by_name = {n.name: n for n in live.nodes} if live else {}
    issued = nodes.all_nodes(_database(config))
    if not issued:
        typer.echo("no worker nodes yet: add one with `appliance cluster add-node NAME --address IP --out FILE`")
    for node in issued:
        status = by_name.get(node.name)
        state = status.state if status else ("drained" if node.drained else "unknown (server not running)")
        detail = ""
        if status:
            detail = f" {status.gpus} GPU(s), {status.busy}/{status.replicas} replicas busy, {status.jobs_done} jobs done"
            for gpu in status.gpu_memory:
                detail += f", GPU {gpu.index}: {gpu.used / 2**30:.1f}/{gpu.total / 2**30:.1f} GiB"
        typer.echo(f"{node.name:<16} {node.address:<16} {state:<10}{detail}  (key expires {node.expires_at[:10]})")
    if live and live.unknown_nodes:
        typer.echo(f"connected without an issued name: {', '.join(live.unknown_nodes)} (given no work)")


@cluster_app.command("rotate-ca")
def cluster_rotate_ca(
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: every node's key file stops working.")] = False,
    config: ConfigOption = None,
) -> None:
    """Make a new cluster CA: every node's key file stops working (issue each again with add-node, then
    restart the server and every worker). The way to cut off a lost or stolen key file at once."""
    from appliance.accounts import audit
    from appliance.cluster import nodes
    from appliance.cluster.keys import Authority

    if not yes:
        raise _fail("this stops every node's key file from working; run again with --yes to go ahead", 2)
    settings = _settings(config)
    Authority(settings.storage.data_dir / "cluster").rotate()
    db = _database(config)
    audit.record(db, "cluster.ca_rotated", actor="cli")
    names = [node.name for node in nodes.all_nodes(db)]
    typer.echo("new cluster CA made. Restart the server, then for each node run add-node again and restart it:")
    for name in names:
        typer.echo(f"  appliance cluster add-node {name} --address <its address> --out {name}.sotto-node")


def _set_drained(config: Path | None, name: str, drained: bool) -> None:
    from appliance.accounts import audit
    from appliance.cluster import nodes

    db = _database(config)
    if not nodes.set_drained(db, name, drained):
        raise _fail(f"no node {name} (see `appliance cluster nodes`)", 1)
    audit.record(db, "cluster.node_drained" if drained else "cluster.node_resumed", actor="cli", target=name)


@cluster_app.command("drain")
def cluster_drain(name: Annotated[str, typer.Argument(help="The node's name.")], config: ConfigOption = None) -> None:
    """Give a node no new work (its running jobs finish); then it is safe to stop for maintenance."""
    _set_drained(config, name, True)
    typer.echo(f"{name}: draining. It takes no new jobs; `appliance cluster nodes` shows 'drained' once its jobs ended.")


@cluster_app.command("resume")
def cluster_resume(name: Annotated[str, typer.Argument(help="The node's name.")], config: ConfigOption = None) -> None:
    """Give a drained node work again."""
    _set_drained(config, name, False)
    typer.echo(f"{name}: takes work again.")


@cluster_app.command("remove-node")
def cluster_remove_node(name: Annotated[str, typer.Argument(help="The node's name.")], config: ConfigOption = None) -> None:
    """Give a node no more work and forget it. Its key file stays valid until it expires: to cut it off at
    once, make a new cluster CA (docs/operator-guide.md, "Cluster mode")."""
    from appliance.accounts import audit
    from appliance.cluster import nodes

    db = _database(config)
    if not nodes.remove(db, name):
        raise _fail(f"no node {name} (see `appliance cluster nodes`)", 1)
    audit.record(db, "cluster.node_removed", actor="cli", target=name)
    typer.echo(f"{name}: removed; it gets no more work.")


def _database(config: Path | None) -> Any:
    from appliance.core import migrations
    from appliance.core.db import connect

    settings = _settings(config)
    db = connect(settings.storage.database_path)
    migrations.apply(db)
    return db


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _create_user(config: Path | None, email: str, role: str, password_stdin: bool) -> None:
    from appliance.accounts import audit
    from appliance.accounts import users as accounts

    db = _database(config)
    limit = _licenses(config).limit("max_users")
    if limit and accounts.count(db) >= limit:
        raise _fail(f"the licence allows {limit} users; this appliance has reached it", 2)
    try:
        user = accounts.create(db, email, _read_password(password_stdin), role)
    except accounts.AccountError as exc:
        raise _fail(f"error: {exc}", 2) from None
    audit.record(db, "user.created", actor="cli", target=user.email, detail={"role": role})
    typer.echo(f"created {role} {user.email} ({user.id})")


@users_app.command("create-admin")
def users_create_admin(
    email: Annotated[str, typer.Option(help="The administrator's e-mail address.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")] = False,
    config: ConfigOption = None,
) -> None:
    """Create an administrator (the first account, or another one)."""
    _create_user(config, email, "admin", password_stdin)


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="E-mail address.")],
    role: Annotated[str, typer.Option(help="admin, member or viewer.")] = "member",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")] = False,
    config: ConfigOption = None,
) -> None:
    """Create a user."""
    _create_user(config, email, role, password_stdin)


@users_app.command("list")
def users_list(config: ConfigOption = None) -> None:
    """List users."""
    from appliance.accounts import users as accounts

    for user in accounts.list_all(_database(config)):
        state = "disabled" if user["disabled"] else "active"
        typer.echo(f"{user['email']:<40} {user['role']:<7} {state:<8} last sign-in: {user['last_login_at'] or 'never'}")


@users_app.command("disable")
def users_disable(email: Annotated[str, typer.Argument(help="E-mail address.")], config: ConfigOption = None) -> None:
    """Disable a user and end their sessions (their data stays)."""
    from appliance.accounts import audit, sessions
    from appliance.accounts import users as accounts

    db = _database(config)
    user = accounts.by_email(db, email)
    if user is None:
        raise _fail(f"no user {email}", 1)
    accounts.set_disabled(db, user.id, True)
    sessions.end_all(db, user.id)
    audit.record(db, "user.disabled", actor="cli", target=user.email)
    typer.echo(f"disabled {user.email}")


@keys_app.command("create")
def apikeys_create(
    user: Annotated[str, typer.Option("--user", help="The owner's e-mail address.")],
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "API key",
    scope: Annotated[str, typer.Option(help="read, transcribe or admin.")] = "transcribe",
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Keep the transcripts of its OpenAI-compatible requests.")
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Create an API key and print it (this is the only time it is shown)."""
    from appliance.accounts import apikeys, audit, authz
    from appliance.accounts import users as accounts

    db = _database(config)
    owner = accounts.by_email(db, user)
    if owner is None:
        raise _fail(f"no user {user}", 1)
    if scope not in authz.LEVEL or authz.LEVEL[scope] > authz.LEVEL[authz.ROLE_SCOPE[owner.role]]:
        raise _fail(f"scope must be read, transcribe or admin, and no more than a {owner.role} has", 2)
    key, record = apikeys.create(db, owner.id, name, scope, store=store)
    audit.record(db, "apikey.created", actor="cli", target=record["id"], detail={"scope": scope, "store": store})
    typer.echo(key)


def _licenses(config: Path | None) -> Any:
    from appliance.licensing import store as license_store

    settings = _settings(config)
    db = _database(config)
    return license_store.for_settings(settings, lambda: license_store.newest_job_time(db), db=lambda: db)


@license_app.command("request")
def license_request(
    key: Annotated[str, typer.Option("--key", help="The licence key from your order.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the request.")] = Path("activation-request.json"),
    config: ConfigOption = None,
) -> None:
    """Write activation-request.json to carry to Sotto (no secrets inside)."""
    from appliance.licensing.licence import FingerprintError, LicenseError

    try:
        made = _licenses(config).request(key)
    except (LicenseError, FingerprintError) as exc:
        raise _fail(f"error: {exc}") from None
    out.write_text(json.dumps(made, indent=2))
    typer.echo(f"wrote {out}: send it to Sotto and install the licence file you get back")


@license_app.command("install")
def license_install(
    file: Annotated[Path, typer.Argument(help="The licence file (license.lic).", exists=True, dir_okay=False)],
    config: ConfigOption = None,
) -> None:
    """Install a licence file (a renewal replaces an older one)."""
    from appliance.accounts import audit
    from appliance.licensing.licence import FingerprintError, LicenseError

    try:
        state = _licenses(config).install(file.read_text(encoding="utf-8", errors="replace"))
    except (LicenseError, FingerprintError) as exc:
        raise _fail(f"not installed: {exc}") from None
    audit.record(_database(config), "license.installed", actor="cli", detail={"state": state.state})
    typer.echo(f"installed: {state.state}. {state.message}")


@license_app.command("status")
def license_status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """State, days left, features, limits and the machine fingerprint summary."""
    state = _licenses(config).state()
    if as_json:
        typer.echo(json.dumps(state.as_dict(), indent=2))
        return
    typer.echo(
        f"state: {state.state}  ({'new transcriptions allowed' if state.allows_new_jobs else 'new transcriptions paused'})"
    )
    typer.echo(state.message)
    if state.days_left is not None:
        typer.echo(f"days left: {state.days_left}")
    typer.echo(f"features: {', '.join(state.features) or 'none'}")
    typer.echo(f"limits: {', '.join(f'{k}={v}' for k, v in state.limits.items()) or 'none'}")
    if state.fingerprint:
        typer.echo(f"machine: {state.fingerprint}")


@license_app.command("correct-clock")
def license_correct_clock(
    confirm_now: Annotated[
        str,
        typer.Option(
            "--confirm-now",
            help="The current UTC date and time from a trusted clock, "
            "e.g. 2026-12-03T14:05Z; it must agree with this machine's clock.",
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """After the clock had run ahead and was set right: forget the time it showed (audited)."""
    from appliance.accounts import audit
    from appliance.licensing.store import ClockCorrectionRefused

    licenses = _licenses(config)
    try:
        made = licenses.correct_clock(confirm_now)
    except ClockCorrectionRefused as exc:
        raise _fail(str(exc), 2) from None
    audit.record(_database(config), "license.clock_corrected", actor="cli", detail=made)
    typer.echo(
        f"clock mark reset to {made['corrected_to']} (discarded {made['discarded_mark']}); "
        f"licence state: {licenses.state().state}"
    )


@remote_app.command("video")
def remote_video(
    transcript_id: Annotated[str, typer.Argument(help="The transcript whose subtitles go on the video.")],
    video: Annotated[
        Path,
        typer.Argument(
            help="The video file (sent again: the appliance keeps no media).", exists=True, dir_okay=False, readable=True
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to save the result (.mp4 or .mkv).")],
    url: Annotated[str, typer.Option(help="The appliance, e.g. https://sotto.example:8443")],
    api_key: Annotated[str, typer.Option(envvar="SOTTO_API_KEY", help="An API key (or $SOTTO_API_KEY).")],
    kind: Annotated[
        str | None,
        typer.Option(help="burn (into the picture, MP4; the default), mp4 (a subtitle track), mkv-srt or mkv-ass."),
    ] = None,
    size: Annotated[str | None, typer.Option(help="Text size: small, medium or large.")] = None,
    position: Annotated[str | None, typer.Option(help="bottom or top.")] = None,
    speakers: Annotated[bool | None, typer.Option("--speakers/--no-speakers", help="Speaker names before each turn.")] = None,
    max_chars_per_line: Annotated[int | None, typer.Option(help="Characters per subtitle line, 10 to 200.")] = None,
    ca_cert: Annotated[Path | None, typer.Option(help="Trust this certificate (the appliance's self-signed one).")] = None,
) -> None:
    """Put a transcript's subtitles on a video: rendered on the appliance, in memory, and saved here."""
    from appliance.client import SottoClient, SottoError
    from appliance.transcripts.exports import OptionsError
    from appliance.transcripts.exports.video import VideoOptions

    chosen = {"kind": kind, "size": size, "position": position, "speakers": speakers, "max_chars_per_line": max_chars_per_line}
    given = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in chosen.items() if v is not None}
    try:
        options = VideoOptions.parse(given)  # refused here, before the video is sent
    except OptionsError as exc:
        raise _fail(str(exc), 2) from None
    if output.suffix.lower() != f".{options.extension}":
        typer.secho(f"note: the result is {options.extension.upper()}, saved as {output}", err=True)
    with SottoClient(url, api_key, verify=str(ca_cert) if ca_cert else True) as sotto:
        try:
            with _progress_bar(video.name) as report:

                def progress(render: dict[str, Any]) -> None:
                    from appliance.transcription.pipeline import Progress

                    report(Progress("rendering", render.get("progress", 0.0), None, None))

                done = sotto.video(transcript_id, video, output, progress=progress, **given)
        except SottoError as exc:
            raise _fail(f"{video}: {exc.detail}") from None
        except httpx_errors() as exc:
            raise _fail(f"cannot reach {url}: {exc}") from None
    typer.echo(f"{output} ({done['size_bytes']} bytes)")


@remote_app.command("transcribe")
def remote_transcribe(
    files: Annotated[list[Path], typer.Argument(help="Audio or video files.", exists=True, dir_okay=False, readable=True)],
    url: Annotated[str, typer.Option(help="The appliance, e.g. https://sotto.example:8443")],
    api_key: Annotated[str, typer.Option(envvar="SOTTO_API_KEY", help="An API key (or $SOTTO_API_KEY).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="txt, srt, vtt, json, md, csv, docx or pdf.")] = "txt",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File, or a directory when several inputs.")] = None,
    model: ModelOpt = None,
    language: LanguageOpt = None,
    task: TaskOpt = "transcribe",
    prompt: PromptOpt = None,
    hotwords: HotwordsOpt = None,
    beam_size: BeamOpt = None,
    temperature: TemperatureOpt = None,
    vad: VadOpt = None,
    word_timestamps: WordsOpt = None,
    sentences: SentencesOpt = None,
    diarize: DiarizeOpt = False,
    engine: EngineOpt = None,
    speakers: SpeakersOpt = None,
    min_speakers: MinSpeakersOpt = None,
    max_speakers: MaxSpeakersOpt = None,
    channel_names: ChannelNamesOpt = None,
    priority: Annotated[
        int | None, typer.Option("--priority", min=-10, max=10, help="Queue priority, -10 to 10 (default 0).")
    ] = None,
    private: Annotated[
        bool,
        typer.Option(
            "--private",
            help="Seal each result to your public key as recognition ends "
            "(turn private transcripts on in your account first). The server cannot "
            "export it: open the printed link and unlock it in your browser.",
        ),
    ] = False,
    ca_cert: Annotated[Path | None, typer.Option(help="Trust this certificate (the appliance's self-signed one).")] = None,
) -> None:
    """Upload files to an appliance, show progress, and print or save the transcripts."""
    from appliance.client import SottoClient, SottoError

    _check_format(fmt, output)
    options = _job_options(
        model=model,
        language=language,
        task=task,
        prompt=prompt,
        hotwords=hotwords,
        beam_size=beam_size,
        temperature=temperature,
        vad=vad,
        word_timestamps=word_timestamps,
        sentences=sentences,
        diarize=diarize,
        engine=engine,
        speakers=speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        channel_names=channel_names,
        priority=priority,
        private=private or None,
    )
    failures = 0
    with SottoClient(url, api_key, verify=str(ca_cert) if ca_cert else True) as sotto:
        for path in files:
            try:
                with _progress_bar(path.name) as report:

                    def progress(job: dict[str, Any], report: Any = report) -> None:
                        from appliance.transcription.pipeline import Progress

                        report(
                            Progress(
                                job.get("stage") or job["state"],
                                job.get("progress", 0.0),
                                job.get("duration"),
                                job.get("eta_seconds"),
                            )
                        )

                    doc = sotto.transcribe(path, progress=progress, options=options)
                if private:  # only the owner's browser can open it
                    typer.echo(f"{path}: private transcript {url.rstrip('/')}/t/{doc.id}")
                    continue
                content = sotto.export(doc.id, fmt)
            except SottoError as exc:
                typer.secho(f"{path}: {exc.detail}", err=True, fg=typer.colors.RED)
                failures += 1
                continue
            except httpx_errors() as exc:
                raise _fail(f"cannot reach {url}: {exc}") from None
            _emit(content, path, fmt, output, several=len(files) > 1)
    if failures:
        raise typer.Exit(1)


@remote_app.command("import-link")
def remote_import_link(
    link: Annotated[
        str, typer.Argument(help="An http(s) link to a recording, or to a page with one, on a media host the appliance lists.")
    ],
    url: Annotated[str, typer.Option(help="The appliance, e.g. https://sotto.example:8443")],
    api_key: Annotated[str, typer.Option(envvar="SOTTO_API_KEY", help="An API key (or $SOTTO_API_KEY).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="txt, srt, vtt, json, md, csv, docx or pdf.")] = "txt",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the transcript to this file.")] = None,
    keep_source: Annotated[
        bool, typer.Option("--keep-source", help="Name the transcript by the link (otherwise the link is not kept).")
    ] = False,
    model: ModelOpt = None,
    language: LanguageOpt = None,
    task: TaskOpt = "transcribe",
    prompt: PromptOpt = None,
    hotwords: HotwordsOpt = None,
    beam_size: BeamOpt = None,
    temperature: TemperatureOpt = None,
    vad: VadOpt = None,
    word_timestamps: WordsOpt = None,
    sentences: SentencesOpt = None,
    diarize: DiarizeOpt = False,
    engine: EngineOpt = None,
    speakers: SpeakersOpt = None,
    min_speakers: MinSpeakersOpt = None,
    max_speakers: MaxSpeakersOpt = None,
    channel_names: ChannelNamesOpt = None,
    priority: Annotated[
        int | None, typer.Option("--priority", min=-10, max=10, help="Queue priority, -10 to 10 (default 0).")
    ] = None,
    ca_cert: Annotated[Path | None, typer.Option(help="Trust this certificate (the appliance's self-signed one).")] = None,
) -> None:
    """Have an appliance fetch a recording from an intranet media link, show progress, print or save the transcript."""
    from appliance.client import SottoClient, SottoError

    _check_format(fmt, output)
    options = _job_options(
        model=model,
        language=language,
        task=task,
        prompt=prompt,
        hotwords=hotwords,
        beam_size=beam_size,
        temperature=temperature,
        vad=vad,
        word_timestamps=word_timestamps,
        sentences=sentences,
        diarize=diarize,
        engine=engine,
        speakers=speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        channel_names=channel_names,
        priority=priority,
    )
    with SottoClient(url, api_key, verify=str(ca_cert) if ca_cert else True) as sotto:
        try:
            job = sotto.import_link(link, options, keep_source=keep_source)
            with _progress_bar(job["filename"]) as report:

                def progress(job: dict[str, Any]) -> None:
                    from appliance.transcription.pipeline import Progress

                    report(
                        Progress(
                            job.get("stage") or job["state"],
                            job.get("progress", 0.0),
                            job.get("duration"),
                            job.get("eta_seconds"),
                        )
                    )

                done = sotto.wait(job["job_id"], progress)
            content = sotto.export(done["transcript_id"], fmt)
        except SottoError as exc:
            raise _fail(f"{link}: {exc.detail}") from None
        except httpx_errors() as exc:
            raise _fail(f"cannot reach {url}: {exc}") from None
    from urllib.parse import urlsplit

    _emit(content, Path(Path(urlsplit(link).path).name or "link"), fmt, output, several=False)


@assist_app.command("convert-gguf")
def assist_convert_gguf(
    source: Annotated[Path, typer.Argument(help="A Llama-family instruct model as a GGUF file.", exists=True, dir_okay=False)],
    target: Annotated[Path, typer.Argument(help="The model directory to make (in the models directory, say).")],
    quantization: Annotated[str, typer.Option(help="CTranslate2 weight type: int8, int8_float16, float16, ...")] = "int8",
    context_length: Annotated[int | None, typer.Option(help="Use less than the model's own context (saves memory).")] = None,
) -> None:
    """Convert a GGUF model to a text model this appliance runs (offline, with its own runtime)."""
    from appliance.assist.convert import convert_gguf
    from appliance.assist.engine import EngineError

    try:
        manifest = convert_gguf(source, target, quantization=quantization, context_length=context_length)
    except EngineError as exc:
        raise _fail(f"error: {exc}", 2) from None
    typer.echo(f"wrote {target} ({manifest['chat_template']}, context {manifest['context_length']}) in {manifest['seconds']} s")


@app.command()
def summarize(
    target: Annotated[str, typer.Argument(help="A transcript id (this appliance's data, or --url's), or an audio/video file.")],
    config: ConfigOption = None,
    language: Annotated[str | None, typer.Option(help="Write the summary in this language (default: the transcript's).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md or json.")] = "md",
    url: Annotated[str | None, typer.Option(help="Ask a running appliance (its API) instead of working here.")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="SOTTO_API_KEY", help="With --url: an API key.")] = None,
) -> None:
    """Summarise a transcript (stored as a new version) or a file (transcribed and summarised in memory,
    nothing stored), with cited moments; prints Markdown or the summary's JSON."""
    import msgspec

    from appliance.assist import store as summaries_store
    from appliance.assist import summaries
    from appliance.assist.engine import EngineError, LocalEngine, ServerEngine, TextEngine, find_model
    from appliance.core.egress_broker import Destination, DirectConnector

    if fmt not in {"md", "json"}:
        raise _fail("error: --format must be md or json", 2)
    if url:
        from appliance.client import SottoClient, SottoError

        if not api_key:
            raise _fail("error: --url needs --api-key (or SOTTO_API_KEY)", 2)
        with SottoClient(url, api_key) as client:
            try:
                latest = client.summarize(target, language=language, on_text=_echo_live)
                doc = client.transcript(target)
            except SottoError as exc:
                raise _fail(f"error: {exc.detail}") from None
        stored = msgspec.convert(latest, summaries_store.StoredSummary)
        typer.echo(
            summaries.to_markdown(stored.summary, doc) if fmt == "md" else json.dumps(latest, ensure_ascii=False, indent=2)
        )
        return
    settings = _settings(config)
    a = settings.assist
    try:
        engine: TextEngine = (
            ServerEngine(a.server_url, a.server_model, DirectConnector(map(Destination.parse, settings.security.egress_allow)))
            if a.server_url
            else LocalEngine(find_model(settings.models.models_dir, a.model), device=a.device, compute_type=a.compute_type)
        )
    except EngineError as exc:
        raise _fail(f"error: {exc}") from None
    path = Path(target)
    if path.is_file():
        doc = _transcribe_in_memory(settings, path)
        db = None
    else:
        from appliance.transcripts import store as transcripts

        db = _database(config)
        found = transcripts.get(db, target)
        if found is None:
            raise _fail(f"error: no transcript {target!r} here, and no such file")
        if found.private:
            raise _fail("error: a private transcript cannot be read by the appliance, so it cannot be summarised here")
        doc = found
    try:
        result = summaries.summarize(
            doc,
            engine,
            language=language,
            max_new_tokens=a.max_new_tokens,
            action_step=a.action_step,
            progress=summaries.Progress(on_text=_echo_live),
        )
    except EngineError as exc:
        raise _fail(f"error: {exc}") from None
    if db is not None:
        version = summaries_store.add(db, doc.id, result, origin="generated", user_id=None)
        typer.echo(f"stored as summary version {version}", err=True)
    typer.echo(summaries.to_markdown(result, doc) if fmt == "md" else msgspec.json.encode(result).decode())


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    config: ConfigOption = None,
    user: Annotated[
        str | None, typer.Option(help="Answer from the transcripts this account may see (working on this appliance's data).")
    ] = None,
    language: Annotated[str | None, typer.Option(help="Answer in this language (default: the question's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The answer document as JSON.")] = False,
    url: Annotated[str | None, typer.Option(help="Ask a running appliance (its API) instead of working here.")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="SOTTO_API_KEY", help="With --url: an API key.")] = None,
) -> None:
    """Ask a question across the library: answered from the transcripts a person may see, with the
    moments it comes from (never from a private transcript, never from another person's)."""
    import msgspec

    if url:
        from appliance.client import SottoClient, SottoError

        if not api_key:
            raise _fail("error: --url needs --api-key (or SOTTO_API_KEY)", 2)
        with SottoClient(url, api_key) as client:
            try:
                out = client.ask_library(question, language=language)
            except SottoError as exc:
                raise _fail(f"error: {exc.detail}") from None
    else:
        from appliance.accounts import users as accounts
        from appliance.accounts import workspaces
        from appliance.app.assistant import Assistant, NotAllowed
        from appliance.assist.engine import EngineError
        from appliance.core.db import Databases
        from appliance.core.egress_broker import Destination, DirectConnector

        if not user:
            raise _fail("error: say whose transcripts to search with --user EMAIL (or ask a running appliance with --url)", 2)
        if not question.strip() or len(question) > 1000:
            raise _fail("error: ask a question of 1 to 1000 characters", 2)
        settings = _settings(config)
        db = _database(config)
        person = accounts.by_email(db, user)
        if person is None:
            raise _fail(f"error: no account {user!r} on this appliance")
        visible = [w["id"] for w in workspaces.for_user(db, person.id)]
        databases = Databases(settings.storage.database_path)
        assistant = Assistant(settings, databases, DirectConnector(map(Destination.parse, settings.security.egress_allow)))
        try:
            out = msgspec.to_builtins(assistant.ask_library(question, workspace_ids=visible, language=language))
        except (EngineError, NotAllowed) as exc:
            raise _fail(f"error: AI is not available: {exc}") from None
        finally:
            databases.close()
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    typer.echo(out["answer"])
    for c in out["citations"]:
        typer.echo(f"  [{c['title']} {_clock(c['start'])}] {c['text']}")


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def _echo_live(text: str) -> None:
    """The summary as the model writes it, on a terminal's stderr only (stdout stays the clean result)."""
    if sys.stderr.isatty():
        sys.stderr.write(text)
        sys.stderr.flush()


def _transcribe_in_memory(settings: Settings, path: Path) -> Any:
    """Transcribe a file here with the default model, in a database that lives only in memory."""
    from appliance.core.db import connect
    from appliance.core.migrations import apply
    from appliance.transcription import pipeline
    from appliance.transcription.asr import ModelRegistry, WhisperEngine
    from appliance.transcription.audio import AudioError
    from appliance.transcription.options import parse
    from appliance.transcripts import store as transcripts

    options = parse({}, settings, ModelRegistry(settings.models.models_dir))
    db = connect(Path(":memory:"))
    apply(db)
    data = path.read_bytes()
    try:
        with _progress_bar(path.name) as report:
            out = pipeline.run(
                data,
                options,
                WhisperEngine(settings.models),
                report,
                lambda: False,
                None,
                max_seconds=settings.server.max_audio_seconds,
            )[0]
    except AudioError as exc:
        raise _fail(f"{path}: {exc}") from None
    tid = transcripts.store(
        db, out.result, job_id=None, filename=path.name, size_bytes=len(data), model=out.model.name, options={}, timings={}
    )
    return transcripts.get(db, tid)


@app.command("mcp")
def mcp(
    url: Annotated[str, typer.Option(help="The appliance whose API the tools use, e.g. https://sotto.example:8443")],
    api_key: Annotated[
        str | None, typer.Option(envvar="SOTTO_API_KEY", help="The API key of every tool call over stdio (or $SOTTO_API_KEY).")
    ] = None,
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio; each caller sends its own API key.")
    ] = False,
    host: Annotated[str, typer.Option(help="With --http: the address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --http: the port.")] = 8765,
    ca_cert: Annotated[Path | None, typer.Option(help="Trust this certificate (the appliance's self-signed one).")] = None,
) -> None:
    """A Model Context Protocol server for AI assistants: transcribe, list, search, read and export
    transcripts through the appliance's API, with the API key's rights (docs/mcp.md)."""
    from urllib.parse import urlsplit

    from appliance import mcp_server

    # The no-egress guard, opened for the configured appliance only: no other host can be reached.
    appliance_host = urlsplit(url).hostname
    if not appliance_host:
        raise _fail(f"--url {url!r} names no host", 2)
    egress.install()
    egress.allow(appliance_host)
    if http:
        egress.allow(host)  # the address it listens on: uvicorn looks it up to bind
    verify: bool | str = str(ca_cert) if ca_cert else True
    if http:
        if api_key:
            raise _fail("--http takes no --api-key: each HTTP caller sends its own (Authorization: Bearer)", 2)
        typer.echo(f"MCP over HTTP on http://{host}:{port}/mcp, for the appliance at {url}", err=True)
        mcp_server.serve_http(url, host=host, port=port, verify=verify)
        return
    if not api_key:
        raise _fail("give --api-key (or $SOTTO_API_KEY): every tool call is made with it", 2)
    mcp_server.serve_stdio(url, api_key, verify=verify)


def httpx_errors() -> tuple[type[Exception], ...]:
    import httpx

    return (httpx.TransportError,)


if __name__ == "__main__":  # pragma: no cover
    app()
