"""Sotto's release signing keys, in minisign's public-key format.

Offline bundles (their SHA256SUMS) and model packs (their manifest.json) must carry a signature from
one of these keys. The private halves are held offline by Sotto's release engineering and are not in
this repository. A list, so a key can be rotated without breaking packs already delivered.
Never read from config, environment or a bundle: a customer or a bundle must not be able to add a key.
Standard library only: the bundle's verifier imports this with the customer's python3.
"""

from __future__ import annotations

RELEASE_KEYS: tuple[str, ...] = (
    # minisign public key 3841129E28567B28
    "RWQoe1YonhJBOG6rNHSBrF83BHxj5ySBB9R6AnOaoU34Xl4xw+2XkzDF",
)
