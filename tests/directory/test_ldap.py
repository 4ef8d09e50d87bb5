"""The LDAP client against a real OpenLDAP server (slapd, started by the test): search with a service
account or bind directly, nested groups walked, a locked account seen as disabled, wrong passwords and
unknown users refused, and no connection to a directory the egress allow-list does not name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core.config import LdapSettings
from appliance.core.egress_broker import Destination, DirectConnector
from appliance.directory.ldap import Directory, DirectoryUnavailable
from tests.directory_support import BASE, GROUPS, PASSWORDS, SERVICE_DN, Slapd, people, slapd


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with slapd(tmp_path_factory.mktemp("slapd")) as running:
        yield running


def _directory(server: Slapd, **overrides: object) -> Directory:
    settings = LdapSettings(
        **{
            "url": server.url,
            "bind_dn": SERVICE_DN,
            "bind_password_file": str(server.password_file),
            "base_dn": BASE,
            "group_base_dn": GROUPS,
            "disabled_filter": "(pwdAccountLockedTime=*)",
            **overrides,  # type: ignore[arg-type]
        }
    )
    return Directory(settings, DirectConnector([Destination.parse(f"{server.host}:{server.port}")]))


def test_a_user_found_by_the_service_account_with_nested_groups(server: Slapd) -> None:
    nico = _directory(server).sign_in("nico", PASSWORDS["nico"])
    assert nico is not None and nico.dn == people("nico") and nico.email == "nico@example.org" and not nico.disabled
    # team-radio directly, sotto-users through team-radio.
    assert nico.groups == {f"cn=team-radio,{GROUPS}", f"cn=sotto-users,{GROUPS}"}
    assert _directory(server).sign_in("nico@example.org", PASSWORDS["nico"]) == nico  # by e-mail too (the filter)


def test_without_the_walk_only_direct_groups(server: Slapd) -> None:
    nico = _directory(server, nested_groups="off").sign_in("nico", PASSWORDS["nico"])
    assert nico is not None and nico.groups == {f"cn=team-radio,{GROUPS}"}


def test_direct_bind_with_a_dn_template(server: Slapd) -> None:
    directory = _directory(server, bind_dn="", bind_password_file="", user_dn_template=f"uid={{username}},ou=people,{BASE}")
    lena = directory.sign_in("lena", PASSWORDS["lena"])
    assert lena is not None and lena.groups == {f"cn=sotto-admins,{GROUPS}"}
    assert directory.sign_in("lena", PASSWORDS["nico"]) is None
    # A name that tries to reach another DN is escaped into a harmless RDN value.
    assert directory.sign_in("lena,ou=people", PASSWORDS["lena"]) is None


def test_wrong_password_unknown_user_empty_password_and_filter_injection_are_refused(server: Slapd) -> None:
    directory = _directory(server)
    assert directory.sign_in("lena", "not her password") is None
    assert directory.sign_in("nobody", "whatever it is") is None
    assert directory.sign_in("lena", "") is None  # an unauthenticated bind would "succeed"
    assert directory.sign_in("*", PASSWORDS["lena"]) is None
    assert directory.sign_in("lena)(uid=*", PASSWORDS["lena"]) is None


def test_a_locked_account_is_disabled_whatever_the_password(server: Slapd) -> None:
    directory = _directory(server)
    for password in (PASSWORDS["dora"], "a wrong one"):
        dora = directory.sign_in("dora", password)
        assert dora is not None and dora.disabled
    assert directory.lookup(people("dora")).disabled  # type: ignore[union-attr]
    assert directory.lookup(f"uid=gone,ou=people,{BASE}") is None


def test_a_directory_not_on_the_egress_allow_list_is_never_contacted(server: Slapd) -> None:
    settings = LdapSettings(url=server.url, bind_dn=SERVICE_DN, bind_password_file=str(server.password_file), base_dn=BASE)
    directory = Directory(settings, DirectConnector([Destination.parse("127.0.0.1:9")]))
    with pytest.raises(DirectoryUnavailable, match="not"):
        directory.sign_in("lena", PASSWORDS["lena"])


def test_a_wrong_service_password_is_an_unavailable_directory_not_a_wrong_user(server: Slapd, tmp_path: Path) -> None:
    wrong = tmp_path / "pw"
    wrong.write_text("not the service password")
    with pytest.raises(DirectoryUnavailable, match="service account"):
        _directory(server, bind_password_file=str(wrong)).sign_in("lena", PASSWORDS["lena"])
