from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip("../shared/samples is not present")
    return SAMPLES


CONFIG_HEADER = "Ports,App,Protocol,Direction,Action,Type,ThresholdType,Threshold,Severity,Tactic,Name,Description\n"


@pytest.fixture
def write_config(tmp_path):
    """Write a monitor configuration CSV from data rows (the header is added)."""
    def write(*rows: str) -> Path:
        path = tmp_path / "config.csv"
        path.write_text(CONFIG_HEADER + "".join(r + "\n" for r in rows))
        return path
    return write
