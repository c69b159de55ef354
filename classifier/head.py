"""The small MLP trained on the operator's labelled images."""
from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """features -> hidden -> classes. Features are standardised with training
    statistics kept as buffers, so the head is self-contained when saved.

    ``references`` are hidden activations of some training views, kept so that ``novelty``
    can say how unlike anything the head learned from an image is (``classifier.openset``)."""

    def __init__(self, in_features: int, n_classes: int, hidden: int = 256, dropout: float = 0.3,
                 references: int = 0):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(in_features))
        self.register_buffer("feature_std", torch.ones(in_features))
        self.register_buffer("references", torch.zeros(references, hidden))
        self.net = nn.Sequential(
            nn.Dropout(dropout / 2),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def set_feature_stats(self, features: torch.Tensor) -> None:
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-4))

    def set_references(self, hidden: torch.Tensor) -> None:
        self.references = hidden.detach().clone()

    def logits_and_hidden(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.net[:4]((features - self.feature_mean) / self.feature_std)
        return self.net[4](hidden), hidden

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits_and_hidden(features)[0]

    def novelty(self, hidden: torch.Tensor) -> torch.Tensor:
        """1 - the cosine similarity of each row's hidden activations to the nearest reference, in [0, 2]
        (clamped: rounding can take a similarity a hair past 1)."""
        similarity = nn.functional.normalize(hidden, dim=1) @ nn.functional.normalize(self.references, dim=1).T
        return (1 - similarity.max(1).values).clamp(0, 2)
