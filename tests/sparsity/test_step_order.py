"""`dst.step()` must follow exactly one optimizer step; skipped optimizer steps are skipped by the engine too."""

import pytest
import torch
import torch.nn.functional as F

from dstbench import DST

from .helpers import mlp, train_step

ORDER = r"loss.backward\(\) -> optimizer.step\(\) -> dst.step\(\)"


def make(**kw):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    kw = {"density": 0.3, "total_steps": 100, "update_period": 2, "grow": "gradient", **kw}
    return model, opt, DST(model, opt, **kw)


def backward(model, gen):
    x, y = torch.randn(8, 12, generator=gen), torch.randint(0, 3, (8,), generator=gen)
    F.cross_entropy(model(x), y).backward()


def test_dst_step_before_the_optimizer_step_names_the_order():
    model, opt, dst = make()
    gen = torch.Generator().manual_seed(0)
    opt.zero_grad()
    backward(model, gen)
    with pytest.raises(RuntimeError, match=f"found 0 optimizer steps.*{ORDER}"):
        dst.step()


def test_dst_step_twice_or_missed_is_an_error():
    model, opt, dst = make()
    gen = torch.Generator().manual_seed(0)
    train_step(model, opt, dst, gen)
    with pytest.raises(RuntimeError, match="found 0 optimizer steps"):
        dst.step()
    train_step(model, opt, None, gen)
    train_step(model, opt, None, gen)
    with pytest.raises(RuntimeError, match=f"found 2 optimizer steps.*{ORDER}"):
        dst.step()


def test_gradient_accumulation_is_one_step_on_the_summed_gradient():
    # Two half-batches accumulated, then one optimizer step, train as one step on their summed loss; updates
    # (steps 2 and 4) and the gradient masking between them see the accumulated gradient.
    model, opt, dst = make(prune="snip", schedule="constant")
    twin, twin_opt, twin_dst = make(prune="snip", schedule="constant")
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        halves = [(torch.randn(8, 12, generator=gen), torch.randint(0, 3, (8,), generator=gen)) for _ in range(2)]
        opt.zero_grad()
        for x, y in halves:
            (0.5 * F.cross_entropy(model(x), y)).backward()
        opt.step()
        dst.step()
        twin_opt.zero_grad()
        sum(0.5 * F.cross_entropy(twin(x), y) for x, y in halves).backward()
        twin_opt.step()
        twin_dst.step()
    assert dst.steps == 4 and {h["step"] for h in dst.history} == {2, 4}
    for name in dst.masks:
        assert torch.equal(dst.masks[name], twin_dst.masks[name])
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_a_step_the_grad_scaler_skips_is_skipped_by_the_engine():
    model, opt, dst = make(update_period=2)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    gen = torch.Generator().manual_seed(0)

    def scaled_step(poison=False):
        opt.zero_grad()
        scaler.scale(F.cross_entropy(model(torch.randn(8, 12, generator=gen)),
                                     torch.randint(0, 3, (8,), generator=gen))).backward()
        if poison:
            model[0].weight.grad[0, 0] = float("inf")  # an overflow, as in a half-precision backward
        scaler.step(opt)
        scaler.update()
        dst.step()

    scaled_step()
    masks, weights = {n: m.clone() for n, m in dst.masks.items()}, [p.clone() for p in model.parameters()]
    scale = scaler.get_scale()
    scaled_step(poison=True)  # step 2 would update the topology: the skipped step must not
    assert scaler.get_scale() < scale, "the scaler skipped the step"
    assert dst.steps == 1 and dst.history == [] and dst.prune_fraction() == dst.prune_fraction(1)
    assert all(torch.equal(masks[n], dst.masks[n]) for n in masks)
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights, strict=True))
    scaled_step()
    assert dst.steps == 2 and {h["step"] for h in dst.history} == {2}
    assert all(torch.isfinite(p).all() for p in model.parameters())
