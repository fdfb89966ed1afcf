"""CLIP's byte-level BPE tokenizer in plain Python, so that tokenising label prompts never imports torch.

It gives the ids of open_clip's SimpleTokenizer (tests/runtime/test_tokenizer.py compares them over
a varied corpus), which is what the exported text graphs were traced with. The merges are read from
the file that ships inside the installed open_clip package, found without importing that package
(its __init__ imports torch).

    ids = clip_tokenizer()(["There is a cat in the scene"], context_length=77)  # int64 [1, 77]
"""

from __future__ import annotations

import gzip
import html
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import ftfy
import numpy as np
import regex

from sigrl.errors import SigrlError

MERGES_FILE = "bpe_simple_vocab_16e6.txt.gz"
# CLIP's vocabulary has 49,408 ids: 2 x 256 byte symbols, the first 48,894 merges, 2 special tokens.
N_MERGES = 49_152 - 256 - 2
START, END = "<start_of_text>", "<end_of_text>"
END_OF_WORD = "</w>"
# Words: the special tokens, English contractions, letter runs, single digits, runs of anything else
# but whitespace. Case-insensitive like CLIP's, though the text is lower-cased before this runs.
WORD = regex.compile(
    rf"{START}|{END}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+", regex.IGNORECASE
)


def byte_symbols() -> dict[int, str]:
    """A visible character for every byte value, in CLIP's vocabulary order.

    Bytes that are printable Latin-1 characters (not space, not the soft hyphen) stand for
    themselves and come first; the other 68 bytes map, in byte order, to code points from 256 up.
    BPE then runs on text without whitespace or control characters and never needs an unknown token.
    """
    visible = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    hidden = [b for b in range(256) if b not in visible]
    return {b: chr(b) for b in visible} | {b: chr(256 + i) for i, b in enumerate(hidden)}


def clean(text: str) -> str:
    """Repair mojibake, unescape HTML (twice: doubly escaped text occurs), collapse whitespace, lower-case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return " ".join(text.split()).lower()


class ClipTokenizer:
    """Text -> CLIP token ids; call it on a batch for the padded int64 [N, context_length] array."""

    def __init__(self, merges: Sequence[tuple[str, str]]):
        table = byte_symbols()
        symbols = list(table.values())
        vocab = [*symbols, *(s + END_OF_WORD for s in symbols), *("".join(m) for m in merges), START, END]
        self.ids = {token: i for i, token in enumerate(vocab)}
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.start, self.end = self.ids[START], self.ids[END]
        self._to_symbols = str.maketrans({chr(b): s for b, s in table.items()})  # applied to latin-1 decoded bytes
        # ids per word seen: label sets repeat the same prompt words many times
        self._words: dict[str, list[int]] = {START: [self.start], END: [self.end]}

    def merge(self, word: str) -> list[str]:
        """BPE on one word of byte symbols: merge the lowest-ranked adjacent pair, all its occurrences
        left to right, until no adjacent pair is a known merge. The last symbol carries the end-of-word mark."""
        parts = [*word[:-1], word[-1] + END_OF_WORD]
        unknown = len(self.ranks)
        while len(parts) > 1:
            best = min(zip(parts, parts[1:]), key=lambda pair: self.ranks.get(pair, unknown))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without the start and end tokens."""
        ids: list[int] = []
        for word in WORD.findall(clean(text)):
            if word not in self._words:
                symbols = word.encode("utf-8").decode("latin-1").translate(self._to_symbols)
                self._words[word] = [self.ids[part] for part in self.merge(symbols)]
            ids.extend(self._words[word])
        return ids

    def __call__(self, texts: Sequence[str], context_length: int) -> np.ndarray:
        """int64 [N, context_length]: start, the text's ids, end, zero padding. A text too long for the
        context is cut, and its last id replaced by the end token (the text encoders pool there)."""
        if context_length < 2:
            raise SigrlError(f"a context length must hold the start and end tokens; got {context_length}")
        out = np.zeros((len(texts), context_length), dtype=np.int64)
        for row, text in zip(out, texts):
            ids = [self.start, *self.encode(text), self.end][:context_length]
            ids[-1] = self.end
            row[: len(ids)] = ids
        return out


def merges_path() -> Path:
    """open_clip's BPE merges file, located without importing open_clip."""
    spec = importlib.util.find_spec("open_clip")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / MERGES_FILE
        if path.is_file():
            return path
    raise SigrlError(
        f"tokenising labels needs CLIP's BPE merges ({MERGES_FILE}), which ship with open_clip; "
        "install it with: pip install open_clip_torch"
    )


@lru_cache(maxsize=1)
def clip_tokenizer() -> ClipTokenizer:
    """The tokenizer, built once per process (reading the merges takes a fraction of a second)."""
    with gzip.open(merges_path(), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n", N_MERGES + 1)[1 : N_MERGES + 1]  # line 0 is a version header
    return ClipTokenizer([(first, second) for first, second in map(str.split, lines)])
