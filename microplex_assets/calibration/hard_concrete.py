"""Hard-concrete gates for L0-regularised household weights (Louizos, Welling & Kingma 2018).

One gate per household, z in [0, 1]: the effective weight is exp(log_weight) * z. During
training z is sampled (u ~ U(0, 1), s = sigmoid((log u - log(1-u) + log_alpha) / T),
stretched to (gamma, zeta) and clamped to [0, 1]), so a gate can be exactly 0 or 1 with
positive probability and still pass gradients; at the end the deterministic gate
clamp(sigmoid(log_alpha) * (zeta - gamma) + gamma, 0, 1) is used. The L0 penalty is the
expected number of open gates, sum_j P(z_j != 0) = sum_j sigmoid(log_alpha_j - T log(-gamma/zeta)).
"""

from __future__ import annotations

import math

import torch


class HardConcreteGates:
    """log_alpha per household (a leaf tensor to optimise) and the three gate functions."""

    def __init__(
        self,
        n: int,
        *,
        temperature: float = 0.25,
        init_mean: float = 0.999,
        stretch: tuple[float, float] = (-0.1, 1.1),
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        gamma, zeta = stretch
        if not (gamma < 0.0 and zeta > 1.0):
            raise ValueError(f"stretch must satisfy gamma < 0 < 1 < zeta, got {stretch}")
        if not 0.0 < init_mean < 1.0:
            raise ValueError(f"gate init_mean must lie in (0, 1), got {init_mean}")
        if temperature <= 0:
            raise ValueError(f"gate temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.gamma = float(gamma)
        self.zeta = float(zeta)
        initial = math.log(init_mean / (1.0 - init_mean))
        self.log_alpha = torch.full((n,), initial, device=device, dtype=dtype, requires_grad=True)
        self._shift = self.temperature * math.log(-self.gamma / self.zeta)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Stochastic gates for one training step (differentiable in log_alpha)."""
        eps = 1e-6 if self.log_alpha.dtype == torch.float32 else 1e-12
        u = torch.rand(
            self.log_alpha.shape,
            generator=generator,
            device=self.log_alpha.device,
            dtype=self.log_alpha.dtype,
        ).clamp_(eps, 1.0 - eps)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha) / self.temperature)
        return torch.clamp(s * (self.zeta - self.gamma) + self.gamma, 0.0, 1.0)

    def deterministic(self) -> torch.Tensor:
        """The gates used for the final weights (and for evaluation)."""
        probs = torch.sigmoid(self.log_alpha)
        return torch.clamp(probs * (self.zeta - self.gamma) + self.gamma, 0.0, 1.0)

    def open_probability(self) -> torch.Tensor:
        """P(gate != 0) per household."""
        return torch.sigmoid(self.log_alpha - self._shift)

    def expected_open(self) -> torch.Tensor:
        """The L0 penalty before lambda: the expected number of open gates."""
        return self.open_probability().sum()
