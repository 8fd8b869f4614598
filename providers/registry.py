"""The explicit provider registry: a stable id -> provider class. No import magic (allauth's
registry, without its autodiscovery): adding a provider means adding one line here. The ids are
stored in ProviderAccount.kind: never rename one."""

from __future__ import annotations

from providers.base import BaseProvider
from providers.esms.adapter import EsmsProvider
from providers.etelecom import EtelecomProvider
from providers.mmp.adapter import MetfoneMmpProvider, VnaMmpProvider
from providers.sandbox.adapter import SandboxProvider

PROVIDERS: dict[str, type[BaseProvider]] = {
    SandboxProvider.kind: SandboxProvider,
    EtelecomProvider.kind: EtelecomProvider,
    EsmsProvider.kind: EsmsProvider,
    VnaMmpProvider.kind: VnaMmpProvider,
    MetfoneMmpProvider.kind: MetfoneMmpProvider,
}


def get_provider_class(kind: str) -> type[BaseProvider]:
    try:
        return PROVIDERS[kind]
    except KeyError:
        raise KeyError(f"Unknown provider kind {kind!r}; known: {sorted(PROVIDERS)}") from None


def provider_choices() -> list[tuple[str, str]]:
    return [(kind, cls.label) for kind, cls in PROVIDERS.items()]
