"""Where the files the project ships beside its code are: the Avro contracts and the topic declarations.

Contract: `package_file("schemas/processed-data-value.avsc")` is the path of that file, named as in the
repository (relative to its root, the first part being a package). The files are package data
(pyproject.toml's `[tool.setuptools.package-data]`), so the same name is found through importlib.resources in
a checkout, in an editable install and in an installed wheel alike, with no working directory assumed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_file(name: str) -> Path:
    """The path of the shipped file `name` ("<package>/<path inside it>"); `FileNotFoundError` names what is
    missing. Importing `<package>` is the caller's choice: `streaming` itself asks only for `schemas`."""
    package, _, inside = name.partition("/")
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise FileNotFoundError(f"{name}: no package {package!r} ships it") from None
    located = root.joinpath(inside)
    # Installed packages are directories (wheels unpack), so the resource is a real file with a path.
    if not isinstance(located, Path) or not located.is_file():
        raise FileNotFoundError(f"{name}: not found in the installed package {package!r}")
    return located
