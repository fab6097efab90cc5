r"""The neural random subspace (NRS) layer, the networks built on it and the plain MLP baseline.

A random forest grows each tree on a random subset of the features (a *random subspace*, Ho 1998)
and averages the trees. NRS keeps the random subspaces and replaces the trees by one layer that is
trained end to end:

1. a fixed, seeded buffer of random permutations of the $d$ features picks, for each of
   $C = d\cdot n_{mul}$ channels, a $k\times k$ grid of features $S_c$ (its subspace);
2. a grouped convolution without padding turns each grid into one number, a learned non-linear
   "split" of that subspace:

   $$h_c = \mathrm{ReLU}\big(\mathrm{BN}(\langle W_c, x_{S_c}\rangle + b_c)\big), \qquad c = 1..C;$$

3. an MLP aggregates the $C$ splits into class scores, as a forest aggregates its trees.

Book section: *NRS* "From random subspaces to a layer".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..tensors import as_model_input


def subspace_indices(n_features: int, k: int = 3, n_mul: int = 1, seed: int = 0) -> torch.Tensor:
    r"""The random subspaces: ``(d * n_mul, k, k)`` feature indices, a grid per channel.

    $k^2 n_{mul}$ independent permutations of $\{0, \dots, d-1\}$ are concatenated (length
    $d\,k^2 n_{mul}$) and cut into consecutive blocks of $k^2$: block $c$ is the subspace $S_c$ of
    channel $c$. A block inside one permutation holds $k^2$ distinct features; a block that straddles
    two permutations (when $k^2$ does not divide $d$) may repeat one, and when $d < k^2$ every block
    must repeat some. Every index is in $[0, d)$ either way.

    Book section: *NRS* "From random subspaces to a layer".
    """
    for name, value, low in (("n_features", n_features, 1), ("k", k, 1), ("n_mul", n_mul, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    g = torch.Generator().manual_seed(int(seed))
    perms = [torch.randperm(n_features, generator=g) for _ in range(k * k * n_mul)]
    return torch.cat(perms).view(n_features * n_mul, k, k)  # (C, k, k), C = d * n_mul


class NRSLayer(nn.Module):
    r"""Random subspaces, a grouped conv per subspace, BatchNorm and ReLU: ``(B, d) -> (B, d * n_mul)``.

    $$x \in \mathbb{R}^{d} \;\xrightarrow{\text{gather}}\; Z \in \mathbb{R}^{C\times k\times k}
      \;\xrightarrow{\text{conv, BN, ReLU}}\; h \in \mathbb{R}^{C}, \qquad C = d\, n_{mul}.$$

    ``k`` must be odd: a 1x1 grid uses a 1x1 kernel; larger grids use 3x3 kernels without padding,
    one Conv-BN-ReLU block per step from $k\times k$ down to $1\times 1$ (the paper uses $k = 3$, one
    block). ``n_per_group``: each output mixes that many subspaces (groups $= C / n_{per}$); 1 keeps
    every subspace separate, like independent trees. The index buffer is part of the ``state_dict``,
    so a saved layer keeps its subspaces.

    Book section: *NRS* "From random subspaces to a layer".
    """

    def __init__(self, n_features: int, k: int = 3, n_mul: int = 1, n_per_group: int = 1, seed: int = 0):
        super().__init__()
        if not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"k (the subspace grid side) must be a positive odd integer, got {k!r}")
        index = subspace_indices(n_features, k, n_mul, seed)
        channels = n_features * n_mul
        if not isinstance(n_per_group, int) or n_per_group < 1 or channels % n_per_group:
            raise ValueError(
                f"n_per_group must be a positive divisor of the channel count d * n_mul = {channels}, got {n_per_group!r}"
            )
        self.n_features, self.k, self.n_mul, self.n_per_group = n_features, k, n_mul, n_per_group
        self.register_buffer("index", index)  # (C, k, k) long, saved with the weights
        groups = channels // n_per_group
        blocks = []
        side = k
        while True:
            kernel = 1 if side == 1 else 3
            blocks += [nn.Conv2d(channels, channels, kernel, groups=groups), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            side -= kernel - 1
            if side == 1:
                break
        self.blocks = nn.Sequential(*blocks)

    @property
    def out_features(self) -> int:
        return self.n_features * self.n_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_model_input(x, self, "x", ndim=2, shape_hint=f"(batch, {self.n_features})")
        if x.shape[1] != self.n_features:
            raise ValueError(f"NRSLayer expects (batch, {self.n_features}) features, got shape {tuple(x.shape)}")
        # (B, C*k*k) -> (B, C, k, k): channel c sees its subspace S_c (index_select is much faster
        # than x[:, index] with a 3-D index)
        z = x.index_select(1, self.index.flatten()).view(x.shape[0], *self.index.shape)
        return self.blocks(z).flatten(1)  # (B, C)


def mlp_head(in_features: int, n_classes: int, hidden: int, n_hidden: int) -> nn.Sequential:
    """``n_hidden`` blocks of Linear-BatchNorm1d-ReLU of width ``hidden``, then a Linear to the classes.

    With ``n_hidden=0`` the head is one Linear layer (the paper's ``B_FC=False``).

    Book section: *NRS* "From random subspaces to a layer".
    """
    if not isinstance(n_hidden, int) or n_hidden < 0:
        raise ValueError(f"n_hidden must be a non-negative integer, got {n_hidden!r}")
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(n_hidden):
        layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        width = hidden
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


class NRSNet(nn.Module):
    r"""NRS for tabular data: the NRS layer, then an MLP that aggregates the $C$ subspace splits.

    $$p(y\mid x) = \mathrm{softmax}\big(\mathrm{MLP}(h(x))\big).$$

    The paper's tabular model uses two hidden layers of width ``n_fc`` (256 or 512), $k = 3$ and
    ``n_per_group = 1``. Input ``(B, d)``, output logits ``(B, n_classes)``.

    Book section: *NRS* "From random subspaces to a layer".
    """

    def __init__(self, n_features: int, n_classes: int, k: int = 3, n_mul: int = 1, n_per_group: int = 1,
                 hidden: int = 256, n_hidden: int = 2, seed: int = 0):
        super().__init__()
        self.nrs = NRSLayer(n_features, k, n_mul, n_per_group, seed)
        self.head = mlp_head(self.nrs.out_features, n_classes, hidden, n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.nrs(x))  # (B, n_classes)


class MLPNet(nn.Module):
    """The baseline without subspaces: ``n_hidden`` Linear-BN-ReLU blocks on the raw features.

    The paper's baseline has three hidden layers; comparing it with :class:`NRSNet` under the same
    training isolates what the NRS layer adds. Input ``(B, d)``, output logits ``(B, n_classes)``.

    Book section: *NRS* "Quick run".
    """

    def __init__(self, n_features: int, n_classes: int, hidden: int = 256, n_hidden: int = 3):
        super().__init__()
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
        self.n_features = n_features
        self.head = mlp_head(n_features, n_classes, hidden, n_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_model_input(x, self, "x", ndim=2, shape_hint=f"(batch, {self.n_features})")
        if x.shape[1] != self.n_features:
            raise ValueError(f"MLPNet expects (batch, {self.n_features}) features, got shape {tuple(x.shape)}")
        return self.head(x)


def auto_n_mul(n_features: int, target_channels: int = 256) -> int:
    """The smallest ``n_mul`` with ``d * n_mul >= target_channels`` (at least 1).

    The paper tunes ``n_mul`` per data set (1 for gisette's 5,000 features, 100 for letter's 16);
    a channel budget gives small inputs many subspaces and wide inputs few.
    """
    return max(1, math.ceil(target_channels / n_features))
