"""RandomSecret and RsaJwks providers, called the way the engine calls them."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pulumi.dynamic.dynamic import serialize_provider

from components.generated_secrets import ALPHANUMERIC, RandomSecretProvider, RsaJwksProvider

PROJECT_DIR = Path(__file__).resolve().parent.parent


def created_random(length: int = 32, alphabet: str = ALPHANUMERIC, keepers: dict | None = None):
    provider = RandomSecretProvider()
    checked = provider.check({}, {"length": length, "alphabet": alphabet, "keepers": keepers or {}})
    assert checked.failures == []
    return provider, checked.inputs, provider.create(checked.inputs)


def b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def test_random_secret_has_requested_length_and_alphabet():
    _, _, result = created_random(length=40, alphabet="abcdefghijklmnop")
    value = result.outs["value"]
    assert len(value) == 40 and set(value) <= set("abcdefghijklmnop")


def test_random_secret_values_differ_between_creates():
    assert created_random()[2].outs["value"] != created_random()[2].outs["value"]


def test_random_secret_id_is_not_the_value():
    _, _, result = created_random()
    assert result.id != result.outs["value"] and result.outs["value"] not in result.id


def test_unchanged_inputs_mean_no_change():
    provider, inputs, result = created_random()
    assert provider.diff(result.id, result.outs, inputs).changes is False


def test_changed_length_alphabet_or_keepers_replace_the_secret():
    provider, inputs, result = created_random(keepers={"rotation": "1"})
    for change in ({"length": 48}, {"alphabet": ALPHANUMERIC + "-_"}, {"keepers": {"rotation": "2"}}):
        diff = provider.diff(result.id, result.outs, {**inputs, **change})
        assert diff.changes is True and diff.replaces == list(change)


def test_update_keeps_the_stored_value():
    provider, inputs, result = created_random()
    updated = provider.update(result.id, result.outs, inputs)
    assert updated.outs["value"] == result.outs["value"]


def test_read_returns_the_stored_state():
    provider, _, result = created_random()
    assert provider.read(result.id, result.outs).outs == result.outs


def test_short_length_and_small_alphabet_fail_check_without_values():
    failures = RandomSecretProvider().check({}, {"length": 4, "alphabet": "ab", "keepers": {}}).failures
    assert {f.property for f in failures} == {"length", "alphabet"}


def test_jwks_holds_one_rs256_private_key_that_signs_and_verifies():
    provider = RsaJwksProvider()
    checked = provider.check({}, {"key_size": 2048, "keepers": {}})
    assert checked.failures == []
    result = provider.create(checked.inputs)
    jwks = json.loads(result.outs["jwks"])
    assert len(jwks["keys"]) == 1
    jwk = jwks["keys"][0]
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    assert jwk["kid"] == result.outs["kid"]
    public = rsa.RSAPublicNumbers(b64url_int(jwk["e"]), b64url_int(jwk["n"]))
    private = rsa.RSAPrivateNumbers(
        b64url_int(jwk["p"]), b64url_int(jwk["q"]), b64url_int(jwk["d"]),
        b64url_int(jwk["dp"]), b64url_int(jwk["dq"]), b64url_int(jwk["qi"]), public,
    ).private_key()
    assert private.key_size == 2048
    signature = private.sign(b"payload", padding.PKCS1v15(), hashes.SHA256())
    public.public_key().verify(signature, b"payload", padding.PKCS1v15(), hashes.SHA256())


def test_jwks_is_replaced_only_when_key_size_or_keepers_change():
    provider = RsaJwksProvider()
    olds = {"key_size": 2048, "keepers": {}, "jwks": "{}", "kid": "k"}
    assert provider.diff("id", olds, {"key_size": 2048, "keepers": {}}).changes is False
    assert provider.diff("id", olds, {"key_size": 3072, "keepers": {}}).replaces == ["key_size"]
    assert provider.update("id", olds, {"key_size": 2048, "keepers": {}}).outs["jwks"] == "{}"


def test_unsupported_key_size_fails_check():
    failures = RsaJwksProvider().check({}, {"key_size": 1024, "keepers": {}}).failures
    assert [f.property for f in failures] == ["key_size"]


def test_providers_survive_serialization_into_a_fresh_process():
    # The engine pickles the provider with dill and runs it in `python -m pulumi.dynamic`.
    blobs = {name: serialize_provider(cls()) for name, cls in (("random", RandomSecretProvider), ("jwks", RsaJwksProvider))}
    script = (
        "import dill, base64, json, sys\n"
        "blobs = json.loads(sys.stdin.read())\n"
        "r = dill.loads(base64.b64decode(blobs['random']))\n"
        "out = r.create({'length': 24, 'alphabet': 'abcdefghijklmnopqrstuvwxyz', 'keepers': {}}).outs\n"
        "j = dill.loads(base64.b64decode(blobs['jwks']))\n"
        "jw = json.loads(j.create({'key_size': 2048, 'keepers': {}}).outs['jwks'])\n"
        "print(len(out['value']), jw['keys'][0]['alg'])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(blobs), capture_output=True, text=True,
        cwd=PROJECT_DIR, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["24", "RS256"]


def test_serialized_providers_are_small_references_not_bytecode():
    # Pickled by reference (importable module), a provider is a few hundred bytes; by value it is kilobytes.
    assert len(serialize_provider(RandomSecretProvider())) < 400
    assert len(serialize_provider(RsaJwksProvider())) < 400
