"""TEST-ONLY signing key for the licence tests. Never trusted by the appliance itself: production
trusts only appliance.licensing.licence.TRUSTED_KEYS, and a test asserts this key is not among them."""

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

TEST_KID = "test-only-1"
TEST_PRIVATE = Ed25519PrivateKey.from_private_bytes(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
TEST_PUBLIC = base64.b64encode(
    TEST_PRIVATE.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
).decode()
TEST_TRUST = {TEST_KID: TEST_PUBLIC}
OTHER_PRIVATE = Ed25519PrivateKey.from_private_bytes(
    bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
)
TEST_MACHINE_ID = "0123456789abcdef0123456789abcdef"
