"""The package mirrors the workflow: one stage module per rule file, each script calling its own stage,
stages above the algorithm and format modules and never importing one another, small modules."""
import ast
import re

from tools.runs import REPO

PACKAGE = REPO / "activation_atlas"


def imported_modules(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_every_rule_file_has_its_stage_module_and_back():
    rule_files = {p.stem for p in (REPO / "rules").glob("*.smk")} - {"common"}
    stages = {p.stem for p in (PACKAGE / "stages").glob("*.py")} - {"__init__"}
    assert rule_files == stages


def test_stages_import_no_stage_and_nothing_below_imports_a_stage():
    for path in PACKAGE.rglob("*.py"):
        stage_imports = {m for m in imported_modules(path) if m.startswith("activation_atlas.stages")}
        assert not stage_imports, f"{path.relative_to(REPO)} imports {stage_imports}"


def test_each_script_calls_the_stage_of_its_rule_file():
    rule_of_script = {}
    for rule_file in (REPO / "rules").glob("*.smk"):
        for script in re.findall(r'"\.\./scripts/(\w+)\.py"', rule_file.read_text()):
            rule_of_script.setdefault(script, set()).add(rule_file.stem)
    assert set(rule_of_script) == {p.stem for p in (REPO / "scripts").glob("*.py")}
    for script, rule_files in rule_of_script.items():
        stages = {m.rsplit(".", 1)[1] for m in imported_modules(REPO / "scripts" / f"{script}.py")
                  if m.startswith("activation_atlas.stages.")}
        # The one download script serves the dataset's and the weights' downloads.
        assert len(stages) == 1 and (stages <= rule_files or script == "download"), (script, stages, rule_files)


def test_no_module_of_the_package_is_over_300_lines():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert not long
