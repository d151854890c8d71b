"""Tokenizers of this project's LLaDA-format models.

``CharTokenizer``: one id per character, no dependency (the task-suite default model, the tests).
``BPETokenizer``: a byte-level BPE built with the ``tokenizers`` library (the code model; the
``[code]`` extra). ``load_tokenizer`` reads either from a model directory's ``tokenizer.json``.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

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


CODE_EXTRA = "code"  # the pyproject extra that installs the `tokenizers` library


def _import_tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError as error:
        raise ImportError(
            f"the byte-level BPE tokenizer (the code model) needs the `tokenizers` library: "
            f"pip install 'lrd-plugin[{CODE_EXTRA}]'"
        ) from error
    return tokenizers


class BPETokenizer:
    """Byte-level BPE built with the ``tokenizers`` library, with ``CharTokenizer``'s interface.

    The project's specials (``<pad>``, ``<bos>``, ``<eos>``, ``<mask>``) take ids 0-3, as in
    ``CharTokenizer``. Text is split at every ``\\n`` before the GPT-2 byte-level pre-tokenizer, so
    no token spans a line break: ``encode(a + b) == encode(a) + encode(b)`` whenever ``a`` ends
    with ``\\n`` (a span of whole lines tokenises the same alone and inside its file). Every byte
    has a token, so ``decode(encode(text)) == text`` for any text, whitespace included; a special's
    name inside the text (``"<mask>"``) is encoded as ordinary text, never as the special.
    """

    def __init__(self, backend: Any, metadata: dict[str, Any] | None = None) -> None:
        ids = {name: backend.token_to_id(name) for name in DEFAULT_SPECIALS}
        if [ids[name] for name in DEFAULT_SPECIALS] != list(range(len(DEFAULT_SPECIALS))):
            raise ValueError(f"a BPE tokenizer must hold the specials {list(DEFAULT_SPECIALS)} at ids 0-3, got {ids}")
        backend.encode_special_tokens = True  # "<mask>" in a source file is text (not stored in the JSON)
        self.backend = backend
        self.metadata = dict(metadata or {})
        self.specials = DEFAULT_SPECIALS
        self.pad_id = ids["<pad>"]
        self.bos_id = ids["<bos>"]
        self.eos_id = ids["<eos>"]
        self.mask_id = ids["<mask>"]

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 4096,
        min_frequency: int = 2,
        metadata: dict[str, Any] | None = None,
    ) -> BPETokenizer:
        """Learn a byte-level BPE of ``vocab_size`` ids (specials included) from ``texts``."""
        tokenizers = _import_tokenizers()
        byte_level = tokenizers.pre_tokenizers.ByteLevel
        if vocab_size < len(DEFAULT_SPECIALS) + len(byte_level.alphabet()):
            raise ValueError(f"vocab_size must hold the 4 specials and 256 bytes, got {vocab_size}")
        backend = tokenizers.Tokenizer(tokenizers.models.BPE())
        backend.pre_tokenizer = tokenizers.pre_tokenizers.Sequence(
            [
                tokenizers.pre_tokenizers.Split(tokenizers.Regex("\n"), behavior="merged_with_previous"),
                byte_level(add_prefix_space=False, use_regex=True),
            ]
        )
        backend.decoder = tokenizers.decoders.ByteLevel()
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(DEFAULT_SPECIALS),
            initial_alphabet=byte_level.alphabet(),
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer)
        return cls(backend, metadata)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return [self.bos_id, *ids] if add_bos else ids

    def encode_lines(self, texts: Sequence[str]) -> list[list[int]]:
        """``encode(text, add_bos=False)`` of each text, in one batch."""
        return [encoding.ids for encoding in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Map ids to text; specials are dropped, or written as their names if kept. Runs of ordinary
        ids are decoded together, so a character split over several byte tokens comes back whole."""
        n_special, vocab = len(self.specials), self.vocab_size
        pieces: list[str] = []
        run: list[int] = []
        for token_id in map(int, ids):
            if not 0 <= token_id < vocab:
                raise ValueError(f"token id {token_id} is outside the vocabulary [0, {vocab})")
            if token_id >= n_special:
                run.append(token_id)
                continue
            if run:
                pieces.append(self.backend.decode(run, skip_special_tokens=False))
                run = []
            if not skip_special:
                pieces.append(self.specials[token_id])
        if run:
            pieces.append(self.backend.decode(run, skip_special_tokens=False))
        return "".join(pieces)

    def token_text(self, token_id: int) -> str:
        """The text of one id (a special's name for a special)."""
        return self.decode([token_id], skip_special=False)

    def payload(self) -> dict[str, Any]:
        """What ``tokenizer.json`` holds: this project's wrapper around the library's own JSON."""
        return {
            "type": "bpe",
            "specials": list(self.specials),
            "metadata": self.metadata,
            "tokenizer": json.loads(self.backend.to_str()),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], source: str = "payload") -> BPETokenizer:
        if payload.get("type") != "bpe":
            raise ValueError(f"{source}: tokenizer type must be 'bpe', got {payload.get('type')!r}")
        if tuple(payload.get("specials", ())) != DEFAULT_SPECIALS:
            raise ValueError(f"{source}: specials must be {list(DEFAULT_SPECIALS)}, got {payload.get('specials')}")
        backend = _import_tokenizers().Tokenizer.from_str(json.dumps(payload["tokenizer"]))
        return cls(backend, payload.get("metadata"))

    def save(self, path: str | Path) -> None:
        """Write ``tokenizer.json`` into the directory ``path`` (created if needed)."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.payload(), indent=1, ensure_ascii=False)
        (directory / TOKENIZER_FILE).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read the ``tokenizer.json`` written by :meth:`save` from the directory ``path``."""
        payload = json.loads((Path(path) / TOKENIZER_FILE).read_text(encoding="utf-8"))
        return cls.from_payload(payload, str(path))


TOKENIZER_TYPES: dict[str, Any] = {"char": CharTokenizer, "bpe": BPETokenizer}


def load_tokenizer(path: str | Path) -> CharTokenizer | BPETokenizer:
    """The tokenizer saved in the directory ``path``, whichever type its ``tokenizer.json`` names."""
    payload = json.loads((Path(path) / TOKENIZER_FILE).read_text(encoding="utf-8"))
    kind = payload.get("type")
    if kind not in TOKENIZER_TYPES:
        raise ValueError(f"{path}: tokenizer type must be one of {sorted(TOKENIZER_TYPES)}, got {kind!r}")
    return TOKENIZER_TYPES[kind].load(path)
