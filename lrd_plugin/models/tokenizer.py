"""Character-level tokenizer for the tiny placeholder model and the tests.

A real LLaDA checkpoint ships its own BPE tokenizer; this one exists so that the
random-weight model can turn text into ids and back without any extra dependency.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

TOKENIZER_FILE = "tokenizer.json"
DEFAULT_SPECIALS = ("<pad>", "<bos>", "<eos>", "<mask>")


class CharTokenizer:
    """Special tokens take the first ids, then one id per character of ``chars``."""

    def __init__(self, chars: str, specials: Sequence[str] = DEFAULT_SPECIALS) -> None:
        missing = [s for s in DEFAULT_SPECIALS if s not in specials]
        if missing:
            raise ValueError(f"specials must include {list(DEFAULT_SPECIALS)}; missing {missing}")
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials must be unique, got {list(specials)}")
        repeated = sorted({c for c in chars if chars.count(c) > 1})
        if repeated:
            raise ValueError(f"chars must be unique; repeated: {repeated}")
        self.chars = chars
        self.specials = tuple(specials)
        self._char_to_id = {c: i + len(self.specials) for i, c in enumerate(chars)}
        self.pad_id = self.specials.index("<pad>")
        self.bos_id = self.specials.index("<bos>")
        self.eos_id = self.specials.index("<eos>")
        self.mask_id = self.specials.index("<mask>")

    @classmethod
    def default(cls) -> CharTokenizer:
        """Printable ASCII without the vertical-tab / form-feed characters."""
        return cls("".join(c for c in string.printable if c not in "\x0b\x0c"))

    @property
    def vocab_size(self) -> int:
        return len(self.specials) + len(self.chars)

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        """Map text to ids; an unknown character is an error rather than a silent drop."""
        ids = [self.bos_id] if add_bos else []
        for index, char in enumerate(text):
            token_id = self._char_to_id.get(char)
            if token_id is None:
                raise ValueError(f"unknown character {char!r} at index {index}")
            ids.append(token_id)
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Map ids to text; specials are dropped, or written as their names if kept."""
        n_special = len(self.specials)
        pieces = []
        for token_id in map(int, ids):
            if not 0 <= token_id < self.vocab_size:
                raise ValueError(f"token id {token_id} is outside the vocabulary [0, {self.vocab_size})")
            if token_id >= n_special:
                pieces.append(self.chars[token_id - n_special])
            elif not skip_special:
                pieces.append(self.specials[token_id])
        return "".join(pieces)

    def save(self, path: str | Path) -> None:
        """Write ``tokenizer.json`` into the directory ``path`` (created if needed)."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"type": "char", "chars": self.chars, "specials": list(self.specials)}
        (directory / TOKENIZER_FILE).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read the ``tokenizer.json`` written by :meth:`save` from the directory ``path``."""
        payload = json.loads((Path(path) / TOKENIZER_FILE).read_text())
        if payload.get("type") != "char":
            raise ValueError(f"{path}: tokenizer type must be 'char', got {payload.get('type')!r}")
        return cls(payload["chars"], payload["specials"])
