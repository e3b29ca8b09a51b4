"""Where an account's password lives: the OS keyring, an environment variable, or a command's output.

Never in the database or the config file. FACTS.md: on a machine with no Secret Service, ``keyring`` falls back
to its "fail" backend and ``set_password`` raises; that case is detected and the user is offered the others.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess

from crm_tui.core.errors import ConfigError

SERVICE = "crm-tui"
COMMAND_TIMEOUT = 30


def _keyring_name(account: str) -> str:
    return f"imap:{account}"


def keyring_backend() -> tuple[bool, str]:
    """(usable, backend description). Unusable: no backend, or only the fail/null ones."""
    try:
        # keyring (and its backends) load when a password is kept or read there, not at start.
        import keyring
        from keyring.backends import fail
    except ImportError:  # pragma: no cover - keyring is a dependency
        return False, "keyring is not installed"
    backend = keyring.get_keyring()
    name = type(backend).__module__ + "." + type(backend).__name__
    if isinstance(backend, fail.Keyring) or "null" in name.lower():
        return False, name
    if "chainer" in name.lower() and not getattr(backend, "backends", None):
        return False, name
    return True, name


NO_KEYRING = (
    "no OS keyring is available here (no Secret Service / KWallet / macOS Keychain); "
    "use --password-env VAR or --password-command CMD instead"
)


def store_in_keyring(account: str, password: str) -> None:
    usable, _ = keyring_backend()
    if not usable:
        raise ConfigError(NO_KEYRING)
    # keyring (and its backends) load when a password is kept or read there, not at start.
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(SERVICE, _keyring_name(account), password)
    except KeyringError as exc:
        raise ConfigError(f"the keyring refused the password: {exc}") from exc


def forget(account: str) -> None:
    usable, _ = keyring_backend()
    if not usable:
        return
    # keyring (and its backends) load when a password is kept or read there, not at start.
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    with contextlib.suppress(PasswordDeleteError, KeyringError):
        keyring.delete_password(SERVICE, _keyring_name(account))


def password_for(account: str, source: str, ref: str | None) -> str:
    """The account's password from its source; ConfigError with one clear line when it cannot be had."""
    return secret_from(
        f"account {account}", source, ref, keyring_key=_keyring_name(account),
        store_hint=f"run 'crm-tui account edit {account} --password'",
    )  # fmt: skip


def secret_from(label: str, source: str, ref: str | None, *, keyring_key: str, store_hint: str) -> str:
    """A password from the OS keyring (``keyring_key`` under the crm-tui service), an environment variable or
    a command's output; ConfigError naming ``label`` with one clear line when it cannot be had."""
    if source == "env":
        if not ref:
            raise ConfigError(f"{label}: no environment variable named for the password")
        value = os.environ.get(ref)
        if value is None:
            raise ConfigError(f"{label}: the environment variable {ref} is not set")
        return value
    if source == "command":
        if not ref:
            raise ConfigError(f"{label}: no password command given")
        try:
            result = subprocess.run(
                shlex.split(ref), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
            )
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"{label}: the password command failed to run: {exc}") from exc
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or [""])[0][:200]
            raise ConfigError(
                f"{label}: the password command exited with {result.returncode}"
                + (f": {first}" if first else "")
            )
        return result.stdout.rstrip("\r\n")
    if source == "keyring":
        usable, _ = keyring_backend()
        if not usable:
            raise ConfigError(f"{label}: {NO_KEYRING}")
        # keyring (and its backends) load when a password is kept or read there, not at start.
        import keyring
        from keyring.errors import KeyringError

        try:
            value = keyring.get_password(SERVICE, keyring_key)
        except KeyringError as exc:
            raise ConfigError(f"{label}: the keyring could not be read: {exc}") from exc
        if value is None:
            raise ConfigError(f"{label}: no password in the keyring; {store_hint}")
        return value
    raise ConfigError(f"{label}: unknown password source {source!r}")
