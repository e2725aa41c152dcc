"""The training step as a CUDA graph: captured once, replayed on every step that needs no member's own work.

A small model's step is mostly Python and kernel launches: the GPU waits on the host (issue #19 measured the
small MLP's step at 1.72 ms for 0.12 ms of kernels). A graph replays the step's kernels in one launch. What the
step reads and writes therefore stays at fixed addresses between replays:

- the batches are gathered on the device from the epoch's stacked rows, by a counter on the device
  (`dstbench.train.feed`); the last, partial batch of an epoch runs eagerly;
- the learning rate is a tensor on the device, which the schedule writes in place before each replay; the
  optimizer runs its fused kernels, which read it there (`setup.optimizer_kernels`; on CUDA only, see
  `fused_optimizer`);
- the epoch's loss and correct-count accumulators are device tensors the step adds to;
- gradient masking multiplies by the stacked float masks, which the engines rewrite in place.

A step at which some member has work of its own (a topology update, a probe, a mask snapshot: the trainer's
events) runs eagerly, as always: it keeps the dense gradient the update reads, and the update writes masks,
weights and optimizer state in place, so the graph stays valid. Warm-up steps (real training steps) run eagerly on
the capture's side stream first, so that lazy initialisations happen outside the graph.

What cannot be captured runs eagerly with one line saying why (`uncapturable`); a capture that fails does the
same. torch.compile was not chosen: a graph replays the same kernels the eager step launches (nothing to compile
per configuration across thousands of runs), and it leaves the eager step's numerics as they are.

On a CPU the same step (`step_mode="capturable"`) runs eagerly: the tests compare it with the eager step, bit for
bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

WARMUP_STEPS = 3  # eager steps on the side stream before the capture (PyTorch's guidance: a few)
STEP_MODES = ("eager", "captured", "capturable")


def uncapturable(*, device: torch.device, distributed: bool, fed: bool, one_by_one: bool,
                 gradient_checkpointing: bool) -> str | None:
    """Why a trainer's step cannot be captured; None if it can."""
    if device.type != "cuda":
        return "CUDA graphs need a GPU"
    if distributed:
        return "a DDP run's gradient all-reduce is not captured"
    if not fed:
        return "its data set forms batches on the host (streamed images, text)"
    if one_by_one:
        return "exact kernels train the members one after the other"
    if gradient_checkpointing:
        return "gradient checkpointing saves and restores RNG states on the host"
    return None


def fused_optimizer(device: torch.device) -> bool:
    """Whether a captured step's optimizer runs its fused kernels, with the learning rate as a tensor: on CUDA,
    where a graph must read the rate from the device. A CPU's capturable step keeps the foreach kernels and a
    float rate: the CPU's fused kernels round some steps differently in the last bit (SGD's on a 10-element bias
    within five steps of the small MLP), and that step exists to be compared with the eager one bit for bit."""
    return device.type == "cuda"


class StepGraph:
    """`body` (a training step that reads and writes only static tensors) run eagerly for the warm-up steps, then
    captured once and replayed. Returns the body's outputs (static tensors after the capture)."""

    def __init__(self, body: Callable[[], Any], device: torch.device):
        self.body, self.device = body, device
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: Any = None
        self.warm = 0
        self.stream = torch.cuda.Stream(device)

    def __call__(self) -> Any:
        if self.graph is not None:
            self.graph.replay()
            return self.outputs
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        if self.warm < WARMUP_STEPS:
            with torch.cuda.stream(self.stream):
                outputs = self.body()
            current.wait_stream(self.stream)
            self.warm += 1
            return outputs
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.device)  # once: the warm-up's work done before the capture
        self.outputs = capture_into(graph, self.body, self.stream)
        self.graph = graph
        graph.replay()  # the capture ran nothing: this step's work
        return self.outputs


def capture_into(graph: torch.cuda.CUDAGraph, body: Callable[[], Any], stream: torch.cuda.Stream) -> Any:
    """Record `body`'s kernels into `graph` (running none of them); returns its outputs, static from then on."""
    with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):  # trackers have own threads
        return body()
