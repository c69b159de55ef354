"""A model's networks as the predictor runs them: three functions of float32 arrays (the localiser's
heatmaps, the backbone's features, the head's logits and novelty). ``OnnxGraphs`` runs the model's
ONNX graphs on ONNX Runtime, on the CPU, without torch: what a server runs. On a GPU the torch
modules run instead (``classifier.torch_graphs``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime

from classifier import artifact
from classifier.artifact import ModelInfo
from classifier.errors import ModelUnreadable


class OnnxGraphs:
    """The model's graphs (``artifact.GRAPHS``), checked against their checksums, each in an ONNX
    Runtime session using ``threads`` threads (None: ONNX Runtime's default, every core)."""

    device = "cpu"

    def __init__(self, model_dir: Path, model: ModelInfo, threads: int | None, spinning: bool = False,
                 backbone: bool = True):
        """``spinning``: the threads wait for the next pass busily (``open_session``). ``backbone``:
        False where the backbone runs elsewhere (``torch_graphs``); ``features`` is then unusable."""
        self.threads = threads or os.cpu_count() or 1
        names = (["backbone"] if backbone else []) + ["head"] + (["localiser"] if model.preprocessing.localiser else [])
        self._sessions = {name: open_session(artifact.graph_file(model_dir, model, name), threads, spinning)
                          for name in names}

    def localise(self, rows: np.ndarray) -> np.ndarray:
        return self._run("localiser", rows)[0]

    def features(self, rows: np.ndarray) -> np.ndarray:
        return self._run("backbone", rows)[0]

    def head(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, novelty = self._run("head", features)
        return logits, novelty

    def _run(self, name: str, rows: np.ndarray) -> list[np.ndarray]:
        session = self._sessions[name]
        return session.run(None, {session.get_inputs()[0].name: rows})


def open_session(path: Path, threads: int | None, spinning: bool = False) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session of the graph at ``path``, a forward pass on ``threads`` threads (None:
    every core), one pass at a time (``inference.BatchedForward`` sees to that). ``spinning``: its
    threads wait for work busily, as ONNX Runtime's default has it: a pass alone in a loop is
    faster (localiser 3.5 ms against 4.5), but a server's passes come between decodes."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    # Threads that spin after a pass steal the cores the next request's decode runs on: with
    # spinning, a 12 MP photo's decode took 27 ms instead of 17, the localiser's pass 8-11 ms instead of 5.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own kinds for a file it cannot take; all mean this
        raise ModelUnreadable(f"{path} is not a graph ONNX Runtime can run ({exc}); "
                              f"{artifact.EXPORT_HINT}.") from exc
