"""duplicate_negatives="mask": token-identical transcripts are not each other's negatives where text is
compared; checked against a loop over rows, in the model, and across two processes."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TurboModelTester

from turbo_hf.losses import info_nce, transcript_rows, turbo_loss_terms
from turbo_hf.testing.distributed import spawn_gloo

# Rows 0, 2 and 4 say the same; rows 1 and 3 too; row 5 is alone.
TEXTS = ["hello world", "sad", "hello world", "sad", "hello world", "happy"]


def reference_info_nce(query, key, temperature, transcripts=None, masked=True):
    """Row by row: -log of the positive's share among the positive and the allowed negatives."""
    losses = []
    for i in range(query.shape[0]):
        scores = [
            F.cosine_similarity(query[i], key[j], dim=0).item() / temperature for j in range(key.shape[0])
        ]
        allowed = [j for j in range(key.shape[0]) if j == i or not masked or transcripts[j] != transcripts[i]]
        losses.append(-scores[i] + math.log(sum(math.exp(scores[j]) for j in allowed)))
    return sum(losses) / len(losses)


def test_transcript_rows_match_exactly_the_token_identical_transcripts_whatever_the_padding():
    tokenizer = TurboModelTester("wav2vec2", "gpt2").tokenizer
    rows = {}
    for side in ("right", "left"):
        tokenizer.padding_side = side
        encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
        rows[side] = transcript_rows(encoded["input_ids"], encoded["attention_mask"])
    torch.testing.assert_close(rows["left"], rows["right"], rtol=0, atol=0)
    same = (rows["left"][:, None] == rows["left"][None]).all(-1)
    expected = torch.tensor([[a == b for b in TEXTS] for a in TEXTS])
    assert torch.equal(same, expected)


def test_masked_info_nce_equals_a_loop_over_rows():
    generator = torch.Generator().manual_seed(0)
    query, key = torch.randn(6, 8, generator=generator), torch.randn(6, 8, generator=generator)
    tokenizer = TurboModelTester().tokenizer
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    rows = transcript_rows(encoded["input_ids"], encoded["attention_mask"])
    masked = info_nce(query, key, 0.1, transcripts=rows).item()
    assert masked == pytest.approx(reference_info_nce(query, key, 0.1, TEXTS), rel=1e-5)
    assert info_nce(query, key, 0.1).item() == pytest.approx(
        reference_info_nce(query, key, 0.1, masked=False), rel=1e-5
    )
    assert masked < info_nce(query, key, 0.1).item()  # fewer negatives


@pytest.mark.parametrize("loss_mode", ["turbo", "in_modal", "cross"])
def test_the_model_masks_duplicates_in_the_text_terms_only(loss_mode):
    # Dropout 0: both views coincide, so every term is computable from the view-1 embeddings.
    tester = TurboModelTester(loss_mode=loss_mode, dropout=0.0, temperature=0.1, duplicate_negatives="mask")
    model = tester.model().train()
    batch = dict(tester.processor(audio=tester.waveforms([0.5] * 6), text=TEXTS, sampling_rate=16000))
    output = model(**batch)
    a, t = output.audio_embeds.detach(), output.text_embeds.detach()
    audio_audio = reference_info_nce(a, a, 0.1, masked=False)
    text_text, audio_text = reference_info_nce(t, t, 0.1, TEXTS), reference_info_nce(a, t, 0.1, TEXTS)
    if loss_mode == "cross":
        assert output.cross_modal_loss.item() == pytest.approx(audio_text, rel=1e-4)
        return
    assert output.in_modal_loss.item() == pytest.approx(audio_audio + text_text, rel=1e-4)
    if loss_mode == "turbo":
        assert output.cross_modal_loss.item() == pytest.approx(4 * audio_text, rel=1e-4)


def test_keep_is_the_paper_loss():
    tester = TurboModelTester(dropout=0.0, temperature=0.1)
    assert tester.config.duplicate_negatives == "keep"
    batch = dict(tester.processor(audio=tester.waveforms([0.5] * 6), text=TEXTS, sampling_rate=16000))
    output = tester.model().train()(**batch)
    a, t = output.audio_embeds.detach(), output.text_embeds.detach()
    expected = reference_info_nce(a, a, 0.1, masked=False) + reference_info_nce(t, t, 0.1, masked=False)
    assert output.in_modal_loss.item() == pytest.approx(expected, rel=1e-4)


def _views(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(len(TEXTS), 8, generator=generator) for _ in range(4)]


def _rows_of(texts):
    encoded = TurboModelTester().tokenizer(texts, padding=True, return_tensors="pt")
    return transcript_rows(encoded["input_ids"], encoded["attention_mask"])


def _worker(rank: int, world_size: int, results_path: str) -> None:
    rows = slice(0, 4) if rank == 0 else slice(4, 6)  # uneven rows, and each pads to its own width
    local = [view[rows] for view in _views()]
    terms = turbo_loss_terms(*local, temperature=0.1, transcripts=_rows_of(TEXTS[rows]))
    torch.save({"terms": list(terms), "rows": rows.stop - rows.start}, f"{results_path}.{rank}")


def test_two_processes_mask_the_duplicates_of_the_whole_global_batch(tmp_path):
    results_path = str(tmp_path / "result")
    spawn_gloo(_worker, 2, results_path)
    results = [torch.load(f"{results_path}.{rank}") for rank in range(2)]
    reference = turbo_loss_terms(*_views(), temperature=0.1, transcripts=_rows_of(TEXTS))
    for index, term in enumerate(reference):
        # Each process averages over its own rows: weight the processes by their rows.
        combined = sum(r["terms"][index] * r["rows"] for r in results) / len(TEXTS)
        assert combined.item() == pytest.approx(term.item(), rel=1e-5), index
    assert reference.text_text.item() == pytest.approx(
        reference_info_nce(_views()[1], _views()[3], 0.1, TEXTS), rel=1e-5
    )
