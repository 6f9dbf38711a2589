"""Mixture of diagonal Gaussians over the next samples of a waveform (the paper's speech head).

At each step the paper predicts the next 10 audio samples with a mixture of 20 Gaussians, each
diagonal over the 10 samples. One linear layer maps the hidden state to all mixture parameters,
packed into one tensor so that the head has the same interface as the Bernoulli head::

    params (..., P), P = K + 2 K D  with K components, D predicted samples
      [:K]                 mixture logits                  (..., K)
      [K : K + K D]        means                           (..., K, D)
      [K + K D :]          raw scales -> softplus + floor  (..., K, D)

The NLL is computed in log space by `torch.distributions` (`MixtureSameFamily` over
`Independent(Normal, 1)`), i.e. -logsumexp_k(log pi_k + sum_d log N(y_d; mu_kd, s_kd)).
It is the NLL of one step in nats, summed over the D samples (not averaged), so that it matches
the paper's "negative log-probability per time step". The scale floor (`min_scale`, in the units
of the normalised waveform) keeps a component from collapsing onto a point (infinite density).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal
from torch.nn import functional as F

# softplus(x) = 1 at x = log(e - 1): raw-scale bias that starts every component at unit scale,
# the std of the normalised waveform.
_UNIT_SCALE_RAW = math.log(math.e - 1.0)


class GaussianMixtureHead(nn.Module):
    """Linear map from hidden states to a K-component diagonal Gaussian mixture over D values.

    Args:
        hidden_size: H, size of the recurrent state fed to the head.
        output_size: D, number of predicted samples per step (10 in the paper).
        n_components: K, number of mixture components (20 in the paper).
        min_scale: floor added to every standard deviation (normalised waveform units).
    """

    def __init__(
        self,
        hidden_size: int,
        output_size: int,
        n_components: int = 20,
        *,
        min_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        if hidden_size < 1 or output_size < 1 or n_components < 1:
            raise ValueError(
                f"GaussianMixtureHead needs positive sizes, got hidden_size={hidden_size}, "
                f"output_size={output_size}, n_components={n_components}"
            )
        if not min_scale > 0:
            raise ValueError(f"min_scale must be > 0 (a floor on the std), got {min_scale}")
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.n_components = n_components
        self.min_scale = float(min_scale)
        self.param_size = n_components * (1 + 2 * output_size)
        self.linear = nn.Linear(hidden_size, self.param_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn's default weight init; biases give equal weights and unit scales."""
        self.linear.reset_parameters()
        k, kd = self.n_components, self.n_components * self.output_size
        with torch.no_grad():
            self.linear.bias.zero_()
            self.linear.bias[k + kd :].fill_(_UNIT_SCALE_RAW)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (..., H) -> packed mixture parameters (..., P)."""
        return self.linear(hidden)

    def unpack(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., P) -> logits (..., K), means (..., K, D), scales (..., K, D) >= min_scale."""
        if params.shape[-1] != self.param_size:
            raise ValueError(
                f"mixture params have last size {params.shape[-1]}, expected {self.param_size} "
                f"(= K(1 + 2D) with K={self.n_components}, D={self.output_size})"
            )
        k, kd = self.n_components, self.n_components * self.output_size
        shape = (*params.shape[:-1], k, self.output_size)
        logits = params[..., :k]
        means = params[..., k : k + kd].reshape(shape)
        scales = F.softplus(params[..., k + kd :]).reshape(shape) + self.min_scale
        return logits, means, scales

    def distribution(self, params: torch.Tensor) -> MixtureSameFamily:
        """The mixture as a torch distribution with event shape (D,)."""
        logits, means, scales = self.unpack(params)
        components = Independent(Normal(means, scales, validate_args=False), 1)
        return MixtureSameFamily(
            Categorical(logits=logits, validate_args=False), components, validate_args=False
        )

    def nll(self, params: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-step NLL in nats: params (T, B, P), targets (T, B, D) -> (T, B).

        Summed over the D samples of a step; averaging over steps is the caller's job.
        """
        if targets.shape[-1] != self.output_size:
            raise ValueError(
                f"targets have last size {targets.shape[-1]}, expected {self.output_size}"
            )
        return -self.distribution(params).log_prob(targets)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One step: params (B, P) -> samples (B, D), reproducible with `generator`.

        Drawn by hand (component, then Gaussian noise) because `MixtureSameFamily.sample`
        takes no generator.
        """
        logits, means, scales = self.unpack(params)  # (B, K), (B, K, D), (B, K, D)
        probs = torch.softmax(logits, dim=-1)
        component = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        index = component.unsqueeze(-1).expand(-1, 1, self.output_size)  # (B, 1, D)
        mean = means.gather(1, index).squeeze(1)  # (B, D)
        scale = scales.gather(1, index).squeeze(1)  # (B, D)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + scale * noise

    def extra_repr(self) -> str:
        return (
            f"hidden_size={self.hidden_size}, output_size={self.output_size}, "
            f"n_components={self.n_components}, min_scale={self.min_scale}"
        )
