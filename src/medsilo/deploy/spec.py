"""``FEDERATION.yaml``: who takes part in a real (multi-machine) federation.

The file names the federation, the coordinator (the machine that runs Flower's SuperLink) and
the sites (hospitals, each running a SuperNode). Only names, addresses and ports are in it; no
secrets. Flower 1.42 (as 1.41) serves its Fleet, Control and Runtime APIs over HTTPS on one
``--host``/``--port`` pair (the separate ``--fleet-api-address``/``--control-api-address`` flags
are deprecated), so the coordinator has one ``port`` and one ``bind_host``.

The optional ``enrolment`` section is the coordinator's attestation policy
(:class:`medsilo.attestation.policy.EnrolmentPolicy`, same fields and defaults) with one
difference: ``allowed_measurements`` may be left out, meaning "the measurement of the medsilo
package installed where ``medsilo provision`` runs" (:func:`package_measurement`), resolved
once when the kits are written. Left out entirely, the section takes every default, so only
the hardware backends (``sev-snp``, ``tdx``) are admitted; ``software`` (no hardware root of
trust) must be listed explicitly.

The optional ``council`` section (``members``: site names, ``threshold``: M) makes the
coordinator's guarded actions need M members' signed approvals (docs/governance.md).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from medsilo.attestation.evidence import Backend
from medsilo.attestation.measurement import package_measurement
from medsilo.attestation.policy import EnrolmentPolicy
from medsilo.config import ConfigError
from medsilo.config_errors import describe_invalid

# A site name becomes a folder and a file name; keep it to a safe portable alphabet.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
# Evidence carries measurements as lowercase hex of at least 32 bytes (attestation.evidence).
_MEASUREMENT = re.compile(r"^[0-9a-f]{64,}$")
_POLICY_FIELDS = EnrolmentPolicy.model_fields


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class CoordinatorSpec(_Strict):
    """The SuperLink machine.

    ``address`` is what the sites dial (DNS name or IP); it always goes into the TLS
    certificate. ``extra_names`` are further DNS names or IPs the certificate must cover.
    """

    address: str
    extra_names: list[str] = Field(default_factory=list)
    bind_host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("address", "extra_names")
    @classmethod
    def _valid_names(cls, value: str | list[str]) -> str | list[str]:
        for name in [value] if isinstance(value, str) else value:
            if not (is_ip_address(name) or _DNS.match(name)):
                raise ValueError(f"{name!r} is neither an IP address nor a DNS name")
        return value

    @field_validator("bind_host")
    @classmethod
    def _valid_bind(cls, value: str) -> str:
        if not is_ip_address(value):
            raise ValueError(f"{value!r} is not an IP address (use 0.0.0.0 for all interfaces)")
        return value

    def subject_alt_names(self) -> list[str]:
        """The names the server certificate covers, in order, without duplicates."""
        return list(dict.fromkeys([self.address, *self.extra_names]))


class SiteSpec(_Strict):
    name: str

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid site name (letters, digits, '_', '.', '-'; "
                "starts with a letter or digit; at most 63 characters)"
            )
        return value


class EnrolmentSpec(_Strict):
    """``EnrolmentPolicy`` as written in FEDERATION.yaml; defaults are the policy's own."""

    allowed_backends: tuple[Backend, ...] = _POLICY_FIELDS["allowed_backends"].default
    allowed_measurements: tuple[str, ...] | None = Field(default=None, min_length=1)
    max_age_s: float = Field(default=_POLICY_FIELDS["max_age_s"].default, gt=0)
    exploitable_tcb: Literal["reject", "flag"] = _POLICY_FIELDS["exploitable_tcb"].default

    @field_validator("allowed_measurements")
    @classmethod
    def _hex_measurements(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for measurement in value or ():
            if not _MEASUREMENT.match(measurement):
                raise ValueError(
                    f"{measurement!r} is not a measurement (lowercase hex, at least 64 digits)"
                )
        return value

    def resolve(self, measurement: str | None = None) -> EnrolmentPolicy:
        """The policy; omitted ``allowed_measurements`` become ``(measurement,)``, by default
        the installed medsilo package's :func:`package_measurement`."""
        measurements = self.allowed_measurements or (measurement or package_measurement(),)
        fields = self.model_dump(exclude={"allowed_measurements"})
        return EnrolmentPolicy(allowed_measurements=measurements, **fields)


class CouncilSpec(_Strict):
    """Who must approve the coordinator's guarded actions: ``threshold`` of ``members`` (site
    names), each voting with its site kit's key (docs/governance.md, "Quorum decisions")."""

    members: list[str] = Field(min_length=1)
    threshold: int = Field(ge=1)


class FederationSpec(_Strict):
    federation: str
    coordinator: CoordinatorSpec
    sites: list[SiteSpec] = Field(min_length=1)
    enrolment: EnrolmentSpec = Field(default_factory=EnrolmentSpec)
    council: CouncilSpec | None = None
    validity_days: int = Field(default=365, ge=1, le=3650)
    output: Path = Path("deploy-kits")

    @field_validator("federation")
    @classmethod
    def _valid_federation(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a valid federation name")
        return value

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, value: list[SiteSpec]) -> list[SiteSpec]:
        names = [site.name for site in value]
        dupes = sorted({name for name in names if names.count(name) > 1})
        if dupes:
            raise ValueError(f"site names must be unique; repeated: {', '.join(dupes)}")
        if "coordinator" in names:
            raise ValueError("'coordinator' is reserved for the coordinator kit")
        return value

    @model_validator(mode="after")
    def _council_of_sites(self) -> FederationSpec:
        if self.council is None:
            return self
        names = {site.name for site in self.sites}
        members = self.council.members
        strangers = [m for m in members if m not in names]
        if strangers:
            raise ValueError(f"council members must be sites; not sites: {', '.join(strangers)}")
        if len(set(members)) != len(members):
            raise ValueError("council members must be unique")
        if self.council.threshold > len(members):
            raise ValueError(
                f"council threshold {self.council.threshold} exceeds its {len(members)} members"
            )
        return self


def parse_federation(raw: Any, source: str = "<federation>") -> FederationSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid federation file {source}: expected a mapping at the top")
    try:
        return FederationSpec.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_invalid(err, f"invalid federation file {source}:")) from None


def load_federation(path: Path) -> FederationSpec:
    """Read FEDERATION.yaml; a relative ``output`` is taken relative to the file's folder."""
    if not path.is_file():
        raise ConfigError(f"federation file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    spec = parse_federation(raw, str(path))
    if not spec.output.is_absolute():
        spec = spec.model_copy(update={"output": path.parent / spec.output})
    return spec
