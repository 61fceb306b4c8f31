"""Two gloo processes: the contrastive losses use the negatives of both, also with uneven batches,
and a step costs a fixed, small number of collectives and host syncs."""

import torch
import torch.distributed as dist
import torch.nn.functional as F

from turbo_hf.losses import in_modal_loss, info_nce, turbo_loss
from turbo_hf.testing.distributed import count_collectives, measure_turbo_step, spawn_gloo

WORLD_SIZE = 2
ROWS = (4, 2)  # uneven, as the last batch of an epoch: rows are padded for the gather and trimmed
TEMPERATURE = 0.1
# The key views of each term: 0 = a1, 1 = t1, 2 = a2, 3 = t2 (turbo_loss's argument order).
TURBO_TERMS = ((0, 2), (1, 3), (0, 1), (0, 3), (2, 1), (2, 3))


def _global_views(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(sum(ROWS), 8, generator=generator) for _ in range(4)]


def _rows(rank: int) -> slice:
    return slice(sum(ROWS[:rank]), sum(ROWS[: rank + 1]))


def _per_process_info_nce(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Sum over processes of the InfoNCE of their own rows against every key, computed in one process
    (what the processes' losses add up to, and what DDP's summed gradients are the gradient of)."""
    logits = F.normalize(query, dim=-1) @ F.normalize(key, dim=-1).T / TEMPERATURE
    targets = torch.arange(len(query))
    return sum(F.cross_entropy(logits[_rows(rank)], targets[_rows(rank)]) for rank in range(WORLD_SIZE))


def _loss(name: str, views: list[torch.Tensor]) -> torch.Tensor:
    a1, t1, a2, t2 = views
    if name == "cross":
        return info_nce(a1, t1, TEMPERATURE)
    return {"turbo": turbo_loss, "in_modal": in_modal_loss}[name](a1, t1, a2, t2, TEMPERATURE)


def _worker(rank: int, world_size: int, results_path: str) -> None:
    results = {}
    for name in ("turbo", "in_modal", "cross"):
        local = [view[_rows(rank)].clone().requires_grad_(True) for view in _global_views()]
        with count_collectives() as forward:
            loss = _loss(name, local)
        with count_collectives() as backward:
            loss.backward()
        results[name] = {
            "loss": loss.detach(),
            "grads": [view.grad for view in local],
            "forward": forward,
            "backward": backward,
        }
    torch.save(results, f"{results_path}.{rank}")


def test_two_uneven_processes_give_the_losses_and_gradients_of_one_process_on_the_whole_batch(tmp_path):
    results_path = str(tmp_path / "result")
    spawn_gloo(_worker, WORLD_SIZE, results_path)
    results = [torch.load(f"{results_path}.{rank}", weights_only=False) for rank in range(WORLD_SIZE)]

    term_pairs = {"turbo": TURBO_TERMS, "in_modal": TURBO_TERMS[:2], "cross": ((0, 1),)}
    for name, pairs in term_pairs.items():
        views = [view.clone().requires_grad_(True) for view in _global_views()]
        reference = sum(_per_process_info_nce(views[q], views[k]) for q, k in pairs)
        reference.backward()
        assert abs(sum(r[name]["loss"].item() for r in results) - reference.item()) < 1e-5, name
        for rank, result in enumerate(results):
            for local_grad, view in zip(result[name]["grads"], views):
                if view.grad is None:  # a view this loss does not use
                    assert local_grad is None
                    continue
                torch.testing.assert_close(local_grad, view.grad[_rows(rank)], rtol=1e-4, atol=1e-6)

    # One exchange of the row counts (one read to the host) and one gather of every key view, side by
    # side, per step; its backward is one all_to_all, which gloo runs as one scatter per process.
    for result in results:
        for name in ("turbo", "in_modal", "cross"):
            forward, backward = result[name]["forward"], result[name]["backward"]
            assert dict(forward.collectives) == {"all_gather": 2}, name
            assert forward.num_host_reads == 1, name
            assert dict(backward.collectives) == {"scatter": WORLD_SIZE}, name
            assert backward.num_host_reads == 0, name


def test_a_process_with_no_peer_group_uses_only_its_own_rows():
    views = _global_views()
    assert not dist.is_initialized()
    with count_collectives() as counts:
        assert turbo_loss(*views, gather_across_processes=True).item() == turbo_loss(*views).item()
    assert counts.num_collectives == 0


def _model_worker(rank: int, world_size: int, results_path: str) -> None:
    from conftest import TurboModelTester

    torch.set_num_threads(1)
    tester = TurboModelTester(dropout=0.0)
    model = tester.model().train()
    batch = tester.inputs(batch_size=4)
    rows = slice(rank * 2, (rank + 1) * 2)
    output = model(**{name: tensor[rows] for name, tensor in batch.items()})
    output.loss.backward()
    # What DDP does to gradients: average over processes.
    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size
    steps = {mode: measure_turbo_step(ROWS[rank], loss_mode=mode) for mode in ("turbo", "vanilla")}
    steps["mask"] = measure_turbo_step(ROWS[rank], loss_mode="turbo", duplicate_negatives="mask")
    torch.save(
        {
            "loss": output.loss.detach(),
            "contrastive": output.contrastive_loss.detach(),
            "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
            "steps": steps,
        },
        f"{results_path}.{rank}",
    )


def test_two_process_turbo_model_step_equals_one_process_step_and_costs_two_collectives(tmp_path):
    from conftest import TurboModelTester

    results_path = str(tmp_path / "model")
    spawn_gloo(_model_worker, WORLD_SIZE, results_path)
    results = [torch.load(f"{results_path}.{rank}", weights_only=False) for rank in range(WORLD_SIZE)]

    tester = TurboModelTester(dropout=0.0)
    model = tester.model().train()
    output = model(**tester.inputs(batch_size=4))
    output.loss.backward()
    mean_loss = torch.stack([r["loss"] for r in results]).mean().item()
    mean_contrastive = torch.stack([r["contrastive"] for r in results]).mean().item()
    assert abs(mean_contrastive - output.contrastive_loss.item()) < 1e-4
    assert abs(mean_loss - output.loss.item()) < 1e-4
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            torch.testing.assert_close(results[0]["grads"][name], parameter.grad, rtol=1e-3, atol=1e-5)

    # A Turbo step on uneven batches: the sizes and the three key views of the six terms travel in two
    # all_gathers (three with duplicate_negatives="mask": the transcripts), the backward in one
    # all_to_all (one scatter per process on gloo), and the gather reads one value set to the host.
    for result in results:
        steps = result["steps"]
        forward, backward = steps["turbo"]["forward"], steps["turbo"]["backward"]
        assert dict(forward.collectives) == {"all_gather": 2}
        assert dict(backward.collectives) == {"scatter": WORLD_SIZE}
        # Host reads beyond the vanilla step's (the encoders' own) are the gather's: one per step.
        assert forward.num_host_reads - steps["vanilla"]["forward"].num_host_reads == 1
        assert steps["vanilla"]["forward"].num_collectives == 0
        assert dict(steps["mask"]["forward"].collectives) == {"all_gather": 3}
        assert steps["mask"]["forward"].num_host_reads == forward.num_host_reads
