"""ONNX export: the graph run by onnxruntime gives PyTorch's logits, takes the processor's outputs with
dynamic batch and length axes, runs without torch, and bad requests fail early with a clear error."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import TurboModelTester

from turbo_hf import TurboForAudioTextClassification, TurboProcessor
from turbo_hf.cli import EXIT_BAD_INPUT, main
from turbo_hf.export import EXPORT_INFO_FILE, ONNX_FILE, OnnxExportError, export_onnx

onnxruntime = pytest.importorskip(
    "onnxruntime", reason="the ONNX export tests need the onnx extra: pip install 'turbo_hf[onnx]'"
)

# (audio encoder, text encoder, audio config overrides): wav2vec2-base style (group norm: no audio
# mask into the encoder, only the pooling frame mask), layer-norm members that take the mask, Whisper.
CASES = {
    "wav2vec2-group+bert": ("wav2vec2", "bert", {}),
    "wavlm-layer+bert": ("wavlm", "bert", {"feat_extract_norm": "layer"}),
    "hubert-large+roberta": (
        "hubert",
        "roberta",
        {"feat_extract_norm": "layer", "do_stable_layer_norm": True},
    ),
    "data2vec-audio+gpt2": ("data2vec-audio", "gpt2", {}),
    "whisper+bert": ("whisper", "bert", {}),
}
# Batches of 1, 2 and 4 clips of different lengths (seconds), none of them the lengths traced.
CLIP_SECONDS = [(0.5,), (1.7, 0.3), (0.25, 2.2, 1.0, 0.7)]
TEXTS = ["hello", "sad and angry world", "happy", "hello world hello world"]


class Exported:
    def __init__(self, case: str, folder):
        audio_type, text_type, overrides = CASES[case]
        self.tester = TurboModelTester(audio_type, text_type, audio_overrides=overrides)
        self.model = self.tester.model()
        self.model.train()  # the export must hand it back in the mode it was given
        self.info = export_onnx(self.model, folder, self.tester.processor)
        self.training_after_export = self.model.training
        self.folder = folder
        self.session = onnxruntime.InferenceSession(str(folder / ONNX_FILE))

    def clips(self, seconds):
        return self.tester.waveforms(seconds, seed=len(seconds))


@pytest.fixture(scope="module")
def export_case(tmp_path_factory):
    """Export each case once per module (an export takes seconds), on first use."""
    done = {}

    def get(case: str) -> Exported:
        if case not in done:
            done[case] = Exported(case, tmp_path_factory.mktemp("onnx") / "exported")
        return done[case]

    return get


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, export_case):
    return export_case(request.param)


def test_onnxruntime_matches_pytorch_on_several_batch_sizes_and_clip_lengths(exported):
    saved_processor = TurboProcessor.from_pretrained(exported.folder)
    exported.model.eval()
    for seconds in CLIP_SECONDS:
        texts = TEXTS[: len(seconds)]
        inputs = saved_processor(audio=exported.clips(seconds), text=texts, return_tensors="np")
        logits, audio_embeds, text_embeds = exported.session.run(None, dict(inputs))
        with torch.no_grad():
            expected = exported.model(**saved_processor(audio=exported.clips(seconds), text=texts))
        assert logits.shape == (len(seconds), exported.tester.num_labels)
        np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(audio_embeds, expected.audio_embeds.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(text_embeds, expected.text_embeds.numpy(), atol=1e-4, rtol=0)


def test_graph_takes_the_processor_outputs_with_named_axes(exported):
    processor = exported.tester.processor
    graph_inputs = {item.name: item.shape for item in exported.session.get_inputs()}
    expected_names = [name for name in processor.model_input_names if name in exported.tester.inputs(2)]
    assert list(graph_inputs) == expected_names
    audio_name = processor.audio_input_name
    if exported.tester.audio_type == "whisper":  # the feature extractor pads to its fixed window
        window = processor.feature_extractor.nb_max_frames
        assert graph_inputs[audio_name] == ["batch", 80, window]
        assert graph_inputs["audio_attention_mask"] == ["batch", window]
        assert exported.info["audio_padding"] == "max_length"
    else:
        assert graph_inputs[audio_name] == graph_inputs["audio_attention_mask"] == ["batch", "audio_length"]
        assert exported.info["audio_padding"] == "longest"
    assert graph_inputs["input_ids"] == graph_inputs["attention_mask"] == ["batch", "text_length"]
    outputs = {item.name: item.shape for item in exported.session.get_outputs()}
    assert outputs == {
        "logits": ["batch", exported.tester.num_labels],
        "audio_embeds": ["batch", exported.model.config.projection_dim],
        "text_embeds": ["batch", exported.model.config.projection_dim],
    }
    written = json.loads((exported.folder / EXPORT_INFO_FILE).read_text())
    assert {item["name"]: item["shape"] for item in written["inputs"]} == graph_inputs
    assert written["check"]["max_abs_difference"]["logits"] <= 1e-4
    assert (exported.folder / "README.md").read_text().count(audio_name) >= 2


def test_export_hands_the_model_back_unchanged(exported):
    assert exported.training_after_export
    exported.model.eval()
    if exported.tester.audio_type != "whisper":  # the audio length check is in force again
        with pytest.raises(ValueError, match="audio too short"):
            exported.model(**exported.tester.processor(audio=[np.zeros(100, np.float32)], text=["hello"]))


# Runs the folder's README recipe in a Python where torch cannot be imported.
_WITHOUT_TORCH = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class HideTorch(importlib.abc.MetaPathFinder):
        def __init__(self, finder):
            self.finder = finder
        def __getattr__(self, name):
            return getattr(self.finder, name)
        def find_spec(self, name, path=None, target=None):
            return None if name.split(".")[0] == "torch" else self.finder.find_spec(name, path, target)

    sys.meta_path[:] = [HideTorch(finder) for finder in sys.meta_path]
    import numpy as np
    import onnxruntime
    from transformers import AutoFeatureExtractor, AutoTokenizer

    folder, info = sys.argv[1], json.loads(sys.stdin.read())
    feature_extractor = AutoFeatureExtractor.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    audio = feature_extractor([np.asarray(w, np.float32) for w in info["waveforms"]], sampling_rate=16000,
                              padding=info["padding"], return_attention_mask=True, return_tensors="np")
    text = tokenizer(info["texts"], padding=True, return_tensors="np")
    inputs = {"input_values": audio["input_values"], "audio_attention_mask": audio["attention_mask"], **text}
    session = onnxruntime.InferenceSession(folder + "/model.onnx")
    logits = session.run(["logits"], inputs)[0]
    print(json.dumps({"torch_imported": "torch" in sys.modules, "logits": logits.tolist()}))
    """
)


