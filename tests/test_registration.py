"""`import turbo_hf` is light and still registers Turbo with transformers, whatever comes first.

Each case runs in a fresh interpreter: the test process has imported torch and transformers already.
"""

import json
import subprocess
import sys

import pytest
from conftest import TurboModelTester

_REPORT = """
import json, sys
from transformers import AutoConfig, AutoModel, AutoProcessor, pipeline
model = AutoModel.from_pretrained(sys.argv[1])
classify = pipeline("audio-text-classification", model=sys.argv[1])
print(json.dumps({
    "light": LIGHT,
    "model": type(model).__name__,
    "processor": type(AutoProcessor.from_pretrained(sys.argv[1])).__name__,
    "pipeline": type(classify).__name__,
    "modules": sorted({type(model).__module__, type(classify).__module__}),
}))
"""

FIRST_IMPORTS = {
    # the README's way: the package, then transformers
    "package first": 'import turbo_hf\nLIGHT = not {"torch", "transformers"} & set(sys.modules)',
    # transformers already there: registered at once
    "transformers first": "import transformers, turbo_hf\nLIGHT = None",
    # a model module whose own import brings transformers in, half-way through its execution
    "model module first": "from turbo_hf.modeling_turbo import TurboForAudioTextClassification\nLIGHT = None",
    "collator first": "from turbo_hf.collator import DataCollatorForAudioText\nLIGHT = None",
    "a public name": "from turbo_hf import TurboConfig\nLIGHT = None",
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return TurboModelTester().save_classifier(tmp_path_factory.mktemp("model"), ["a", "b", "c"])


@pytest.mark.parametrize("first", list(FIRST_IMPORTS))
def test_auto_classes_and_the_pipeline_task_are_registered_after_any_first_import(saved_model, first):
    script = "import sys\n" + FIRST_IMPORTS[first] + "\n" + _REPORT
    done = subprocess.run(
        [sys.executable, "-c", script, saved_model], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["model"] == "TurboForAudioTextClassification"
    assert report["processor"] == "TurboProcessor"
    assert report["pipeline"] == "AudioTextClassificationPipeline"
    assert report["modules"] == ["turbo_hf.modeling_turbo", "turbo_hf.pipeline"]
    assert report["light"] in (None, True)  # `import turbo_hf` alone loads neither torch nor transformers


def test_names_load_on_first_use_and_dir_lists_them():
    import turbo_hf

    assert {"TurboConfig", "load_manifest", "register"} <= set(dir(turbo_hf))
    assert turbo_hf.TurboConfig.__module__ == "turbo_hf.configuration_turbo"
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        turbo_hf.NoSuchThing  # noqa: B018
