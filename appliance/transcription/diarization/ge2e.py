"""A GE2E speaker encoder (3-layer LSTM, 256-d embeddings) run in numpy.

The pretrained weights are Resemblyzer's (`resemblyzer/pretrained.pt`, Apache-2.0, trained on
LibriSpeech, VoxCeleb 1 and 2), installed from PyPI. Only the weights file is used: the forward pass
and the mel front end are re-implemented here so the appliance needs neither torch nor librosa for
its embedded diarization engine. The file is torch's legacy serialisation format, read with a small
restricted unpickler that only materialises tensors (it refuses any other class).
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms window
HOP = 160  # 10 ms step
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s: the utterance length the encoder was trained on
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


class WeightsError(ValueError):
    """The speaker-encoder weights are missing or unreadable."""


def default_weights_path() -> Path | None:
    """Where pip put Resemblyzer's weights. Found without importing the package (its __init__
    imports torch and librosa, which this encoder does not need)."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    return path if path.is_file() else None


# --------------------------------------------------------------------------- weights


class _Storage:
    def __init__(self, dtype: Any, numel: int) -> None:
        self.dtype = np.dtype(dtype)
        self.numel = numel
        self.data: np.ndarray | None = None


@dataclass
class _LazyTensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        assert self.storage.data is not None
        item = self.storage.dtype.itemsize
        base = self.storage.data[self.offset :]
        return np.lib.stride_tricks.as_strided(base, shape=self.size, strides=[s * item for s in self.stride]).copy()


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> _LazyTensor:
    return _LazyTensor(storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(fh)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        raise WeightsError(f"unexpected object {module}.{name} in weights file")

    def persistent_load(self, saved_id: Any) -> _Storage:
        kind, dtype, key, _location, numel, *_view = saved_id
        if kind != "storage":
            raise WeightsError(f"unexpected persistent id {kind!r} in weights file")
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, numel)
        return self.storages[key]


def load_legacy_torch(path: Path) -> dict[str, Any]:
    """Read a torch legacy-format checkpoint into plain dicts of numpy arrays."""
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as fh:
        if pickle.load(fh) != TORCH_LEGACY_MAGIC:
            raise WeightsError(f"{path} is not a torch legacy-format checkpoint")
        pickle.load(fh)  # protocol version
        pickle.load(fh)  # system info
        result = _Unpickler(fh, storages).load()
        for key in pickle.load(fh):
            storage = storages[key]
            (numel,) = struct.unpack("<q", fh.read(8))
            raw = fh.read(numel * storage.dtype.itemsize)
            storage.data = np.frombuffer(raw, dtype=storage.dtype, count=numel)

    def walk(obj: Any) -> Any:
        if isinstance(obj, _LazyTensor):
            return obj.materialise()
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        return obj

    return walk(result)


# --------------------------------------------------------------------------- encoder


def _mel_filters() -> np.ndarray:
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor.get_mel_filters(SAMPLE_RATE, N_FFT, N_MELS).astype(np.float32)


def mel_frames(wav: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Power mel spectrogram (frames, 40): centred Hann STFT, 25 ms / 10 ms, Slaney mel (no log)."""
    padded = np.pad(wav, N_FFT // 2)
    count = 1 + (len(padded) - N_FFT) // HOP
    if count <= 0:
        return np.zeros((0, N_MELS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa uses
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power @ filters.T).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class SpeakerEncoder:
    """Embeds 1.6 s mel windows into L2-normalised 256-d speaker vectors."""

    def __init__(self, weights: Path) -> None:
        from appliance.transcription.weights import SPEAKER_ENCODER, WeightsRefused, check_files, recorded

        try:  # exactly the recorded file: anything else is refused before it is unpickled
            check_files(weights.parent, {weights.name: recorded()[SPEAKER_ENCODER]["pretrained.pt"]}, "the speaker encoder")
        except WeightsRefused as exc:
            raise WeightsError(str(exc)) from None
        try:
            checkpoint = load_legacy_torch(weights)
        except (OSError, pickle.UnpicklingError, struct.error, EOFError) as exc:
            raise WeightsError(f"cannot read speaker-encoder weights {weights}: {exc}") from None
        state = checkpoint.get("model_state", checkpoint)
        self.layers = []
        for k in range(3):
            w_ih = state[f"lstm.weight_ih_l{k}"].T.astype(np.float32)
            w_hh = state[f"lstm.weight_hh_l{k}"].T.astype(np.float32)
            bias = (state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]).astype(np.float32)
            self.layers.append((w_ih, w_hh, bias))
        self.linear_w = state["linear.weight"].T.astype(np.float32)
        self.linear_b = state["linear.bias"].astype(np.float32)
        self.filters = _mel_filters()

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mel windows → (batch, 256) unit vectors."""
        x = mels.astype(np.float32)
        batch, steps, _ = x.shape
        for w_ih, w_hh, bias in self.layers:
            hidden = w_hh.shape[0]
            gates_in = x @ w_ih + bias  # all time steps at once; only the recurrence is sequential
            h = np.zeros((batch, hidden), np.float32)
            c = np.zeros((batch, hidden), np.float32)
            outputs = np.empty((batch, steps, hidden), np.float32)
            for t in range(steps):
                g = gates_in[:, t] + h @ w_hh
                i, f, cell, o = g[:, :hidden], g[:, hidden : 2 * hidden], g[:, 2 * hidden : 3 * hidden], g[:, 3 * hidden :]
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(cell)
                h = _sigmoid(o) * np.tanh(c)
                outputs[:, t] = h
            x = outputs
        raw = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return raw / np.maximum(norms, 1e-8)

    def embed_windows(self, wav: np.ndarray, starts: list[int], length: int = PARTIAL_FRAMES, batch: int = 64) -> np.ndarray:
        """Embed windows of `length` mel frames starting at the given frame indexes."""
        mels = mel_frames(normalise_volume(wav), self.filters)
        if len(mels) < length:
            mels = np.pad(mels, ((0, length - len(mels)), (0, 0)))
        windows = np.stack([mels[min(s, len(mels) - length) : min(s, len(mels) - length) + length] for s in starts])
        return np.concatenate([self.embed_mels(windows[i : i + batch]) for i in range(0, len(windows), batch)])


def normalise_volume(wav: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    """Raise quiet audio to -30 dBFS as the encoder's training data was (never lowers it)."""
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if len(wav) else 0.0
    if rms <= 1e-9:
        return wav
    gain_db = target_dbfs - 20 * np.log10(rms)
    return wav * (10 ** (gain_db / 20)) if gain_db > 0 else wav
