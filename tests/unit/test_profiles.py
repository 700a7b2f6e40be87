"""Browser profiles: one folder per account, 0700, locked while used, removed by a command."""

from __future__ import annotations

import stat

import pytest

from coupang_sales.errors import CollectionError
from coupang_sales.portal.profiles import BrowserProfile, main


def test_each_account_has_its_own_private_folder(tmp_path):
    one = BrowserProfile("coupang_rocket", "V1", root=tmp_path)
    two = BrowserProfile("coupang_rocket", "V2", root=tmp_path)
    jet = BrowserProfile("coupang_jet", "V1", root=tmp_path)
    assert len({one.path, two.path, jet.path}) == 3
    with one as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_a_second_user_waits_then_fails_clearly_while_another_account_is_free(tmp_path):
    holder = BrowserProfile("coupang_rocket", "V1", root=tmp_path)
    holder.acquire()
    try:
        with pytest.raises(CollectionError) as caught:
            BrowserProfile("coupang_rocket", "V1", root=tmp_path).acquire(wait_seconds=0.3)
        assert caught.value.category == "profile_busy" and caught.value.retryable
        assert "V1" in str(caught.value)
        with BrowserProfile("coupang_rocket", "V2", root=tmp_path):
            pass
    finally:
        holder.release()
    with BrowserProfile("coupang_rocket", "V1", root=tmp_path):
        pass


def test_the_remove_command_deletes_the_profile_unless_in_use(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COUPANG_PROFILE_DIR", str(tmp_path))
    profile = BrowserProfile("coupang_rocket", "V1")
    with profile as path:
        (path / "Cookies").write_bytes(b"x")
        assert main(["remove", "coupang_rocket", "V1"]) == 1
    assert main(["remove", "coupang_rocket", "V1"]) == 0
    assert not profile.path.exists() and "removed" in capsys.readouterr().out
    assert main(["remove", "coupang_rocket", "V1"]) == 0  # nothing left: says so


def test_names_cannot_escape_the_root(tmp_path):
    profile = BrowserProfile("../x", "../../etc", root=tmp_path)
    assert tmp_path in profile.path.parents


def test_a_profile_is_known_signed_out_until_it_signs_on_and_again_once_another_account_does(tmp_path):
    one = BrowserProfile("coupang_rocket", "V1", root=tmp_path)
    two = BrowserProfile("coupang_rocket", "V2", root=tmp_path)
    assert one.signed_out_for_sure() == "no password sign-on recorded in this profile"
    one.note_password_sign_on()
    assert one.signed_out_for_sure() is None  # only the portal can tell now
    two.note_password_sign_on()
    assert one.signed_out_for_sure() == "another account signed on from this machine since"
    assert one.signed_out_for_sure(one_seller_per_address=False) is None
    assert two.signed_out_for_sure() is None
    one.note_password_sign_on()
    assert one.signed_out_for_sure() is None and two.signed_out_for_sure() is not None
    # the note holds a time, nothing of the account's; it goes with the profile
    assert one.sign_on_path.read_text().isdigit() and one.sign_on_path.parent == one.path.parent
    one.remove()
    assert not one.sign_on_path.exists()
