"""The admin login's rules (igym_core/admin/auth.py) over any sequence of attempts, checked
against a plain model: per-address and global 60-second windows, constant answers for a wrong
token, sessions that work until they expire or are logged out, and never more than MAX_SESSIONS."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from igym_core.admin.auth import MAX_SESSIONS, AdminAuth, LoginRefused
from igym_core.settings import Settings

TOKEN = "the-right-admin-token-0123456789"
PER_ADDRESS = 3
EVERYONE = 5
SESSION_S = 100.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Window:
    """A fixed window from the first counted attempt, as the model of a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.windows: dict[str, tuple[float, int]] = {}

    def allow(self, key: str, now: float) -> bool:
        start, count = self.windows.get(key, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        if count >= self.limit:
            return False
        self.windows[key] = (start, count + 1)
        return True


attempts = st.lists(
    st.tuples(
        st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1", "2001:db8::2"]),
        st.booleans(),  # the right token?
        st.sampled_from([0.0, 0.5, 7.0, 30.0, 61.0]),  # seconds before this attempt
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(attempts)
def test_login_answers_follow_the_limits_and_the_token(steps: list[tuple[str, bool, float]]) -> None:
    clock = Clock()
    auth = AdminAuth(
        Settings(
            admin_token=TOKEN,
            admin_logins_per_ip_per_min=PER_ADDRESS,
            admin_logins_per_min=EVERYONE,
            admin_session_s=SESSION_S,
        ),
        clock=clock,
    )
    per_address, everyone = Window(PER_ADDRESS), Window(EVERYONE)
    sessions: list[tuple[str, float]] = []
    for address, right, wait in steps:
        clock.now += wait
        # IPv6 addresses count by their /64: both 2001:db8:: addresses are one network.
        key = "2001:db8::/64" if address.startswith("2001") else address
        expected = 429
        if per_address.allow(key, clock.now) and everyone.allow("*", clock.now):
            expected = 303 if right else 401
        try:
            secret, session = auth.login(TOKEN if right else "a-wrong-token-0123456789abcd", address)
            got = 303
        except LoginRefused as refused:
            got = refused.status
            if got == 429:
                assert 1 <= refused.retry_after_s <= 61
        assert got == expected, (address, right, clock.now)
        if got == 303:
            assert auth.session(secret) is session and session.session_id.startswith("a-")
            sessions.append((secret, clock.now + SESSION_S))
        for held, expires in sessions[-MAX_SESSIONS:]:
            assert (auth.session(held) is not None) == (clock.now < expires)
        for held, _ in sessions[:-MAX_SESSIONS]:  # the oldest make room for new ones
            assert auth.session(held) is None
    if sessions:
        secret, expires = sessions[-1]
        if clock.now < expires:
            assert auth.logout(secret) is not None
        assert auth.session(secret) is None and auth.logout(secret) is None


@given(st.text(max_size=600))
def test_no_guess_but_the_token_logs_in(guess: str) -> None:
    auth = AdminAuth(
        Settings(admin_token=TOKEN, admin_logins_per_ip_per_min=10**6, admin_logins_per_min=10**6)
    )
    try:
        auth.login(guess, "10.0.0.1")
    except LoginRefused as refused:
        assert refused.status == 401 and guess != TOKEN
    else:
        assert guess == TOKEN


def test_the_cookie_carries_its_flags_and_never_the_token() -> None:
    auth = AdminAuth(Settings(admin_token=TOKEN))
    secret, _ = auth.login(TOKEN, None)
    cookie = auth.cookie(secret, secure=False)
    assert TOKEN not in cookie and secret in cookie
    assert cookie.split("; ")[1:] == ["Path=/admin", "Max-Age=28800", "HttpOnly", "SameSite=Strict"]
    assert auth.cookie(secret, secure=True).endswith("; Secure")
    assert "Max-Age=0" in auth.cleared_cookie(secure=False)