def test_cli_export_of_a_saved_folder_runs_without_torch(tmp_path, capsys):
    tester = TurboModelTester()
    model_dir = tester.save_classifier(tmp_path / "model", ["neutral", "happy", "sad"])
    folder = tmp_path / "exported"
    assert main(["export", model_dir, "--onnx", str(folder)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == json.loads((folder / EXPORT_INFO_FILE).read_text())
    assert info["id2label"] == {"0": "neutral", "1": "happy", "2": "sad"}

    waveforms, texts = tester.waveforms((0.9, 0.35)), ["happy world", "sad"]
    request = {"waveforms": [w.tolist() for w in waveforms], "texts": texts, "padding": info["audio_padding"]}
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, str(folder)],
        input=json.dumps(request), capture_output=True, text=True, check=True,
        env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"},
    )  # fmt: skip
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["torch_imported"] is False
    model = TurboForAudioTextClassification.from_pretrained(model_dir)
    with torch.no_grad():
        expected = model(**tester.processor(audio=waveforms, text=texts)).logits.numpy()
    np.testing.assert_allclose(np.array(answer["logits"]), expected, atol=1e-4, rtol=0)


def test_axis_fixed_by_model_code_is_an_error_naming_it(tmp_path):
    tester = TurboModelTester()
    model = tester.model()
    text_features = model.get_text_features

    def branch_on_batch_size(input_ids, *args, **kwargs):  # Python code that holds for the traced size only
        features = text_features(input_ids, *args, **kwargs)
        return features if input_ids.shape[0] == 2 else -features

    model.get_text_features = branch_on_batch_size
    with pytest.raises(OnnxExportError, match="fixes the batch axis of input_values to the traced size 2"):
        export_onnx(model, tmp_path / "out", tester.processor)
    assert not (tmp_path / "out" / ONNX_FILE).exists()


