"""Small models and a training step shared by the engine tests."""

import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes=(12, 16, 8, 3), seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 3)
    )


def train_step(model, opt, dst, gen, in_shape=(12,), classes=3, batch=8):
    x = torch.randn((batch, *in_shape), generator=gen)
    y = torch.randint(0, classes, (batch,), generator=gen)
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    if dst is not None:
        dst.step()
