"""The text vector cache: keyed by model fingerprint and text hash, never stale, written atomically."""
from pathlib import Path

import numpy as np
import pytest
import torch

from interestevo.text import TextEncoder, TextModelError, encode_with_cache, item_text_features
from interestevo.text.cache import cache_file


class CountingModel:
    """A deterministic stand-in for a SentenceTransformer that records what it was asked."""

    def __init__(self, dimension=4, offset=0.0):
        self.calls, self.dimension, self.offset = [], dimension, offset

    def encode(self, texts, batch_size, show_progress_bar, convert_to_numpy, normalize_embeddings):
        self.calls.append(list(texts))
        rows = [np.full(self.dimension, len(t) + self.offset, np.float32) for t in texts]
        return np.stack(rows)


def encoder(fingerprint="a" * 64, model=None):
    return TextEncoder("test-model", Path("."), model or CountingModel(), fingerprint, 4)


def test_second_call_reads_everything_from_the_cache(tmp_path):
    first = encoder()
    result = encode_with_cache(["ab", "abc", "ab"], first, tmp_path, progress=False)
    assert result.encoded == 2 and result.reused == 0
    assert first.model.calls == [["ab", "abc"]]  # each distinct text once
    np.testing.assert_array_equal(result.vectors[:, 0], [2, 3, 2])
    again = encoder()
    cached = encode_with_cache(["abc", "ab"], again, tmp_path, progress=False)
    assert again.model.calls == [] and cached.reused == 2
    np.testing.assert_array_equal(cached.vectors[:, 0], [3, 2])


def test_changed_text_is_encoded_and_old_rows_are_kept(tmp_path):
    encode_with_cache(["one", "two"], encoder(), tmp_path, progress=False)
    changed = encoder()
    result = encode_with_cache(["one", "two!"], changed, tmp_path, progress=False)
    assert changed.model.calls == [["two!"]] and result.encoded == 1 and result.reused == 1
    saved = torch.load(cache_file(changed, tmp_path), weights_only=True)
    assert len(saved["keys"]) == 3


def test_another_model_never_reuses_vectors(tmp_path):
    encode_with_cache(["text"], encoder("a" * 64), tmp_path, progress=False)
    other = encoder("b" * 64, CountingModel(offset=100.0))
    result = encode_with_cache(["text"], other, tmp_path, progress=False)
    assert other.model.calls == [["text"]] and result.vectors[0, 0] == 104.0


def test_a_file_under_the_right_name_but_wrong_fingerprint_is_not_trusted(tmp_path, caplog):
    first = encoder("a" * 64)
    path = encode_with_cache(["text"], first, tmp_path, progress=False).cache_file
    saved = torch.load(path, weights_only=True)
    saved["fingerprint"] = "a" * 63 + "x"  # same 16-character file prefix, different model
    torch.save(saved, path)
    again = encoder("a" * 64)
    assert encode_with_cache(["text"], again, tmp_path, progress=False).encoded == 1
    assert "another model" in caplog.text


def test_a_damaged_cache_file_is_rebuilt(tmp_path, caplog):
    first = encoder()
    path = encode_with_cache(["text"], first, tmp_path, progress=False).cache_file
    path.write_bytes(b"not a torch file")
    again = encoder()
    result = encode_with_cache(["text"], again, tmp_path, progress=False)
    assert result.encoded == 1 and "unreadable" in caplog.text
    assert torch.load(path, weights_only=True)["keys"]  # rewritten whole
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_item_features_count_items_without_text(tmp_path):
    texts = np.array([None, "red", None, "  ", "blue"], dtype=object)
    features = item_text_features(texts, encoder(), tmp_path, progress=False)
    assert features.has_text.tolist() == [False, True, False, False, True]
    assert features.without_text == 2 and features.summary()["with_text"] == 2
    assert not features.vectors[[0, 2, 3]].any()
    np.testing.assert_array_equal(features.vectors[[1, 4], 0], [3, 4])


def test_without_the_extra_the_error_says_what_to_install(monkeypatch):
    from interestevo.text import encoder as encoder_module

    monkeypatch.setattr(encoder_module, "text_extra_available", lambda: False)
    with pytest.raises(TextModelError, match=r'needs sentence-transformers: pip install "interestevo\[text\]"'):
        encoder_module.load_text_encoder("all-MiniLM-L6-v2")
