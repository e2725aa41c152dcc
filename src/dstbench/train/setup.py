"""Building a run's pieces from its config: device, model, optimizer, learning-rate schedule, engine options."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

import dstbench.data
import dstbench.data.registry
import dstbench.models
from dstbench.config import RunConfig
from dstbench.errors import UserError
from dstbench.sparsity import SparsityConfig


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto")
    return device


def load_data(config: RunConfig) -> Any:
    """The config's data set. A `train_subset` is drawn with a fixed seed, not the run's: every run of a study
    trains on the same samples. Text data is tokenised with the model's tokenizer (from its folder) to at most
    `max_length` tokens per input."""
    options: dict[str, Any] = {} if config.preprocessing == "paper" else {"preprocessing": config.preprocessing}
    if dstbench.data.info(config.dataset).task == "multiple_choice":
        options.update(tokenizer=str(model_folder(config)), max_length=config.max_length)
    return dstbench.data.load(config.dataset, root=config.data_root, train_subset=config.train_subset, seed=0,
                              **options)


def model_folder(config: RunConfig) -> Path:
    """Where a pretrained model's files are: `model_path`, else ``<data root>/<model name with '-' for '_'>``."""
    if config.model_path:
        return Path(config.model_path).expanduser()
    return dstbench.data.registry.data_root(config.data_root) / config.model.replace("_", "-")


def build_for(config: RunConfig, data: Any) -> nn.Module:
    """The config's model, sized for the data set (input shape, classes; one logit for binary tasks)."""
    info = dstbench.models.info(config.model)
    num_classes = data.num_outputs
    try:
        kwargs = info.build_kwargs(tuple(data.input_shape))
    except ValueError as exc:
        raise UserError(f"model {config.model!r} does not fit data set {config.dataset!r}: {exc}") from exc
    if config.input_dropout:
        kwargs["input_dropout"] = config.input_dropout
    if "model_path" in info.options:
        kwargs["model_path"] = str(model_folder(config))
    model = dstbench.models.build(config.model, num_classes=num_classes, dropout=config.dropout, **kwargs)
    if config.gradient_checkpointing:
        if not hasattr(model, "gradient_checkpointing_enable"):
            raise UserError(f"model {config.model!r} does not support gradient checkpointing; leave it off")
        model.gradient_checkpointing_enable()
    return model


def make_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """The config's optimizer. `foreach` on every device (PyTorch picks it only on GPUs): the same elementwise
    operations in the same order, so the same results to the bit, with less Python per step on a CPU (SGD with
    Nesterov momentum: about a third less time per step for the small CNN's run groups). A captured step switches
    to the fused kernels afterwards (`optimizer_kernels`)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay, foreach=True)
    adam = {k: v for k, v in (("betas", config.adam_betas), ("eps", config.adam_eps)) if v is not None}
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, foreach=True, **adam)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, foreach=True, **adam)


def optimizer_kernels(optimizer: torch.optim.Optimizer, *, fused: bool, device: torch.device) -> None:
    """The fused kernels with the learning rate as a tensor on `device` (what a CUDA graph captures: one kernel
    that reads the rate the schedule writes in place), or foreach ones with a float rate. Called once the
    scheduler exists (its base rates stay floats, so that stepping it never reads the device) and again after
    loading a checkpoint, whose groups carry the flags and rate of the run that saved it.

    The rate's dtype is what each device's fused kernel reads: a CUDA kernel a float32 pointer, the CPU kernel a
    double (with a double, its results equal the foreach kernels' to the bit; a float32 rate differs once the
    schedule gives a rate that float32 cannot hold).

    Adam's step counts follow the kernels: on the device for the fused ones, on the CPU for foreach ones (which
    would otherwise read a device count back every step); and its groups are marked `capturable` on CUDA, which
    PyTorch requires of an Adam step inside a graph capture (its warning that a capturable step also runs
    uncaptured is silenced: the captured run's eager steps are its updates and warm-up).
    """
    dtype = torch.float32 if device.type == "cuda" else torch.float64
    for group in optimizer.param_groups:
        lr = float(group["lr"])
        group["fused"], group["foreach"] = fused, not fused
        group["lr"] = torch.tensor(lr, dtype=dtype, device=device) if fused else lr
        if "capturable" in group:  # Adam, AdamW
            group["capturable"] = fused and device.type == "cuda"
    for state in optimizer.state.values():
        step = state.get("step")
        if isinstance(step, torch.Tensor):
            state["step"] = step.to(device if fused else "cpu", torch.float32)
    optimizer._warned_capturable_if_run_uncaptured = True  # PyTorch's warn-once flag


def learning_rate(scheduler: torch.optim.lr_scheduler.LambdaLR) -> float:
    """The first group's current learning rate as the schedule computed it (a double), also where the fused step
    holds it as a float32 tensor (`optimizer_kernels`)."""
    lr = scheduler.optimizer.param_groups[0]["lr"]
    if not isinstance(lr, torch.Tensor):
        return lr
    return scheduler.base_lrs[0] * scheduler.lr_lambdas[0](scheduler.last_epoch)  # what LambdaLR wrote


def make_scheduler(optimizer: torch.optim.Optimizer, config: RunConfig, steps_per_epoch: int):
    """A linear warm-up (`warmup_epochs` plus `warmup_steps`), then step decay by `lr_gamma` at the milestone
    fractions of training (`lr_decay` "step", the default) or a linear decay to 0 at the last step ("linear":
    fairseq's polynomial decay of power 1, as SMC-Bench fine-tunes); stepped per batch.

    Stepping per batch (milestones in steps) keeps the schedule exact when a run resumes mid-training.
    """
    total = config.epochs * steps_per_epoch
    milestones = sorted(round(m * total) for m in config.lr_milestones or ())
    warmup = (config.warmup_epochs or 0) * steps_per_epoch + (config.warmup_steps or 0)
    linear = config.lr_decay == "linear"

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if linear:
            return max(0.0, (total - step) / max(1, total - warmup))
        return config.lr_gamma ** sum(step >= m for m in milestones)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def sparsity_config(config: RunConfig, total_steps: int) -> SparsityConfig:
    """The engine's options: each `SparsityConfig` field comes from the `RunConfig` field of the same name, so a
    new engine option is one field in each and nothing here."""
    names = [f.name for f in dataclasses.fields(SparsityConfig) if f.name != "total_steps"]
    return SparsityConfig(**{name: getattr(config, name) for name in names}, total_steps=total_steps)
