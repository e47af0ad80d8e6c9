"""What the tests' processes share to drive moto faster, and nothing of what is driven: the caches
botocore and moto rebuild per session, client or request (conftest applies them to every test
process; `moto_server_process` to its moto server too)."""
from __future__ import annotations

from typing import Any


def _share_botocore_models() -> None:
    """Every command makes a new boto3 session, and a session parses botocore's JSON service models
    and builds each client class (EC2's has 765 methods) anew: most of the CPU of a `status` in
    moto. A real process pays that once; so do the tests, by sharing one loader and one client
    class per service between sessions. Nothing else is shared: credentials, regions, endpoints and
    event handlers (moto's, Stubber's) stay each session's and client's own."""
    import functools

    import botocore.client
    import botocore.session

    create_loader = functools.cache(botocore.session.create_loader)
    botocore.session.create_loader = create_loader  # type: ignore[assignment]
    create_class = botocore.client.ClientCreator._create_client_class
    classes: dict[tuple[str, str], type] = {}

    def client_class(self, service_name: str, service_model) -> type:
        key = (service_name, service_model.api_version)
        if key not in classes:
            classes[key] = create_class(self, service_name, service_model)
        return classes[key]
    botocore.client.ClientCreator._create_client_class = client_class  # type: ignore[method-assign]


def _cache_what_never_changes() -> None:
    """Per call, botocore and moto work out again what a process could work out once (a fifth of
    the CPU of a moto-driven `up`): the aliases of an event name (each session and client has its
    own cache, so each starts empty), moto's method names of a response class (inspect.getmembers
    on every request) and its table of a service's errors (a cache it makes anew for each error).
    The answers are the same; only the caches are shared (ServiceModels too: read-only)."""
    import functools

    import botocore.client
    import botocore.hooks
    import moto.core.errors
    import moto.core.responses

    aliases: dict[str, str] = {}
    alias_init = botocore.hooks.EventAliaser.__init__

    def aliaser_init(self, event_emitter, event_aliases=None) -> None:
        alias_init(self, event_emitter, event_aliases)
        if self._event_aliases == botocore.hooks.EVENT_ALIASES:  # copies of the default too
            self._alias_name_cache = aliases
    botocore.hooks.EventAliaser.__init__ = aliaser_init  # type: ignore[method-assign]

    moto.core.responses.method_names_from_class = functools.cache(moto.core.responses.method_names_from_class)
    errors: dict[str, Any] = {}
    moto.core.errors.ErrorLookupFactory.__init__ = (  # type: ignore[method-assign]
        lambda self: setattr(self, "_error_lut_cache", errors))

    load_model = botocore.client.ClientCreator._load_service_model
    models: dict[tuple[str, str | None], Any] = {}

    def service_model(self, service_name: str, api_version: str | None = None) -> Any:
        key = (service_name, api_version)
        if key not in models:
            models[key] = load_model(self, service_name, api_version)
        return models[key]
    botocore.client.ClientCreator._load_service_model = service_model  # type: ignore[method-assign]


def share_what_never_changes() -> None:
    _share_botocore_models()
    _cache_what_never_changes()


def serve(argv: list[str]) -> None:
    """`python -m moto.server argv`, with the caches above and, as in-process tests have them
    (bench/moto_env.py), of AWS's managed policies and public images only those the stack uses: a
    new IAM or EC2 backend in milliseconds, not a second (the server makes them again after each reset)."""
    from unittest import mock

    from moto.ec2.models.amis import AmiBackend
    from moto.iam.models import IAMBackend
    from moto.server import main

    from bench.moto_env import aws_managed_policies_we_attach, load_amis_we_launch
    share_what_never_changes()
    with mock.patch.object(AmiBackend, "_load_amis", load_amis_we_launch), \
            mock.patch.object(IAMBackend, "_init_aws_policies", aws_managed_policies_we_attach):
        main(argv)
