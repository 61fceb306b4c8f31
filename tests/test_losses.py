import math

import pytest
import torch
import torch.nn.functional as F

from turbo_hf.losses import info_nce, turbo_loss, turbo_loss_terms


def _reference_info_nce(query, key, temperature):
    """Direct transcription: mean_i -log( exp(cos(q_i,k_i)/t) / sum_j exp(cos(q_i,k_j)/t) )."""
    total = 0.0
    for i in range(query.shape[0]):
        sims = [
            F.cosine_similarity(query[i], key[j], dim=0).item() / temperature for j in range(key.shape[0])
        ]
        total += -(sims[i] - math.log(sum(math.exp(s) for s in sims)))
    return total / query.shape[0]


def test_info_nce_matches_row_by_row_definition():
    torch.manual_seed(0)
    query, key = torch.randn(6, 8), torch.randn(6, 8)
    for temperature in (0.05, 0.5, 1.0):
        assert info_nce(query, key, temperature).item() == pytest.approx(
            _reference_info_nce(query, key, temperature), rel=1e-5
        )


def test_info_nce_is_direction_specific():
    torch.manual_seed(1)
    query, key = torch.randn(5, 4), torch.randn(5, 4)
    assert info_nce(query, key).item() != pytest.approx(info_nce(key, query).item())


def test_info_nce_of_a_single_row_is_finite_and_zero():
    loss = info_nce(torch.randn(1, 8), torch.randn(1, 8))
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_info_nce_is_computed_in_float32_under_autocast():
    torch.manual_seed(2)
    query, key = torch.randn(8, 16), torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = info_nce(query.bfloat16(), key.bfloat16(), 0.05)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(
        info_nce(query.bfloat16().float(), key.bfloat16().float(), 0.05).item(), rel=1e-5
    )


def test_info_nce_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        info_nce(torch.randn(3, 4), torch.randn(2, 4))


def test_turbo_loss_is_the_sum_of_its_six_info_nce_terms():
    torch.manual_seed(3)
    a1, t1, a2, t2 = (torch.randn(5, 8) for _ in range(4))
    tau = 0.1
    expected = sum(
        _reference_info_nce(q, k, tau)
        for q, k in ((a1, a2), (t1, t2), (a1, t1), (a1, t2), (a2, t1), (a2, t2))
    )
    assert turbo_loss(a1, t1, a2, t2, tau).item() == pytest.approx(expected, rel=1e-5)
    terms = turbo_loss_terms(a1, t1, a2, t2, tau)
    assert terms.in_modal.item() == pytest.approx(
        _reference_info_nce(a1, a2, tau) + _reference_info_nce(t1, t2, tau), rel=1e-5
    )
    assert (terms.in_modal + terms.cross_modal).item() == pytest.approx(expected, rel=1e-5)


def test_turbo_loss_backpropagates_to_all_four_views():
    views = [torch.randn(4, 8, requires_grad=True) for _ in range(4)]
    turbo_loss(*views).backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in views)
