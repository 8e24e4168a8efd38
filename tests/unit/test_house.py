"""The house keeps its plan: the data plane's rooms import only downwards, no room is crowded, no modules
import each other (directly or in a circle, lazy imports included), and no top-level package shadows a
well-known one (`localstack` is LocalStack's name on PyPI; the local stack lives in `kdp.devstack`)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("kdp", "streaming", "orchestration")

#: The data plane's rooms from the bottom up: a module may import its own room and the rooms below it.
#: The base (`streaming/*.py`: settings, topics, records, registry and Kafka access) is layer 0.
STREAMING_LAYERS = {
    "": 0,
    "conversion": 1,
    "observe": 2,
    "delivery": 3,
    "loop": 4,
    "replay": 5,
    "generator": 5,
    "cli": 6,
}
MOST_MODULES_IN_ONE_ROOM = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PROJECT_PACKAGES for path in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, at its top or inside a function (`from a import b` counts `a.b`
    when that is a module, else `a`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
    return found


def import_edges() -> list[tuple[str, str]]:
    """(importer, imported) for every import between the project's modules."""
    modules = project_modules()
    return [
        (name, imported)
        for name, path in modules.items()
        for imported in sorted(imports_of(path, modules))
        if imported != name
    ]


def streaming_room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else ""


def test_no_modules_import_each_other() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported in import_edges():
        if not imported.startswith(importer + "."):  # a package's __init__ importing its own modules is no circle
            graph.setdefault(importer, set()).add(imported)
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        raise AssertionError(f"modules import each other: {' -> '.join(error.args[1])}") from None


def test_the_data_plane_imports_only_downwards() -> None:
    edges = import_edges()
    upward = [
        (a, b)
        for a, b in edges
        if a.startswith("streaming.")
        and b.startswith("streaming.")
        and STREAMING_LAYERS[streaming_room(b)] > STREAMING_LAYERS[streaming_room(a)]
    ]
    sideways = [
        (a, b)
        for a, b in edges
        if a.startswith("streaming.")
        and b.startswith("streaming.")
        and streaming_room(a) != streaming_room(b)
        and STREAMING_LAYERS[streaming_room(b)] == STREAMING_LAYERS[streaming_room(a)]
    ]
    assert upward == []
    assert sideways == []


def test_every_room_of_the_data_plane_is_listed_and_small() -> None:
    rooms = {path.name for path in (ROOT / "streaming").iterdir() if (path / "__init__.py").is_file()}
    assert rooms == set(STREAMING_LAYERS) - {""}
    for folder in [ROOT / "streaming", *(ROOT / "streaming" / room for room in rooms)]:
        modules = [path for path in folder.glob("*.py") if path.name != "__init__.py"]
        assert len(modules) <= MOST_MODULES_IN_ONE_ROOM, f"{folder.relative_to(ROOT)} holds {len(modules)} modules"


def test_no_top_level_package_shadows_a_well_known_one() -> None:
    assert not (ROOT / "localstack").exists()
    assert (ROOT / "kdp" / "devstack" / "__init__.py").is_file()


def imports_dagster(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        (isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "dagster" for alias in node.names))
        or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dagster")
        for node in ast.walk(tree)
    )


def test_dagster_is_imported_only_by_the_definitions() -> None:
    """The control plane's Dagster definitions live under `orchestration/defs/<area>/` (loaded the `dg` way);
    each area's plain logic lives in `orchestration/<area>/` and never imports Dagster, so it can be used and
    tested on its own."""
    defs = ROOT / "orchestration" / "defs"
    plain_with_dagster = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "orchestration").rglob("*.py")
        if not path.is_relative_to(defs) and path.name != "definitions.py" and imports_dagster(path)
    ]
    definitions_without_dagster = [
        str(path.relative_to(ROOT))
        for path in defs.rglob("*.py")
        if path.name != "__init__.py" and not imports_dagster(path)
    ]
    assert plain_with_dagster == []
    assert definitions_without_dagster == []
