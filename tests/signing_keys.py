"""TEST-ONLY minisign keys for bundles and model packs. Never trusted by the appliance: production
trusts only appliance.distribution.release_keys.RELEASE_KEYS, and a test asserts these keys are not among them."""

from appliance.distribution.minisign import SecretKey

TEST_KEY = SecretKey(key_id=b"testonly", seed=bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"))
OTHER_KEY = SecretKey(key_id=b"attacker", seed=bytes.fromhex("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5"))
