"""Property-based tests of the stage config, through the config source ``pulumi up`` uses.

Every example is handed to :class:`PulumiConfigSource` the way the engine hands config to the
program: each value a string (structured values as JSON), secret keys listed by name
(``pulumi.runtime.set_all_config``, which the Python language host calls with the engine's
``PULUMI_CONFIG`` and ``PULUMI_CONFIG_SECRET_KEYS``). Properties:

- any value of any documented key gives a ``StageConfig`` or one ``ConfigError`` (never another
  exception), whose problems all name keys of this project, and no message holds a secret;
- every class of value the issue lists as accepted before is refused, with a problem naming the key.

Examples are derandomized (the same inputs on every run, no example database), so the suite is
repeatable on any date. Set ``CONFIG_PROPERTY_COUNTS=<file>`` to write how many inputs were tried and
refused per property (the figures in the closing note).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import TOP_LEVEL_KEYS, ConfigError, PulumiConfigSource, StageConfig, load_stage_config
from components.lobechat_env_names import managed_env_names_any_generation

NS = "lobechat-logto"
SENTINEL = "Zq9SentinelSecret7Xw"
EXAMPLES = int(os.environ.get("CONFIG_PROPERTY_EXAMPLES", "80"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

COUNTS: Counter[str] = Counter()

DEV: dict[str, Any] = {
    "lobechatUrl": "http://lobe.localhost:3210",
    "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
}
PROD: dict[str, Any] = {
    "lobechatUrl": "https://chat.example.com",
    "logto": {"endpoint": "https://auth.example.com", "adminEndpoint": "https://auth-admin.example.com"},
}
EXTERNAL = {
    **PROD,
    "logto": {"mode": "external", "endpoint": "https://auth.example.com", "tenantId": "abc123"},
}
EXTERNAL_SECRETS = {"logtoM2mClientId": "m2m-id", "logtoM2mClientSecret": SENTINEL}


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    yield
    target = os.environ.get("CONFIG_PROPERTY_COUNTS")
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(dict(sorted(COUNTS.items())), handle, indent=2)


def _engine_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def load_through_pulumi(values: Mapping[str, Any], secrets: Mapping[str, Any] | None = None, stack: str = "dev"):
    """``load_stage_config`` over ``PulumiConfigSource``, with config set as the engine sets it."""
    secrets = dict(secrets or {})
    config = {f"{NS}:{k}": _engine_text(v) for k, v in {**values, **secrets}.items() if v is not None}
    pulumi.runtime.set_all_config(config, [f"{NS}:{k}" for k in secrets])
    try:
        return load_stage_config(PulumiConfigSource(pulumi.Config(NS)), stack)
    finally:
        pulumi.runtime.set_all_config({}, [])


def outcome(property_name: str, values, secrets=None, stack="dev") -> ConfigError | StageConfig:
    """Load once; count it; return the config or the ConfigError (any other exception fails the test)."""
    COUNTS[f"{property_name}.tried"] += 1
    try:
        config = load_through_pulumi(values, secrets, stack)
    except ConfigError as error:
        COUNTS[f"{property_name}.refused"] += 1
        _assert_clean(error)
        return error
    return config


def _assert_clean(error: ConfigError) -> None:
    text = str(error)
    assert SENTINEL not in text
    for problem in error.problems:
        assert problem.key.startswith(f"{NS}:"), problem
        head = problem.key[len(NS) + 1 :].split(".", 1)[0].split("[", 1)[0]
        assert head in TOP_LEVEL_KEYS or head.isprintable(), problem


def refused_naming(property_name: str, key: str, values, secrets=None, stack="dev") -> None:
    result = outcome(property_name, values, secrets, stack)
    assert isinstance(result, ConfigError), f"accepted: {values!r}"
    keys = [p.key for p in result.problems]
    assert f"{NS}:{key}" in keys, keys


def with_logto(base: dict, **fields) -> dict:
    return {**base, "logto": {**base["logto"], **fields}}


# --- strategies ------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=8,
)
# Characters the issue names: whitespace, line breaks, backslash, control characters, NUL, non-ASCII.
bad_characters = st.sampled_from([" ", "\n", "\r", "\t", "\\", "\x00", "\x07", "\x7f", "\u00a0", "é", "\u2028"])
dns_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
dns_names = st.lists(dns_labels, min_size=2, max_size=4).map(".".join).filter(lambda h: not h.rsplit(".", 1)[1].isdigit())


def with_bad_character(valid: str) -> st.SearchStrategy[str]:
    """``valid`` with one bad character inserted anywhere (end included: the trailing-newline class)."""
    return st.tuples(st.integers(min_value=0, max_value=len(valid)), bad_characters).map(
        lambda t: valid[: t[0]] + t[1] + valid[t[0] :]
    )


# --- every key, any value -------------------------------------------------------------------------

DOCUMENTED_KEYS = sorted(TOP_LEVEL_KEYS)
LOGTO_FIELDS = ["mode", "endpoint", "adminEndpoint", "image", "trustProxyHeader", "tenantId", "apiEndpoint", "exposeAdminConsole"]
PUBLISH_FIELDS = ["enabled", "bindAddress", "lobechatPort", "logtoPort", "logtoAdminPort", "allowNonLoopbackBind"]


@SETTINGS
@given(key=st.sampled_from(DOCUMENTED_KEYS), value=json_values, as_secret=st.booleans(),
       stack=st.sampled_from(["dev", "staging", "prod"]))
def test_any_value_of_any_key_is_a_config_or_one_config_error(key, value, as_secret, stack):
    base = dict(DEV if stack == "dev" else PROD)
    values, secrets = (base, {key: value}) if as_secret else ({**base, key: value}, None)
    outcome("any_key_any_value", values, secrets, stack)


@SETTINGS
@given(section=st.sampled_from(["logto", "publish"]), data=st.data())
def test_any_value_of_any_section_field_is_a_config_or_one_config_error(section, data):
    field = data.draw(st.sampled_from(LOGTO_FIELDS if section == "logto" else PUBLISH_FIELDS))
    value = data.draw(json_values)
    values = {**DEV, section: {**DEV.get(section, {}), field: value}}
    outcome("any_field_any_value", values)


@SETTINGS
@given(value=json_values)
def test_any_secret_mapping_is_a_config_or_one_config_error_without_the_secret(value):
    outcome("extra_secret_env_any_value", DEV, {"extraSecretEnv": {"OPENAI_API_KEY": SENTINEL, "X_VALUE": value}})


# --- classes that must be refused -----------------------------------------------------------------


@SETTINGS
@given(data=st.data(), target=st.sampled_from([
    "resourcePrefix", "lobechatUrl", "lobechatImage", "lobechatGeneration", "dockerHost",
    "logto.endpoint", "logto.adminEndpoint", "logto.image", "logto.tenantId", "publish.bindAddress", "extraEnv",
]))
def test_a_bad_character_anywhere_is_refused(data, target):
    valid = {
        "resourcePrefix": "lobechat-test", "lobechatUrl": "https://chat.example.com",
        "lobechatImage": "lobehub/lobe-chat-database:1.143.3", "lobechatGeneration": "1",
        "dockerHost": "ssh://deploy@prod.example.com", "logto.endpoint": "https://auth.example.com",
        "logto.adminEndpoint": "https://auth-admin.example.com", "logto.image": "svhd/logto:1.43.0",
        "logto.tenantId": "abc123", "publish.bindAddress": "127.0.0.1", "extraEnv": "FEATURE_FLAGS",
    }[target]
    bad = data.draw(with_bad_character(valid))
    if target == "logto.tenantId":
        refused_naming("bad_character", target, with_logto(EXTERNAL, tenantId=bad), EXTERNAL_SECRETS, "prod")
    elif target.startswith("logto."):
        refused_naming("bad_character", target, with_logto(PROD, **{target[6:]: bad}), stack="prod")
    elif target == "publish.bindAddress":
        refused_naming("bad_character", target, {**PROD, "publish": {"bindAddress": bad}}, stack="prod")
    elif target == "extraEnv":
        result = outcome("bad_character", {**DEV, "extraEnv": {bad: "on"}})
        assert isinstance(result, ConfigError)
        assert all(p.key.startswith(f"{NS}:extraEnv") for p in result.problems)
    else:
        refused_naming("bad_character", target, {**PROD, target: bad}, stack="prod")


@SETTINGS
@given(host=st.one_of(
    dns_names.map(lambda h: h.replace(".", "\\.", 1)),
    st.tuples(dns_names, dns_names).map(" ".join),
    st.tuples(dns_names, st.sampled_from(["_", "!", "$", "'", "(", "*", ",", ";", "="])).map(lambda t: t[0] + t[1]),
    dns_names.map(lambda h: "-" + h),
))
def test_hosts_outside_the_dns_grammar_are_refused_in_every_url_key(host):
    for field in ("endpoint", "adminEndpoint"):
        refused_naming("bad_host", f"logto.{field}", with_logto(PROD, **{field: f"https://{host}"}), stack="prod")
    refused_naming("bad_host", "lobechatUrl", {**PROD, "lobechatUrl": f"https://{host}"}, stack="prod")


@SETTINGS
@given(host=dns_names)
def test_dns_names_are_accepted(host):
    result = outcome("good_host", with_logto(PROD, endpoint=f"https://{host}"), stack="prod")
    assert isinstance(result, StageConfig), result


@SETTINGS
@given(octets=st.lists(st.integers(min_value=0, max_value=999), min_size=4, max_size=4), zero_pad=st.booleans())
def test_bind_addresses_are_parsed_as_ip_addresses(octets, zero_pad):
    text = ".".join(f"0{o}" if zero_pad else str(o) for o in octets)
    result = outcome("bind_address", {**DEV, "publish": {"bindAddress": text}})
    valid = all(o <= 255 for o in octets) and not zero_pad
    assert isinstance(result, StageConfig) == valid, text
    if not valid:
        assert [p.key for p in result.problems] == [f"{NS}:publish.bindAddress"]


@SETTINGS
@given(port=st.one_of(
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not float(f).is_integer() if f == f else True),
    st.integers().filter(lambda n: not 1 <= n <= 65535),
    st.integers(min_value=1, max_value=65535).map(lambda n: f"{n:_}" if n >= 1000 else f"+{n}"),
    st.integers(min_value=1, max_value=65535).map(lambda n: f" {n}"),
    st.integers(min_value=1, max_value=65535).map(lambda n: f"{n}\n"),
    st.text(max_size=6).filter(lambda t: not (t.isascii() and t.isdigit())),
), field=st.sampled_from(["lobechatPort", "logtoPort", "logtoAdminPort"]))
def test_ports_are_strict_integers(port, field):
    refused_naming("bad_port", f"publish.{field}", {**PROD, "publish": {field: port}}, stack="staging")


@SETTINGS
@given(image=st.one_of(
    st.tuples(st.from_regex(r"[A-Z][a-z]{2,8}", fullmatch=True), st.just("/lobe-chat-database:1.143.3")).map("".join),
    st.from_regex(r"lobehub/lobe-chat-database:1\.143\.3 [a-z-]{1,10}", fullmatch=True),
    st.just("lobehub/lobe-chat-database"),
    st.just("lobehub/lobe-chat-database:latest"),
    st.from_regex(r"lobehub/lobe-chat-database@sha256:[a-f0-9]{1,63}", fullmatch=True),
    st.from_regex(r"lobehub/lobe-chat-database@md5:[a-f0-9]{32}", fullmatch=True),
    st.from_regex(r"lobehub//lobe-chat-database:1", fullmatch=True),
))
def test_image_references_follow_dockers_grammar(image):
    refused_naming("bad_image", "lobechatImage", {**DEV, "lobechatImage": image})


@SETTINGS
@given(value=st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False), st.lists(st.text(max_size=3), max_size=2),
                       st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)))
def test_extra_secret_env_values_must_be_strings(value):
    refused_naming("secret_env_type", "extraSecretEnv.OPENAI_API_KEY", DEV, {"extraSecretEnv": {"OPENAI_API_KEY": value}})


@SETTINGS
@given(value=st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)))
def test_tenant_id_must_be_a_string(value):
    refused_naming("tenant_type", "logto.tenantId", with_logto(EXTERNAL, tenantId=value), EXTERNAL_SECRETS, "prod")


@SETTINGS
@given(host=st.one_of(
    st.from_regex(r"ssh://-o[A-Za-z]{1,12}=[a-z ]{1,12}", fullmatch=True),
    st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True), dns_names).map(lambda t: f"ssh://{t[0]}:{SENTINEL}@{t[1]}"),
    st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True), dns_names).map(lambda t: f"tcp://{t[0]}@{t[1]}:2376"),
    dns_names.map(lambda h: f"ssh://-{h}"),
    dns_names.map(lambda h: f"ssh://deploy@{h}:0"),
))
def test_docker_hosts_without_credentials_or_option_like_hosts(host):
    refused_naming("bad_docker_host", "dockerHost", {**DEV, "dockerHost": host})


password_chars = st.text(alphabet="abcdefghijkLMNOP0123456789-_.~", min_size=0, max_size=6)


@SETTINGS
@given(before=password_chars, after=password_chars, special=st.sampled_from(["?", "#", "@"]),
       tail=st.sampled_from(["", ":5432", ":0", ":70000"]), sslmode=st.sampled_from([None, "require", "bogus"]))
def test_database_urls_with_unencoded_password_characters_are_refused_without_quoting(before, after, special, tail, sslmode):
    password = f"{before}{SENTINEL}{special}{after}"
    query = f"?sslmode={sslmode}" if sslmode else ""
    url = f"postgresql://lobe:{password}@db.example.com{tail}/lobechat{query}"
    secrets = {"postgresLogtoUrl": "postgresql://u:p@db.example.com:5432/logto", "postgresLobechatUrl": url}
    result = outcome("database_url", {**DEV, "postgres": {"mode": "external"}}, secrets)
    # '?' and '#' are never valid unencoded in a password; '@' only splits the URL elsewhere.
    assert isinstance(result, ConfigError), url
    assert [p.key for p in result.problems] == [f"{NS}:postgresLobechatUrl"]
    message = str(result)
    assert SENTINEL not in message and "db.example.com" not in message
    for fragment in (before, after):
        if len(fragment) >= 4:
            assert fragment not in message


@SETTINGS
@given(name=st.sampled_from(sorted(managed_env_names_any_generation())), generation=st.sampled_from(["1", "2"]),
       secret=st.booleans())
def test_managed_names_are_refused_in_the_loader_on_either_generation(name, generation, secret):
    base = {**DEV, "lobechatGeneration": generation}
    if secret:
        result = outcome("managed_name", base, {"extraSecretEnv": {name: SENTINEL}})
    else:
        result = outcome("managed_name", {**base, "extraEnv": {name: "x"}})
    assert isinstance(result, ConfigError)
    assert any(p.key.endswith(f"Env.{name}") for p in result.problems), [str(p) for p in result.problems]


@SETTINGS
@given(value=st.text(max_size=20).map(lambda t: t + "\x00"))
def test_extra_env_values_with_nul_are_refused(value):
    refused_naming("nul_value", "extraEnv.NOTE", {**DEV, "extraEnv": {"NOTE": value}})


@SETTINGS
@given(key=st.sampled_from(["logtoM2mClientSecret", "accessCode", "postgresLobechatUrl", "ssoGithubClientSecret",
                            "extraSecretEnv"]),
       blank=st.sampled_from(["", " ", "\n", "\t \n"]), plain=st.booleans())
def test_secret_keys_set_plain_or_blank_are_refused(key, blank, plain):
    values: dict[str, Any] = dict(DEV)
    secrets: dict[str, Any] = {}
    if key == "logtoM2mClientSecret":
        values = dict(EXTERNAL)
        secrets = {"logtoM2mClientId": "m2m-id"}
    elif key == "accessCode":
        values["auth"] = {"accessCode": True}
    elif key == "postgresLobechatUrl":
        values["postgres"] = {"mode": "external"}
        secrets["postgresLogtoUrl"] = "postgresql://u:p@db.example.com:5432/logto"
    elif key == "ssoGithubClientSecret":
        values["ssoProviders"] = ["logto", "github"]
        secrets["ssoGithubClientId"] = "gh-id"
    value: Any = SENTINEL if plain else blank
    if key == "postgresLobechatUrl" and plain:
        value = f"postgresql://u:{SENTINEL}@db.example.com:5432/lobechat"
    if key == "extraSecretEnv":
        value = {"OPENAI_API_KEY": value}
    stack = "prod" if key == "logtoM2mClientSecret" else "dev"
    if plain:
        values[key] = value
    else:
        secrets[key] = value
    expected = f"{key}.OPENAI_API_KEY" if key == "extraSecretEnv" and not plain else key
    refused_naming("secret_plain_or_blank", expected, values, secrets, stack)
