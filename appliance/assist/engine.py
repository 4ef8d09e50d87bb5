"""The text-generation engine behind summaries and questions: one small interface, two implementations.

`LocalEngine` runs a CTranslate2 decoder model (the runtime Whisper already uses here, so one native
dependency, one GPU memory model and one device setting) from a directory in models/, loaded on first use.
`ServerEngine` talks to an on-prem OpenAI-compatible server (vLLM, Ollama, llama.cpp's server) that an
administrator named in `assist.server_url`; its connection goes through the egress connector, so the
kernel egress lock and `security.egress_allow` decide whether it may be opened at all.

A model directory is recognised by its manifest, `sotto-llm.json` (MANIFEST):
    {"kind": "llm", "chat_template": "chatml" | "llama3", "context_length": 8192, "licence": "...", "source": "..."}
beside CTranslate2's `model.bin`, `config.json`, `vocabulary.json` and a `tokenizer.json` (tokenizers' format).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from appliance.core.devices import CPU, DeviceError, gpu_index, parse_device
from appliance.core.egress_broker import Connector
from appliance.transcription.asr import TEXT_MODEL_MANIFEST

MANIFEST = TEXT_MODEL_MANIFEST  # what the Whisper registry skips
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json", MANIFEST)


class EngineError(RuntimeError):
    """The model or the server cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant
    content: str


@dataclass(frozen=True)
class ChatTemplate:
    """How a chat becomes one prompt string, and the token that ends the assistant's turn."""

    name: str
    begin: str
    turn: str  # format with role and content
    assistant_prefix: str
    end_token: str

    def render(self, messages: list[Message], answer_prefix: str = "") -> str:
        body = "".join(self.turn.format(role=m.role, content=m.content) for m in messages)
        return self.begin + body + self.assistant_prefix + answer_prefix


TEMPLATES = {
    "chatml": ChatTemplate("chatml", "", "<|im_start|>{role}\n{content}<|im_end|>\n", "<|im_start|>assistant\n", "<|im_end|>"),
    "llama3": ChatTemplate(
        "llama3",
        "<|begin_of_text|>",
        "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|eot_id|>",
    ),
}


class TextEngine(Protocol):
    name: str

    @property
    def context_length(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self, messages: list[Message], *, max_tokens: int, answer_prefix: str = "", cancelled: Callable[[], bool] = lambda: False
    ) -> Iterator[str]:
        """The assistant's answer as text pieces, as they are generated (greedy: the same input gives
        the same text). `answer_prefix` is put in the model's mouth first (not repeated in the output)."""
        ...


@dataclass(frozen=True)
class LlmInfo:
    name: str
    path: Path
    chat_template: str
    context_length: int
    size_bytes: int
    licence: str = ""
    source: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.name,
            "kind": "llm",
            "source": "models_dir",
            "chat_template": self.chat_template,
            "context_length": self.context_length,
            "size_bytes": self.size_bytes,
            "licence": self.licence,
        }


def inspect_llm_dir(path: Path, name: str | None = None) -> LlmInfo:
    """Check a text-generation model directory without loading it."""
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise EngineError(f"text model directory {path} is incomplete: missing {', '.join(missing)} (see models/README.md)")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(f"{path / MANIFEST} is unreadable: {exc}") from None
    template = str(manifest.get("chat_template", ""))
    if template not in TEMPLATES:
        raise EngineError(f"{path / MANIFEST}: chat_template must be one of {', '.join(TEMPLATES)}, not {template!r}")
    context = manifest.get("context_length")
    if not isinstance(context, int) or context < 256:
        raise EngineError(f"{path / MANIFEST}: context_length must be an integer of at least 256")
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return LlmInfo(
        name or path.name, path, template, context, size, str(manifest.get("licence", "")), str(manifest.get("source", ""))
    )


