"""Test support: build an offline, randomly-initialised clone of the *layout* of
pyannote's ``speaker-diarization-community-1`` pipeline (pyannote.audio 4.x).

Nothing is downloaded: every artefact is created locally from code that ships
with pyannote.audio.  The weights are random, so the diarization output is
meaningless, but the directory can be loaded with

    >>> from pyannote.audio import Pipeline
    >>> pipeline = Pipeline.from_pretrained(target)

and exercises exactly the same code path as the real community-1 pipeline
(PyanNet powerset segmentation -> WeSpeaker ResNet34 embeddings -> VBx/PLDA
clustering).

Layout produced::

    target/
      config.yaml                       pipeline config ($model/... references)
      segmentation/pytorch_model.bin    PyanNet (segmentation-3.0 architecture)
      embedding/pytorch_model.bin       WeSpeakerResNet34 (256-d embeddings)
      plda/xvec_transform.npz           mean1 (256,), mean2 (128,), lda (256, 128)
      plda/plda.npz                     mu (128,), tr (128, 128), psi (128,)

How loading works in pyannote.audio 4.0.x (read from its source):

* ``Pipeline.from_pretrained(dir)`` reads ``dir/config.yaml`` and rewrites every
  string value ``"$model/<sub>"`` into ``{"checkpoint": Path(dir),
  "subfolder": "<sub>", ...}`` (``core/pipeline.py::expand_subfolders``).
* ``Model.from_pretrained(checkpoint=dir, subfolder=sub)`` loads
  ``dir/sub/pytorch_model.bin`` when ``dir`` is a local directory.  That file
  is a (Lightning-style) checkpoint dict: ``state_dict``, ``hyper_parameters``
  (constructor kwargs), ``pytorch-lightning_version`` and a ``pyannote.audio``
  entry with ``versions``, ``architecture`` (module/class) and
  ``specifications``.  No extra config file is needed next to it.
* ``PLDA.from_pretrained(dir, subfolder="plda")`` loads
  ``dir/plda/xvec_transform.npz`` (keys mean1, mean2, lda) and
  ``dir/plda/plda.npz`` (keys mu, tr, psi); see ``utils/vbx.py::vbx_setup``.

Only torch, numpy, yaml and pyannote.audio are used.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch
import yaml

# Community-1-like pipeline configuration (pyannote.audio 4 format).
PIPELINE_CONFIG = {
    "dependencies": {"pyannote.audio": "4.0.0"},
    "pipeline": {
        "name": "pyannote.audio.pipelines.SpeakerDiarization",
        "params": {
            "clustering": "VBxClustering",
            "segmentation": "$model/segmentation",
            "segmentation_batch_size": 32,
            "embedding": "$model/embedding",
            "embedding_batch_size": 32,
            "embedding_exclude_overlap": True,
            "plda": "$model/plda",
        },
    },
    "params": {
        "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8},
        "segmentation": {"min_duration_off": 0.0},
    },
}

EMBEDDING_DIM = 256  # WeSpeaker ResNet34 output dimension
LDA_DIM = 128  # PLDA default lda_dimension in pyannote.audio.core.plda.PLDA


def _lightning_version() -> str:
    try:
        import lightning

        return lightning.__version__
    except Exception:  # pragma: no cover - lightning is a pyannote dependency
        return "2.0.0"


def _save_pyannote_checkpoint(model, path: pathlib.Path) -> None:
    """Save `model` in the checkpoint format expected by Model.from_pretrained."""
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": _lightning_version(),
    }
    # adds checkpoint["pyannote.audio"] = {versions, architecture, specifications}
    model.on_save_checkpoint(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)


def _make_segmentation(path: pathlib.Path) -> None:
    """PyanNet with pyannote/segmentation-3.0 hyper-parameters (powerset, 3 spk, 10 s)."""
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    model = PyanNet(
        sincnet={"stride": 10},
        lstm={
            "hidden_size": 128,
            "num_layers": 4,
            "bidirectional": True,
            "monolithic": True,
            "dropout": 0.5,
        },
        linear={"hidden_size": 128, "num_layers": 2},
        sample_rate=16000,
        num_channels=1,
    )
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=10.0,
        min_duration=None,
        warm_up=(0.0, 0.0),
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    # build() adds the task-dependent classifier (128 -> 7 powerset classes)
    model.setup()
    # A randomly initialised PyanNet produces (almost) frame-independent
    # logits, so its argmax is one constant powerset class.  If that class is
    # the empty set {} the pipeline exits early (no embeddings, no clustering);
    # if it is a 2-speaker class there are no "clean" single-speaker frames and
    # VBx gets no training embeddings.  Nudge the classifier bias towards the
    # single-speaker classes {0}, {1}, {2} (powerset indices 1..3) so that the
    # whole segmentation -> embedding -> PLDA/VBx path is exercised.  The
    # output is still meaningless.
    with torch.no_grad():
        model.classifier.bias[0] -= 5.0
        model.classifier.bias[1:4] += 3.0
    model.eval()
    _save_pyannote_checkpoint(model, path)


def _make_embedding(path: pathlib.Path) -> None:
    """WeSpeakerResNet34 (as in pyannote/wespeaker-voxceleb-resnet34-LM)."""
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    model = WeSpeakerResNet34()
    # same specifications as pyannote's models/embedding/wespeaker/convert.py
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
    model.eval()
    _save_pyannote_checkpoint(model, path)


def _random_orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _make_plda(folder: pathlib.Path, rng: np.random.Generator) -> None:
    """Random but well-conditioned x-vector transform + PLDA (VBx format)."""
    folder.mkdir(parents=True, exist_ok=True)

    # xvec_transform.npz: x -> sqrt(D) * l2norm(lda.T @ (sqrt(E) * l2norm(x - mean1)) - mean2)
    mean1 = (0.1 * rng.standard_normal(EMBEDDING_DIM)).astype(np.float64)
    lda = _random_orthogonal(rng, EMBEDDING_DIM)[:, :LDA_DIM]  # (256, 128)
    mean2 = (0.1 * rng.standard_normal(LDA_DIM)).astype(np.float64)
    np.savez(folder / "xvec_transform.npz", mean1=mean1, mean2=mean2, lda=lda)

    # plda.npz: mu (D,), tr (D, D) invertible, psi (D,) > 0 (between-class variances)
    mu = (0.1 * rng.standard_normal(LDA_DIM)).astype(np.float64)
    tr = _random_orthogonal(rng, LDA_DIM)
    psi = np.sort(rng.uniform(0.5, 50.0, size=LDA_DIM))[::-1].copy()
    np.savez(folder / "plda.npz", mu=mu, tr=tr, psi=psi)


def build_random_pipeline_dir(target: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """Create a randomly initialised community-1-shaped pipeline directory.

    Parameters
    ----------
    target : pathlib.Path
        Directory to create (parents created as needed; existing files overwritten).
    seed : int
        Seed for torch and numpy random initialisation.

    Returns
    -------
    target : pathlib.Path
        The (resolved) directory, loadable with
        ``pyannote.audio.Pipeline.from_pretrained(target)``.
    """
    target = pathlib.Path(target).expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    _make_segmentation(target / "segmentation" / "pytorch_model.bin")
    _make_embedding(target / "embedding" / "pytorch_model.bin")
    _make_plda(target / "plda", rng)

    with open(target / "config.yaml", "w") as fp:
        yaml.safe_dump(PIPELINE_CONFIG, fp, sort_keys=False)

    return target
