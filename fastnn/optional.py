"""Optional dependencies, imported when a feature needs them."""

import importlib


def require(module, purpose, install):
    """Import ``module``, or raise an ImportError that says what needs it and how to install it.

    Parameters
    ----------
    module : str
        e.g. ``"onnx"``.
    purpose : str
        What needs it, e.g. ``"exporting to ONNX"``.
    install : str
        The command that installs it, e.g. ``'pip install "fastnn[onnx]"'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{purpose} needs the {module} package, which is not installed "
                          f"({error}); install it with:  {install}") from error
