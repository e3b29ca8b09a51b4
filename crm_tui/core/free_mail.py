"""Free-mail and ISP domains: an address there says nothing about the person's company.

One list, shipped in ``assets/mail/free_mail_domains.txt``: mail from these domains is never linked to an
organization by its domain, a lead at one converts to an organization without a domain, and an organization
cannot be given one.
"""

from __future__ import annotations

import functools

from crm_tui.core.assets import assets_dir


@functools.cache
def free_domains() -> frozenset[str]:
    """The listed domains, lower case (read once per process: the inbox asks on every prefill)."""
    path = assets_dir() / "mail" / "free_mail_domains.txt"
    return frozenset(
        line.strip().lower()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def is_free(domain: str) -> bool:
    """Whether ``domain`` (any case) is a free-mail or ISP domain."""
    return domain.strip().lower() in free_domains()
