"""The engines: the local CTranslate2 one on the real converted model (streaming, token counts, the
manifest check), and the on-prem server one against a loopback stub, reachable only when allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.assist.engine import (
    EngineError,
    LocalEngine,
    Message,
    ServerEngine,
    find_model,
    generate,
    inspect_llm_dir,
    place,
    scan,
)
from appliance.core.egress_broker import Destination, DirectConnector
from tests.support import ChatServerStub


def test_the_converted_model_answers_sensibly(llm_dir: Path) -> None:
    engine = LocalEngine(inspect_llm_dir(llm_dir))
    answer = generate(engine, [Message("user", "What is the capital of France?")], max_tokens=20)
    assert "Paris" in answer
    assert engine.count_tokens("Hello world") == 2 and engine.context_length == 8192
    manifest = json.loads((llm_dir / "sotto-llm.json").read_text())
    assert manifest["chat_template"] == "chatml" and manifest["licence"] == "apache-2.0"


def test_the_text_model_goes_to_the_last_gpu_unless_one_is_named() -> None:
    # With several GPUs it keeps out of the way of recognition and speaker detection (which fill from cuda:0).
    assert place("auto", "auto", 3) == ("cuda:2", "int8_float16")
    assert place("cuda", "float16", 2) == ("cuda:1", "float16")
    assert place("cuda:0", "auto", 3) == ("cuda:0", "int8_float16")
    assert place("auto", "auto", 1) == ("cuda:0", "int8_float16")
    # No GPU: the CPU as before.
    assert place("auto", "auto", 0) == ("cpu", "int8")
    assert place("cpu", "auto", 4) == ("cpu", "int8")


def test_a_gpu_the_machine_lacks_is_refused_in_plain_words(llm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 2)
    engine = LocalEngine(inspect_llm_dir(llm_dir), device="cuda:2")
    with pytest.raises(EngineError, match=r"assist\.device: cuda:2 was asked for, but only 2 GPU"):
        engine.count_tokens("hello")


def test_model_directories_are_checked_before_loading(llm_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "good").symlink_to(llm_dir, target_is_directory=True)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sotto-llm.json").write_text('{"chat_template": "chatml", "context_length": 4096}')
    found, problems = scan(tmp_path)
    assert list(found) == ["good"] and "missing model.bin" in problems["broken"]
    assert find_model(tmp_path, "").name == "good"
    with pytest.raises(EngineError, match="no text model 'nope'"):
        find_model(tmp_path, "nope")
    with pytest.raises(EngineError, match="no text model is installed"):
        find_model(tmp_path / "empty", "")


def test_the_on_prem_server_is_used_only_when_allowed() -> None:
    with ChatServerStub("The release ships on Friday [4].") as stub:
        allowed = DirectConnector([Destination.parse(f"127.0.0.1:{stub.port}")])
        engine = ServerEngine(f"http://127.0.0.1:{stub.port}/v1", "llama-3-8b", allowed)
        pieces = list(engine.stream([Message("user", "Summarise")], max_tokens=50))
        assert len(pieces) > 1 and "".join(pieces) == "The release ships on Friday [4]."
        assert stub.requests[0]["model"] == "llama-3-8b" and stub.requests[0]["stream"] is True
        # With the prefix asked for and repeated by the server, it is not said twice.
        stub.answer = '{"summary": "Ship Friday."}'
        assert "".join(engine.stream([Message("user", "x")], max_tokens=10, answer_prefix='{"summary": "')) == 'Ship Friday."}'
        refused = ServerEngine(f"http://127.0.0.1:{stub.port}/v1", "m", DirectConnector([]))
        with pytest.raises(EngineError, match="not on this appliance's egress allow-list"):
            list(refused.stream([Message("user", "x")], max_tokens=5))
        assert len(stub.requests) == 2
