"""Platform records, the seed vulnerability registry and the exploit indicator."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from medsilo.confidential.platform import PlatformRecord
from medsilo.confidential.vulnerabilities import (
    Vulnerability,
    default_registry,
    exploit_indicator,
    unmatched_vulnerabilities,
)
from medsilo.config import ConfigError
from medsilo.runtime.simulation import run_federation

from ..conftest import small_config, synthetic_federation


def test_registry_has_the_well_known_entries() -> None:
    reg = default_registry()
    assert reg["CVE-2018-3615"].platforms == ("sgx",)  # Foreshadow
    assert reg["CVE-2020-0551"].platforms == ("sgx",)  # LVI
    assert reg["CVE-2023-20592"].platforms == ("sev-snp",)  # CacheWarp
    assert all(v.cve == k for k, v in reg.items())


def test_indicator_rule() -> None:
    assert exploit_indicator(PlatformRecord()) == 0
    assert exploit_indicator(PlatformRecord(kind="sgx", tcb_version="15")) == 0
    lvi = PlatformRecord(kind="sgx", known_vulnerabilities=("CVE-2020-0551",))
    assert exploit_indicator(lvi) == 1
    # a CVE for another platform kind does not count, nor does an unknown one
    wrong = PlatformRecord(kind="tdx", known_vulnerabilities=["CVE-2020-0551", "CVE-2099-12345"])
    assert exploit_indicator(wrong) == 0
    assert unmatched_vulnerabilities(wrong) == ["CVE-2020-0551", "CVE-2099-12345"]
    snp = PlatformRecord(kind="sev-snp", known_vulnerabilities=["CVE-2023-20592"])
    assert exploit_indicator(snp) == 1
    # entries not marked exploitable do not count
    reg = {"CVE-2020-0551": Vulnerability("CVE-2020-0551", "LVI", ("sgx",), False)}
    assert exploit_indicator(lvi, reg) == 0


def test_record_validation() -> None:
    with pytest.raises(ValidationError):
        PlatformRecord(kind="trustzone")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PlatformRecord(kind="sgx", known_vulnerabilities=["foreshadow"])


def test_sites_config_defaults_and_overrides() -> None:
    cfg = small_config(
        sites={
            "default": {"platform": {"kind": "sev-snp", "tcb_version": "1.55"}},
            "overrides": {
                "h1": {
                    "network": {"uplink_mbps": 5, "downlink_mbps": 20, "latency_ms": 40},
                    "platform": {"kind": "sgx", "known_vulnerabilities": ["CVE-2018-3615"]},
                }
            },
        }
    )
    assert cfg.sites.record("h0").platform.kind == "sev-snp"
    assert cfg.sites.record("h0").network.uplink_mbps == 100
    h1 = cfg.sites.record("h1")
    assert h1.network.uplink_mbps == 5 and exploit_indicator(h1.platform) == 1


def test_unknown_override_site_is_an_error() -> None:
    cfg = small_config(sites={"overrides": {"nowhere": {"network": {"uplink_mbps": 1}}}})
    with pytest.raises(ConfigError, match="nowhere"):
        run_federation(cfg, synthetic_federation())


def test_sites_without_drops_one_override() -> None:
    cfg = small_config(sites={"overrides": {"h1": {"network": {"uplink_mbps": 5}}}})
    assert cfg.sites.without("h1").overrides == {}
    assert cfg.sites.without("h0") == cfg.sites
