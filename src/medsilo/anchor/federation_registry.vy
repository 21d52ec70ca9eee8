# pragma version ~=0.4.3
# pragma evm-version shanghai
"""
@title medsilo federation registry
@notice The coordinator registry of a federation: the institutions taking part, and per
        round the global model's SHA-256 and the head of the coordinator's audit ledger.
        Anyone can read it; only the coordinator account that deployed it writes rounds,
        in order, once each; each registered institution can acknowledge a round from its
        own account, so a round's hash is confirmed on chain by the sites, not only by the
        coordinator. Model weights and updates stay off chain (docs/anchoring.md).
"""

event InstitutionRegistered:
    account: indexed(address)
    name: String[64]

event RoundAnchored:
    round_index: indexed(uint256)
    model_hash: bytes32
    ledger_head: bytes32

event RoundAcknowledged:
    round_index: indexed(uint256)
    institution: indexed(address)
    model_hash: bytes32

coordinator: public(address)
federation_id: public(bytes32)
institution_name: public(HashMap[address, String[64]])
institution_count: public(uint256)
round_count: public(uint256)
model_hash: public(HashMap[uint256, bytes32])
ledger_head: public(HashMap[uint256, bytes32])
acknowledged: public(HashMap[uint256, HashMap[address, bool]])


@deploy
def __init__(federation_id: bytes32):
    self.coordinator = msg.sender
    self.federation_id = federation_id


@external
def register_institution(account: address, name: String[64]):
    assert msg.sender == self.coordinator, "only the coordinator registers institutions"
    assert len(name) > 0, "an institution needs a name"
    assert len(self.institution_name[account]) == 0, "institution already registered"
    self.institution_name[account] = name
    self.institution_count += 1
    log InstitutionRegistered(account=account, name=name)


@external
def anchor_round(round_index: uint256, model_hash: bytes32, ledger_head: bytes32):
    assert msg.sender == self.coordinator, "only the coordinator anchors rounds"
    assert round_index == self.round_count + 1, "rounds are anchored in order, once each"
    self.round_count = round_index
    self.model_hash[round_index] = model_hash
    self.ledger_head[round_index] = ledger_head
    log RoundAnchored(round_index=round_index, model_hash=model_hash, ledger_head=ledger_head)


@external
def acknowledge_round(round_index: uint256, model_hash: bytes32):
    assert len(self.institution_name[msg.sender]) > 0, "only a registered institution acknowledges"
    assert round_index <= self.round_count, "round not anchored yet"
    assert self.model_hash[round_index] == model_hash, "model hash differs from the anchored one"
    assert not self.acknowledged[round_index][msg.sender], "round already acknowledged"
    self.acknowledged[round_index][msg.sender] = True
    log RoundAcknowledged(round_index=round_index, institution=msg.sender, model_hash=model_hash)
