"""The numpy GE2E encoder equals the torch model it re-implements, and reads only tensors."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from appliance.transcription.diarization.ge2e import (
    TORCH_LEGACY_MAGIC,
    SpeakerEncoder,
    WeightsError,
    default_weights_path,
    load_legacy_torch,
)


@pytest.fixture(scope="module")
def weights() -> Path:
    path = default_weights_path()
    assert path is not None, "resemblyzer's weights are installed by scripts/test"
    return path


def test_loader_matches_torch_load(weights: Path) -> None:
    torch = pytest.importorskip("torch")  # installed with the pyannote test extra
    ours = load_legacy_torch(weights)["model_state"]
    theirs = torch.load(weights, map_location="cpu", weights_only=False)["model_state"]
    assert set(ours) == set(theirs)
    for key, tensor in theirs.items():
        np.testing.assert_array_equal(ours[key], tensor.numpy())


def test_numpy_forward_equals_torch_lstm(weights: Path) -> None:
    torch = pytest.importorskip("torch")
    state = torch.load(weights, map_location="cpu", weights_only=False)["model_state"]
    lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
    linear = torch.nn.Linear(256, 256)
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
    mels = np.random.default_rng(0).gamma(1.0, 0.05, size=(5, 120, 40)).astype(np.float32)
    with torch.no_grad():
        _, (hidden, _) = lstm(torch.from_numpy(mels))
        raw = torch.relu(linear(hidden[-1]))
        expected = (raw / torch.norm(raw, dim=1, keepdim=True)).numpy()
    got = SpeakerEncoder(weights).embed_mels(mels)
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_loader_refuses_anything_but_tensors(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        for part in (TORCH_LEGACY_MAGIC, 1001, {}):
            pickle.dump(part, fh, protocol=2)
        pickle.dump({"model_state": os.system}, fh, protocol=2)
    with pytest.raises(WeightsError, match="unexpected object"):
        load_legacy_torch(evil)


def test_embeddings_are_unit_vectors(weights: Path, speech_bytes: bytes) -> None:
    from appliance.transcription.audio import decode

    audio = decode(speech_bytes).samples
    emb = SpeakerEncoder(weights).embed_windows(audio, [0, 100, 200])
    assert emb.shape == (3, 256)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert (emb >= 0).all()


def test_mel_front_end_equals_torchaudio_slaney(speech_bytes: bytes) -> None:
    torch = pytest.importorskip("torch")
    torchaudio = pytest.importorskip("torchaudio")
    from appliance.transcription.audio import decode
    from appliance.transcription.diarization.ge2e import _mel_filters, mel_frames

    audio = decode(speech_bytes).samples[:32000]
    transform = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000,
        n_fft=400,
        hop_length=160,
        n_mels=40,
        power=2.0,
        center=True,
        pad_mode="constant",
        mel_scale="slaney",
        norm="slaney",
    )
    expected = transform(torch.from_numpy(audio)).numpy().T
    got = mel_frames(audio, _mel_filters())
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)
