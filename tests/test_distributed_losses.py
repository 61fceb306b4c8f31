"""Two gloo processes: the contrastive losses must use the negatives of both."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from turbo_hf.losses import info_nce, turbo_loss

WORLD_SIZE = 2
ROWS_PER_PROCESS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _global_views(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(WORLD_SIZE * ROWS_PER_PROCESS, 8, generator=generator) for _ in range(4)]


def _worker(rank: int, port: int, results_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        rows = slice(rank * ROWS_PER_PROCESS, (rank + 1) * ROWS_PER_PROCESS)
        local = [view[rows].clone().requires_grad_(True) for view in _global_views()]
        turbo = turbo_loss(*local, temperature=0.1, gather_across_processes=True)
        turbo.backward()
        local_cross = [view[rows].clone().requires_grad_(True) for view in _global_views()[:2]]
        cross = info_nce(local_cross[0], local_cross[1], 0.1, gather_across_processes=True)
        cross.backward()
        torch.save(
            {
                "turbo": turbo.detach(),
                "turbo_grads": [v.grad for v in local],
                "cross": cross.detach(),
                "cross_grads": [v.grad for v in local_cross],
            },
            f"{results_path}.{rank}",
        )
    finally:
        dist.destroy_process_group()


def test_two_process_losses_and_gradients_equal_one_process_on_the_whole_batch(tmp_path):
    results_path = str(tmp_path / "result")
    mp.spawn(_worker, args=(_free_port(), results_path), nprocs=WORLD_SIZE, join=True)
    results = [torch.load(f"{results_path}.{rank}") for rank in range(WORLD_SIZE)]

    views = [v.clone().requires_grad_(True) for v in _global_views()]
    reference = turbo_loss(*views, temperature=0.1)
    reference.backward()
    cross_views = [v.clone().requires_grad_(True) for v in _global_views()[:2]]
    cross_reference = info_nce(*cross_views, 0.1)
    cross_reference.backward()

    assert abs(torch.stack([r["turbo"] for r in results]).mean().item() - reference.item()) < 1e-5
    assert abs(torch.stack([r["cross"] for r in results]).mean().item() - cross_reference.item()) < 1e-5
    # DDP averages gradients over processes: (1/W) * local gradient must equal the global one.
    for rank, result in enumerate(results):
        rows = slice(rank * ROWS_PER_PROCESS, (rank + 1) * ROWS_PER_PROCESS)
        for local_grad, view in zip(result["turbo_grads"], views):
            torch.testing.assert_close(local_grad / WORLD_SIZE, view.grad[rows], rtol=1e-4, atol=1e-6)
        for local_grad, view in zip(result["cross_grads"], cross_views):
            torch.testing.assert_close(local_grad / WORLD_SIZE, view.grad[rows], rtol=1e-4, atol=1e-6)


def test_a_process_with_no_peer_group_uses_only_its_own_rows():
    views = _global_views()
    assert not dist.is_initialized()
    assert turbo_loss(*views, gather_across_processes=True).item() == turbo_loss(*views).item()


def _model_worker(rank: int, port: int, results_path: str) -> None:
    from conftest import TurboModelTester

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
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
                parameter.grad /= WORLD_SIZE
        torch.save(
            {
                "loss": output.loss.detach(),
                "contrastive": output.contrastive_loss.detach(),
                "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None},
            },
            f"{results_path}.{rank}",
        )
    finally:
        dist.destroy_process_group()


def test_two_process_turbo_model_step_equals_one_process_step_on_the_whole_batch(tmp_path):
    from conftest import TurboModelTester

    results_path = str(tmp_path / "model")
    mp.spawn(_model_worker, args=(_free_port(), results_path), nprocs=WORLD_SIZE, join=True)
    results = [torch.load(f"{results_path}.{rank}") for rank in range(WORLD_SIZE)]

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
