"""The torch-free CLIP tokenizer gives open_clip's ids exactly, and the ONNX label side uses it without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sigrl.data.world_vocab import all_labels
from sigrl.errors import SigrlError
from sigrl.runtime import tokenizer as tokenizer_module
from sigrl.runtime.onnx_runner import tokenize
from sigrl.runtime.tokenizer import clip_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ("{label}", "There is a {label} in the scene", "a photo of a {label}.", "i can see two {label}s!")
ODD_TEXTS = [
    "",
    " ",
    "   leading, trailing and\tinner \n whitespace   ",
    "MiXeD CaSe WORDS and ALLCAPS",
    "punctuation: a-b, c_d; e/f (g) [h] {i} 'j' \"k\" ... ?! @#$%^&*+=~`|\\<>",
    "contractions: it's, don't, we're, they've, I'm, we'll, he'd, O'Neil's",
    "digits 0 7 42 1999 3.14159 1,000,000 2nd 10km",
    "accents: café naïve résumé Ångström façade jalapeño ÉCOLE",
    "CJK: 猫がいる 一只红色的猫 고양이",
    "emoji: 🐱 🚗💨 👍🏽 👨‍👩‍👧 ❤️",
    "Cyrillic and Greek: кошка ΓΑΤΑ ß straße",
    "HTML: &amp; &lt;b&gt; &amp;amp; &quot;quoted&quot; &#39;apos&#39; &copy; &nbsp;x",
    "mojibake: cafÃ© â€œsmartâ€\x9d",
    "ligatures and widths: ﬁne ｆｕｌｌｗｉｄｔｈ ½",
    "control\x00chars\x07 and soft\xadhyphen and zero\u200bwidth",
    "tokens as text: <start_of_text> hello <end_of_text> <START_OF_TEXT>",
    "a-very-long-hyphenated-compound-word-that-keeps-going supercalifragilisticexpialidocious",
    "long " * 40,
    " ".join(all_labels()),
    "🐱" * 60,
]


def corpus() -> list[str]:
    label_file = (ROOT / "examples" / "labels.txt").read_text().splitlines()  # comment lines too
    labels = [*label_file, *all_labels()]
    return labels + [t.format(label=label) for t in TEMPLATES for label in labels] + ODD_TEXTS


@pytest.fixture(scope="module")
def reference():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def test_vocabulary_matches_open_clip(reference):
    tok = clip_tokenizer()
    assert len(tok.ids) == 49408
    assert tok.ids == reference.encoder
    assert (tok.start, tok.end) == (reference.sot_token_id, reference.eot_token_id)


@pytest.mark.parametrize("context_length", [32, 77])
def test_ids_match_open_clip(reference, context_length):
    texts = corpus()
    ours = clip_tokenizer()(texts, context_length)
    theirs = reference(texts, context_length=context_length).numpy()
    assert ours.dtype == np.int64 and ours.shape == (len(texts), context_length)
    for text, a, b in zip(texts, ours, theirs):
        assert a.tolist() == b.tolist(), text


def test_long_text_is_cut_with_the_end_token_last():
    tok = clip_tokenizer()
    ids = tok(["long " * 40, "", "🐱" * 60], 32)
    assert ids[0, 0] == tok.start and ids[0, -1] == tok.end and (ids[0] != 0).all()
    assert ids[1].tolist() == [tok.start, tok.end] + [0] * 30
    assert ids[2, -1] == tok.end  # cut inside a multi-token character: the end token still closes it


def test_encode_is_cached_per_word():
    tok = clip_tokenizer()
    assert clip_tokenizer() is tok
    first = tok.encode("a zebra-striped quokka")
    assert "quokka" in tok._words and tok.encode("a zebra-striped quokka") == first


def test_onnx_tokenize_trims_to_the_longest_prompt(reference):
    prompts = ["There is a red circle in the scene", "a cat"]
    ids = tokenize(prompts, {"text_cfg": {}}, 77)
    full = reference(prompts, context_length=77).numpy()
    assert ids.dtype == np.int64 and ids.flags.c_contiguous
    assert ids.shape == (2, 10) and (ids == full[:, :10]).all() and (full[:, 10:] == 0).all()  # start, 8 words, end


def test_hugging_face_tokenizers_are_refused():
    with pytest.raises(SigrlError, match="Hugging Face tokenizers are not supported"):
        tokenize(["a cat"], {"text_cfg": {"hf_tokenizer_name": "bert-base-uncased"}}, 77)


def test_context_too_short_is_an_error():
    with pytest.raises(SigrlError, match="context length"):
        clip_tokenizer()(["a cat"], 1)


def test_missing_open_clip_says_how_to_install(monkeypatch):
    monkeypatch.setattr(tokenizer_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SigrlError, match="pip install open_clip_torch"):
        tokenizer_module.merges_path()


def test_onnx_tokenize_imports_no_torch():
    code = (
        "import sys\n"
        "from sigrl.runtime.onnx_runner import tokenize\n"
        "ids = tokenize(['There is a café in the scene', 'a 🐱'], {'text_cfg': {}}, 77)\n"
        "print(ids.tolist())\n"
        "print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    ids, imported = out.stdout.strip().splitlines()
    assert imported == "[]"
    assert ids == str(tokenize(["There is a café in the scene", "a 🐱"], {"text_cfg": {}}, 77).tolist())
