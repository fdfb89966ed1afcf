import pytest

from sigrl.config import PreprocessConfig


@pytest.fixture
def preprocess() -> PreprocessConfig:
    return PreprocessConfig(image_size=32, resize_size=32, interpolation="bicubic")
