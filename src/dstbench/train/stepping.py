"""The training step of the one trainer (`dstbench.train.trainer.Trainer`, which mixes this class in): forward and
backward over all members, gradient masking, the optimizer step, the epoch's sums, the captured step, and the
members' own work at their events (probes, snapshots, topology updates, several members' together).

A step is one of three kinds (`step_mode`): "eager" (each step launched from Python, today's and the CPU's), or
"captured" (on CUDA: a step without member events is one CUDA graph replay, `dstbench.train.capture`), or
"capturable" (the captured step's body run eagerly: what the CPU tests compare with the eager step, bit for bit).
Steps at which a member has work of its own (an update, a probe, a snapshot) are eager in every mode.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from dstbench import store
from dstbench.sparsity.together import step_together
from dstbench.train.capture import STEP_MODES, uncapturable
from dstbench.train.grouping import GroupError
from dstbench.train.layout import correct, member_losses, stacked
from dstbench.train.members import Member
from dstbench.train.records import probe, probe_due


def next_batch(stream: Any) -> Any:
    """A batch stream's next batch, on into its next epoch when this one is done."""
    return next(iter(stream), None) or next(iter(stream))


class Stepping:
    """The step half of `Trainer`: it reads the trainer's layout, members, feed, optimizer, scheduler and shares,
    and calls back its member events (`_events`, `_engine_steps`, `_first_event`)."""

    def _step_mode(self, forced: str | None) -> str:
        """"captured" where the config's `capture` is auto and the step can be captured (on CUDA), else "eager"
        (with one line saying why, on CUDA, kept in `capture_reason`); `forced` as asked, if the step can be
        captured."""
        self.capture_reason: str | None = None
        reason = uncapturable(device=self.device if forced != "capturable" else torch.device("cuda"),
                              distributed=self.dist.enabled, fed=self.feed is not None, one_by_one=self.one_by_one,
                              gradient_checkpointing=self.config.gradient_checkpointing)
        if forced is not None:
            if forced not in STEP_MODES:
                raise ValueError(f"step_mode {forced!r} is not one of {', '.join(STEP_MODES)}")
            if forced != "eager" and reason is not None:
                raise GroupError(f"this trainer's step cannot be captured: {reason}")
            return forced
        if self.config.capture == "off" or self.device.type != "cuda":
            return "eager"
        if reason is not None:
            self._eager_because(reason)
            return "eager"
        return "captured"

    def _eager_because(self, reason: str) -> None:
        self.capture_reason = reason
        runs = self.members[0].config.run_id() if len(self.members) == 1 else f"group {self.id}"
        print(f"dstbench: {runs}: the training step runs eagerly, not as a CUDA graph: {reason}", file=sys.stderr)

    def _epoch_batches(self) -> Iterator[Sequence[tuple[torch.Tensor, torch.Tensor]] | None]:
        """The rest of the epoch's steps: the members' batches, or None per step where the feed forms them."""
        if self.feed is None:
            yield from zip(*(m.batches for m in self.members), strict=True)
            return
        self.feed.ready()
        while self.feed.index < self.feed.steps:
            yield None

    def train_step(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimizer step of every member on its batch (x, y), and its engine's step; `batches` None: the
        members' next batches of their own streams (epoch after epoch). Returns the members' losses (K,), the
        outputs (B, K, C) and the labels (B, K), on the device. Between the steps that need a member's own work
        (`_events`: its updates, probes, snapshots) nothing here waits for the device, no Python runs per member,
        and a captured step is one graph replay."""
        if batches is None and self.feed is not None:
            self.feed.ready()
            if self.step_mode != "eager" and self.steps + 1 < self._next_event and self.feed.full_next:
                outputs = self._replay()
                if outputs is not None:
                    return outputs
            xs, ys = self.feed.take()
            self.feed.taken()
        else:
            if batches is None:
                batches = [next_batch(m.batches) for m in self.members]
            xs, ys = [self.dist.shard(x) for x, _ in batches], [self.dist.shard(y) for _, y in batches]
        y = self.layout.labels(ys)
        self.optimizer.zero_grad(set_to_none=True)
        if self.one_by_one:
            losses, out = self._one_by_one(xs, y)
        else:
            losses, out = self._forward_backward(xs, y)
        self.steps += 1
        visiting = self._events(self.steps)
        self.shares.mask_gradients([m for m in visiting if m.dst.update_due()], len(self.members))
        self.optimizer.step()
        self.scheduler.step()
        self._engine_steps(visiting)
        if visiting:
            self._first_event()
        losses = stacked(losses)
        self._accumulate(losses, out, y)
        return losses, out, y

    def _forward_backward(self, xs: Sequence[torch.Tensor], y: torch.Tensor
                          ) -> tuple[list[torch.Tensor] | torch.Tensor, torch.Tensor]:
        with self._autocast():
            out = self.layout.outputs(self.net(self.layout.inputs(xs)))
            losses = self._losses(out, y)
        self._total(losses).backward()
        return losses, out

    @torch.no_grad()
    def _accumulate(self, losses: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
        """The step's losses and correct predictions into the epoch's sums (on the device)."""
        self._loss_sum += losses.detach() * y.shape[0]
        self._hits += correct(out.detach(), y, binary=self.data.task == "binary")

    def _captured_step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The step a CUDA graph captures (`dstbench.train.capture`): the next full batches by the feed's device
        counter, forward, backward, every member's gradients masked, the optimizer's fused step (the rate a
        tensor), the epoch's sums. Reads and writes static tensors only; no member has work of its own here."""
        xs, ys = self.feed.take()
        y = self.layout.labels(ys)
        self.optimizer.zero_grad(set_to_none=True)
        losses, out = self._forward_backward(xs, y)
        self.shares.mask_gradients([], len(self.members))
        self.optimizer.step()
        losses = stacked(losses).detach()
        self._accumulate(losses, out, y)
        return losses, out.detach(), y

    def _replay(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """A step without events: the captured step (replayed, or during the warm-up run eagerly; run eagerly
        as it is on a CPU). None: the capture failed, and this and later steps run eagerly."""
        if self._graph is None:
            outputs = self._captured_step()
        else:
            try:
                outputs = self._graph()
            except RuntimeError as exc:  # something in the step cannot be captured: eager, said once
                if "out of memory" in str(exc).lower():
                    raise  # a run group splits and tries again (`dstbench.train.group`)
                self._graph, self.step_mode = None, "eager"
                self._eager_because(f"the capture failed ({str(exc).splitlines()[0]})")
                return None
        self.steps += 1
        self.feed.taken()
        self.scheduler.step()
        return outputs

    def _total(self, losses: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """What backward differentiates: the live members' losses summed (a lone member's loss itself)."""
        if isinstance(losses, list):
            live = [loss for loss, member in zip(losses, self.members, strict=True) if member.live]
            return live[0] if len(live) == 1 else sum(live[1:], live[0])
        return torch.where(self.live, losses, torch.zeros_like(losses)).sum()

    def _one_by_one(self, xs: Sequence[torch.Tensor], y: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each live member's forward and backward on its own module; then its gradients go to its shares of the
        stacked gradients."""
        losses, outs = [], []
        for member, x in zip(self.members, xs, strict=True):
            if not member.live:
                losses.append(None)
                outs.append(None)
                continue
            with self._autocast():
                out = member.model(x)
                loss = self._losses(out.unsqueeze(1), y[:, member.k:member.k + 1])[0]
            loss.backward()
            losses.append(loss.detach())
            outs.append(out.detach())
        self.shares.gather([m for m in self.members if m.live])
        some = next(o for o in outs if o is not None)  # a dead member's outputs and loss: zeros, never recorded
        zero = torch.zeros((), device=self.device)
        return ([zero if loss is None else loss for loss in losses],
                torch.stack([torch.zeros_like(some) if o is None else o for o in outs], dim=1))

    # ----------------------------------------------------------------------- members' own work at events

    def _engine_steps(self, visiting: list[Member]) -> None:
        """Each visiting member's probes and snapshots of the step about to be taken, then its engine's step (the
        topology update when due, on its own dense gradient). Several members step together (`step_together`: the
        updates due at this step select once per layer over all of them); a lone one steps itself, as a solo run
        always has. In a group, an error fails its member alone."""
        try:
            ready = [m for m in visiting if self._guarded(m, self._before_step, m)]
            errors = step_together([m.dst for m in ready]) if len(ready) > 1 else [None] * len(ready)
            for member, error in zip(ready, errors, strict=True):
                self._guarded(member, self._after_step, member, error, len(ready) > 1)
        finally:
            for member in visiting:
                self.shares.expose(member, clear=True)

    def _before_step(self, member: Member) -> None:
        config, dst, step = member.config, member.dst, member.dst.steps + 1
        if member.update_batches is not None and dst.update_due():
            self._gradient_on_update_batch(member)
        if probe_due(config, step):
            self.shares.expose(member)
            probed = probe(config, dst, step)
            if self.dist.is_main:
                store.save_probe(member.folder.probe_path(step), probed)
        if step in member.snapshot_steps and self.dist.is_main:
            member.records.snapshot(step, dst.masks)
        if dst.update_due():
            self.shares.expose(member)

    def _after_step(self, member: Member, error: Exception | None, together: bool) -> None:
        if error is not None:
            raise error
        if not together:
            member.dst.step_taken()
        member.next_event = member.event_after(member.dst.steps)

    def _guarded(self, member: Member, work: Any, *args: Any) -> bool:
        """`work(*args)` for member; whether it went through. In a group, an error fails member alone."""
        try:
            work(*args)
            return True
        except FloatingPointError as exc:
            self._fail(member, str(exc))
        except Exception as exc:
            if self.group_dir is None:
                raise
            print(f"dstbench: run {member.config.run_id()} failed in its group:\n{traceback.format_exc()}",
                  file=sys.stderr)
            self._fail(member, f"{type(exc).__name__}: {exc}")
        return False

    def _gradient_on_update_batch(self, member: Member) -> None:
        """Appendix G: the gradient the update reads comes from one larger batch, not the training batch (a lone
        member only: the policy keeps such runs out of groups)."""
        batch = next_batch(member.update_batches)
        x, y = (self.dist.shard(t) for t in batch)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            losses = self._losses(self.layout.outputs(self.net(self.layout.inputs([x]))), self.layout.labels([y]))
        self._total(losses).backward()

    def _autocast(self) -> torch.autocast:
        """bfloat16 autocast when the config asks for AMP: no loss scaling needed, parameters stay float32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp,
                              cache_enabled=self.step_mode != "captured")  # a graph must not keep cached casts

    def _losses(self, out: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        return member_losses(out, y, binary=self.data.task == "binary", exact=self.kernels == "exact",
                             label_smoothing=self.config.label_smoothing)

