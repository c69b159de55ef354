"""The small MLP trained on the operator's labelled images."""
from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """features -> hidden -> classes. Features are standardised with training
    statistics kept as buffers, so the head is self-contained when saved."""

    def __init__(self, in_features: int, n_classes: int, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(in_features))
        self.register_buffer("feature_std", torch.ones(in_features))
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

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.feature_mean) / self.feature_std)