def test_requests_that_cannot_export_fail_before_tracing(tmp_path, monkeypatch):
    tester = TurboModelTester()
    model = tester.model()
    with pytest.raises(OnnxExportError, match="needs the model's processor"):
        export_onnx(model, tmp_path / "a")
    with pytest.raises(OnnxExportError, match=r"weights are torch.float16; .*model.float\(\)"):
        export_onnx(tester.model().half(), tmp_path / "b", tester.processor)
    with pytest.raises(OnnxExportError, match="parent .* does not exist"):
        export_onnx(model, tmp_path / "missing" / "out", tester.processor)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.onnx").write_bytes(b"")
    with pytest.raises(OnnxExportError, match="is not empty"):
        export_onnx(model, tmp_path / "full", tester.processor)
    with pytest.raises(OnnxExportError, match="does not exist"):
        export_onnx(tmp_path / "no_model", tmp_path / "c")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(OnnxExportError, match="model_type is 'bert', expected 'turbo'"):
        export_onnx(tmp_path / "bert", tmp_path / "d")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(OnnxExportError, match=r"onnxruntime: pip install 'turbo_hf\[onnx\]'"):
        export_onnx(model, tmp_path / "e", tester.processor)
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_cli_answers_bad_requests_with_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch):
    model_dir = TurboModelTester().save_classifier(tmp_path / "model", ["a", "b", "c"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "model.onnx").write_bytes(b"")
    capsys.readouterr()  # save_pretrained's progress bar
    requests = {
        "the model folder": [str(tmp_path / "missing"), "--onnx", str(tmp_path / "out")],
        "parent": [model_dir, "--onnx", str(tmp_path / "missing" / "out")],
        "not empty": [model_dir, "--onnx", str(tmp_path / "full")],
    }
    for message, arguments in requests.items():
        assert main(["export", *arguments]) == EXIT_BAD_INPUT
        error = capsys.readouterr().err.strip()
        assert error.startswith("turbo-hf export: error:") and message in error and "\n" not in error
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert main(["export", model_dir, "--onnx", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert "pip install 'turbo_hf[onnx]'" in capsys.readouterr().err


def test_whisper_batch_window_exports_with_a_dynamic_mel_length(tmp_path):
    # audio_window="batch": the processor pads log-mel frames to the batch's longest clip (whole
    # seconds), so the graph must take any window up to the pretrained one, not one traced length.
    from transformers import WhisperFeatureExtractor

    from turbo_hf import TurboConfig
    from turbo_hf.testing.tiny_encoders import tiny_audio_config, tiny_text_config, tiny_tokenizer

    tokenizer = tiny_tokenizer("bert", words=TEXTS)
    processor = TurboProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80, chunk_length=3),
        tokenizer=tokenizer,
        audio_window="batch",
    )
    config = TurboConfig(
        audio_config=tiny_audio_config("whisper", max_source_positions=150),
        text_config=tiny_text_config("bert", vocab_size=len(tokenizer)),
        num_labels=3,
        projection_dim=16,
        audio_window="batch",
    )
    torch.manual_seed(0)
    model = TurboForAudioTextClassification(config).eval()
    info = export_onnx(model, tmp_path, processor)
    assert info["inputs"][0]["shape"] == ["batch", 80, "audio_length"]
    session = onnxruntime.InferenceSession(str(tmp_path / ONNX_FILE))
    names = [graph_input.name for graph_input in session.get_inputs()]
    frames = set()
    for seconds in [(0.5,), (1.7, 0.3), (2.6, 0.4, 1.2)]:
        rng = np.random.default_rng(len(seconds))
        clips = [rng.standard_normal(int(16000 * s)).astype(np.float32) for s in seconds]
        batch = processor(audio=clips, text=TEXTS[: len(seconds)], sampling_rate=16000)
        frames.add(batch["input_features"].shape[-1])
        with torch.no_grad():
            expected = model(**batch).logits.numpy()
        (logits, *_) = session.run(None, {name: batch[name].numpy() for name in names})
        np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert frames == {100, 200, 300}  # three windows through one graph
