"""Static checks of the code base: nothing from the config reaches a shell unquoted, and nothing
untrusted is unpickled.

- Workflow (Snakefile, workflow/rules/*.smk): every rule runs a ``script:`` (or ``run:``); a
  ``shell:`` directive, if one is ever added, may only use ``:q``-quoted placeholders (or
  ``{threads}`` / ``{resources.*}``) and never ``{config...}``; ``run:`` blocks and the workflow's
  Python never call ``shell()``, ``os.system`` or ``subprocess`` with ``shell=True``.
- Python (src/, scripts/): every ``torch.load`` passes ``weights_only=True``; no ``pickle`` /
  ``dill`` / ``torch.jit.load``; ``np.load`` never ``allow_pickle=True``; YAML only through
  ``safe_load``; no ``shell=True``, ``os.system``, ``os.popen``, ``eval`` or ``exec``.
"""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO

WORKFLOW = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
PYTHON = sorted(
    p for d in ("src", "scripts") for p in (REPO / d).rglob("*.py") if ".egg-info" not in str(p)
)
DIRECTIVE = re.compile(r"^(\s*)(shell|script|run|notebook|wrapper|cwl):", re.M)
SAFE_PLACEHOLDER = re.compile(r"^(threads|resources\.\w+)$|:q$")


def _directive_bodies(text: str, name: str) -> list[str]:
    """The text of every ``name:`` directive (its indented block)."""
    bodies = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"^(\s*){name}:(.*)$", line)
        if not m:
            continue
        indent = len(m.group(1))
        body = [m.group(2)]
        for nxt in lines[i + 1 :]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        bodies.append("\n".join(body))
    return bodies


def test_workflow_rules_never_pass_config_to_a_shell_unquoted():
    n_rules = n_scripts = 0
    for path in WORKFLOW:
        text = path.read_text()
        n_rules += len(re.findall(r"^\s*(?:local)?rule \w+:", text, re.M))
        n_scripts += len(_directive_bodies(text, "script"))
        for body in _directive_bodies(text, "shell"):
            for placeholder in re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", body):
                assert "config" not in placeholder, f"{path}: shell uses {{{placeholder}}}"
                assert SAFE_PLACEHOLDER.search(placeholder.strip()), (
                    f"{path}: shell placeholder {{{placeholder}}} is not quoted (add :q)"
                )
        for body in _directive_bodies(text, "run"):
            assert not re.search(r"\bshell\(|os\.system|subprocess|os\.popen", body), path
        assert "shell=True" not in text and "os.system" not in text, path
    assert n_rules >= 8 and n_scripts >= 8  # the checks saw the real rule files


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _name(node: ast.AST) -> str:
    """Dotted name of a call target (``torch.load``, ``np.load``, ``eval``); '' if dynamic."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_untrusted_files_are_never_unpickled_and_no_shell_is_spawned():
    torch_loads = []
    problems = []
    for path in PYTHON:
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(REPO)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                if any(
                    n.split(".")[0] in ("pickle", "dill", "cloudpickle", "shelve") for n in names
                ):
                    problems.append(f"{rel}:{node.lineno}: imports a pickle module")
        for call in _calls(tree):
            name = _name(call.func)
            where = f"{rel}:{call.lineno}: {name}"
            if name == "torch.load":
                torch_loads.append(where)
                value = _kw(call, "weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    problems.append(f"{where} without weights_only=True")
            elif name in ("torch.jit.load", "torch.package.PackageImporter"):
                problems.append(f"{where} (unpickles)")
            elif name.endswith(("np.load", "numpy.load")):
                value = _kw(call, "allow_pickle")
                if value is not None and not (
                    isinstance(value, ast.Constant) and value.value is False
                ):
                    problems.append(f"{where} with allow_pickle")
            elif name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
                problems.append(f"{where}: use yaml.safe_load")
            elif name in ("eval", "exec", "os.system", "os.popen", "compile"):
                problems.append(where)
            elif name.startswith("subprocess."):
                shell = _kw(call, "shell")
                if shell is not None and not (
                    isinstance(shell, ast.Constant) and shell.value is False
                ):
                    problems.append(f"{where} with shell=")
                if call.args and not isinstance(call.args[0], ast.List | ast.Tuple | ast.Name):
                    problems.append(f"{where}: command is not an argument list")
    assert not problems, "\n".join(problems)
    assert len(torch_loads) >= 3, torch_loads  # the scan saw the checkpoint / best.pt loads
