"""The ``anchor:`` section of a run config (docs/anchoring.md).

```yaml
anchor:
  rpc: in-process            # or http(s)://node:8545; null (default): no anchoring
  contract: null             # a deployed registry's address; null: deploy one at run start
  account: null              # the coordinator's (unlocked) account on the node; null: its first
  institutions: {}           # site -> its own account; in-process: one made per site
```

Plain pydantic, importing nothing else of medsilo (nor web3), so :mod:`medsilo.config` can
use it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: An in-process Ethereum VM (eth-tester on py-evm): for tests and demos; the chain lives
#: and dies with the run's process.
IN_PROCESS = "in-process"
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
RPC_URL = re.compile(r"^https?://.+")


def _address(value: str | None) -> str | None:
    if value is not None and not ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an Ethereum address (0x and 40 hex digits)")
    return value


class AnchorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rpc: str | None = Field(
        None,
        description="'in-process' (an Ethereum VM inside the run, for tests and demos) or a "
        "JSON-RPC URL http(s)://...; null: rounds are not anchored",
    )
    contract: str | None = Field(
        None, description="address of a deployed federation registry; null: deploy one"
    )
    account: str | None = Field(
        None, description="the coordinator's unlocked account on the node; null: its first"
    )

    institutions: dict[str, str] = Field(
        default_factory=dict,
        description="each site's account, registered as an institution; the coordinator "
        "sends the run's final acknowledgements from it, so the node must hold it unlocked "
        "(docs/anchoring.md); in-process: one is made per site when left empty",
    )

    @field_validator("rpc")
    @classmethod
    def _known_rpc(cls, rpc: str | None) -> str | None:
        if rpc is not None and rpc != IN_PROCESS and not RPC_URL.match(rpc):
            raise ValueError(f"give '{IN_PROCESS}' or an http(s):// JSON-RPC URL, not {rpc!r}")
        return rpc

    _contract = field_validator("contract")(_address)
    _account = field_validator("account")(_address)

    @field_validator("institutions")
    @classmethod
    def _institution_addresses(cls, institutions: dict[str, str]) -> dict[str, str]:
        for address in institutions.values():
            _address(address)
        return institutions

    @property
    def enabled(self) -> bool:
        return self.rpc is not None
