"""Where the lis_device tests find their samples: the shared corpus beside the repo (skipped
when absent) and the small fixtures the repo carries."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED_SAMPLES = REPO_ROOT.parent / "shared" / "samples"


def shared_sample_files(kind: str, *suffixes: str) -> list[Path]:
    folder = SHARED_SAMPLES / kind
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix in suffixes)


def shared_sample(kind: str, name: str) -> bytes:
    path = SHARED_SAMPLES / kind / name
    if not path.is_file():
        pytest.skip(
            f"shared sample {kind}/{name} absent ({SHARED_SAMPLES} not found beside the repo)"
        )
    return path.read_bytes()


def fixture_bytes(kind: str, name: str) -> bytes:
    return (FIXTURES / kind / name).read_bytes()
