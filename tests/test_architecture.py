"""The package's layers and who may import whom.

    runtime, portable_sqrt, h5io      the base every part may use
    data, models, optvis              building blocks: images, networks, feature inversion
    algorithms, formats, viewer_page  the method: its algorithms, the files they read and write (formats
                                      import no algorithm), the viewer's page
    stages                            one module per rule file: what its scripts call
    workflow                          plumbing run while Snakemake builds its graph (imports no torch)
    checking                          a finished run's manifest and verify
    api                               the Python API: the stages' functions on objects in memory (nothing
                                      imports it)

The package mirrors the workflow: one stage module per rule file, each script calling its own stage,
no stage importing another; the parts below the stages never reach up into stages, workflow or
checking; there is no import cycle; modules stay small."""

import ast
import re
import subprocess
import sys

from tools.runs import REPO

PACKAGE = REPO / "activation_atlas"
BASE = {"activation_atlas", "runtime", "portable_sqrt", "h5io"}
BLOCKS = {"data", "models", "optvis"}
METHOD = {"algorithms", "formats", "viewer_page"}
# What each part may import, besides itself (by its first name under the package).
ALLOWED = {
    **{part: BASE for part in BASE},
    **{part: BASE | BLOCKS for part in BLOCKS},
    **{part: BASE | BLOCKS | METHOD for part in METHOD},
    # A file format is read and written without the algorithms that make its contents.
    "formats": BASE | BLOCKS,
    "stages": BASE | BLOCKS | METHOD | {"workflow", "checking"},
    "workflow": BASE | BLOCKS | METHOD | {"workflow"},
    "checking": BASE | {"checking"},
    "api": BASE | BLOCKS | METHOD | {"stages", "workflow", "api"},
}


def imported_modules(path) -> set[str]:
    """Every module the file imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (a name imported from a package counts as its
    module when there is one)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_modules(path):
            if imported.startswith("activation_atlas"):
                targets.add(imported)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_each_part_imports_only_the_parts_below_it():
    wrong = [
        (module, target)
        for module, targets in package_graph().items()
        for target in targets
        if part_of(target) != part_of(module) and part_of(target) not in ALLOWED[part_of(module)]
    ]
    assert not wrong


def test_every_module_is_in_a_declared_part():
    assert {part_of(module) for module in package_graph()} == set(ALLOWED)


def test_the_package_has_no_import_cycle():
    graph = package_graph()
    done, on_path, cycles = set(), [], []

    def visit(module):
        if module in on_path:
            cycles.append(on_path[on_path.index(module) :] + [module])
            return
        if module in done:
            return
        on_path.append(module)
        for target in sorted(graph[module]):
            # A package's own submodules import the package for what it declares: not a cycle.
            if not module.startswith(target + "."):
                visit(target)
        on_path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert not cycles


def test_the_workflow_plumbing_and_the_model_kinds_load_without_torch():
    """Snakemake imports these on every parse (on a cluster, in every job): torch would cost seconds."""
    modules = [module_name(p) for p in (PACKAGE / "workflow").glob("*.py")] + ["activation_atlas.models.kinds"]
    script = (
        f"import importlib, sys\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_sys_path_is_edited_only_to_import_a_user_models_package():
    edits = [
        str(p.relative_to(REPO))
        for folder in ("activation_atlas", "benchmarks", "tools", "tests", "rules", "scripts")
        for p in (REPO / folder).rglob("*")
        if p.suffix in (".py", ".smk")
        and re.search(r"sys\.path\.(insert|append)", p.read_text())
        and p.name != "test_architecture.py"
    ]
    assert edits == ["activation_atlas/models/kinds/user.py"]


def test_every_rule_file_has_its_stage_module_and_back():
    rule_files = {p.stem for p in (REPO / "rules").glob("*.smk")} - {"common"}
    stages = {p.stem for p in (PACKAGE / "stages").glob("*.py")} - {"__init__"}
    assert rule_files == stages


def test_stages_import_no_stage_and_only_the_python_api_imports_them():
    for path in PACKAGE.rglob("*.py"):
        if part_of(module_name(path)) == "api":  # the method's steps, one after the other
            continue
        stage_imports = {m for m in imported_modules(path) if m.startswith("activation_atlas.stages")}
        assert not stage_imports, f"{path.relative_to(REPO)} imports {stage_imports}"


def test_each_script_calls_the_stage_of_its_rule_file():
    rule_of_script = {}
    for rule_file in (REPO / "rules").glob("*.smk"):
        for script in re.findall(r'"\.\./scripts/(\w+)\.py"', rule_file.read_text()):
            rule_of_script.setdefault(script, set()).add(rule_file.stem)
    assert set(rule_of_script) == {p.stem for p in (REPO / "scripts").glob("*.py")}
    for script, rule_files in rule_of_script.items():
        stages = {
            m.rsplit(".", 1)[1]
            for m in imported_modules(REPO / "scripts" / f"{script}.py")
            if m.startswith("activation_atlas.stages.")
        }
        # The one download script serves the dataset's and the weights' downloads.
        assert len(stages) == 1 and (stages <= rule_files or script == "download"), (script, stages, rule_files)


# As ruff formats it (pyproject.toml: 120 columns, a long call one argument a line).
MODULE_LINES = 400


def test_no_module_of_the_package_is_over_400_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MODULE_LINES
    }
    assert not long
