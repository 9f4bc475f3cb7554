"""The public surface of the serving package, pinned."""

import serving


def test_serving_exports_exactly_its_public_names():
    assert sorted(serving.__all__) == [
        "AuthenticationError",
        "AuthorizationError",
        "ENDPOINT_ROLES",
        "NotFoundError",
        "NotReadyError",
        "Principal",
        "RequestError",
        "TokenTable",
        "run_server",
        "server_command",
    ]
    for name in set(serving.__all__) - {"ENDPOINT_ROLES"}:
        assert getattr(serving, name).__module__.startswith("serving._")


def test_every_refusal_is_a_builtin_exception_callers_already_catch():
    assert issubclass(serving.RequestError, ValueError)
    assert issubclass(serving.AuthenticationError, PermissionError)
    assert issubclass(serving.AuthorizationError, PermissionError)
    assert issubclass(serving.NotFoundError, LookupError)
    assert issubclass(serving.NotReadyError, RuntimeError)
    assert serving.RequestError("x").status_code == 400
    assert serving.NotReadyError("x").status_code == 503