def scan(models_dir: Path) -> tuple[dict[str, LlmInfo], dict[str, str]]:
    """Text-generation models in models_dir (directories with a manifest), and the broken ones."""
    found: dict[str, LlmInfo] = {}
    problems: dict[str, str] = {}
    if models_dir.is_dir():
        for child in sorted(models_dir.iterdir()):
            if child.name.startswith(".") or not (child / MANIFEST).is_file():
                continue
            try:
                found[child.name] = inspect_llm_dir(child.resolve(), child.name)
            except EngineError as exc:
                problems[child.name] = str(exc)
    return found, problems


def find_model(models_dir: Path, wanted: str) -> LlmInfo:
    """`wanted`: a name in models_dir, a path to a model directory, or "" for the only/first one there."""
    if wanted and ("/" in wanted or wanted.startswith(".")):
        return inspect_llm_dir(Path(wanted).expanduser(), Path(wanted).name)
    found, problems = scan(models_dir)
    if wanted:
        if wanted in found:
            return found[wanted]
        if wanted in problems:
            raise EngineError(problems[wanted])
        raise EngineError(f"no text model {wanted!r} in {models_dir} (found: {', '.join(found) or 'none'})")
    if not found:
        raise EngineError(
            f"no text model is installed: put one in {models_dir} (see models/README.md) or name an on-prem server in assist.server_url"
        )
    return next(iter(found.values()))


def place(device: str, compute_type: str, gpu_count: int) -> tuple[str, str]:
    """Where a text model runs on a machine with `gpu_count` GPUs, and in what precision (LocalEngine.device)."""
    devices = parse_device(device, many=False).devices(gpu_count)
    chosen = devices[-1]  # one named GPU, or the last of all of them
    if compute_type == "auto":
        # int8 weights with float16 activations on a GPU: a quarter of float32's memory beside Whisper.
        compute_type = "int8" if chosen == CPU else "int8_float16"
    return chosen, compute_type


