"""Format sniffing across all sources at once: every real sample and every fixture is
recognised by its own source and by no other (so `--source auto` never hands a vendor's
file to the wrong parser)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portlens import sources
from portlens.sources.base import read_head

from conftest import SAMPLES

FIXTURES = Path(__file__).parent / "fixtures"
# Sample folders named after the vendor rather than the source.
SAMPLE_OWNERS = {"cisco_meraki": "meraki", "mde_devicenetworkevents": "mde"}
# Sentinel table exports (CSV/JSON of CommonSecurityLog, Syslog, Event and the vendor tables)
# are the `sentinel` source's, whichever folder holds them; it routes each row to its vendor's
# parser. The Traffic Analytics export stays with azure-nsg, which reads that table itself.
EXPORT_OWNERS = {"sentinel/azure-nsg-nta": "azure-nsg"}
EXPORTS_ELSEWHERE = {"fortinet/Fortinet_Fortigate_NetworkSession_IngestedLogs.csv", "zscaler/ZScaler.json"}


def owner(folder: str) -> str:
    return SAMPLE_OWNERS.get(folder, folder.replace("_", "-"))


def sample_owner(rel: Path) -> str:
    if str(rel) in EXPORTS_ELSEWHERE:
        return "sentinel"
    if rel.parts[0] == "sentinel":
        return EXPORT_OWNERS.get("/".join(rel.parts[:2]), "sentinel")
    return owner(rel.parts[0])


def claimants(path: Path) -> set[str]:
    head = read_head(str(path))
    return {s.name for s in sources.all_sources().values() if s.sniff(head, str(path))}


def sample_files() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return [p for p in sorted(SAMPLES.rglob("*")) if p.is_file() and p.suffix != ".md"]


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_each_sample_is_claimed_by_its_source_only(path):
    expected = sample_owner(path.relative_to(SAMPLES))
    assert claimants(path) == {expected}
    assert sources.detect(str(path)).name == expected


@pytest.mark.parametrize("path", sorted(p for p in FIXTURES.rglob("*") if p.is_file()),
                         ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixtures_are_never_claimed_by_another_source(path):
    assert claimants(path) <= {owner(path.relative_to(FIXTURES).parts[0])}


def test_samples_folder_present_or_skipped():
    if not SAMPLES.is_dir():
        pytest.skip("../shared/samples is not present")
    assert len(sample_files()) >= 30
