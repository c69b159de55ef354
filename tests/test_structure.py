"""The layout's promises: serving loads no training or synthetic-data code, the core knows
nothing of Django, and callers catch the classifier's one exception family, nothing broader."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted((ROOT / "classifier").glob("*.py"))  # the inference core: classifier/ without its subpackages
TRAINING_ONLY = ("classifier.training", "classifier.synth", "tqdm", "torch.utils.data", "sklearn", "matplotlib")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_importing_the_predictor_loads_no_training_or_synthetic_code():
    code = ("import json, sys, classifier.predictor; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('classifier'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                                       text=True).stdout)
    assert "classifier.predictor" in loaded
    assert not [m for m in loaded if m.startswith(("classifier.training", "classifier.synth"))], loaded


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_inference_core_imports_no_training_code_and_no_django(path):
    # torch itself imports tqdm and torch.utils.data (through torch.hub); the core's own code does not
    imports = imported_modules(path)
    assert not [m for m in imports if m.startswith(TRAINING_ONLY + ("django", "idclass"))], imports


def test_no_classifier_module_imports_django():
    for path in (ROOT / "classifier").rglob("*.py"):
        assert not [m for m in imported_modules(path) if m.startswith(("django", "idclass"))], path


def test_web_code_imports_no_training_code():
    for name in ("serving.py", "services.py", "views.py", "models.py", "admin.py", "forms.py"):
        imports = imported_modules(ROOT / "idclass" / name)
        assert not [m for m in imports if m.startswith(TRAINING_ONLY)], (name, imports)


def broad_handlers(path: Path) -> list[str]:
    """`except` clauses that would also swallow errors that are not the classifier's or the web's own."""
    broad = {"Exception", "BaseException", "ValueError", "RuntimeError", "OSError", "KeyError"}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ExceptHandler):
            names = [] if node.type is None else [
                n.id if isinstance(n, ast.Name) else n.attr
                for n in (node.type.elts if isinstance(node.type, ast.Tuple) else [node.type])]
            if not names or broad & set(names):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_callers_catch_the_classifier_error_family_and_nothing_broader():
    callers = [ROOT / "idclass" / n for n in ("serving.py", "services.py", "views.py")]
    callers += sorted((ROOT / "idclass" / "management" / "commands").glob("*.py"))
    assert [h for path in callers for h in broad_handlers(path)] == []