class LocalEngine:
    """A CTranslate2 Generator, loaded on first use. One generation at a time per engine (the model's
    own batch of 1 is fastest for streaming; a second caller waits on the lock)."""

    def __init__(self, info: LlmInfo, *, device: str = "auto", compute_type: str = "auto", cpu_threads: int = 0) -> None:
        self.info = info
        self.name = info.name
        self.template = TEMPLATES[info.chat_template]
        self._device = device
        self._compute_type = compute_type
        self._cpu_threads = cpu_threads
        self._load_lock = threading.Lock()
        self.lock = threading.Lock()  # generation
        self._generator: Any = None
        self._tokenizer: Any = None

    @property
    def context_length(self) -> int:
        return self.info.context_length

    def device(self) -> tuple[str, str]:
        """(device, compute type): "cpu" or one GPU as "cuda:N". `auto` and `cuda` take the last visible GPU:
        recognition keeps a replica on every GPU and speaker detection fills them from cuda:0 upward
        (appliance/core/devices.py), so the last one is where this resident model, and its long
        generations, meet the least of the rest (docs/decisions.md, "GPU placement")."""
        import ctranslate2

        return place(self._device, self._compute_type, ctranslate2.get_cuda_device_count())

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._generator is None:
                import ctranslate2
                from tokenizers import Tokenizer

                try:
                    device, compute = self.device()
                except DeviceError as exc:
                    raise EngineError(f"assist.device: {exc}") from None
                try:
                    self._tokenizer = Tokenizer.from_file(str(self.info.path / "tokenizer.json"))
                    self._generator = ctranslate2.Generator(
                        str(self.info.path),
                        device="cpu" if device == CPU else "cuda",
                        device_index=gpu_index(device),
                        compute_type=compute,
                        intra_threads=self._cpu_threads,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise EngineError(f"cannot load the text model {self.name}: {exc}") from None
            return self._generator, self._tokenizer

    def count_tokens(self, text: str) -> int:
        _, tokenizer = self._load()
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    def stream(
        self, messages: list[Message], *, max_tokens: int, answer_prefix: str = "", cancelled: Callable[[], bool] = lambda: False
    ) -> Iterator[str]:
        generator, tokenizer = self._load()
        prompt = self.template.render(messages, answer_prefix)
        ids = tokenizer.encode(prompt, add_special_tokens=False).ids
        room = self.context_length - len(ids)
        if room < 16:
            raise EngineError(f"the prompt ({len(ids)} tokens) does not fit the model's context of {self.context_length}")
        tokens = [tokenizer.id_to_token(i) for i in ids]
        with self.lock:
            out: list[int] = []
            said = ""
            steps = generator.generate_tokens(
                tokens,
                max_length=min(max_tokens, room),
                sampling_topk=1,
                repetition_penalty=1.1,  # small models loop on their own phrases without it
                end_token=self.template.end_token,
            )
            try:
                for step in steps:
                    if cancelled():
                        return
                    out.append(step.token_id)
                    text = tokenizer.decode(out)
                    # A byte-level token can end in the middle of a UTF-8 character: wait for the rest.
                    if text.endswith("\ufffd"):
                        continue
                    if len(text) > len(said):
                        yield text[len(said) :]
                        said = text
            finally:
                close = getattr(steps, "close", None)
                if close is not None:
                    close()  # stops the decoding loop when the caller stops early (cancel)


class ServerEngine:
    """An on-prem OpenAI-compatible chat server (`/v1/chat/completions`, streamed). The only outbound
    connection the appliance may make for AI, opened by the egress connector (allow-list, broker)."""

    def __init__(self, url: str, model: str, connector: Connector, *, context_length: int = 8192, timeout: float = 120.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise EngineError(f"assist.server_url must be an http(s) URL, not {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base = parts.path.rstrip("/") or "/v1"
        self.model = model
        self.name = f"{model or 'server'}@{self.host}:{self.port}"
        self.connector = connector
        self._context_length = context_length
        self.timeout = timeout

    @property
    def context_length(self) -> int:
        return self._context_length

    def count_tokens(self, text: str) -> int:
        # The server's tokenizer is not here; about 3.5 characters a token is a safe over-estimate for
        # splitting (a chunk that is a little too small costs one more map step, never a refusal).
        return int(len(text) / 3.5) + 1

    def stream(
        self, messages: list[Message], *, max_tokens: int, answer_prefix: str = "", cancelled: Callable[[], bool] = lambda: False
    ) -> Iterator[str]:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if answer_prefix:
            # Servers do not all continue a given assistant turn; asking for the start works everywhere.
            chat[-1] = {"role": chat[-1]["role"], "content": chat[-1]["content"] + f"\nStart your answer with: {answer_prefix}"}
        body = json.dumps(
            {"model": self.model, "messages": chat, "max_tokens": max_tokens, "temperature": 0, "stream": True}
        ).encode()
        try:
            sock = self.connector.connect(self.host, self.port, self.timeout)
        except OSError as exc:
            raise EngineError(f"cannot reach the AI server {self.host}:{self.port}: {exc}") from None
        sock.settimeout(self.timeout)
        if self.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        connection.sock = sock
        try:
            connection.request("POST", self.base + "/chat/completions", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            if response.status != 200:
                raise EngineError(f"the AI server answered HTTP {response.status}")
            started = not answer_prefix
            pending = ""
            for raw in response:
                if cancelled():
                    return
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    delta = json.loads(data)["choices"][0].get("delta", {}).get("content") or ""
                except (ValueError, KeyError, IndexError, TypeError):
                    continue
                if not started:
                    # The prefix was asked for, not forced: drop it if the server repeated it.
                    pending += delta
                    if len(pending) < len(answer_prefix):
                        continue
                    delta = pending[len(answer_prefix) :] if pending.startswith(answer_prefix) else pending
                    started = True
                if delta:
                    yield delta
            if not started and pending:
                yield pending
        except OSError as exc:
            raise EngineError(f"the AI server {self.host}:{self.port} failed: {exc}") from None
        finally:
            connection.close()


def generate(engine: TextEngine, messages: list[Message], *, max_tokens: int, answer_prefix: str = "") -> str:
    return "".join(engine.stream(messages, max_tokens=max_tokens, answer_prefix=answer_prefix))
