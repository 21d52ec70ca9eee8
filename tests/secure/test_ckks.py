"""CKKS aggregation: the coordinator sums ciphertexts without the secret key."""

from __future__ import annotations

import numpy as np
import pytest

from medsilo.secure.ckks import (
    CKKSKeys,
    decrypt_sum,
    encrypt_vector,
    load_context,
    sum_ciphertexts,
)


@pytest.fixture(scope="module")
def keys() -> CKKSKeys:
    return CKKSKeys.generate()


def test_the_decrypted_sum_matches_the_plain_sum(keys: CKKSKeys) -> None:
    public = load_context(keys.public)
    rng = np.random.default_rng(0)
    length = keys.slots + 100  # two ciphertexts, the second partly filled
    xs = [rng.uniform(-1, 1, length) * w for w in (120.0, 80.0, 15.0)]  # weighted updates
    sent = [encrypt_vector(public, x, keys.slots) for x in xs]
    assert all(len(chunks) == 2 for chunks in sent)
    total = decrypt_sum(load_context(keys.secret), sum_ciphertexts(public, sent), length)
    err = np.abs(total - np.sum(xs, axis=0))
    assert err.max() < 1e-4  # values up to ~200 at scale 2**40
    # A ciphertext is not the plaintext: no run of plain float64 bytes appears in it.
    assert xs[0][:4].tobytes() not in sent[0][0]


def test_keys_stay_where_they_belong(keys: CKKSKeys) -> None:
    public, secret = load_context(keys.public), load_context(keys.secret)
    assert not public.is_private() and secret.is_private()
    sent = [encrypt_vector(public, np.ones(10), keys.slots)]
    with pytest.raises(ValueError, match="must not hold the secret key"):
        sum_ciphertexts(secret, sent)
    with pytest.raises(ValueError, match="secret context"):
        decrypt_sum(public, sent[0], 10)
    with pytest.raises(ValueError, match="different numbers"):
        sum_ciphertexts(public, [sent[0], sent[0] * 2])
