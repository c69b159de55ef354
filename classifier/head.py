"""The head: small MLPs trained on the operator's labelled images, over the backbone's features."""
from __future__ import annotations

import math

import torch
from torch import nn


class MLPHead(nn.Module):
    """features -> hidden -> classes, as ``members`` MLPs trained side by side from different random
    starts; the answer is their probabilities' mean. One MLP's answers move by 2-3 points of
    accuracy from one training run to the next; the mean of several moves less and is more often
    right (Lakshminarayanan et al., 2017). Features are standardised with training statistics kept
    as buffers, so the head is self-contained when saved.

    ``references`` are each member's hidden activations of some training views, kept so that
    ``novelty`` can say how unlike anything the head learned from an image is (``classifier.openset``)."""

    def __init__(self, in_features: int, n_classes: int, hidden: int = 256, dropout: float = 0.3,
                 references: int = 0, members: int = 1):
        super().__init__()
        self.members = members
        self.register_buffer("feature_mean", torch.zeros(in_features))
        self.register_buffer("feature_std", torch.ones(in_features))
        self.register_buffer("references", torch.zeros(members, references, hidden))
        # each member's layers, stacked: (member, inputs, outputs), initialised as nn.Linear's
        self.hidden_weight = nn.Parameter(_uniform((members, in_features, hidden), in_features))
        self.hidden_bias = nn.Parameter(_uniform((members, 1, hidden), in_features))
        self.out_weight = nn.Parameter(_uniform((members, hidden, n_classes), hidden))
        self.out_bias = nn.Parameter(_uniform((members, 1, n_classes), hidden))
        self.input_dropout, self.hidden_dropout = nn.Dropout(dropout / 2), nn.Dropout(dropout)
        self.register_load_state_dict_pre_hook(_from_single_mlp)

    def set_feature_stats(self, features: torch.Tensor) -> None:
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-4))

    def set_references(self, hidden: torch.Tensor) -> None:
        """``hidden``: (members, references, hidden), as ``member_logits_and_hidden`` gives them."""
        self.references = hidden.detach().clone()

    def member_logits_and_hidden(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's logits (members, rows, classes) and hidden activations (members, rows, hidden)."""
        x = (features - self.feature_mean) / self.feature_std
        x = self.input_dropout(x.expand(self.members, -1, -1))  # a dropout mask of its own for each member
        hidden = self.hidden_dropout(torch.relu(x @ self.hidden_weight + self.hidden_bias))
        return hidden @ self.out_weight + self.out_bias, hidden

    def logits_and_hidden(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The answer's logits (rows, classes): the log of the members' mean probabilities; and
        each member's hidden activations."""
        logits, hidden = self.member_logits_and_hidden(features)
        return torch.logsumexp(torch.log_softmax(logits, -1), 0) - math.log(self.members), hidden

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits_and_hidden(features)[0]

    def novelty(self, hidden: torch.Tensor) -> torch.Tensor:
        """1 - the cosine similarity of each row's hidden activations to the nearest of its member's
        references, the members' mean, in [0, 2] (clamped: rounding can take a similarity a hair past 1)."""
        similarity = (nn.functional.normalize(hidden, dim=-1)
                      @ nn.functional.normalize(self.references, dim=-1).transpose(1, 2))
        return (1 - similarity.max(-1).values).clamp(0, 2).mean(0)


def _uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
    bound = 1 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound)


def _from_single_mlp(module: nn.Module, state_dict: dict, prefix: str, *_) -> None:
    """Read the weights of a head saved before members (one ``nn.Sequential`` MLP) as one member."""
    single = {"net.1.weight": "hidden_weight", "net.1.bias": "hidden_bias",
              "net.4.weight": "out_weight", "net.4.bias": "out_bias"}
    if prefix + "net.1.weight" not in state_dict:
        return
    for old, new in single.items():
        value = state_dict.pop(prefix + old)
        state_dict[prefix + new] = (value.T if value.dim() == 2 else value[None])[None]
    if prefix + "references" in state_dict:  # (references, hidden) of the one MLP
        state_dict[prefix + "references"] = state_dict[prefix + "references"][None]
